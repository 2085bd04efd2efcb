#!/usr/bin/env bash
# Instruction counts per received byte, measured with callgrind (valgrind), on a generated
# Quectel-like stream of two kinds, through the digester alone and through the runner's intake
# path (`Runner::ingest`), at 1-, 64- and 1 024-byte chunks. The workload is benches/cpu.rs.
#
#   scripts/cpu-bench.sh            # 1 MiB streams; writes the `cpu` section of docs/perf.md
#   scripts/cpu-bench.sh --check    # 256 KiB streams; fails if a figure is above its limit (CI)
#
# Environment: CPU_BENCH_BYTES overrides the stream size; PERF_OUT the file written.
# Counts are x86-64 instructions of the host build (release profile, opt-level "s"); only the
# feeding function is counted (`--toggle-collect`), not the stream generation nor the emulated
# command side, so the figure is per byte of stream.
#
# Critical sections: the benchmark binary (single-threaded) provides its own `critical-section`
# implementation, a model of a single-core Cortex-M's (a flag read and set on entry, restored on
# exit, as PRIMASK is), instead of the host one the tests use (`critical-section`'s `std`
# feature: a thread-local flag and a global mutex, about 100 x86 instructions per section, a
# cost no firmware pays). See `cortex_m_like` in benches/cpu.rs: compiled with
# `--cfg quectel_cpu_bench_cs`, set below, and checked to be in use when the benchmark starts.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"

CHECK=0
if [[ "${1:-}" == "--check" ]]; then
    CHECK=1
fi
if ((CHECK)); then
    BYTES="${CPU_BENCH_BYTES:-262144}"
else
    BYTES="${CPU_BENCH_BYTES:-1048576}"
fi
OUT="${PERF_OUT:-$ROOT/docs/perf.md}"

# Targets (instructions per byte): issue 15's.
target() { # path chunk
    case "$1:$2" in
        digester:1) echo 50 ;;
        digester:*) echo 20 ;;
        intake:1) echo 60 ;;
        intake:*) echo 20 ;;
    esac
}
# What --check fails above: the target where it is met (the control-only stream at 1-byte
# chunks and, since CPU round 12, the digester's at 1 024 included); for the control-only
# stream's other rows at 64 and 1 024 bytes, which are not there yet,
# a ceiling just above the figure measured when it was set (2-3 %), so that CI catches a
# regression while the work goes on (lower these as the figures come down).
limit() { # path kind chunk
    case "$1:$2:$3" in
        digester:control:1 | intake:control:1) target "$1" "$3" ;;
        digester:control:1024) target "$1" "$3" ;;
        digester:control:*) echo 21.5 ;;
        intake:control:*) echo 24.5 ;;
        *) target "$1" "$3" ;;
    esac
}

command -v valgrind >/dev/null || { echo "cpu-bench: valgrind is not installed" >&2; exit 1; }

BIN="$(RUSTFLAGS="${RUSTFLAGS:-} --cfg quectel_cpu_bench_cs" \
    cargo build --release --bench cpu --message-format=json-render-diagnostics \
    | jq -r 'select(.reason == "compiler-artifact" and .target.name == "cpu") | .executable')"
[[ -x "$BIN" ]] || { echo "cpu-bench: no benchmark binary" >&2; exit 1; }

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

declare -A FIG
FAIL=0
for path in digester intake; do
    case "$path" in
        digester) toggle='*DigestBench*feed*' ;;
        intake) toggle='*IntakeBench*ingest*' ;;
    esac
    for kind in qird control; do
        for chunk in 1 64 1024; do
            out="$(valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" \
                --toggle-collect="$toggle" "$BIN" "$path" "$kind" "$chunk" "$BYTES" 2>"$TMP/err")" || {
                cat "$TMP/err" >&2
                exit 1
            }
            bytes="$(sed -n 's/.*bytes=\([0-9]*\).*/\1/p' <<<"$out")"
            ir="$(sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p' "$TMP/err")"
            per="$(awk -v i="$ir" -v b="$bytes" 'BEGIN { printf "%.1f", i / b }')"
            FIG["$path:$kind:$chunk"]="$per"
            lim="$(limit "$path" "$kind" "$chunk")"
            tgt="$(target "$path" "$chunk")"
            verdict=ok
            if awk -v p="$per" -v l="$lim" 'BEGIN { exit !(p > l) }'; then
                verdict="ABOVE LIMIT"
                FAIL=1
            elif awk -v p="$per" -v l="$tgt" 'BEGIN { exit !(p > l) }'; then
                verdict="above target"
            fi
            printf '%-8s %-7s chunk %4s: %8s instructions/byte (%s instructions, %s bytes; target %s, limit %s) %s\n' \
                "$path" "$kind" "$chunk" "$per" "$ir" "$bytes" "$tgt" "$lim" "$verdict"
        done
    done
done

