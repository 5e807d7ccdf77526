#!/usr/bin/env bash
# Compression's space: write compressible data through one vdo nbdkit
# server with dedupe=off compression=on, and compare the physical blocks
# VDO stored (data_blocks_used) with an ideal first-fit packing of the
# same LZ4 fragments (bench/ideal-packing, without --unique since dedupe
# is off).  Target: data_blocks_used / ideal <= 1.10.
#
# Two cases, each on a fresh volume: the dataset (the images made by
# bench/make-rootfs-images.sh, at 0, 1 and 2 GiB, as bench/dedupe.sh
# writes them), skipped with a note when it is missing, and text (man
# pages and /usr/share/doc, decompressed and concatenated).  After each,
# the volume must pass `vdoadm audit`, and every range read back through
# a new read-only server must have its file's sha256.
#
#   bench/compression.sh [BUILD_DIR]      (or: make bench-compression)
#
# Environment: BENCH_IMAGES (/var/tmp/nbdkit-vdo-bench), IMAGES (the
# three rootfs-?.img there), TEXT_SIZE (MiB of text, 64), DEVICE_SIZE
# (16G, a sparse file in TMPDIR), SLAB_BITS (19), PLUGIN_ARGS (more
# key=value for the vdo plugin).
set -euo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"
bench_setup "${1:-}" vdo-bench-compression
ideal=$build/bench/ideal-packing
[ -x "$ideal" ] || bench_fail "$ideal is not built (run make)"
images_dir=${BENCH_IMAGES:-/var/tmp/nbdkit-vdo-bench}
read -r -a images <<< "${IMAGES:-$images_dir/rootfs-a.img $images_dir/rootfs-b.img $images_dir/rootfs-c.img}"
read -r -a plugin_args <<< "${PLUGIN_ARGS:-}"
plugin_has compression || bench_fail "this vdo plugin has no compression option"
plugin_args=(dedupe=off compression=on "${plugin_args[@]}")
gib=$(( 1 << 30 ))

