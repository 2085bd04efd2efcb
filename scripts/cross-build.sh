#!/usr/bin/env bash
# Build the `quectel` library for a Cortex-M4F/M7 target (release profile).
#
#   scripts/cross-build.sh                     # no features
#   scripts/cross-build.sh --features defmt    # extra args go to `cargo build`
#   TARGET=thumbv7em-none-eabi scripts/cross-build.sh
#
# Route 1 (preferred): the target is installed in rustup
#   -> plain `cargo build --release --target $TARGET -p quectel`.
# Route 2 (fallback, this project's machines/CI): rustup cannot download
#   targets here, so use Debian's toolchain (apt: rustc-web cargo-web
#   rust-web-src) and build `core` from source:
#     RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
#       /usr/bin/cargo build --release --target $TARGET -Zbuild-std=core -p quectel
#   /usr/bin/cargo must be called explicitly: rustup's cargo is first in PATH.
#   Debian's rustc has no rust-lld: linking *firmware* (not needed for this
#   rlib) needs lld-22 and `-C linker=ld.lld-22`.
#
# Env:
#   TARGET            target triple (default thumbv7em-none-eabihf)
#   CARGO_TARGET_DIR  output dir (default: target/ for route 1,
#                     target/debian-cross/ for route 2, so the two compilers'
#                     artifacts never mix)
#   CROSS_ROUTE       force `rustup` or `debian` (default: auto)
#   NICE              prefix for the build command (default: `nice -n 10`)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TARGET="${TARGET:-thumbv7em-none-eabihf}"
NICE="${NICE-nice -n 10}"
DEBIAN_RUSTC=/usr/bin/rustc
DEBIAN_CARGO=/usr/bin/cargo

route="${CROSS_ROUTE:-auto}"
if [[ "$route" == auto ]]; then
    if command -v rustup >/dev/null 2>&1 \
        && rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
        route=rustup
    else
        route=debian
    fi
fi

case "$route" in
rustup)
    echo "cross-build: rustup target $TARGET ($(rustc --version))"
    # shellcheck disable=SC2086
    exec $NICE cargo build --release --target "$TARGET" -p quectel "$@"
    ;;
debian)
    for f in "$DEBIAN_RUSTC" "$DEBIAN_CARGO"; do
        if [[ ! -x "$f" ]]; then
            echo "cross-build: $f missing; run: apt-get install -y rustc-web cargo-web rust-web-src lld-22" >&2
            exit 1
        fi
    done
    sysroot="$("$DEBIAN_RUSTC" --print sysroot)"
    if [[ ! -d "$sysroot/lib/rustlib/src/rust/library/core" ]]; then
        echo "cross-build: core sources missing under $sysroot/lib/rustlib/src; run: apt-get install -y rust-web-src" >&2
        exit 1
    fi
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/debian-cross}"
    echo "cross-build: Debian toolchain, -Zbuild-std=core, target $TARGET ($("$DEBIAN_RUSTC" --version)), out: $CARGO_TARGET_DIR"

    # Debian's cargo is a different version from rustup's. It must not leave a
    # rewritten Cargo.lock behind (e.g. another lock-file format): keep the
    # committed one and put it back afterwards.
    lock_backup=""
    if [[ -f Cargo.lock ]]; then
        lock_backup="$(mktemp)"
        cp Cargo.lock "$lock_backup"
    fi
    restore_lock() {
        if [[ -n "$lock_backup" ]]; then
            if ! cmp -s Cargo.lock "$lock_backup"; then
                echo "cross-build: Debian cargo changed Cargo.lock; restoring the original" >&2
                cp "$lock_backup" Cargo.lock
            fi
            rm -f "$lock_backup"
        fi
    }
    trap restore_lock EXIT

    # shellcheck disable=SC2086
    RUSTC="$DEBIAN_RUSTC" RUSTC_BOOTSTRAP=1 RUSTDOC=/usr/bin/rustdoc \
        $NICE "$DEBIAN_CARGO" build --release --target "$TARGET" \
        -Zbuild-std=core -p quectel "$@"
    ;;
*)
    echo "cross-build: CROSS_ROUTE must be auto, rustup or debian (got '$route')" >&2
    exit 2
    ;;
esac
