#!/usr/bin/env bash
# Benchmark nbdkit-vdo against nbdkit's file plugin in the same run, with
# fio's nbd engine, and print each job's throughput ratio and the vdo
# server's peak RSS.  Not a test: timings vary with the machine.
#
#   bench/run.sh [BUILD_DIR]      (RUNTIME=seconds per job, default 15;
#                                 DURABLE=1: jobs end with a flush, see README.md)
set -euo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"
bench_setup "${1:-}" vdo-bench
runtime=${RUNTIME:-15}
size=${SIZE:-2G}

# The same kind of backing file for both: sparse, on the same filesystem.
truncate -s 16G "$dir/vdo.img"
"$vdoadm" format --logical-size=8G --slab-bits=19 "$dir/vdo.img" > /dev/null
truncate -s 8G "$dir/file.img"

start file file "$dir/file.img"
start vdo "$plugin" disk="$dir/vdo.img"

jobs=(
  "seq-write-1M-qd8    --rw=write     --bs=1M --iodepth=8"
  "rand-write-4K-qd32  --rw=randwrite --bs=4k --iodepth=32"
  "rand-write-4K-qd32-flush64 --rw=randwrite --bs=4k --iodepth=32 --fsync=64"
  "seq-read-1M-qd8     --rw=read      --bs=1M --iodepth=8"
  "rand-read-4K-qd32   --rw=randread  --bs=4k --iodepth=32"
)

printf '%-28s %12s %12s %8s\n' job "file MiB/s" "vdo MiB/s" ratio
for job in "${jobs[@]}"; do
  read -r name args <<< "$job"
  # shellcheck disable=SC2086
  run_fio "$name" file $args
  # shellcheck disable=SC2086
  run_fio "$name" vdo $args
  { read -r f; read -r v; } < <(fio_mibs "$dir/$name-file.json" "$dir/$name-vdo.json")
  printf '%-28s %12.1f %12.1f %8s\n' "$name" "$f" "$v" "$(ratio "$v" "$f")"
done
echo "vdo server peak RSS: $(peak_rss vdo)"
