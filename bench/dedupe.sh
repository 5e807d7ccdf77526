#!/usr/bin/env bash
# Deduplication of a VM fleet's disks: write the images made by
# bench/make-rootfs-images.sh (a Debian root filesystem, the same with
# more packages, and a copy of the first with a new filesystem UUID) into
# one VDO volume, each at its own offset, through one vdo nbdkit server,
# and compare the physical blocks VDO stored with the unique non-zero
# blocks the images hold (bench/count-unique-blocks.py): without
# compression VDO can do no better, and the target is data_blocks_used /
# unique <= 1.01.
#
# Then the volume must be clean: `vdoadm audit` must pass, and each range
# read back through a new server must have its image's sha256.  Prints the
# counts, vdoadm stats' savings, copy rates and the vdo server's peak RSS.
#
#   bench/dedupe.sh [BUILD_DIR]      (or: make bench-dedupe)
#
# Environment: BENCH_IMAGES (/var/tmp/nbdkit-vdo-bench), IMAGES (the
# three rootfs-?.img there), DEVICE_SIZE (16G, a sparse file in TMPDIR),
# SLAB_BITS (19), INDEX_MEMORY (for format and plugin; their default),
# PLUGIN_ARGS (more key=value for the vdo plugin; dedupe=on is passed
# when it takes it).
set -euo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"
bench_setup "${1:-}" vdo-bench-dedupe
images_dir=${BENCH_IMAGES:-/var/tmp/nbdkit-vdo-bench}
read -r -a images <<< "${IMAGES:-$images_dir/rootfs-a.img $images_dir/rootfs-b.img $images_dir/rootfs-c.img}"
read -r -a plugin_args <<< "${PLUGIN_ARGS:-}"
gib=$(( 1 << 30 ))

for f in "${images[@]}"; do
  [ -r "$f" ] || bench_fail "$f is missing: run bench/make-rootfs-images.sh first"
done

echo "== the images"
/usr/bin/python3 "$top/bench/count-unique-blocks.py" --json "${images[@]}" > "$dir/count.txt"
sed '$d' "$dir/count.txt"
# The JSON is the last line.
tail -n 1 "$dir/count.txt" > "$dir/count.json"
unique=$(json_field "$dir/count.json" unique_nonzero)
nonzero=$(json_field "$dir/count.json" nonzero)

# Each image in a slot of whole GiB, so every offset is block-aligned.
slot=0
for f in "${images[@]}"; do
  s=$(stat -c %s "$f")
  [ "$s" -le "$slot" ] || slot=$s
done
slot=$(( (slot + gib - 1) / gib * gib ))
logical=$(( slot * ${#images[@]} ))

format_args=(--logical-size="$(( logical / gib ))G" --slab-bits="${SLAB_BITS:-19}")
if [ -n "${INDEX_MEMORY:-}" ]; then
  format_args+=(--index-memory="$INDEX_MEMORY")
fi
truncate -s "${DEVICE_SIZE:-16G}" "$dir/vdo.img"
"$vdoadm" format "${format_args[@]}" "$dir/vdo.img" > /dev/null
if [ -n "${INDEX_MEMORY:-}" ] && plugin_has index-memory; then
  plugin_args=(index-memory="$INDEX_MEMORY" "${plugin_args[@]}")
fi
if plugin_has dedupe; then
  plugin_args=(dedupe=on "${plugin_args[@]}")
else
  echo "NOTE: this vdo plugin has no dedupe option: the images are written without deduplication"
fi
echo "== volume: ${DEVICE_SIZE:-16G} device, ${format_args[*]}; plugin args: ${plugin_args[*]:-(none)}"

# -v for the plugin's statistics at shutdown, without a line per request.
start vdo -v -D nbdkit.backend.datapath=0 "$plugin" disk="$dir/vdo.img" \
  "${plugin_args[@]}" 2> "$dir/vdo.log"

# nbdcopy cannot write at an offset; qemu-img can, through a raw layer
# over the NBD export, all through the one server.
i=0
for f in "${images[@]}"; do
  s=$(stat -c %s "$f")
  began=$(date +%s.%N)
  qemu-img convert -n -f raw "$f" --target-image-opts \
    "driver=raw,offset=$(( i * slot )),size=$s,file.driver=nbd,file.path=$dir/vdo.sock"
  took=$(awk -v a="$began" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  printf '  wrote %s at %d GiB in %s s (%s MiB/s)\n' "$(basename "$f")" \
    $(( i * slot / gib )) "$took" \
    "$(awk -v s="$s" -v t="$took" 'BEGIN { printf "%.0f", (t > 0 ? s / 1048576 / t : 0) }')"
  i=$(( i + 1 ))
done
rss=$(peak_rss vdo)
stop vdo
echo "  vdo server peak RSS: $rss (read before it stopped)"
# Without the paths (the temporary directory's name has "dedupe" in it)
# and nbdkit's echo of the parameters.
sed "s|$dir/||g" "$dir/vdo.log" | grep -i 'dedupe\|index' | grep -v 'config key=' \
  > "$dir/dedupe.log" || true
if [ -s "$dir/dedupe.log" ]; then
  echo "  the plugin's dedupe messages:"
  sed 's/^/    /' "$dir/dedupe.log"
fi

echo "== the volume after a clean stop"
"$vdoadm" audit "$dir/vdo.img" > "$dir/audit.txt" 2>&1 ||
  { cat "$dir/audit.txt" >&2; bench_fail "vdoadm audit failed"; }
echo "  vdoadm audit: clean"
"$vdoadm" stats --json "$dir/vdo.img" > "$dir/stats.json"
used=$(json_field "$dir/stats.json" data_blocks_used)
lbu=$(json_field "$dir/stats.json" logical_blocks_used)
saving=$(json_field "$dir/stats.json" saving_percent)

# Read every range back through a new, read-only server.
readonly_args=()
if plugin_has readonly; then readonly_args=(readonly=true); fi
start check -r "$plugin" disk="$dir/vdo.img" "${readonly_args[@]}" 2> "$dir/check.log"
i=0
for f in "${images[@]}"; do
  want=$(sha256sum < "$f" | cut -d' ' -f1)
  got=$(nbd_sha256 "$dir/check.sock" $(( i * slot )) "$(stat -c %s "$f")")
  [ "$got" = "$want" ] || bench_fail "$(basename "$f") read back from $(( i * slot )) differs (sha256 $got, expected $want)"
  echo "  $(basename "$f") read back from $(( i * slot / gib )) GiB: sha256 matches"
  i=$(( i + 1 ))
done
stop check

echo "== result"
printf '  non-zero blocks written:         %12d\n' "$nonzero"
printf '  unique non-zero blocks:          %12d\n' "$unique"
printf '  logical_blocks_used:             %12d\n' "$lbu"
printf '  data_blocks_used:                %12d\n' "$used"
printf '  data_blocks_used / unique:       %12s   (target <= 1.01)\n' \
  "$(awk -v u="$used" -v n="$unique" 'BEGIN { printf "%.4f", (n > 0 ? u / n : 0) }')"
printf '  saving_percent (vdoadm stats):   %12s\n' "$saving"
printf '  best possible saving:            %12s\n' \
  "$(awk -v u="$unique" -v n="$nonzero" 'BEGIN { printf "%.0f", (n > 0 ? 100 * (1 - u / n) : 0) }')"
printf '  vdo server peak RSS:             %12s\n' "$rss"
