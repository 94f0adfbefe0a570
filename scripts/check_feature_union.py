#!/usr/bin/env python3
"""Fails when the binary, the server tests and the browser tests would
compile dependencies with different features (so twice): compares cargo's
unit graphs (`--unit-graph`, read with RUSTC_BOOTSTRAP=1) of the builds
`make test` runs. The fix is a line in server/Cargo.toml's feature-union
block naming the crate and the features the other side adds."""
import json
import os
import subprocess
import sys

BUILDS = {
    "binary": ["build", "-p", "server", "--bin", "slipway"],
    "unit tests": ["test", "-p", "app", "-p", "server", "--lib", "--no-run"],
    "server tests": ["test", "-p", "server", "--test", "it", "--no-run"],
    "browser tests": ["test", "-p", "end2end", "--no-run"],
}


def units(args):
    env = dict(os.environ, RUSTC_BOOTSTRAP="1")
    out = subprocess.run(
        ["cargo", *args, "--unit-graph", "-Z", "unstable-options"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout
    seen = {}
    for u in json.loads(out)["units"]:
        if u["pkg_id"].startswith("path+"):
            continue  # the workspace's own crates (server has `testkit` in tests)
        key = (u["pkg_id"].split("#")[-1], u["target"]["name"], u["mode"])
        seen.setdefault(key, set()).add(tuple(sorted(u["features"])))
    return seen


def main():
    graphs = {name: units(args) for name, args in BUILDS.items()}
    base_name, base = next(iter(graphs.items()))
    problems = []
    for name, graph in graphs.items():
        for key in sorted(set(base) & set(graph)):
            if base[key] != graph[key]:
                problems.append(f"{key[0]} ({key[1]}, {key[2]}): {base_name} {sorted(base[key])} "
                                f"vs {name} {sorted(graph[key])}")
    if problems:
        print("dependencies compiled twice with different features:", *problems, sep="\n  ")
        return 1
    print(f"one dependency tree for: {', '.join(graphs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
