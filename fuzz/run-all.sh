#!/usr/bin/env bash
# Runs every fuzz target for SECONDS seconds each; exits non-zero as soon as one finds a crash
# (panic, sanitizer error, OOM, timeout). The committed seed corpora under corpus/<target> are
# read but never written: new inputs go to a scratch folder that is deleted afterwards.
#
#   fuzz/run-all.sh 30            # 30 s per target
#   FUZZ_JOBS=2 fuzz/run-all.sh 600
set -euo pipefail

seconds="${1:-}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: $0 SECONDS   (run each fuzz target for SECONDS seconds)" >&2
    exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

targets=$(cargo +nightly fuzz list)
cargo +nightly fuzz build >/dev/null

# FUZZ_JOBS=N (N > 1) runs N libFuzzer workers per target (their logs: fuzz-<n>.log, ignored by git).
jobs=()
if [ "${FUZZ_JOBS:-1}" -gt 1 ]; then
    jobs=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
fi

failed=()
for t in $targets; do
    echo "=== fuzzing $t for ${seconds}s"
    mkdir -p "$scratch/$t"
    # First corpus dir receives new inputs; the seeds are only read.
    if ! cargo +nightly fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${jobs[@]}"; then
        echo "!!! $t found a crash; see fuzz/artifacts/$t/" >&2
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "crashing targets: ${failed[*]}" >&2
    exit 1
fi
echo "all targets ran ${seconds}s without a crash"
