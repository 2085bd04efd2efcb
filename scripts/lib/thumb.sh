# Sourced by the scripts that build for Cortex-M (cross-build.sh, build-boards.sh, footprint.sh,
# qemu-e2e.sh): which toolchain to use, and its checks, in one place.
#
# Two routes:
#   rustup  the target is installed in rustup: plain `cargo`;
#   debian  rustup cannot download targets here: Debian's compiler (apt: rustc-web cargo-web
#           rust-web-src) with `core` built from source (`-Zbuild-std=core`,
#           RUSTC_BOOTSTRAP=1); /usr/bin/cargo is called explicitly because rustup's cargo comes
#           first in PATH. Linking firmware needs /usr/bin/rust-lld (rust-web-llvm), a symlink
#           to lld-22.
# CROSS_ROUTE=rustup|debian forces one.

# thumb_route TARGET: prints the route (honours CROSS_ROUTE; exits 2 on a bad value).
thumb_route() {
    local route="${CROSS_ROUTE:-auto}"
    if [[ "$route" == auto ]]; then
        if command -v rustup >/dev/null 2>&1 \
            && rustup target list --installed 2>/dev/null | grep -qx "$1"; then
            route=rustup
        else
            route=debian
        fi
    fi
    case "$route" in
    rustup | debian) echo "$route" ;;
    *)
        echo "CROSS_ROUTE must be auto, rustup or debian (got '$route')" >&2
        return 2
        ;;
    esac
}

# thumb_toolchain NAME TARGET [--no-link]
#   Sets THUMB_ROUTE, THUMB_CARGO (array: the cargo command), THUMB_STD (array: extra cargo
#   arguments: -Zbuild-std=core on the Debian route) and THUMB_RUSTC (the compiler). On the
#   Debian route it checks the compiler, `core`'s sources and (unless --no-link) rust-lld,
#   exports RUSTC, RUSTDOC and RUSTC_BOOTSTRAP=1, and fails naming the apt packages to install.
#   NAME prefixes the messages.
thumb_toolchain() {
    local name="$1" target="$2" link=1
    [[ "${3:-}" == --no-link ]] && link=0
    THUMB_ROUTE="$(thumb_route "$target")" || exit 2
    THUMB_STD=()
    if [[ "$THUMB_ROUTE" == rustup ]]; then
        THUMB_CARGO=(cargo)
        THUMB_RUSTC="$(rustup which rustc 2>/dev/null || command -v rustc)"
        return 0
    fi
    local f
    for f in /usr/bin/rustc /usr/bin/cargo; do
        if [[ ! -x "$f" ]]; then
            echo "$name: $f missing; run: apt-get install -y rustc-web cargo-web rust-web-src rust-web-llvm lld-22" >&2
            exit 1
        fi
    done
    local sysroot
    sysroot="$(/usr/bin/rustc --print sysroot)"
    if [[ ! -d "$sysroot/lib/rustlib/src/rust/library/core" ]]; then
        echo "$name: core sources missing under $sysroot/lib/rustlib/src; run: apt-get install -y rust-web-src" >&2
        exit 1
    fi
    if ((link)) && ! /usr/bin/rust-lld -flavor gnu --version >/dev/null 2>&1; then
        echo "$name: /usr/bin/rust-lld does not run (it links to lld-22); run: apt-get install -y rust-web-llvm lld-22" >&2
        exit 1
    fi
    export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
    THUMB_CARGO=(/usr/bin/cargo)
    THUMB_STD=(-Zbuild-std=core)
    THUMB_RUSTC=/usr/bin/rustc
}
