#!/usr/bin/env bash
# Ceph and Shoal in one window, never at once: for each of PAIRS (3) pairs, start the anchor Ceph
# (../shared/anchors/ceph/up.sh, CephFS off), run `rados bench` 4 KiB writes (t16, size-3 pool of 32 PGs) and
# `shoal bench s3` against radosgw, stop Ceph (data kept), then run `npm run bench -- objects` and `-- s3` on Shoal.
# Each side measures with the other's daemons stopped: idle Ceph daemons took CPU from Shoal's phases before.
# S3=0 skips the S3 rows; WIPE=1 deletes the Ceph cluster at the end. Output: one block per pair on stdout.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
ANCHOR="${CEPH_ANCHOR:-$ROOT/../shared/anchors/ceph}"
DIR="${CEPH_ANCHOR_DIR:-${TMPDIR:-/tmp}/ceph-anchor}"
export CEPH_CONF="$DIR/ceph.conf"
PAIRS="${PAIRS:-3}"
SECONDS_PER_PHASE="${SHOAL_BENCH_SECONDS:-10}"
[ -x "$ANCHOR/up.sh" ] || { echo "no anchor at $ANCHOR (set CEPH_ANCHOR)" >&2; exit 2; }
cd "$ROOT"
for i in $(seq 1 "$PAIRS"); do
  echo "== pair $i: Ceph ($(date -u +%T) UTC)"
  WITH_CEPHFS=0 "$ANCHOR/up.sh" > "$DIR.up.log" 2>&1 || { echo "up.sh failed: $DIR.up.log" >&2; exit 1; }
  ceph osd pool ls | grep -qx bench || ceph osd pool create bench 32 32 > /dev/null 2>&1
  for _ in $(seq 1 120); do ceph pg stat | grep -qE "peering|activating|unknown|creating" || break; sleep 1; done
  sleep 10
  rados bench -p bench 20 write -t 16 -b 4096 2>&1 | grep -E "Average IOPS|Average Latency"
  if [ "${S3:-1}" = 1 ]; then
    node dist/src/cli/main.js bench s3 --endpoint http://127.0.0.1:7480 --access-key ANCHORTESTACCESSKEY1 \
      --secret-key anchorTestSecretKey0000000000000000000001 --seconds "$SECONDS_PER_PHASE" --list-keys 0 2>&1 | grep -E "^(PUT|GET|DELETE)"
  fi
  WIPE=0 "$ANCHOR/down.sh" > /dev/null 2>&1
  sleep 5
  echo "== pair $i: Shoal ($(date -u +%T) UTC)"
  SHOAL_BENCH_SECONDS="$SECONDS_PER_PHASE" node dist/benchmarks/run.js objects 2>&1 | grep -E "^(write|read) "
  if [ "${S3:-1}" = 1 ]; then
    SHOAL_BENCH_SECONDS="$SECONDS_PER_PHASE" SHOAL_BENCH_S3_LIST_KEYS=0 node dist/benchmarks/run.js s3 2>&1 | grep -E "^(PUT|GET|DELETE)"
  fi
done
[ "${WIPE:-0}" = 1 ] && WIPE=1 "$ANCHOR/down.sh"
exit 0
