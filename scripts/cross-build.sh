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
#   Linking *firmware* (not needed for this rlib) with this toolchain: the
#   target's default linker `rust-lld` is /usr/bin/rust-lld from apt's
#   rust-web-llvm (a Recommends of rustc-web); `-C linker=ld.lld-22` (apt
#   lld-22) works as well. Both checked on a minimal no_std binary.
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
# shellcheck source=lib/thumb.sh
source "$ROOT/scripts/lib/thumb.sh"
thumb_toolchain cross-build "$TARGET" --no-link # an rlib: nothing is linked

if [[ $THUMB_ROUTE == rustup ]]; then
    echo "cross-build: rustup target $TARGET ($(rustc --version))"
    # shellcheck disable=SC2086
    exec $NICE cargo build --release --target "$TARGET" -p quectel "$@"
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/debian-cross}"
echo "cross-build: Debian toolchain, -Zbuild-std=core, target $TARGET ($("$THUMB_RUSTC" --version)), out: $CARGO_TARGET_DIR"

# Debian's cargo (1.96 here) is a different version from rustup's (1.95).
# Both read lock-file format v4 and resolve the same, so normally the lock
# is left untouched (checked). Should Debian's cargo ever rewrite the lock
# into another format, put the committed one back so the host build keeps
# working. Ordinary updates (a new dependency) are kept: restoring those
# could undo a concurrent host `cargo` run.
lock_backup=""
lock_version() { grep -m1 -E '^version = [0-9]+' Cargo.lock 2>/dev/null || true; }
lock_v0=""
if [[ -f Cargo.lock ]]; then
    lock_backup="$(mktemp)"
    cp Cargo.lock "$lock_backup"
    lock_v0="$(lock_version)"
fi
restore_lock() {
    if [[ -n "$lock_backup" ]]; then
        if [[ "$(lock_version)" != "$lock_v0" ]]; then
            echo "cross-build: Debian cargo changed the Cargo.lock format ($lock_v0 -> $(lock_version)); restoring the original" >&2
            cp "$lock_backup" Cargo.lock
        fi
        rm -f "$lock_backup"
    fi
}
trap restore_lock EXIT

# shellcheck disable=SC2086
$NICE "${THUMB_CARGO[@]}" build --release --target "$TARGET" "${THUMB_STD[@]}" -p quectel "$@"
