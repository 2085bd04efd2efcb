#!/usr/bin/env bash
# The long fuzz run: every cargo-fuzz target in fuzz/ in turn, for a share of a total time, and
# the result written into docs/fuzzing.md (the section between the `fuzz-long` markers):
# the command, the date, the toolchain, the commit, and per target the executions libFuzzer
# counted (`stat::number_of_executed_units`), its rate, the corpus size, and what it found.
#
#   scripts/fuzz-long.sh 3600          # one hour in total, split evenly between the targets
#   FUZZ_SANITIZER=none scripts/fuzz-long.sh 3600   # without AddressSanitizer (3-6x faster)
#
# Environment:
#   FUZZ_TARGETS    the targets to run (default: all, `cargo fuzz list`)
#   FUZZ_SANITIZER  address (default, as `cargo fuzz`), none, ...
#   FUZZ_CORPUS     where the corpora grow (default fuzz/corpus/<target>; fuzz/seeds/<target>
#                   is read too and never written)
#   FUZZ_NICE       nice level of the fuzzing processes (default 19)
#   FUZZ_DOC        the file written (default docs/fuzzing.md; `-` writes nothing)
#
# One libFuzzer process at a time (-jobs/-workers are not used: the run shares the machine).
# A finding (crash, timeout, out-of-memory) stops that target, is listed with its reproducer
# under fuzz/artifacts/<target>/, and makes the script exit 1 after the other targets ran.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"

TOTAL="${1:-${FUZZ_TOTAL_SECONDS:-3600}}"
SAN="${FUZZ_SANITIZER:-address}"
NICE="${FUZZ_NICE:-19}"
DOC="${FUZZ_DOC:-$ROOT/docs/fuzzing.md}"
CORPUS="${FUZZ_CORPUS:-$ROOT/fuzz/corpus}"

# cargo-fuzz needs nightly (-Zsanitizer); stable with RUSTC_BOOTSTRAP=1 builds the same.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    TOOLCHAIN=+nightly
else
    TOOLCHAIN=+stable
    export RUSTC_BOOTSTRAP=1
fi

cd "$ROOT/fuzz"
if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <(cargo fuzz list)
fi
((${#targets[@]} > 0)) || { echo "fuzz-long: no targets" >&2; exit 1; }
per=$((TOTAL / ${#targets[@]}))
((per > 0)) || { echo "fuzz-long: less than a second per target" >&2; exit 1; }

cargo "$TOOLCHAIN" fuzz build -s "$SAN"

# What is fuzzed: the tree as built now (edit nothing under src/ or fuzz/ while this runs: each
# `cargo fuzz run` would rebuild from the edited sources).
commit="$(git -C "$ROOT" rev-parse --short HEAD)"
git -C "$ROOT" diff --quiet HEAD -- "$ROOT/src" "$ROOT/fuzz" || commit="$commit + uncommitted changes"
LOGS="$(mktemp -d)"
trap 'rm -rf "$LOGS"' EXIT
started="$(date -u '+%Y-%m-%d %H:%M UTC')"
rows=()
findings=()
total=0
for t in "${targets[@]}"; do
    mkdir -p "$CORPUS/$t" "$ROOT/fuzz/artifacts/$t"
    seeds=()
    [[ -d "$ROOT/fuzz/seeds/$t" ]] && seeds=("$ROOT/fuzz/seeds/$t")
    before="$(find "$ROOT/fuzz/artifacts/$t" -type f | sort)"
    echo "-- fuzz target $t: ${per}s"
    t0=$SECONDS
    rc=0
    nice -n "$NICE" cargo "$TOOLCHAIN" fuzz run -s "$SAN" "$t" "$CORPUS/$t" "${seeds[@]}" -- \
        -max_total_time="$per" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        >"$LOGS/$t.log" 2>&1 || rc=$?
    secs=$((SECONDS - t0))
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOGS/$t.log" | tail -1)"
    if [[ -z "$execs" ]]; then
        # No final stats (the process died): the last status line's count.
        execs="$(grep -o '^#[0-9]*' "$LOGS/$t.log" | tail -1 | tr -d '#')"
    fi
    execs="${execs:-0}"
    total=$((total + execs))
    rate=$((secs > 0 ? execs / secs : 0))
    files="$(find "$CORPUS/$t" -type f | wc -l)"
    new="$(comm -13 <(echo "$before") <(find "$ROOT/fuzz/artifacts/$t" -type f | sort) | sed '/^$/d')"
    found="none"
    if ((rc != 0)) || [[ -n "$new" ]]; then
        what="$(grep -m1 -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$LOGS/$t.log" || echo "exit status $rc")"
        found="exit $rc: ${what}; $(echo "$new" | sed "s|$ROOT/||" | paste -sd ' ')"
        findings+=("$t: $found")
        tail -40 "$LOGS/$t.log" >&2
    fi
    echo "   $execs executions in ${secs}s ($rate/s), corpus $files, findings: $found"
    rows+=("| \`$t\` | $secs | $execs | $rate | $files | $found |")
done
finished="$(date -u '+%Y-%m-%d %H:%M UTC')"
echo "total: $total executions"

if [[ "$DOC" != "-" ]]; then
    BEGIN='<!-- fuzz-long:begin (written by scripts/fuzz-long.sh) -->'
    END='<!-- fuzz-long:end -->'
    section="$(
        echo "$BEGIN"
        echo
        echo "Last long run: \`FUZZ_SANITIZER=$SAN scripts/fuzz-long.sh $TOTAL\` (${per} s per target),"
        echo "$started to $finished, commit $commit, $(rustc "$TOOLCHAIN" --version), one libFuzzer"
        echo "process at a time at nice $NICE on a 2-core machine shared with other work."
        echo
        echo "| Target | Seconds | Executions | Per second | Corpus files | Findings |"
        echo "|---|---:|---:|---:|---:|---|"
        printf '%s\n' "${rows[@]}"
        echo "| **total** | | **$total** | | | **${#findings[@]}** |"
        echo
        if ((${#findings[@]} == 0)); then
            echo "No finding: no panic, no timeout (10 s per input), no out-of-memory (2 GiB)."
        else
            echo "Findings:"
            echo
            printf -- '- %s\n' "${findings[@]}"
        fi
        echo
        echo "$END"
    )"
    if [[ -f "$DOC" ]] && grep -qF -- "$BEGIN" "$DOC"; then
        awk -v b="$BEGIN" -v e="$END" -v s="$section" '
            $0 == b { print s; skip = 1; next }
            $0 == e { skip = 0; next }
            !skip { print }
        ' "$DOC" >"$DOC.tmp"
        mv "$DOC.tmp" "$DOC"
    else
        printf '\n%s\n' "$section" >>"$DOC"
    fi
    echo "written: $DOC"
fi

((${#findings[@]} == 0))
