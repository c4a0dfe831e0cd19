#!/usr/bin/env bash
# Host throughput of a backup over loopback: iosnap vs Debian's idevicebackup2, same simulated
# phone, same run. Reports wall time, MB/s, host CPU seconds per GB and peak RSS of each client.
#
#   bench/backup.sh [FILES] [BYTES]      # default 20000 files, 2G of bulk data
#
# The simulator (`iosnap simulate`, release build) serves the phone; each client backs it up
# into its own empty folder (full backups) and the files in each folder are counted.
# IOSNAP_BENCH_RUNS=N repeats the pair N times in alternating order.
# Needs: idevicebackup2 (apt-get install libimobiledevice-utils), GNU time (apt-get install time).
set -euo pipefail
files=${1:-20000}
bytes=${2:-2G}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${IOSNAP_BENCH_DIR:-$(mktemp -d /tmp/iosnap-bench-backup.XXXX)}
mkdir -p "$work"
port=${IOSNAP_BENCH_PORT:-27123}

command -v idevicebackup2 >/dev/null || { echo "needs idevicebackup2 (apt-get install libimobiledevice-utils)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }

# IOSNAP_BENCH_BIN runs an already built iosnap instead (e.g. a copy of an older build, for a
# before/after comparison); the simulator then comes from that binary too.
if [ -n "${IOSNAP_BENCH_BIN:-}" ]; then
  bin=$IOSNAP_BENCH_BIN
else
  cargo build --release -q -p iosnap --manifest-path "$root/Cargo.toml"
  bin="$root/target/release/iosnap"
fi

"$bin" simulate --listen "127.0.0.1:$port" --state "$work/sim" --files "$files" --bytes "$bytes" \
  >"$work/sim.log" 2>&1 &
sim=$!
trap 'kill $sim 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do grep -q '^device ' "$work/sim.log" 2>/dev/null && break; sleep 0.5; done
udid=$(awk '/^device /{print $2; exit}' "$work/sim.log")
[ -n "$udid" ] || { echo "simulator did not start:"; cat "$work/sim.log"; exit 1; }
export USBMUXD_SOCKET_ADDRESS="127.0.0.1:$port"
echo "phone $udid: $files bulk files, $bytes"

measure() { # name, output folder, command...
  local name=$1 out=$2; shift 2
  local load
  load=$(cut -d' ' -f1 /proc/loadavg)
  local s0 s1
  s0=$(awk '{print $14+$15}' "/proc/$sim/stat")
  /usr/bin/time -f "%e %U %S %M" -o "$work/$name.time" "$@" >"$work/$name.log" 2>&1
  s1=$(awk '{print $14+$15}' "/proc/$sim/stat")
  # How long until the backup is on the disk: a client that returns before its data is written
  # back (idevicebackup2 never syncs) leaves that to the kernel; iosnap syncs before it commits.
  local t0 t1 durable
  t0=$(date +%s.%N)
  sync -f "$out"
  t1=$(date +%s.%N)
  read -r wall user sys rss <"$work/$name.time"
  durable=$(awk -v w="$wall" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", w+b-a}')
  local gb
  gb=$(du -sb --apparent-size "$out" | awk '{printf "%.3f", $1/1e9}')
  printf '%-16s %8.1f s (on disk after %5.1f s)  %8.1f MB/s  %6.2f CPU s/GB  peak RSS %6.1f MiB  (%s GB; simulator %.1f CPU s; load %s)\n' \
    "$name" "$wall" "$durable" \
    "$(awk -v g="$gb" -v w="$wall" 'BEGIN{print g*1000/w}')" \
    "$(awk -v g="$gb" -v u="$user" -v s="$sys" 'BEGIN{print (u+s)/g}')" \
    "$(awk -v r="$rss" 'BEGIN{print r/1024}')" "$gb" \
    "$(awk -v a="$s0" -v b="$s1" -v t="$(getconf CLK_TCK)" 'BEGIN{print (b-a)/t}')" "$load"
}

count() { # folder: files of the backup, Info.plist aside
  (cd "$1/$udid" && find . -path ./Info.plist -prune -o -type f -print | wc -l)
}

# A journal-less ext4 scans past inodes freed in the last 5-35 s for every new file
# (`recently_deleted`); right after a large deletion (a previous run's cleanup) the client
# would pay for it. Let it pass first (IOSNAP_BENCH_SETTLE=0 to skip).
#
# Even after that, ext4 looks up the cached inode-table block of every candidate inode
# (`recently_deleted` → `find_get_block_common`: 30-40 % of a client's samples right after a
# previous run's folder was deleted, against none on a disk whose tables are not cached, which
# is what a daily backup meets). So, when run as root, the page cache is also dropped before
# each client (IOSNAP_BENCH_DROP_CACHES=0 to keep it) and both clients start from the same state.
settle() {
  sleep "${IOSNAP_BENCH_SETTLE:-40}"
  if [ "${IOSNAP_BENCH_DROP_CACHES:-1}" = 1 ] && [ -w /proc/sys/vm/drop_caches ]; then
    sync
    echo 3 >/proc/sys/vm/drop_caches
  fi
}

# Each round backs the phone up with both clients, in alternating order (round 1: iosnap
# first, round 2: idevicebackup2 first, ...), each into its own new empty folder. A client's
# folder is counted and deleted (unless IOSNAP_BENCH_KEEP=1) before the next client runs, so
# the disk needs room for one backup only.
runs=${IOSNAP_BENCH_RUNS:-1}
for round in $(seq 1 "$runs"); do
  order="iosnap idevicebackup2"
  [ $((round % 2)) = 0 ] && order="idevicebackup2 iosnap"
  for client in $order; do
    out="$work/$client-out-$round"
    mkdir -p "$out"
    settle
    case $client in
      iosnap) measure iosnap "$out" "$bin" -q backup --device "$udid" --to "$out" --full ;;
      idevicebackup2) measure idevicebackup2 "$out" idevicebackup2 -u "$udid" backup --full "$out" ;;
    esac
    echo "  files in folder: $(count "$out")"
    [ "${IOSNAP_BENCH_KEEP:-0}" = 1 ] || rm -rf "$out"
  done
done
[ "${IOSNAP_BENCH_KEEP:-0}" = 1 ] || rm -rf "$work"
