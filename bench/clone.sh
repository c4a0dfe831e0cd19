#!/usr/bin/env bash
# Clone speed and churned-backup disk of the snapshot library (bench/README.md, "Clone").
#
#   bench/clone.sh [FILES]        # default 200000
#
# 1. Writes a standard backup folder of FILES small files (one block each) straight into a
#    library as its first snapshot, then times a new snapshot's clone (Library::begin)
#    against `cp -al` of the same snapshot, alternating in the same run, warm and cold cache
#    (cold needs root), with 1, 2 and the default number of clone threads.
# 2. One backup replacing 1 % of the files plus Manifest.db and the plists: the disk it added
#    (statvfs of a filesystem nobody else writes to) against changed bytes + 5 % + Manifest.db.
# 3. As root, the same clone timing on XFS, with hard links and with reflinks (against
#    `cp -a --reflink=always`); SKIP_XFS=1 leaves it out.
#
# As root each filesystem is a fresh loop-mounted image kept in IMG_DIR (default /dev/shm, so
# the bench needs RAM, not disk: about 2 GB for 200,000 files), and statvfs sees only this
# bench; otherwise BENCH_DIR (default target/bench-clone) on the current filesystem.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${1:-200000}
ROUNDS=${ROUNDS:-5}
cargo build --release -q -p iosnap-store --example snapshot_bench
B=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/snapshot_bench
WORK=$PWD/target/bench-clone
IMG_DIR=${IMG_DIR:-/dev/shm}
mkdir -p "$WORK"
echo "machine: $(nproc) CPUs, $(uname -r); load before: $(cut -d' ' -f1-3 /proc/loadavg)"

mounted=""
cleanup() {
  if [ -n "$mounted" ]; then umount "$mounted" || true; fi
  rm -f "$IMG_DIR"/iosnap-bench-*.img
}
trap cleanup EXIT

# fresh_fs TYPE SIZE: sets DIR to an empty folder on a fresh filesystem of that type
fresh_fs() {
  local fs=$1 size=$2
  if [ "$(id -u)" != 0 ] || [ -n "${BENCH_DIR:-}" ]; then
    local d=${BENCH_DIR:-$WORK/plain}
    rm -rf "$d" && mkdir -p "$d" && DIR=$d
    return
  fi
  local img=$IMG_DIR/iosnap-bench-$fs.img mnt=$WORK/mnt-$fs
  rm -f "$img" && truncate -s "$size" "$img"
  if [ "$fs" = xfs ]; then mkfs.xfs -q -f "$img"; else mkfs.ext4 -q -F "$img"; fi
  mkdir -p "$mnt" && mount -o loop "$img" "$mnt"
  mounted=$mnt
  DIR=$mnt
}
drop_fs() {
  if [ -n "$mounted" ]; then umount "$mounted"; mounted=""; rm -f "$IMG_DIR"/iosnap-bench-*.img; fi
}

run_fs() {
  local fs=$1 dir
  fresh_fs "$fs" "${IMG_SIZE:-4G}"
  dir=$DIR
  echo "== $fs in $dir ($(findmnt -no FSTYPE,SOURCE -T "$dir" | tr -s ' '))"
  lib=$dir/lib
  mkdir -p "$lib/BENCH/snapshots"
  /usr/bin/time -f "generate: %e s" "$B" gen "$lib/BENCH/snapshots/2026-11-01T000000Z" "$FILES" 7 small
  for m in ${METHODS:-hard-link}; do
    for t in 1 2 ""; do
      echo "-- sharing $m, threads ${t:-default}; load $(cut -d' ' -f1-3 /proc/loadavg)"
      IOSNAP_SHARING=$m IOSNAP_CLONE_THREADS=$t "$B" clone "$lib" BENCH "$ROUNDS"
    done
  done
}

run_fs ext4
echo "-- churned backup (1 % of the files); load $(cut -d' ' -f1-3 /proc/loadavg)"
IOSNAP_SHARING=hard-link "$B" churn "$lib" BENCH 1
# Cross-check with du, which counts a hard-linked inode once across its arguments: the
# second line is what the new snapshot adds (files it alone has, plus its folders).
du -s --block-size=1 "$lib"/BENCH/snapshots/* | sed 's/^/du: /'
drop_fs

if [ -z "${SKIP_XFS:-}" ] && [ "$(id -u)" = 0 ] && [ -z "${BENCH_DIR:-}" ] && command -v mkfs.xfs >/dev/null; then
  METHODS="hard-link reflink" run_fs xfs
  drop_fs
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
