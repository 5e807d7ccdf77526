#!/usr/bin/env bash
# Write throughput with deduplication: fio's nbd engine writes unique data
# (--refill_buffers) and duplicate-heavy data (--dedupe_percentage=80 as
# well) to the vdo plugin and to nbdkit's file plugin in the same run, as
# bench/run.sh does, and prints MiB/s and the vdo/file ratio of each job.
# The targets: duplicate-heavy writes at least as fast as unique ones on
# vdo, and at least 100% of the file plugin's MiB/s.  Each job gets fresh
# volumes, so none starts with another's data or index entries.  Not a
# test: timings vary with the machine.
#
# nbdkit's null plugin, which drops what it is sent, runs in the same
# run as a ceiling: what fio and nbdkit's protocol handling leave for a
# plugin's own work.  file/null shows what the file plugin's own work, a
# page-cache copy per write, costs; vdo/file of 100% asks that all of
# vdo's work per write cost no more than that copy.  The last column is
# the whole machine's CPU per write in each run (fio, nbdkit, and the
# kernel's work for them, such as writeback).
#
#   bench/dedupe-fio.sh [BUILD_DIR]      (or: make bench-dedupe-fio)
#
# Environment: RUNTIME (seconds per job, 15), SIZE (fio's range, 2G),
# DEDUPE_PERCENTAGE (80), PLUGIN_ARGS (more key=value for the vdo plugin;
# dedupe=on is passed when it takes it), DURABLE (1: each job ends with
# a flush, counted in its MiB/s; see README.md).
set -euo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"
bench_setup "${1:-}" vdo-bench-dedupe-fio
runtime=${RUNTIME:-15}
size=${SIZE:-2G}
dup=${DEDUPE_PERCENTAGE:-80}
read -r -a plugin_args <<< "${PLUGIN_ARGS:-}"

if plugin_has dedupe; then
  plugin_args=(dedupe=on "${plugin_args[@]}")
else
  echo "NOTE: this vdo plugin has no dedupe option: it writes without deduplication"
fi

jobs=(
  "seq-write-1M-qd8    --rw=write     --bs=1M --iodepth=8"
  "rand-write-4K-qd32  --rw=randwrite --bs=4k --iodepth=32"
)
kinds=(
  "unique"
  "dedupe$dup --dedupe_percentage=$dup"
)

printf '%-20s %-9s %10s %10s %10s %9s %8s %10s %7s  %s\n' job data "null MiB/s" \
  "file MiB/s" "vdo MiB/s" file/null vdo/file "vdo RSS" saving \
  "CPU us/write null/file/vdo"
declare -A vdo_mibs
for job in "${jobs[@]}"; do
  read -r name args <<< "$job"
  for kind in "${kinds[@]}"; do
    read -r data extra <<< "$kind"
    # Fresh, as bench/run.sh makes them: sparse, on the same filesystem.
    rm -f "$dir/vdo.img" "$dir/file.img"
    truncate -s 16G "$dir/vdo.img"
    "$vdoadm" format --logical-size=8G --slab-bits=19 "$dir/vdo.img" > /dev/null
    truncate -s 8G "$dir/file.img"
    start null null 8G
    start file file "$dir/file.img"
    start vdo "$plugin" disk="$dir/vdo.img" "${plugin_args[@]}"
    # shellcheck disable=SC2086 # lists of fio options
    run_fio "$name-$data" null $args $extra
    # shellcheck disable=SC2086
    run_fio "$name-$data" file $args $extra
    # shellcheck disable=SC2086
    run_fio "$name-$data" vdo $args $extra
    rss=$(peak_rss vdo)
    stop vdo
    stop file
    stop null
    # How much the volume saved: about DEDUPE_PERCENTAGE when it dedupes.
    saving=$("$vdoadm" stats --json "$dir/vdo.img" |
      /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["saving_percent"])')
    { read -r n; read -r f; read -r v; } < <(fio_mibs "$dir/$name-$data-null.json" \
      "$dir/$name-$data-file.json" "$dir/$name-$data-vdo.json")
    vdo_mibs[$name-$data]=$v
    cpu=$(fio_cpu "$name-$data-null" "$name-$data-file" "$name-$data-vdo" |
      awk '{ printf "%s%s", (NR > 1 ? "/" : ""), $1 }')
    printf '%-20s %-9s %10.1f %10.1f %10.1f %9s %8s %10s %6s%%  %s\n' "$name" "$data" "$n" \
      "$f" "$v" "$(ratio "$f" "$n")" "$(ratio "$v" "$f")" "$rss" "$saving" "$cpu"
  done
done
echo "on vdo, duplicate-heavy (dedupe$dup) / unique MiB/s (target >= 100%):"
for job in "${jobs[@]}"; do
  read -r name _ <<< "$job"
  printf '  %-20s %8s\n' "$name" \
    "$(ratio "${vdo_mibs[$name-dedupe$dup]}" "${vdo_mibs[$name-unique]}")"
done
