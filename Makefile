# Slipway: `make run` serves the dashboard, `make test` runs every suite.
# Both run scripts/setup.sh first (idempotent; quick when all is present).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Build output lives outside the clone so fresh clones (CI) reuse a warm cache.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/slipway/target
SITE := $(CARGO_TARGET_DIR)/site
WASM := $(CARGO_TARGET_DIR)/wasm32-unknown-unknown/wasm-release/frontend.wasm
export SLIPWAY_SITE_ROOT ?= $(SITE)
CARGO ?= cargo

# Written by scripts/setup.sh: the toolchain with the wasm32 std, PATH.
-include build/setup.mk

.PHONY: help setup run run-debug test check-features site server server-release test-unit test-server test-e2e bench lint fmt clean-docker

help:
	@echo "make run    build everything (release) and serve the dashboard on 127.0.0.1:3000 (data in ./data)"
	@echo "make run-debug  the same with the debug build (quicker to rebuild)"
	@echo "make test   run every test suite (unit, server integration with Docker, end-to-end in Chromium)"
	@echo "make lint   clippy (ssr and wasm builds) and rustfmt --check"

setup:
	@scripts/setup.sh

# The public targets run setup, then re-enter make so build/setup.mk is read.
# `make run` serves the release build (what the README's memory figures are
# for: about 22 MB idle, where the debug build maps 32 MB); `make run-debug`
# serves the debug build, quicker to rebuild while developing.
run: setup
	@$(MAKE) --no-print-directory site server-release
	$(CARGO_TARGET_DIR)/release/slipway serve

run-debug: setup
	@$(MAKE) --no-print-directory site server
	$(CARGO_TARGET_DIR)/debug/slipway serve

test: setup
	@$(MAKE) --no-print-directory check-features site server test-unit test-server test-e2e

# The binary and every test build share one compiled dependency tree (the
# feature-union block in server/Cargo.toml); a few seconds, no compiling.
check-features:
	python3 scripts/check_feature_union.py

# Browser bundle: wasm32 build of `frontend`, wasm-bindgen, wasm-opt, plain CSS.
# Rust flags (`--cfg=erase_components` for server and bundle alike) are in
# .cargo/config.toml, so plain cargo and cargo-leptos builds match.
# Binaryen 116 (its library, which setup.sh fetches; frontend/tools/wasm_opt.py
# runs the same passes as `wasm-opt -Oz -Oz --converge -ocimfs 0
# --skip-pass=merge-similar-functions --reorder-functions-by-name
# --strip-debug --strip-producers`, and writes the same bytes) shrinks the
# bundle for gzip, not for raw bytes: one-caller inlining (-ocimfs 0) and
# merge-similar-functions make the gzipped file larger, so both are off; the
# -Oz pipeline runs twice, repeated while it still shrinks (--converge).
# Functions are ordered by their generic function (names rewritten by
# frontend/tools/order_names.py; the name section is stripped afterwards),
# which puts the instantiations of one generic next to each other for gzip.
# cargo runs every time (quick when nothing changed; it rewrites $(WASM)
# only when the frontend changed); wasm-bindgen and wasm-opt (about a minute)
# run only when $(WASM) is newer than the bundle, the CSS copy only when
# style/main.css changed. The bundle is staged and moved into pkg/ last, so
# a failed wasm-opt never leaves a bundle that looks up to date. The JS
# snippets wasm-bindgen writes (`snippets/`, from `inline_js`) move with it.
SITE_WASM := $(SITE)/pkg/slipway_bg.wasm
SITE_JS := $(SITE)/pkg/slipway.js
SITE_CSS := $(SITE)/pkg/slipway.css
STAGE := $(SITE)/.stage

site: $(SITE_WASM) $(SITE_JS) $(SITE_CSS)

.PHONY: FORCE
FORCE:

$(WASM): FORCE
	$(CARGO) build -p frontend --lib --target wasm32-unknown-unknown --profile wasm-release

$(SITE_WASM) $(SITE_JS) &: $(WASM) frontend/tools/order_names.py frontend/tools/wasm_opt.py Makefile
	@rm -rf $(STAGE) && mkdir -p $(STAGE) $(SITE)/pkg
	wasm-bindgen --target web --no-typescript --out-dir $(STAGE) --out-name slipway $(WASM)
	python3 frontend/tools/order_names.py $(STAGE)/slipway_bg.wasm $(STAGE)/slipway_bg.named.wasm
	python3 frontend/tools/wasm_opt.py $(LIBBINARYEN) $(STAGE)/slipway_bg.named.wasm $(STAGE)/slipway_bg.opt.wasm
	rm -rf $(SITE)/pkg/snippets
	if [ -d $(STAGE)/snippets ]; then mv -f $(STAGE)/snippets $(SITE)/pkg/snippets; fi
	mv -f $(STAGE)/slipway.js $(SITE_JS)
	mv -f $(STAGE)/slipway_bg.opt.wasm $(SITE_WASM)
	@rm -rf $(STAGE)
	@printf 'site: %s  wasm %s bytes, gzipped %s bytes\n' "$(SITE)/pkg" \
	  "$$(stat -c %s $(SITE_WASM))" "$$(gzip -9c $(SITE_WASM) | wc -c)"

$(SITE_CSS): style/main.css
	@mkdir -p $(SITE)/pkg
	cp style/main.css $(SITE_CSS)

server:
	$(CARGO) build -p server --bin slipway

server-release:
	$(CARGO) build --release -p server --bin slipway

# Unit tests (no Docker, no browser).
test-unit:
	$(CARGO) test -p app -p server --lib

# Server integration tests: real SQLite files, real Docker Engine, real git.
test-server:
	$(CARGO) test -p server --test it

# End-to-end: the built server driven by headless Chromium, one test at a
# time (each drives its own server, chromedriver and Chromium).
test-e2e: site server
	$(CARGO) test -p end2end -- --test-threads=1

# Benchmarks (release build): queue pickup, log ingest, build and edge overhead, SSR of the service page (wrk).
bench: setup
	@$(MAKE) --no-print-directory bench-inner

.PHONY: bench-inner
bench-inner:
	@scripts/setup-bench.sh
	$(CARGO) bench -p server

lint: setup
	@$(MAKE) --no-print-directory lint-inner

.PHONY: lint-inner
lint-inner:
	$(CARGO) clippy --workspace --exclude frontend --all-targets -- -D warnings
	$(CARGO) clippy -p frontend -p app --target wasm32-unknown-unknown -- -D warnings
	$(CARGO) fmt --all --check

fmt:
	$(CARGO) fmt --all

# Removes whatever tests left behind (containers, networks, images) by label.
clean-docker:
	docker ps -aq --filter label=dev.slipway.test | xargs -r docker rm -f
	docker network ls -q --filter label=dev.slipway.test | xargs -r docker network rm
	docker images -q --filter label=dev.slipway.test | xargs -r docker rmi -f
