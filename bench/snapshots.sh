#!/usr/bin/env bash
# 30 daily snapshots at 2 % daily churn: total disk against one backup (bench/README.md,
# "Snapshots").
#
#   bench/snapshots.sh [FILES] [DAYS] [CHURN%] [MIX]     # default 4000 30 2 phone
#
# Writes a backup folder of FILES files (MIX: phone = a phone's byte mix, about 300 KiB a
# file; mixed = mostly small files, 12 KiB a file) as the first snapshot of a library, then
# makes DAYS-1 more, one a day on an injected clock: each replaces CHURN % of the data files
# (chosen uniformly, same sizes, new bytes, temp + rename as the device layer does) and
# rewrites Manifest.db, Info.plist and Status.plist as every real backup does; retention
# runs after each commit with its defaults (budget half the first backup, 1 month) and
# --yes. It prints where each snapshot's own disk goes and the ratio of all snapshots' disk
# (blocks, each inode once) to the first backup's.
#
# As root the library is on a fresh ext4 loop image kept in RAM (IMG_DIR, default
# /dev/shm); otherwise in BENCH_DIR (default target/bench-snapshots).
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${1:-4000}
DAYS=${2:-30}
CHURN=${3:-2}
MIX=${4:-phone}
cargo build --release -q -p iosnap-store --example snapshot_bench
B=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/snapshot_bench
WORK=$PWD/target/bench-snapshots
IMG_DIR=${IMG_DIR:-/dev/shm}
mkdir -p "$WORK"
echo "machine: $(nproc) CPUs; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
mounted=""
cleanup() {
  if [ -n "$mounted" ]; then umount "$mounted" || true; fi
  rm -f "$IMG_DIR"/iosnap-bench-snapshots.img
}
trap cleanup EXIT
if [ "$(id -u)" = 0 ] && [ -z "${BENCH_DIR:-}" ]; then
  img=$IMG_DIR/iosnap-bench-snapshots.img
  rm -f "$img" && truncate -s "${IMG_SIZE:-4G}" "$img" && mkfs.ext4 -q -F "$img"
  DIR=$WORK/mnt && mkdir -p "$DIR" && mount -o loop "$img" "$DIR" && mounted=$DIR
else
  DIR=${BENCH_DIR:-$WORK/plain}
  rm -rf "$DIR" && mkdir -p "$DIR"
fi
echo "== $(findmnt -no FSTYPE -T "$DIR") in $DIR: $FILES files ($MIX), $DAYS days at $CHURN %"
mkdir -p "$DIR/lib/BENCH/snapshots"
"$B" gen "$DIR/lib/BENCH/snapshots/2026-11-01T000000Z" "$FILES" 11 "$MIX"
"$B" daily "$DIR/lib" BENCH "$DAYS" "$CHURN"
echo "filesystem used: $(df -B1 --output=used "$DIR" | tail -1) B; du of all snapshots: \
$(du -s --block-size=1 "$DIR/lib/BENCH/snapshots" | cut -f1) B; first alone: \
$(du -s --block-size=1 "$DIR/lib/BENCH/snapshots/2026-11-01T000000Z" | cut -f1) B"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
