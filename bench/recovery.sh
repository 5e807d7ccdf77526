#!/usr/bin/env bash
# Time the two repairs a volume may need at start-up, through the code
# the plugin runs (vdo_load, then vdo_start, where repair happens before
# serving), and check what they leave:
#
#  (a) crash recovery of a DIRTY volume whose recovery journal is full:
#      all 32,768 blocks of the default journal, 217 entries each, from
#      a random-write workload (bench/make-full-journal writes it; see
#      there why recovery accepts it).  Recovery reads the whole journal,
#      sorts and applies every entry to the block map, replays both
#      halves of every entry into the slab journals, and scrubs.
#  (b) read-only rebuild (FORCE_REBUILD, as `vdoadm force-rebuild` sets
#      it) of an 8 GiB volume with 1 GiB of random data written through
#      nbdkit and nbdcopy, then stopped cleanly.
#
# Each repair is timed by bench/time-load (vdo_load + vdo_start with the
# plugin's default options); then `vdoadm audit` must pass, the counters
# must be the expected ones, and a second start must find the volume
# CLEAN, repair nothing, and map the expected logical blocks.  Prints
# times, rates and the peak RSS of the repairing process.  Not a test:
# timings vary with the machine.  Needs about 2.5 GiB of free space in
# TMPDIR (the images are sparse).
#
#   bench/recovery.sh [BUILD_DIR]      (or: make bench-recovery)
#
# Environment: PARTS ("full rebuild"), SEED (1); for (a) FULL_SIZE (16G),
# FULL_LOGICAL (4G), FULL_SLAB_BITS (15); for (b) REBUILD_SIZE (8G),
# REBUILD_LOGICAL (20G), REBUILD_SLAB_BITS (15), REBUILD_DATA (1G).
set -euo pipefail
export PATH=/usr/bin:$PATH      # Debian's python3 for nbd tools, before pyenv
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
[ -x "$build/tools/vdoadm" ] || build=$top
vdoadm=$build/tools/vdoadm
plugin=$build/plugin/.libs/nbdkit-vdo-plugin.so
generator=$build/bench/make-full-journal
timer=$build/bench/time-load
parts=${PARTS:-full rebuild}

for f in "$vdoadm" "$generator" "$timer"; do
  [ -x "$f" ] || { echo "$0: $f is not built (run make)" >&2; exit 1; }
done

dir=$(mktemp -d -t vdo-bench-recovery.XXXXXX)
cleanup () {
  rm -rf "$dir"
}
trap cleanup EXIT

fail () {
  echo "$0: $*" >&2
  exit 1
}

field () {  # FILE KEY -> the value of the line "KEY: value"
  sed -n "s/^$2: //p" "$1" | head -n 1
}

seconds () {  # FILE KEY -> the number of "KEY: N s"
  field "$1" "$2" | sed 's/ s$//'
}

logged_seconds () {  # LOG TEXT -> N of the first "TEXT N s" libvdo logged
  sed -n "s/.*$2 \([0-9.]*\) s.*/\1/p" "$1" | head -n 1
}

rate () {  # COUNT SECONDS -> COUNT per second, rounded
  awk -v n="$1" -v t="$2" 'BEGIN { printf "%.0f", (t > 0 ? n / t : 0) }'
}

sum () {
  awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a + b }'
}

# Time one start-up of IMAGE, failing unless the state goes from BEFORE
# to CLEAN.  Writes LOG.
time_start () {  # IMAGE BEFORE LOG [time-load options]
  local img=$1 before=$2 log=$3
  shift 3
  "$timer" "$@" "$img" > "$log" 2>&1 || { cat "$log" >&2; fail "start-up of $img failed"; }
  [ "$(field "$log" "state before")" = "$before" ] ||
    { cat "$log" >&2; fail "$img was not $before before the start-up"; }
  [ "$(field "$log" "state after")" = CLEAN ] ||
    { cat "$log" >&2; fail "$img is not CLEAN after the start-up"; }
}

audit () {  # IMAGE LOG
  "$vdoadm" audit "$1" > "$2" 2>&1 || { cat "$2" >&2; fail "audit of $1 failed"; }
}

expect () {  # WHAT GOT WANTED
  [ "$2" = "$3" ] || fail "$1: got $2, expected $3"
}

# The second start-up of a repaired volume: no repair, the same counters,
# the expected mappings, and still a clean audit.
check_second_start () {  # IMAGE NAME LBU DATA ZERO
  local img=$1 name=$2
  time_start "$img" CLEAN "$dir/$name-second.log" --count-extents
  if grep -q 'recovering it\|read-only rebuild' "$dir/$name-second.log"; then
    cat "$dir/$name-second.log" >&2
    fail "the second start-up of $img repaired it again"
  fi
  expect "logical blocks used after the second start" \
    "$(field "$dir/$name-second.log" "logical blocks used after")" "$3"
  expect "data blocks mapped" "$(field "$dir/$name-second.log" "data lbns")" "$4"
  expect "zero blocks mapped" "$(field "$dir/$name-second.log" "zero lbns")" "$5"
  audit "$img" "$dir/$name-audit2.log"
  printf '  second start: CLEAN, no repair, %s s; mappings as expected (%s data, %s zero); audit clean again\n' \
    "$(seconds "$dir/$name-second.log" vdo_start)" "$4" "$5"
}

