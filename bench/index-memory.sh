#!/usr/bin/env bash
# Memory of the dedupe index: for each index-memory setting, write DATA
# of unique random data through nbdcopy to a fresh volume, to one of
# DEVICE_SIZE and to one twice as big (with twice the logical size), and
# print the vdo server's peak RSS and its RSS per index entry.  RSS should
# follow index-memory, not the size of the volume.  Runs with dedupe=off
# on both sizes give the RSS without an index, to subtract: the rest of
# the volume's memory grows with its size (reference counts take a byte
# per physical block).
#
# The index entries are what the plugin logs at shutdown with -v (a line
# with "index entries"); without such a line the blocks written are used
# instead, and the table says so.
#
#   bench/index-memory.sh [BUILD_DIR]      (or: make bench-index-memory)
#
# Environment: MEMORIES (0.25 0.5), DEVICE_SIZE (16G; a setting whose
# index region does not fit is skipped), LOGICAL_SIZE (8G), SLAB_BITS
# (19), DATA (2G, in TMPDIR, as are the sparse volumes, one at a time).
set -euo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"
bench_setup "${1:-}" vdo-bench-index-memory
read -r -a memories <<< "${MEMORIES:-0.25 0.5}"
device=$(numfmt --from=iec "${DEVICE_SIZE:-16G}")
logical=$(numfmt --from=iec "${LOGICAL_SIZE:-8G}")

has_dedupe=false
plugin_has dedupe && has_dedupe=true
has_memory=false
plugin_has index-memory && has_memory=true
format_memory=false
"$vdoadm" format --help 2>&1 | grep -- --index-memory > /dev/null && format_memory=true
$has_dedupe || echo "NOTE: this vdo plugin has no dedupe option: no index is kept, every run is like dedupe=off"

head -c "${DATA:-2G}" /dev/urandom > "$dir/data"
blocks=$(( $(stat -c %s "$dir/data") / 4096 ))
echo "== $blocks blocks of unique data per run"
if $has_dedupe; then
  echo "== plugin arguments: dedupe=off, then dedupe=on$($has_memory && echo " index-memory=MEMORY")"
fi

gib () {  # BYTES -> e.g. 16G
  numfmt --to=iec --format=%.0f "$1"
}

printf '%-12s %7s %7s %6s %10s %10s %13s %10s %14s\n' index-memory device logical \
  MiB/s "peak RSS" "RSS-off" "index entries" "RSS/entry" "(RSS-off)/ent"

declare -A base_kb=()   # RSS with dedupe=off, by device size
run () {  # MEMORY DEVICE LOGICAL   (MEMORY "off" for dedupe=off)
  local mem=$1 dev=$2 lsize=$3 fargs=() pargs=() log began took kb entries mark
  fargs=(--logical-size="$(( lsize >> 20 ))M" --slab-bits="${SLAB_BITS:-19}")
  if [ "$mem" = off ]; then
    if $has_dedupe; then pargs=(dedupe=off); fi
  else
    if $format_memory; then fargs+=(--index-memory="$mem"); fi
    if $has_dedupe; then pargs=(dedupe=on); fi
    if $has_memory; then pargs+=(index-memory="$mem"); fi
  fi
  log=$dir/vdo-$mem-$dev.log
  rm -f "$dir/vdo.img"
  truncate -s "$dev" "$dir/vdo.img"
  if ! "$vdoadm" format "${fargs[@]}" "$dir/vdo.img" > "$dir/format.log" 2>&1; then
    printf '%-12s %7s %7s   skipped: vdoadm format %s failed: %s\n' "$mem" \
      "$(gib "$dev")" "$(gib "$lsize")" "${fargs[*]}" \
      "$(tail -n 1 "$dir/format.log")"
    return
  fi
  start vdo -v -D nbdkit.backend.datapath=0 "$plugin" disk="$dir/vdo.img" \
    "${pargs[@]}" 2> "$log"
  began=$(date +%s.%N)
  nbdcopy "$dir/data" "$(uri vdo)"
  took=$(awk -v a="$began" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  kb=$(peak_rss vdo | cut -d' ' -f1)
  stop vdo
  # "index entries: N" or "N index entries", the last one logged.
  entries=$({ grep 'index entries' "$log" || true; } | tail -n 1 |
    sed -n 's/.*index entries[ :=]*\([0-9][0-9]*\).*/\1/p; t; s/^\(.*[^0-9]\)\{0,1\}\([0-9][0-9]*\) index entries.*/\2/p')
  mark=
  if [ -z "$entries" ]; then entries=$blocks; mark='*'; fi
  if [ "$mem" = off ]; then base_kb[$dev]=$kb; fi
  # RSS-off: the peak RSS less that of dedupe=off on the same size.
  printf '%-12s %7s %7s %6.0f %6d MiB %10s %13s %10s %14s\n' "$mem" \
    "$(gib "$dev")" "$(gib "$lsize")" \
    "$(awk -v n="$blocks" -v t="$took" 'BEGIN { print (t > 0 ? n / 256 / t : 0) }')" \
    $(( kb / 1024 )) \
    "$(awk -v k="$kb" -v b="${base_kb[$dev]:-}" 'BEGIN { if (b == "") print "-"; else printf "%d MiB", (k - b) / 1024 }')" \
    "$entries$mark" \
    "$(awk -v k="$kb" -v n="$entries" 'BEGIN { printf "%.1f B", k * 1024 / n }')" \
    "$(awk -v k="$kb" -v b="${base_kb[$dev]:-}" -v n="$entries" 'BEGIN { if (b == "") print "-"; else printf "%.1f B", (k - b) * 1024 / n }')"
  if [ "$mem" != off ] && $has_dedupe; then
    # Without the paths (the temporary directory's name has "index" in it)
    # and nbdkit's echo of the parameters.
    sed "s|$dir/||g" "$log" | grep -i 'dedupe\|index entries' |
      grep -v 'config key=' | tail -n 5 | sed 's/^/    /' || true
  fi
}

run off "$device" "$logical"
run off $(( device * 2 )) $(( logical * 2 ))
for mem in "${memories[@]}"; do
  run "$mem" "$device" "$logical"
  run "$mem" $(( device * 2 )) $(( logical * 2 ))
done
if ! grep -qi 'index entries' "$dir"/vdo-*.log; then
  echo "* the plugin logged no index entries: per block written instead"
fi
