#!/usr/bin/env bash
# Host throughput of a backup over loopback: iosnap vs Debian's idevicebackup2, same simulated
# phone, same run. Reports wall time, MB/s, host CPU seconds per GB and peak RSS of each client.
#
#   bench/backup.sh [FILES] [BYTES]      # default 20000 files, 2G of bulk data
#
# The simulator (`iosnap simulate`, release build) serves the phone; each client backs it up
# into its own empty folder (full backups), then both folders are checked to hold the same files.
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

measure() { # name, command...
  local name=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$work/$name.time" "$@" >"$work/$name.log" 2>&1
  read -r wall user sys rss <"$work/$name.time"
  local gb
  gb=$(du -sb --apparent-size "$work/$name-out" | awk '{printf "%.3f", $1/1e9}')
  printf '%-16s %8.1f s  %8.1f MB/s  %6.2f CPU s/GB  peak RSS %6.1f MiB  (%s GB)\n' "$name" "$wall" \
    "$(awk -v g="$gb" -v w="$wall" 'BEGIN{print g*1000/w}')" \
    "$(awk -v g="$gb" -v u="$user" -v s="$sys" 'BEGIN{print (u+s)/g}')" \
    "$(awk -v r="$rss" 'BEGIN{print r/1024}')" "$gb"
}

mkdir -p "$work/iosnap-out" "$work/idevicebackup2-out"
# A journal-less ext4 scans past inodes freed in the last 5-35 s for every new file
# (`recently_deleted`); right after a large deletion (a previous run's cleanup) the first client
# alone would pay that. Let it pass first (IOSNAP_BENCH_SETTLE=0 to skip).
sleep "${IOSNAP_BENCH_SETTLE:-40}"
measure iosnap "$bin" -q backup --device "$udid" --to "$work/iosnap-out" --full
measure idevicebackup2 idevicebackup2 -u "$udid" backup --full "$work/idevicebackup2-out"

a=$(cd "$work/iosnap-out/$udid" && find . -path ./Info.plist -prune -o -type f -print | wc -l)
b=$(cd "$work/idevicebackup2-out/$udid" && find . -path ./Info.plist -prune -o -type f -print | wc -l)
echo "files in folder: iosnap $a, idevicebackup2 $b"
[ "${IOSNAP_BENCH_KEEP:-0}" = 1 ] || rm -rf "$work"