# Write FILES each at its own whole-GiB slot of a fresh volume, stop the
# server, audit, read back and compare with the ideal packing.
run_case () {  # NAME FILES...
  local name=$1; shift
  local files=("$@") f s slot=0 logical i began took
  echo "== $name: ${files[*]##*/}"
  for f in "${files[@]}"; do
    s=$(stat -c %s "$f")
    [ "$s" -le "$slot" ] || slot=$s
  done
  slot=$(( (slot + gib - 1) / gib * gib ))
  logical=$(( slot * ${#files[@]} ))

  rm -f "$dir/vdo.img"
  truncate -s "${DEVICE_SIZE:-16G}" "$dir/vdo.img"
  "$vdoadm" format --logical-size="$(( logical / gib ))G" \
    --slab-bits="${SLAB_BITS:-19}" "$dir/vdo.img" > /dev/null
  start vdo "$plugin" disk="$dir/vdo.img" "${plugin_args[@]}" 2> "$dir/vdo.log"
  i=0
  for f in "${files[@]}"; do
    s=$(stat -c %s "$f")
    began=$(date +%s.%N)
    # qemu-img can write at an offset (nbdcopy cannot), through a raw
    # layer over the one server.
    qemu-img convert -n -f raw "$f" --target-image-opts \
      "driver=raw,offset=$(( i * slot )),size=$s,file.driver=nbd,file.path=$dir/vdo.sock"
    took=$(awk -v a="$began" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    printf '  wrote %s at %d GiB in %s s (%s MiB/s)\n' "${f##*/}" \
      $(( i * slot / gib )) "$took" \
      "$(awk -v s="$s" -v t="$took" 'BEGIN { printf "%.0f", (t > 0 ? s / 1048576 / t : 0) }')"
    i=$(( i + 1 ))
  done
  stop vdo

  "$vdoadm" audit "$dir/vdo.img" > "$dir/audit.txt" 2>&1 ||
    { cat "$dir/audit.txt" >&2; bench_fail "$name: vdoadm audit failed"; }
  echo "  vdoadm audit: clean"
  "$vdoadm" stats --json "$dir/vdo.img" > "$dir/stats.json"

  local readonly_args=()
  if plugin_has readonly; then readonly_args=(readonly=true); fi
  start check -r "$plugin" disk="$dir/vdo.img" "${readonly_args[@]}" 2> "$dir/check.log"
  i=0
  for f in "${files[@]}"; do
    local want got
    want=$(sha256sum < "$f" | cut -d' ' -f1)
    got=$(nbd_sha256 "$dir/check.sock" $(( i * slot )) "$(stat -c %s "$f")")
    [ "$got" = "$want" ] ||
      bench_fail "${f##*/} read back from $(( i * slot )) differs (sha256 $got, expected $want)"
    echo "  ${f##*/} read back from $(( i * slot / gib )) GiB: sha256 matches"
    i=$(( i + 1 ))
  done
  stop check

  "$ideal" --json "${files[@]}" > "$dir/ideal.json"
  local used nonzero best saving
  used=$(json_field "$dir/stats.json" data_blocks_used)
  saving=$(json_field "$dir/stats.json" saving_percent)
  nonzero=$(json_field "$dir/ideal.json" unique)
  best=$(json_field "$dir/ideal.json" physical_blocks)
  printf '  non-zero blocks written:          %10d\n' "$nonzero"
  printf '  LZ4 fragments / stored whole:     %10d / %d\n' \
    "$(json_field "$dir/ideal.json" fragments)" "$(json_field "$dir/ideal.json" incompressible)"
  printf '  ideal compressed + one-fragment:  %10d + %d\n' \
    "$(json_field "$dir/ideal.json" compressed_blocks)" \
    "$(json_field "$dir/ideal.json" single_fragment_bins)"
  printf '  ideal physical blocks:            %10d\n' "$best"
  printf '  data_blocks_used:                 %10d\n' "$used"
  printf '  data_blocks_used / ideal:         %10s   (target <= 1.10)\n' \
    "$(awk -v u="$used" -v b="$best" 'BEGIN { printf "%.4f", (b > 0 ? u / b : 0) }')"
  printf '  saving_percent (vdoadm stats):    %10s\n' "$saving"
  printf '  saved vs non-zero blocks:         %10s   (ideal: %s)\n' \
    "$(awk -v u="$used" -v n="$nonzero" 'BEGIN { printf "%.1f%%", (n > 0 ? 100 * (1 - u / n) : 0) }')" \
    "$(awk -v u="$best" -v n="$nonzero" 'BEGIN { printf "%.1f%%", (n > 0 ? 100 * (1 - u / n) : 0) }')"
}

echo "vdo plugin args: ${plugin_args[*]}"
missing=
for f in "${images[@]}"; do [ -r "$f" ] || missing=$f; done
if [ -n "$missing" ]; then
  echo "== dataset: $missing is missing, skipped; build it (as root, with"
  echo "   debootstrap and the network) with bench/make-rootfs-images.sh"
else
  run_case dataset "${images[@]}"
fi

# Text: the man pages and /usr/share/doc in a fixed order, decompressed,
# without binary files, cut at TEXT_SIZE MiB.
/usr/bin/python3 - "$dir/text.txt" "$(( ${TEXT_SIZE:-64} << 20 ))" <<'PY'
import gzip, os, sys
out, want = open(sys.argv[1], "wb"), int(sys.argv[2])
paths = sorted(os.path.join(d, f) for root in ("/usr/share/man", "/usr/share/doc")
               for d, _, fs in os.walk(root) for f in fs)
for p in paths:
    if want <= 0:
        break
    if os.path.islink(p):
        continue
    try:
        data = (gzip.open if p.endswith(".gz") else open)(p, "rb").read()
    except (OSError, EOFError):
        continue
    if b"\0" in data:   # images, PDFs: not text
        continue
    data = data[:want]
    out.write(data)
    want -= len(data)
if want > 0:
    sys.exit("only %d bytes of text found" % out.tell())
PY
run_case text "$dir/text.txt"