full_journal () {
  local img=$dir/full.img gen=$dir/full-gen.txt log=$dir/full-recovery.log
  local began made entries lbu bmdb startup

  echo "== (a) crash recovery of a full recovery journal =="
  truncate -s "${FULL_SIZE:-16G}" "$img"
  "$vdoadm" format --logical-size="${FULL_LOGICAL:-4G}" \
    --slab-bits="${FULL_SLAB_BITS:-15}" "$img" > /dev/null
  began=$(date +%s.%N)
  "$generator" --seed="${SEED:-1}" "$img" > "$gen"
  made=$(awk -v a="$began" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  # The default journal, every block full.
  expect "journal blocks filled" "$(field "$gen" "journal blocks")" 32768
  entries=$(field "$gen" "journal entries")
  lbu=$(field "$gen" "logical blocks used")
  bmdb=$(field "$gen" "block map data blocks")
  echo "  volume: ${FULL_SIZE:-16G} device, ${FULL_LOGICAL:-4G} logical, slab bits ${FULL_SLAB_BITS:-15}: $(field "$gen" slabs) slabs"
  echo "  journal: $(field "$gen" "journal blocks") blocks (sequence $(field "$gen" "journal sequence")), $entries entries:"
  echo "    $(field "$gen" writes) writes, $(field "$gen" discards) discards, $(field "$gen" "zero writes") zero writes, $(field "$gen" "tree pages") tree pages"
  echo "    $(field "$gen" "slab journal entries") slab journal entries, at most $(field "$gen" "most slab journal entries") in one slab; made in $made s"

  time_start "$img" DIRTY "$log"
  grep -q 'the journal is usable from block' "$log" || { cat "$log" >&2; fail "no recovery ran"; }
  expect "logical blocks used after recovery" "$(field "$log" "logical blocks used after")" "$lbu"
  expect "block map data blocks after recovery" "$(field "$log" "block map data blocks after")" "$bmdb"
  audit "$img" "$dir/full-audit.log"
  startup=$(sum "$(seconds "$log" vdo_load)" "$(seconds "$log" vdo_start)")
  echo "  recovery log (time since the program started):"
  grep '^  \[' "$log" | sed "s|^|  |; s|$dir/||"
  echo "  RECOVERY TIME (vdo_load + vdo_start, scrubbing included): $startup s"
  echo "    of which recovery $(logged_seconds "$log" 'recovery complete in') s and scrubbing $(logged_seconds "$log" 'slabs scrubbed in') s, as libvdo logs them"
  echo "    $entries journal entries replayed: $(rate "$entries" "$startup") entries/s"
  echo "    peak RSS: $(field "$log" "peak RSS")"
  echo "  audit: clean at $lbu logical blocks used, $bmdb tree pages"
  check_second_start "$img" full "$lbu" "$(field "$gen" "data lbns")" \
    "$(field "$gen" "zero lbns")"
}

rebuild () {
  local img=$dir/rebuild.img data=$dir/data log=$dir/rebuild.log
  local blocks began written lbu startup

  echo "== (b) read-only rebuild =="
  [ -r "$plugin" ] || fail "$plugin is not built (run make)"
  truncate -s "${REBUILD_SIZE:-8G}" "$img"
  "$vdoadm" format --logical-size="${REBUILD_LOGICAL:-20G}" \
    --slab-bits="${REBUILD_SLAB_BITS:-15}" "$img" > /dev/null
  head -c "${REBUILD_DATA:-1G}" /dev/urandom > "$data"
  blocks=$(( $(stat -c %s "$data") / 4096 ))
  began=$(date +%s.%N)
  # nbdkit exits when nbdcopy does, saving the volume CLEAN.
  # shellcheck disable=SC2016 # $DATA and $uri are for nbdkit's shell
  DATA=$data nbdkit -U - "$plugin" disk="$img" --run 'nbdcopy "$DATA" "$uri"' \
    > "$dir/nbdkit.log" 2>&1 || { cat "$dir/nbdkit.log" >&2; fail "writing through nbdkit failed"; }
  written=$(awk -v a="$began" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  rm -f "$data"
  "$vdoadm" dump "$img" > "$dir/rebuild-dump.txt"
  grep -q 'state: *CLEAN' "$dir/rebuild-dump.txt" || fail "nbdkit did not stop $img cleanly"
  "$vdoadm" read-only "$img" > /dev/null
  "$vdoadm" force-rebuild "$img" > /dev/null
  echo "  volume: ${REBUILD_SIZE:-8G} device, ${REBUILD_LOGICAL:-20G} logical, slab bits ${REBUILD_SLAB_BITS:-15}; $blocks blocks of random data written through nbdkit in $written s"

  time_start "$img" FORCE_REBUILD "$log"
  grep -q 'read-only rebuild complete' "$log" || { cat "$log" >&2; fail "no rebuild ran"; }
  lbu=$(field "$log" "logical blocks used after")
  expect "logical blocks used after the rebuild" "$lbu" "$blocks"
  audit "$img" "$dir/rebuild-audit.log"
  startup=$(sum "$(seconds "$log" vdo_load)" "$(seconds "$log" vdo_start)")
  echo "  rebuild log (time since the program started):"
  grep '^  \[' "$log" | sed "s|^|  |; s|$dir/||"
  echo "  REBUILD TIME (vdo_load + vdo_start): $startup s"
  echo "    of which the rebuild $(logged_seconds "$log" 'read-only rebuild complete in') s, as libvdo logs it"
  echo "    $lbu logical blocks and $(field "$log" "block map data blocks after") tree pages recounted: $(rate "$lbu" "$startup") blocks/s"
  echo "    peak RSS: $(field "$log" "peak RSS")"
  echo "  audit: clean at $lbu logical blocks used"
  check_second_start "$img" rebuild "$blocks" "$blocks" 0
}

for part in $parts; do
  case $part in
    full) full_journal ;;
    rebuild) rebuild ;;
    *) fail "unknown part '$part' in PARTS (full, rebuild)" ;;
  esac
done
