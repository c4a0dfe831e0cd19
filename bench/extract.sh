#!/usr/bin/env bash
# Extraction benchmark (run by hand, not in CI): decrypt + extract a whole encrypted backup with
# iosnap vs iphone_backup_decrypt 0.10.0 (what mvt uses) on the same folder, in the same run.
#
# Usage: bench/extract.sh [FILES] [TOTAL_MIB]      defaults: 20000 files, 2048 MiB
# Env:   IOSNAP_BENCH_DIR   work folder (default target/bench-extract; needs ~3× TOTAL_MIB free)
#        IOSNAP_BENCH_DPIC  keybag DPIC (default 10,000,000 as on real phones; both tools pay it once)
#        IOSNAP_BENCH_OUT   where the two outputs go (default: the work folder; /dev/shm takes the
#                           disk and ext4 inode allocation out of the measurement)
#        IOSNAP_BENCH_KEEP=1 keep the outputs
# Prints MB/s, speedup and peak RSS (GNU time -v) of both, and checks the outputs are identical.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
files=${1:-20000}
mib=${2:-2048}
work=${IOSNAP_BENCH_DIR:-$root/target/bench-extract}
outs=${IOSNAP_BENCH_OUT:-$work}
export IOSNAP_PASSWORD=bench-password
export IOSNAP_PEER_PASSWORD=$IOSNAP_PASSWORD

if [ ! -x /usr/bin/time ]; then
  echo "GNU time missing: apt-get install -y time" >&2
  exit 1
fi
cargo build --release -q -p iosnap-format --examples
venv=$("$root/scripts/peers-venv.sh")
mkdir -p "$work"
backup="$work/00008030-0000000000000001"
stamp="$work/backup.params"
want="$files $mib ${IOSNAP_BENCH_DPIC:-default}"
if [ ! -f "$backup/Manifest.db" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$backup"
  echo "== writing a $files-file, ~$mib MiB encrypted backup to $backup"
  target/release/examples/make_backup "$backup" "$files" "$mib"
  echo "$want" > "$stamp"
fi
bytes=$(du -sb "$backup" | cut -f1)
sync

run() { # name out-dir command...
  local name=$1 out=$2
  shift 2
  rm -rf "$out"
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$work/$name.time" "$@" > "$work/$name.log"
  t1=$(date +%s.%N)
  local secs rss cpu
  secs=$(echo "$t1 - $t0" | bc -l)
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/$name.time")
  cpu=$(awk -F': ' '/User time|System time/ {s+=$2} END {printf "%.2f", s}' "$work/$name.time")
  echo "$name $secs $rss $cpu"
  sync
}

echo "== extracting (cache warm for both: the backup was just written or read)"
echo "   load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
r=$(run iosnap "$outs/out-iosnap" target/release/examples/extract_backup "$backup" "$outs/out-iosnap")
p=$(run iphone_backup_decrypt "$outs/out-ibd" "$venv/bin/python" crates/format/tests/peers/ibd_extract.py "$backup" "$outs/out-ibd")
echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$work/iosnap.log"

echo "== checking both outputs are identical"
diff -rq "$outs/out-iosnap" "$outs/out-ibd"
plain=$(find "$outs/out-iosnap" -type f -printf "%s\n" | awk '{s+=$1} END {printf "%d", s}')

python3 - "$plain" "$bytes" "$r" "$p" <<'PY'
import sys
plain, backup = int(sys.argv[1]), int(sys.argv[2])
rows = [a.split() for a in sys.argv[3:5]]
print(f"backup folder {backup/1e6:.0f} MB, extracted {plain/1e6:.0f} MB")
print(f"{'tool':<24}{'wall s':>8}{'MB/s':>8}{'CPU s':>8}{'peak RSS MiB':>14}")
for name, secs, rss, cpu in rows:
    print(f"{name:<24}{float(secs):>8.1f}{plain/1e6/float(secs):>8.1f}{float(cpu):>8.1f}{int(rss)/1024:>14.1f}")
print(f"speedup: wall {float(rows[1][1])/float(rows[0][1]):.1f}x, CPU time {float(rows[1][3])/float(rows[0][3]):.1f}x")
PY
if [ "${IOSNAP_BENCH_KEEP:-0}" != 1 ]; then rm -rf "$outs/out-iosnap" "$outs/out-ibd"; fi
