#!/usr/bin/env bash
# qemu-img, qemu-io and nbdcopy through the plugin: a sparse image copied
# in reads back identically, its holes stay holes, and data survives a
# restart.
source "${srcdir:-.}/functions.sh"
require_plugin

img=$tmpdir/vol.img
make_volume "$img" 8G --logical-size=64M   # the size of the source

# A 64 MiB source with data, zeros and holes.
src=$tmpdir/src.raw
truncate -s 64M "$src"
head -c 5M /dev/urandom | dd of="$src" bs=1M seek=1 conv=notrunc status=none
head -c 3M /dev/zero | dd of="$src" bs=1M seek=10 conv=notrunc status=none
head -c 123457 /dev/urandom | dd of="$src" bs=1 seek=$((40 << 20)) conv=notrunc status=none

sock=$tmpdir/sock
uri="nbd+unix:///?socket=$sock"
pidfile=$tmpdir/nbdkit.pid
start_server () {
  rm -f "$sock"
  nbdkit_vdo -f -U "$sock" -P "$pidfile" disk="$img" &
  for _ in $(seq 100); do [ -S "$sock" ] && [ -s "$pidfile" ] && break; sleep 0.1; done
  [ -S "$sock" ] || { echo "FAIL: nbdkit did not start" >&2; exit 1; }
}
stop_server () {
  local pid
  pid=$(cat "$pidfile")
  kill "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -f "$pidfile" "$sock"
}
cleanup_fns+=('[ -s "$pidfile" ] && kill "$(cat "$pidfile")"')

start_server
qemu-img convert -n -f raw -O raw "$src" "$uri"
qemu-io -f raw "$uri" -c 'write -P 0x5a 50M 1M' -c 'write -P 0xc3 50M 512' -c 'flush' > /dev/null
stop_server
[ "$(volume_state "$img")" = CLEAN ]

# The expected image.
/usr/bin/python3 - "$src" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(50 << 20); f.write(b"\xc3" * 512 + b"\x5a" * ((1 << 20) - 512))
PY

start_server
nbdcopy "$uri" "$tmpdir/back.raw"
cmp "$src" "$tmpdir/back.raw"
echo "ok: qemu-img convert, qemu-io and nbdcopy round trip"
qemu-img compare -f raw -F raw "$src" "$uri"
nbdinfo --map "$uri" | tee "$tmpdir/map"
# The 3 MiB of written zeros and the untouched ranges are not data.
awk '$3 == 0 { data += $2 } END { if (data > 8388608) { print "too much data: " data; exit 1 } }' "$tmpdir/map"
stop_server
echo "ok: nbdinfo --map shows only the written data"
"$VDOADM" audit "$img"
