#!/usr/bin/env bash
# Slipway development setup: idempotent, quick when everything is present.
#
# Ensures, in order:
#   1. a Rust toolchain whose sysroot has the wasm32-unknown-unknown std
#      (rustup's target where installed, otherwise Debian's rustc-web with a
#      locally built wasm32 std, linked into rustup as the `web` toolchain);
#   2. wasm-bindgen-cli at exactly the version in Cargo.lock; binaryen 116
#      (the library, from a pinned PyPI wheel) and python3 for `make site`;
#   3. Chromium + chromedriver (end-to-end tests);
#   4. the local Docker test base image slipway-test/busybox:1 (only when an
#      engine answers);
#   4b. docker-registry, htpasswd, qemu-user-static registered with
#      binfmt_misc, and Debian's arm64 busybox (registry and multi-arch tests);
#   4c. debootstrap (the test kit makes its Debian image with PostgreSQL and
#      Redis from it, once per machine: server/src/testkit/debian.rs);
#   5. schemathesis (PyPI) in a venv under the cache dir, for the API fuzz
#      test (server/tests/it/api_fuzz.rs).
# Writes build/setup.mk, which the Makefile includes (RUSTUP_TOOLCHAIN, PATH,
# SLIPWAY_SCHEMATHESIS).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/build/setup.mk"
CACHE="${SLIPWAY_CACHE:-$HOME/.cache/slipway}"
case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) export PATH="$HOME/.cargo/bin:$PATH" ;; esac

say()  { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
fail() { printf '\033[1;31m[setup] FAILED:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else fail "need root (or sudo) to run: $*"; fi
}

APT_UPDATED=0
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || fail "missing packages ${missing[*]} and no apt-get to install them"
  say "installing Debian packages: ${missing[*]}"
  if [ "$APT_UPDATED" = 0 ]; then
    as_root apt-get update -qq || fail "apt-get update failed (needed for: ${missing[*]})"
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
    || fail "apt-get install ${missing[*]} failed"
}

has_wasm_std() { # $1 = sysroot
  compgen -G "$1/lib/rustlib/wasm32-unknown-unknown/lib/libstd-*.rlib" >/dev/null
}

# ---------------------------------------------------------------- 1. toolchain
TOOLCHAIN=""
if command -v rustc >/dev/null && has_wasm_std "$(rustc --print sysroot 2>/dev/null)"; then
  say "toolchain: default rustc ($(rustc --version)) already has the wasm32 std"
  # A toolchain chosen earlier (build/setup.mk, exported by make) stays chosen.
  TOOLCHAIN="${RUSTUP_TOOLCHAIN:-}"
