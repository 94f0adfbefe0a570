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
        own = u["pkg_id"].startswith("path+")  # the workspace's own crates
        crate = u["pkg_id"].split("/")[-1] if own else u["pkg_id"].split("#")[-1]
        key = (own, crate, u["target"]["name"], u["mode"])
        seen.setdefault(key, set()).add(tuple(sorted(u["features"])))
    return seen


def compare(a_name, a, b_name, b, own_crates):
    """Differences between two graphs; the workspace's own crates only when
    `own_crates` (the binary has no `testkit`, the tests all have it)."""
    return [
        f"{key[1]} ({key[2]}, {key[3]}): {a_name} {sorted(a[key])} vs {b_name} {sorted(b[key])}"
        for key in sorted(set(a) & set(b))
        if (own_crates or not key[0]) and a[key] != b[key]
    ]


def main():
    graphs = {name: units(args) for name, args in BUILDS.items()}
    names = list(graphs)
    problems = []
    for name in names[1:]:
        problems += compare(names[0], graphs[names[0]], name, graphs[name], own_crates=False)
        if name != names[1]:
            problems += compare(names[1], graphs[names[1]], name, graphs[name], own_crates=True)
    if problems:
        print("dependencies compiled twice with different features:", *problems, sep="\n  ")
        return 1
    print(f"one dependency tree for: {', '.join(graphs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
