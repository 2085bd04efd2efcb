#!/usr/bin/env bash
# Cross-build the board examples (release) and print their sizes:
#
#   examples/nrf52840-dk     embassy-nrf 0.11, nRF52840     bins: modem_tls, mcu_tls, ota
#   examples/nucleo-f429zi   embassy-stm32 0.6, STM32F429ZI  bins: modem_tls, mcu_tls, ota
#   examples/boot/<board>    the embassy-boot bootloader the `ota` binary runs under
#
# `ota` (feature `ota`) is built on its own, after the others: its feature links the crate into
# the bootloader's ACTIVE partition (memory-ota.x), which the plain binaries must not be.
#
#   scripts/build-boards.sh                 # both crates
#   scripts/build-boards.sh nrf52840-dk     # one crate (folder name under examples/)
#
# Compile check only: flashing needs the board and probe-rs (`cargo run --release --bin ...`
# in the crate; see its README). The credentials are the crates' placeholders unless
# QUECTEL_CA_PEM / QUECTEL_CERT_PEM / QUECTEL_KEY_PEM are set.
#
# Route 1: thumbv7em-none-eabihf is installed in rustup -> plain `cargo build --release`
#   in each crate (its .cargo/config.toml sets the target, linker scripts and runner).
# Route 2 (this project's machines/CI: rustup cannot add targets): Debian's toolchain
#   (apt: rustc-web cargo-web rust-web-src lld-22) with `core` built from source:
#     RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo build --release \
#       --target thumbv7em-none-eabihf -Zbuild-std=core
#   /usr/bin/cargo must be called explicitly (rustup's cargo is first in PATH), and lld-22
#   must be installed (Debian's rust-lld is a symlink to it).
#
# Both crates share one target dir (same triple: `core`, embassy-*, quectel are built once).
# Both crates name their binaries modem_tls and mcu_tls, so each crate's ELFs are copied to
# $CARGO_TARGET_DIR/boards/<crate>/ right after its build; the sizes printed are of those.
#
# Env:
#   CARGO_TARGET_DIR  default: target/firmware (Debian route, shared with the QEMU firmware),
#                     target/boards (rustup route), so the two compilers never mix artifacts
#   CROSS_ROUTE       force `rustup` or `debian` (default: auto)
#   NICE              prefix for the build command (default: `nice -n 10`)
#
# Fails on any build error or missing ELF. Cargo.lock files are used as committed (--locked).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET=thumbv7em-none-eabihf
NICE="${NICE-nice -n 10}"
BINS=(modem_tls mcu_tls)

if [[ $# -gt 0 ]]; then
    CRATES=("$@")
else
    CRATES=(nrf52840-dk nucleo-f429zi)
fi

# shellcheck source=lib/thumb.sh
source "$ROOT/scripts/lib/thumb.sh"
thumb_toolchain build-boards "$TARGET"
if [[ $THUMB_ROUTE == rustup ]]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/boards}"
    build=(cargo build --release --locked)
    echo "build-boards: rustup target $TARGET ($(rustc --version)), out: $CARGO_TARGET_DIR"
else
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/firmware}"
    build=("${THUMB_CARGO[@]}" build --release --locked --target "$TARGET" "${THUMB_STD[@]}")
    echo "build-boards: Debian toolchain, -Zbuild-std=core ($("$THUMB_RUSTC" --version)), out: $CARGO_TARGET_DIR"
fi

# Each crate is built from its own directory, so a relative target dir must be made absolute.
CARGO_TARGET_DIR="$(realpath -m "$CARGO_TARGET_DIR")"
export CARGO_TARGET_DIR

SIZE=""
for s in arm-none-eabi-size llvm-size-22 llvm-size; do
    if command -v "$s" >/dev/null 2>&1; then
        SIZE="$s"
        break
    fi
done
if [[ -z "$SIZE" ]]; then
    echo "build-boards: no arm-none-eabi-size; run: apt-get install -y binutils-arm-none-eabi" >&2
    exit 1
fi

elves=()
for crate in "${CRATES[@]}"; do
    dir="$ROOT/examples/$crate"
    if [[ ! -f "$dir/Cargo.toml" ]]; then
        echo "build-boards: no crate at examples/$crate" >&2
        exit 2
    fi
    echo "build-boards: === $crate ==="
    start=$SECONDS
    # cd: cargo reads .cargo/config.toml from the working directory, not --manifest-path.
    out="$CARGO_TARGET_DIR/boards/$crate"
    mkdir -p "$out"
    # take NAME [ELF]: copy the ELF just built (default: NAME) to $out/NAME.
    take() {
        local elf="$CARGO_TARGET_DIR/$TARGET/release/${2:-$1}"
        if [[ ! -f "$elf" ]]; then
            echo "build-boards: $crate: missing ELF $elf" >&2
            exit 1
        fi
        cp "$elf" "$out/$1"
        elves+=("$out/$1")
    }
    # shellcheck disable=SC2086
    (cd "$dir" && $NICE "${build[@]}" --bins)
    for bin in "${BINS[@]}"; do take "$bin"; done
    # shellcheck disable=SC2086
    (cd "$dir" && $NICE "${build[@]}" --features ota --bin ota)
    take ota
    # shellcheck disable=SC2086
    (cd "$ROOT/examples/boot/$crate" && $NICE "${build[@]}" --bins)
    take bootloader "quectel-$crate-bootloader"
    echo "build-boards: $crate built in $((SECONDS - start)) s"
done

echo "build-boards: sizes ($SIZE)"
"$SIZE" "${elves[@]}"