else
  say "toolchain: default rustc has no wasm32 std; using Debian rustc-web"
  apt_install rustc-web cargo-web rust-web-src rust-web-llvm rust-web-clippy rustfmt-web lld-22
  SYSROOT="$(/usr/bin/rustc --print sysroot)"
  # The std is built at opt-level z with LLVM bitcode, so the bundle's
  # link-time optimisation covers it too (about 3 KB smaller gzipped); the
  # marker tells a std built so from an older plain one.
  STD_MARK="$SYSROOT/lib/rustlib/wasm32-unknown-unknown/lib/.slipway-std-z-bitcode"
  if ! has_wasm_std "$SYSROOT" || [ ! -f "$STD_MARK" ]; then
    say "building the wasm32 std into $SYSROOT (about a minute, once)"
    STD="$CACHE/wasm-std"
    rm -rf "$STD"; mkdir -p "$STD/src"
    printf '[package]\nname = "wasmstd_dummy"\nversion = "0.0.0"\nedition = "2021"\n[lib]\npath = "src/lib.rs"\n[workspace]\n' > "$STD/Cargo.toml"
    printf '#![no_std]\n' > "$STD/src/lib.rs"
    (cd "$STD" && PATH=/usr/bin:$PATH RUSTC_BOOTSTRAP=1 RUSTUP_TOOLCHAIN= CARGO_TARGET_DIR="$STD/target" \
      RUSTFLAGS=-Cembed-bitcode=yes CARGO_PROFILE_RELEASE_OPT_LEVEL=z \
      /usr/bin/cargo build -q --release --target wasm32-unknown-unknown \
      -Zbuild-std=std,panic_abort,panic_unwind) || fail "building the wasm32 std with -Zbuild-std failed"
    DEST="$SYSROOT/lib/rustlib/wasm32-unknown-unknown/lib"
    as_root mkdir -p "$DEST"
    as_root rm -f "$DEST"/*.rlib  # an older build's crates would be ambiguous
    for f in "$STD"/target/wasm32-unknown-unknown/release/deps/*.rlib; do
      case "$(basename "$f")" in libwasmstd_dummy*) continue ;; esac
      as_root cp "$f" "$DEST/"
    done
    has_wasm_std "$SYSROOT" || fail "wasm32 std not found in $DEST after build"
    as_root touch "$STD_MARK"
    # Crates built against the previous std no longer link with this one.
    rm -rf "${CARGO_TARGET_DIR:-$ROOT/target}/wasm32-unknown-unknown"
  fi
  if command -v rustup >/dev/null; then
    if ! rustup toolchain list | grep -q '^web'; then
      say "linking /usr into rustup as toolchain 'web'"
      rustup toolchain link web /usr || fail "rustup toolchain link web /usr failed"
    fi
    TOOLCHAIN=web
  else
    export PATH="/usr/bin:$PATH"
  fi
fi
export RUSTUP_TOOLCHAIN="$TOOLCHAIN"
[ -n "$TOOLCHAIN" ] || unset RUSTUP_TOOLCHAIN

# ------------------------------------------------------------ 2. wasm-bindgen
WB_VERSION="$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/,""); print; exit}' "$ROOT/Cargo.lock")"
[ -n "$WB_VERSION" ] || fail "cannot read the wasm-bindgen version from Cargo.lock"
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WB_VERSION" ]; then
  say "installing wasm-bindgen-cli $WB_VERSION (about 3 minutes, once)"
  # --locked fails here: its lock names a webpki-roots release the registry lacks.
  cargo install -q wasm-bindgen-cli --version "=$WB_VERSION" --force \
    || fail "cargo install wasm-bindgen-cli $WB_VERSION failed"
fi
say "wasm-bindgen $WB_VERSION ok"

# Binaryen 116 for the release bundle (Makefile `site`): its prebuilt
# shared library from the PyPI wheel icpp-binaryen, driven through the C API
# by frontend/tools/wasm_opt.py (the same bytes as the wasm-opt 116 command
# line; building binaryen from C++ source took 10-17 minutes on 2 cores).
# The wheel is pinned by version and SHA-256; only the library is kept.
# Debian's binaryen (108) makes the gzipped bundle larger: not used.
command -v python3 >/dev/null || apt_install python3
BINARYEN_WHEEL="icpp_binaryen-116.0.1-py3-none-manylinux_2_35_x86_64.whl"
BINARYEN_SHA256="35fe9e8dd512977cd3dbaebf352eda4d6f686d0292d7d73942b5ffd3a1b06b20"
LIBBINARYEN="$CACHE/binaryen-116/libbinaryen.so"
if [ ! -f "$LIBBINARYEN" ]; then
  say "fetching binaryen 116 (the icpp-binaryen wheel from PyPI, once)"
  WHEELS="$CACHE/wheels"
  mkdir -p "$WHEELS" "$(dirname "$LIBBINARYEN")"
  python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_35_x86_64 \
    --dest "$WHEELS" "icpp-binaryen==116.0.1" || fail "pip download icpp-binaryen==116.0.1 failed"
  echo "$BINARYEN_SHA256  $WHEELS/$BINARYEN_WHEEL" | sha256sum -c --quiet - \
    || fail "$BINARYEN_WHEEL does not have the pinned SHA-256"
  python3 -c 'import sys, zipfile; open(sys.argv[2] + ".part", "wb").write(zipfile.ZipFile(sys.argv[1]).read("icpp_binaryen/lib/libbinaryen.so"))' \
    "$WHEELS/$BINARYEN_WHEEL" "$LIBBINARYEN" || fail "cannot extract libbinaryen.so from $BINARYEN_WHEEL"
  mv -f "$LIBBINARYEN.part" "$LIBBINARYEN"
fi
python3 -c 'import ctypes, sys; ctypes.CDLL(sys.argv[1]).BinaryenModuleCreate' "$LIBBINARYEN" \
  || fail "$LIBBINARYEN does not load"
say "binaryen 116 ok ($LIBBINARYEN)"

# ---------------------------------------------------------------- 3. Chromium
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  apt_install chromium chromium-driver
fi
say "chromium ok ($(chromium --version 2>/dev/null | awk '{print $2}'))"

# ------------------------------------------------------- 4. docker base image
BASE_IMAGE="slipway-test/busybox:1"
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    apt_install busybox-static
    say "creating $BASE_IMAGE from busybox-static"
    RFS="$(mktemp -d)"
    mkdir -p "$RFS/bin" "$RFS/www" "$RFS/tmp" "$RFS/etc"
    cp /bin/busybox "$RFS/bin/busybox"
    for a in sh ash cat echo env httpd wget sleep ls mkdir rm cp mv printf test true false \
             grep sed head tail wc seq date id hostname kill ps touch chmod yes nc; do
      ln -s busybox "$RFS/bin/$a"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nwww:x:1000:1000:www:/www:/bin/sh\n' > "$RFS/etc/passwd"
    printf 'root:x:0:\nwww:x:1000:\n' > "$RFS/etc/group"
    tar -C "$RFS" -c . | docker import \
      -c 'ENV PATH=/bin' -c 'LABEL dev.slipway.testkit=base' - "$BASE_IMAGE" >/dev/null \
      || fail "docker import of $BASE_IMAGE failed"
    rm -rf "$RFS"
  fi
  say "docker base image $BASE_IMAGE ok"
else
  say "docker engine not reachable: skipping the test base image (Docker tests will fail)"
fi

# ------------------------------- 4b. registry, QEMU, an arm64 busybox (issue 16)
# The registry tests start Debian's docker-registry with an htpasswd file;
# the multi-arch test builds linux/arm64 images, whose RUN steps run under
# qemu-user-static registered with binfmt_misc (flag F, so it works inside
# containers), from a FROM image made of Debian's arm64 busybox-static.
BINFMT=/proc/sys/fs/binfmt_misc
# Mounted first, so qemu-user-static's own install registers its emulators.
if [ ! -e "$BINFMT/register" ]; then
  as_root mount -t binfmt_misc binfmt_misc "$BINFMT" 2>/dev/null \
    || say "cannot mount binfmt_misc: foreign-platform builds will fail (the multi-arch test says so)"
fi
apt_install docker-registry apache2-utils qemu-user-static binfmt-support
if [ -e "$BINFMT/register" ] && [ ! -e "$BINFMT/qemu-aarch64" ]; then
  as_root update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
fi
if [ -e "$BINFMT/qemu-aarch64" ]; then say "qemu-aarch64 binfmt ok"
else say "qemu-aarch64 is not registered with binfmt_misc: linux/arm64 builds will fail"; fi
ARM_BUSYBOX="$CACHE/busybox-arm64"
if [ ! -x "$ARM_BUSYBOX" ]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || as_root dpkg --add-architecture arm64
  as_root apt-get update -qq || fail "apt-get update (arm64) failed"
  APT_DL="$(mktemp -d)"; chmod 777 "$APT_DL"
  (cd "$APT_DL" && apt-get download -qq busybox-static:arm64 >/dev/null 2>&1) \
    || fail "apt-get download busybox-static:arm64 failed"
  dpkg-deb -x "$APT_DL"/busybox-static_*_arm64.deb "$APT_DL/x" || fail "cannot unpack busybox-static:arm64"
  mkdir -p "$CACHE" && cp "$APT_DL/x/bin/busybox" "$ARM_BUSYBOX.part" && mv -f "$ARM_BUSYBOX.part" "$ARM_BUSYBOX"
  rm -rf "$APT_DL"
fi
say "arm64 busybox ok ($ARM_BUSYBOX)"

# ------------------------------------------- 4c. debootstrap (issue 19)
# The pipeline services test runs a real PostgreSQL and Redis: the test kit
# makes its Debian image (slipway-test/debian-pg-redis:1) with debootstrap
# the first time it is missing (about a minute), then reuses it by tag.
apt_install debootstrap
say "debootstrap ok"

# ---------------------------------------------------------- 5. schemathesis
# In its own venv (the system python is left alone); pinned, so a run's
# verdicts do not change under the tests.
ST_VERSION="4.32.5"
ST_VENV="$CACHE/schemathesis-$ST_VERSION"
SCHEMATHESIS="$ST_VENV/bin/schemathesis"
if [ "$("$SCHEMATHESIS" --version 2>/dev/null | awk '{print $NF}')" != "$ST_VERSION" ]; then
  say "installing schemathesis $ST_VERSION into $ST_VENV (from PyPI, once)"
  python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
  rm -rf "$ST_VENV"
  python3 -m venv "$ST_VENV" || fail "python3 -m venv $ST_VENV failed"
  "$ST_VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$ST_VERSION" \
    || fail "pip install schemathesis==$ST_VERSION failed"
fi
say "schemathesis ok ($("$SCHEMATHESIS" --version))"

mkdir -p "$(dirname "$OUT")"
{
  echo "# generated by scripts/setup.sh; do not edit"
  [ -n "$TOOLCHAIN" ] && echo "export RUSTUP_TOOLCHAIN := $TOOLCHAIN"
  echo "LIBBINARYEN := $LIBBINARYEN"
  echo "export PATH := $PATH"
  echo "export SLIPWAY_SCHEMATHESIS := $SCHEMATHESIS"
  echo "export SLIPWAY_ARM64_BUSYBOX := $ARM_BUSYBOX"
} > "$OUT"
say "done"
