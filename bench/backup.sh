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
  echo "$name $wall $durable" >>"$work/results"
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

# Deletions poison the next backup on the same file system. A journal-less ext4 (like this VM's
# root) skips every free inode deleted in the last 60 s, or 360 s once its inode-table block is
# dirty (fs/ext4/ialloc.c, `recently_deleted`), and a new file's inode search walks over all of
# them: right after a previous run's folder was deleted, that scan took 35-45 % of a client's CPU
# (`find_inode_bit` → `recently_deleted` → `find_get_block_common`) and moved a run's wall time
# by ±30 %, whichever client it hit. So nothing is deleted while the benchmark runs: every
# backup goes to a folder of its own and all of them are removed at the end (the disk needs
# room for 2 × IOSNAP_BENCH_RUNS backups; IOSNAP_BENCH_KEEP=1 keeps them). A client's own
# clean-up counts too: iosnap's commit deletes its transaction folder (the emptied `Snapshot/`
# folders and the journal), and a backup started within 60 s of that ran 1-1.5 s slower (the
# peer, right after iosnap, took 6.1 s instead of 4.6 s). So before each client the machine
# settles for IOSNAP_BENCH_SETTLE seconds (default 65: past that window, and the writeback of
# the previous run) and, when run as root, the page cache is dropped (IOSNAP_BENCH_DROP_CACHES=0
# keeps it), so both clients start cold, as a daily backup does.
settle() {
  sleep "${IOSNAP_BENCH_SETTLE:-65}"
  if [ "${IOSNAP_BENCH_DROP_CACHES:-1}" = 1 ] && [ -w /proc/sys/vm/drop_caches ]; then
    sync
    echo 3 >/proc/sys/vm/drop_caches
  fi
}

# Each round backs the phone up with both clients, in alternating order (round 1: iosnap
# first, round 2: idevicebackup2 first, ...), each into its own new empty folder.
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
  done
done
# Medians over the rounds, and iosnap's speed-up on them (the peer's time / iosnap's).
awk '
  { wall[$1] = wall[$1] " " $2; disk[$1] = disk[$1] " " $3 }
  function median(list,   a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    wi = median(wall["iosnap"]); wp = median(wall["idevicebackup2"])
    di = median(disk["iosnap"]); dp = median(disk["idevicebackup2"])
    printf "median wall: iosnap %.2f s, idevicebackup2 %.2f s: %.2fx\n", wi, wp, wp / wi
    printf "median time until on disk: iosnap %.2f s, idevicebackup2 %.2f s: %.2fx\n", di, dp, dp / di
  }' "$work/results"
[ "${IOSNAP_BENCH_KEEP:-0}" = 1 ] || rm -rf "$work"
