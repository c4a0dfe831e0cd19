#!/usr/bin/env bash
# Messages export benchmark (run by hand, not in CI): iosnap vs imessage-exporter on the same
# backup folder, in the same run, TXT and HTML, attachments not converted.
#
# Usage: bench/messages.sh [MESSAGES] [RUNS]        defaults: 200000 messages, 3 runs each
# Env:   IOSNAP_BENCH_DIR   work folder (default target/bench-messages; /dev/shm keeps the disk out)
#        IOSNAP_BENCH_KEEP=1 keep the last outputs
#        PEER_COPY_METHOD   imessage-exporter's --copy-method (default clone)
#
# The backup is written by crates/datasets/examples/make_messages_backup.rs (the simulated phone
# with MESSAGES messages in sms.db, ~4 % with a JPEG attachment, plain backup). imessage-exporter
# is installed with `cargo install --locked --root target/bench-tools imessage-exporter` when
# missing. It runs with `--copy-method clone` (attachments copied beside the export, not
# converted), which is what iosnap does; `PEER_COPY_METHOD=disabled` makes the peer skip the
# copies (attachments referenced in place), so it then does strictly less work than iosnap. Reports per tool and format: best and median wall time, CPU (user+sys) and
# peak RSS from GNU time, the load average before each run, and the speedup (peer wall / iosnap wall).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
messages=${1:-200000}
runs=${2:-3}
work=${IOSNAP_BENCH_DIR:-$root/target/bench-messages}
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }
mkdir -p "$work"

cargo build --release -q -p iosnap
cargo build --release -q -p iosnap-datasets --example make_messages_backup
iosnap="$root/target/release/iosnap"
peer="$root/target/bench-tools/bin/imessage-exporter"
if [ ! -x "$peer" ]; then
  echo "== installing imessage-exporter into target/bench-tools"
  cargo install --locked --root "$root/target/bench-tools" imessage-exporter
fi
peer_version=$("$peer" --version 2>/dev/null | head -1 || true)

backup="$work/backup"
stamp="$work/backup.params"
if [ ! -f "$backup/Manifest.db" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$messages" ]; then
  rm -rf "$backup"
  echo "== writing a backup with $messages messages to $backup"
  target/release/examples/make_messages_backup "$backup" "$messages"
  echo "$messages" > "$stamp"
fi
sms=$(sqlite3 "$backup/3d/3d0d7e5fb2ce288813306e4d4636395e047a3d28" 'SELECT COUNT(*) FROM message' 2>/dev/null || echo "?")
echo "   sms.db: $sms messages; backup $(du -sh "$backup" | cut -f1)"

# One timed run: prints "wall cpu rss_kib load1".
timed() { # out-dir command...
  local out=$1
  shift
  rm -rf "$out"
  local load t0 t1
  load=$(cut -d' ' -f1 /proc/loadavg)
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$work/time.txt" "$@" > "$work/run.log" 2>&1 || {
    echo "FAILED: $*" >&2
    tail -20 "$work/run.log" >&2
    exit 1
  }
  t1=$(date +%s.%N)
  local wall cpu rss
  wall=$(echo "$t1 - $t0" | bc -l)
  cpu=$(awk -F': ' '/User time|System time/ {s+=$2} END {printf "%.2f", s}' "$work/time.txt")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
  printf '%.3f %s %s %s\n' "$wall" "$cpu" "$rss" "$load"
}

# Best and median of the runs: "best_wall median_wall cpu_of_best rss_max load_max".
summary() {
  sort -n | awk '{w[NR]=$1; c[NR]=$2; if ($3>r) r=$3; if ($4>l) l=$4}
    END {m=w[int((NR+1)/2)]; printf "%.3f %.3f %.2f %d %.2f\n", w[1], m, c[1], r, l}'
}

results=()
for fmt in txt html; do
  : > "$work/iosnap-$fmt.runs"
  : > "$work/peer-$fmt.runs"
  for i in $(seq 1 "$runs"); do
    # Alternate the order so neither tool always gets the warmer cache.
    if [ $((i % 2)) -eq 1 ]; then order="iosnap peer"; else order="peer iosnap"; fi
    for who in $order; do
      if [ "$who" = iosnap ]; then
        timed "$work/out-iosnap-$fmt" "$iosnap" export messages "$backup" \
          --out "$work/out-iosnap-$fmt" --format "$fmt" >> "$work/iosnap-$fmt.runs"
      else
        timed "$work/out-peer-$fmt" "$peer" --format "$fmt" --copy-method "${PEER_COPY_METHOD:-clone}" \
          --db-path "$backup" --platform iOS --export-path "$work/out-peer-$fmt" \
          >> "$work/peer-$fmt.runs"
      fi
    done
  done
  results+=("$fmt iosnap $(summary < "$work/iosnap-$fmt.runs")")
  results+=("$fmt imessage-exporter $(summary < "$work/peer-$fmt.runs")")
  echo "   $fmt: iosnap wrote $(find "$work/out-iosnap-$fmt" -type f | wc -l) files," \
    "imessage-exporter $(find "$work/out-peer-$fmt" -type f | wc -l)"
done

echo
echo "== $messages messages, $runs runs each, $(nproc) CPUs, $(uname -m); peer: $peer_version"
printf '| format | tool | best wall (s) | median wall (s) | CPU of best (s) | peak RSS (MiB) | max load before | speedup |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for fmt in txt html; do
  ours=$(printf '%s\n' "${results[@]}" | awk -v f="$fmt" '$1==f && $2=="iosnap" {print $3}')
  for r in "${results[@]}"; do
    set -- $r
    [ "$1" = "$fmt" ] || continue
    printf '| %s | %s | %.3f | %.3f | %.2f | %.1f | %.2f | %s |\n' "$1" "$2" "$3" "$4" "$5" \
      "$(echo "$6 / 1024" | bc -l)" "$7" \
      "$([ "$2" = iosnap ] && echo "1.00x" || printf '%.2fx' "$(echo "$3 / $ours" | bc -l)")"
  done
done
echo "(speedup = the tool's best wall / iosnap's best wall: above 1.00x means iosnap is faster)"
if [ "${IOSNAP_BENCH_KEEP:-0}" != 1 ]; then
  rm -rf "$work"/out-*
fi