if ((CHECK)); then
    if ((FAIL)); then
        echo "cpu-bench: a figure is above its limit" >&2
        exit 1
    fi
    echo "cpu-bench: every figure within its limit"
    exit 0
fi

# A figure, marked when it is above its target.
fig() { # path kind chunk
    local f="${FIG[$1:$2:$3]}"
    if awk -v p="$f" -v l="$(target "$1" "$3")" 'BEGIN { exit !(p > l) }'; then
        echo "$f (target $(target "$1" "$3"))"
    else
        echo "$f"
    fi
}
row() { # label path kind
    printf '| %s | %s | %s | %s |\n' "$1" "$(fig "$2" "$3" 1)" "$(fig "$2" "$3" 64)" "$(fig "$2" "$3" 1024)"
}

BEGIN='<!-- cpu:begin (written by scripts/cpu-bench.sh) -->'
END='<!-- cpu:end -->'
{
    echo "$BEGIN"
    echo "## CPU: instructions per received byte"
    echo
    echo "Measured by \`scripts/cpu-bench.sh\` (callgrind on the workload in \`benches/cpu.rs\`), on generated streams of $BYTES bytes; reproduce with:"
    echo
    echo '```text'
    echo 'scripts/cpu-bench.sh            # writes this section'
    echo 'scripts/cpu-bench.sh --check    # CI: 256 KiB streams, fails above the limits'
    echo '```'
    echo
    echo "| path, stream | 1-byte chunks | 64-byte chunks | 1 024-byte chunks |"
    echo "|---|---:|---:|---:|"
    row "digester alone, QIRD-heavy" digester qird
    row "digester alone, control-only" digester control
    row "runner intake (\`Runner::ingest\`), QIRD-heavy" intake qird
    row "runner intake (\`Runner::ingest\`), control-only" intake control
    echo
    echo "Targets (issue 15): digester ≤ 50 at 1-byte chunks and ≤ 20 at 64 and 1 024; runner intake ≤ 60 and ≤ 20. CI (\`--check\`) holds the QIRD-heavy rows and the control-only figures at 1-byte chunks to these targets; the control-only figures at 64 and 1 024 bytes, not there yet, to ceilings just above their figures (23.5 through the digester, 28 through \`Runner::ingest\`; in the script), so that a regression fails. What the control-only figures are made of: \`docs/architecture.md\`, \"The receive path\"."
    echo
    echo "* **QIRD-heavy**: \`+QIURC: \"recv\",0\`, then the \`AT+QIRD\` reply: \`+QIRD: <n>\` with 64–1 460 random bytes (a \`\\r\\nOK\\r\\n\` and a \`> \` planted among them), \`OK\`; other URCs now and then, before and inside the reply."
    echo "* **Control-only**: zero to two URCs (\`recv\`, \`closed\`, \`+QIND: \"csq\"\`, \`+CEREG\`, \`+CPIN\`, \`+QIOPEN\`, \`+QIND: SMS DONE\`, …), then the reply of a control command (\`+CSQ\`, \`+CEREG?\`, \`+QIACT?\`, \`AT+CGSN\`, \`+QISTATE\`, a bare \`OK\`, now and then \`+CME ERROR\`), sometimes with a URC inside it. No payload reads."
    echo "* The counts are x86-64 instructions of the host release build, counted only inside the feeding function: the digester's feeder for *digester alone*; for *runner intake*, everything \`Runner::ingest\` does (URCs parsed and applied to the state and the socket slots, payloads copied into the socket ring, the response stored for its command). The command side around it (publishing what a command expects, taking its response, the application reading the ring) is not counted."
    echo "* Critical sections are those of a single-core Cortex-M, modelled: the benchmark (single-threaded) provides its own \`critical-section\` implementation, a flag set on entry and restored on exit as PRIMASK is (\`cortex_m_like\` in \`benches/cpu.rs\`, which checks that it is the one in use), instead of the host implementation the tests use (a thread-local flag and a global \`std\` mutex, about 100 instructions per section, which no firmware pays). The library is the same."
    echo "* A chunk never runs past the end of a reply (the modem cannot answer the next command before it is sent), so replies shorter than the chunk size are fed whole."
    echo "$END"
} >"$TMP/section"

if [[ -f "$OUT" ]] && grep -qF -- "$BEGIN" "$OUT"; then
    awk -v sec="$TMP/section" -v b="$BEGIN" -v e="$END" '
        $0 == b { while ((getline l < sec) > 0) print l; skip = 1; next }
        skip && $0 == e { skip = 0; next }
        !skip { print }' "$OUT" >"$TMP/out"
    cp "$TMP/out" "$OUT"
else
    { [[ -f "$OUT" ]] && cat "$OUT" && echo; cat "$TMP/section"; } >"$TMP/out"
    cp "$TMP/out" "$OUT"
fi
echo "cpu-bench: wrote $OUT"
