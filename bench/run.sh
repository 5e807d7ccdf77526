#!/usr/bin/env bash
# Benchmark nbdkit-vdo against nbdkit's file plugin in the same run, with
# fio's nbd engine, and print each job's throughput ratio and the vdo
# server's peak RSS.  Not a test: timings vary with the machine.
#
#   bench/run.sh [BUILD_DIR]      (RUNTIME=seconds per job, default 15)
set -euo pipefail
export PATH=/usr/bin:$PATH
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
[ -x "$build/tools/vdoadm" ] || build=$top
vdoadm=$build/tools/vdoadm
plugin=$build/plugin/.libs/nbdkit-vdo-plugin.so
runtime=${RUNTIME:-15}
size=${SIZE:-2G}

dir=$(mktemp -d -t vdo-bench.XXXXXX)
pids=()
cleanup () {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

# The same kind of backing file for both: sparse, on the same filesystem.
truncate -s 16G "$dir/vdo.img"
"$vdoadm" format --logical-size=8G --slab-bits=19 "$dir/vdo.img" > /dev/null
truncate -s 8G "$dir/file.img"

start () {  # NAME ARGS...
  local name=$1; shift
  nbdkit -f -U "$dir/$name.sock" -P "$dir/$name.pid" "$@" &
  pids+=($!)
  for _ in $(seq 100); do [ -S "$dir/$name.sock" ] && break; sleep 0.1; done
}
start file file "$dir/file.img"
start vdo "$plugin" disk="$dir/vdo.img"

jobs=(
  "seq-write-1M-qd8    --rw=write     --bs=1M --iodepth=8"
  "rand-write-4K-qd32  --rw=randwrite --bs=4k --iodepth=32"
  "rand-write-4K-qd32-flush64 --rw=randwrite --bs=4k --iodepth=32 --fsync=64"
  "seq-read-1M-qd8     --rw=read      --bs=1M --iodepth=8"
  "rand-read-4K-qd32   --rw=randread  --bs=4k --iodepth=32"
)

run_fio () {  # NAME TARGET ARGS...
  local name=$1 target=$2; shift 2
  fio --name="$name" --ioengine=nbd --uri="nbd+unix:///?socket=$dir/$target.sock" \
      --size="$size" --runtime="$runtime" --time_based --refill_buffers \
      --randrepeat=0 --norandommap --output-format=json "$@" \
      > "$dir/$name-$target.json"
}

printf '%-28s %12s %12s %8s\n' job "file MiB/s" "vdo MiB/s" ratio
for job in "${jobs[@]}"; do
  read -r name args <<< "$job"
  # shellcheck disable=SC2086
  run_fio "$name" file $args
  # shellcheck disable=SC2086
  run_fio "$name" vdo $args
  /usr/bin/python3 - "$dir/$name-file.json" "$dir/$name-vdo.json" "$name" <<'PY'
import json, sys
def mibs(path):
    text = open(path).read()
    # fio's nbd engine prints a line before the JSON.
    j = json.loads(text[text.index("{"):])["jobs"][0]
    return (j["read"]["bw"] + j["write"]["bw"]) / 1024.0
f, v = mibs(sys.argv[1]), mibs(sys.argv[2])
print("%-28s %12.1f %12.1f %7.0f%%" % (sys.argv[3], f, v, 100 * v / f if f else 0))
PY
done
echo "vdo server peak RSS: $(grep VmHWM /proc/"$(cat "$dir/vdo.pid")"/status | awk '{print $2, $3}')"
