#!/usr/bin/env bash
# Write throughput with compression: fio's nbd engine writes unique,
# compressible data to nbdkit's file plugin and to the vdo plugin with
# compression=off and compression=on, in the same run, and prints MiB/s,
# the vdo/file ratios and the space vdo used per logical block written.
# Target: compression=on at least 70% of the file plugin's MiB/s for the
# random 4 KiB writes.  Each job gets fresh volumes.  Not a test: timings
# vary with the machine.
#
# The data: --buffer_compress_percentage with a 4 KiB chunk makes each
# block random bytes followed by zeros, and --refill_buffers makes every
# block new.  At the default 60%, a block's LZ4 fragment is about 1.65
# KB, so two share a compressed block: vdo should use about half a
# physical block per block written (at 50%, fragments just over half the
# data area would each take a whole block, and compression save nothing).
#
# nbdkit's null plugin, which drops what it is sent, runs in each round
# too, as a ceiling: what fio and nbdkit's protocol handling, which
# every plugin pays, leave for a plugin's own work.  file/null shows
# what the file plugin's own work, a page-cache copy per write, costs.
#
# Dedupe is off by default: every block is unique, so the index could
# only add its own cost, which bench/dedupe-fio.sh measures; this bench
# is about compression's.  DEDUPE=on measures both together.
#
#   bench/compression-fio.sh [BUILD_DIR]   (or: make bench-compression-fio)
#
# Rounds: this VM's MiB/s vary by up to 2.5x between runs of one job
# (the host steals up to a third of the CPU), so each round runs the
# file plugin and vdo with compression off and on, on fresh files, in
# turn: file first in odd rounds and last in even ones, so neither gains
# from going first.  It prints the medians of MiB/s, and the medians of
# each round's own ratios, which compare runs only seconds apart.  Every
# run starts with no dirty pages (run_fio syncs first).
#
# Each run also measures the whole machine's CPU per write (fio, nbdkit
# and the kernel's work for them, such as writeback) and idle time: on
# this small VM, throughput follows from what each write costs.
#
# Environment: RUNTIME (seconds per run, 15), ROUNDS (5), SIZE (fio's
# range, 2G), COMPRESS_PERCENTAGE (60), DEDUPE (off), PLUGIN_ARGS (more
# key=value for the vdo plugin), DURABLE (1: each job ends with a flush,
# counted in its MiB/s; see README.md).
set -euo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"
bench_setup "${1:-}" vdo-bench-compression-fio
runtime=${RUNTIME:-15}
rounds=${ROUNDS:-5}
size=${SIZE:-2G}
pct=${COMPRESS_PERCENTAGE:-60}
read -r -a plugin_args <<< "${PLUGIN_ARGS:-}"
plugin_has compression || bench_fail "this vdo plugin has no compression option"
plugin_args=(dedupe="${DEDUPE:-off}" "${plugin_args[@]}")

jobs=(
  "rand-write-4K-qd32  --rw=randwrite --bs=4k --iodepth=32"
  "seq-write-1M-qd8    --rw=write     --bs=1M --iodepth=8"
)
data=(--buffer_compress_percentage="$pct" --buffer_compress_chunk=4k)

median () {  # VALUE...
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
    END { printf "%.1f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "data: ${pct}% compressible per 4 KiB, unique; vdo plugin args: ${plugin_args[*]}"
echo "$rounds rounds of $runtime s; MiB/s and ratios are medians over the rounds"
printf '%-20s %10s %10s %10s %10s %9s %8s %8s %12s %12s\n' job "null MiB/s" \
  "file MiB/s" "off MiB/s" "on MiB/s" file/null off/file on/file "used/lbn off" \
  "used/lbn on"
for job in "${jobs[@]}"; do
  read -r name args <<< "$job"
  declare -A mibs=([null]="" [file]="" [off]="" [on]="") used=()
  declare -A ratios=([file]="" [off]="" [on]="")
  declare -A cpus=([null]="" [file]="" [off]="" [on]="") idles=()
  for round in $(seq "$rounds"); do
    declare -A this=()
    order=(null file off on)
    [ $((round % 2)) = 0 ] && order=(on off file null)
    for kind in "${order[@]}"; do
      # Fresh, as bench/run.sh makes them: sparse, on the same filesystem.
      rm -f "$dir"/*.img
      if [ "$kind" = null ]; then
        start null null 8G
      elif [ "$kind" = file ]; then
        truncate -s 8G "$dir/file.img"
        start file file "$dir/file.img"
      else
        truncate -s 16G "$dir/vdo-$kind.img"
        "$vdoadm" format --logical-size=8G --slab-bits=19 "$dir/vdo-$kind.img" > /dev/null
        start "$kind" "$plugin" disk="$dir/vdo-$kind.img" compression="$kind" \
          "${plugin_args[@]}"
      fi
      # shellcheck disable=SC2086 # a list of fio options
      run_fio "$name" "$kind" $args "${data[@]}"
      stop "$kind"
      this[$kind]=$(fio_mibs "$dir/$name-$kind.json")
      mibs[$kind]+=" ${this[$kind]}"
      read -r us idle < <(fio_cpu "$name-$kind")
      cpus[$kind]+=" $us"
      idles[$kind]+=" $idle"
      case $kind in null | file) continue ;; esac
      # Physical blocks per logical block mapped (1 without compression),
      # of the last round.
      used[$kind]=$("$vdoadm" stats --json "$dir/vdo-$kind.img" | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)
print("%.3f" % (s["data_blocks_used"] / max(1, s["logical_blocks_used"])))')
    done
    ratios[file]+=" $(percent "${this[file]}" "${this[null]}")"
    for c in off on; do
      ratios[$c]+=" $(percent "${this[$c]}" "${this[file]}")"
    done
  done
  # shellcheck disable=SC2086 # lists of numbers
  { n=$(median ${mibs[null]}); f=$(median ${mibs[file]}); off=$(median ${mibs[off]}); on=$(median ${mibs[on]}); }
  # shellcheck disable=SC2086
  printf '%-20s %10.1f %10.1f %10.1f %10.1f %8.0f%% %7.0f%% %7.0f%% %12s %12s\n' "$name" "$n" "$f" \
    "$off" "$on" "$(median ${ratios[file]})" "$(median ${ratios[off]})" \
    "$(median ${ratios[on]})" "${used[off]}" "${used[on]}"
  for c in null file off on; do
    # shellcheck disable=SC2086
    printf '  %-5s MiB/s [%s ]\n' "$c" "$(printf ' %.1f' ${mibs[$c]})"
  done
  # shellcheck disable=SC2086
  printf '  file  %%null [%s ]\n' "$(printf ' %.0f' ${ratios[file]})"
  for c in off on; do
    # shellcheck disable=SC2086
    printf '  %-5s %%file [%s ]\n' "$c" "$(printf ' %.0f' ${ratios[$c]})"
  done
  # The whole machine's, medians over the rounds.
  cpu_line="" idle_line=""
  for c in null file off on; do
    # shellcheck disable=SC2086
    cpu_line+="${cpu_line:+, }$c $(median ${cpus[$c]})"
    # shellcheck disable=SC2086
    idle_line+="${idle_line:+, }$c $(printf '%.0f' "$(median ${idles[$c]})")"
  done
  printf '  CPU us/write [ %s ]\n  idle %%       [ %s ]\n' "$cpu_line" "$idle_line"
done
echo "target: on/file >= 70% for rand-write-4K-qd32"
