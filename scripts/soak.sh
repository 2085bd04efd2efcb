#!/usr/bin/env bash
# The full soak of issue 11 (`tests/soak.rs`): 10 000 QoS 1 messages up and 1 000 down through
# the behavioural mock modem (modem TLS) and mosquitto, with faults of the fault matrix
# injected at seeded random points (broker SIGKILL and SIGTERM, connection closed by the
# network, `pdpdeact`, garbage on the UART, modem reboot, `SEND FAIL`, silence, a lost `recv`
# URC), counted by independent clients. Writes the result (command, commit, seed, counts,
# faults by kind, duplicates, duration) into docs/reliability.md between the
# `<!-- soak:begin -->` and `<!-- soak:end -->` lines.
#
#   scripts/soak.sh                          # full run, then rewrite the doc section
#   scripts/soak.sh --no-write               # full run only
#   QUECTEL_SOAK_SEED=<n> scripts/soak.sh    # replay a fault schedule (timing still varies)
#
# The 500 up / 50 down smoke of the same test runs in `cargo xtask test` (no flag).
# Needs `mosquitto`, `mosquitto_pub` and `mosquitto_sub` (`cargo xtask test` installs them);
# /usr/sbin is added to PATH for Debian's mosquitto. Takes about 15-20 minutes.
#
# Env: CARGO_TARGET_DIR (as for cargo), QUECTEL_SOAK_SEED.
# Exit status: the test's (non-zero when a QoS 1 message was lost or the run did not finish).
set -euo pipefail

cd "$(dirname "$0")/.."
DOC=docs/reliability.md
write=1
case "${1:-}" in
    --no-write) write=0 ;;
    "") ;;
    *)
        echo "usage: scripts/soak.sh [--no-write]" >&2
        exit 2
        ;;
esac

export PATH="$PATH:/usr/sbin"
report="$(mktemp)"
log="$(mktemp)"
trap 'rm -f "$report" "$log"' EXIT

CMD="QUECTEL_SOAK=full cargo test -p quectel --test soak --features mqtt -- --nocapture"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if ! git diff --quiet HEAD -- src mock-modem tests 2>/dev/null; then
    commit="$commit + uncommitted changes"
fi
started="$(date -u '+%Y-%m-%d %H:%M UTC')"
echo "soak: $CMD"
set +e
QUECTEL_SOAK=full QUECTEL_SOAK_REPORT="$report" \
    cargo test -p quectel --test soak --features mqtt -- --nocapture 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

if [[ ! -s "$report" ]]; then
    echo "soak: the test wrote no report (exit status $status)" >&2
    exit 1
fi
result="$(grep -E '^test result:' "$log" | tail -1 || true)"

block="$(mktemp)"
{
    echo "Ran on $started at commit $commit, with \`scripts/soak.sh\`, which runs"
    echo
    echo '```sh'
    echo "$CMD"
    echo '```'
    echo
    echo "Exit status $status; cargo: \`${result:-no result line}\`."
    echo
    cat "$report"
} >"$block"
cat "$block"

if ((write)); then
    begin='<!-- soak:begin (written by scripts/soak.sh) -->'
    end='<!-- soak:end -->'
    if ! grep -qF "$begin" "$DOC" || ! grep -qF "$end" "$DOC"; then
        echo "soak: $DOC lacks the $begin / $end lines" >&2
        exit 1
    fi
    tmp="$(mktemp)"
    awk -v b="$begin" -v e="$end" -v f="$block" '
        $0 == b { print; while ((getline line < f) > 0) print line; skip = 1; next }
        $0 == e { skip = 0 }
        !skip { print }' "$DOC" >"$tmp"
    cat "$tmp" >"$DOC"
    rm -f "$tmp"
    echo "soak: wrote the result into $DOC"
fi
rm -f "$block"
exit "$status"
