#!/usr/bin/env bash
# Compression through the plugin (on by default): compressible data takes
# far fewer data blocks than it holds, reads back exactly across a clean
# restart, and audits clean; with compression=off the same data takes a
# block per block.  Then more compressible data is written and nbdkit
# killed with SIGKILL right after a flush, while later unflushed writes
# may still wait in the packer: the restart recovers, everything flushed
# reads back, and the audit is clean.
source "${srcdir:-.}/functions.sh"
require_plugin

mib=${VDO_COMPRESSION_TEST_MIB:-128}
img=$tmpdir/vol.img
make_volume "$img" 8G --slab-bits=15 --logical-size=8G

# Blocks of a random run (16..2400 bytes) repeated: LZ4 fragments of
# every size; one block in eight is random and does not compress.
data=$tmpdir/data.bin
/usr/bin/python3 - "$data" "$mib" <<'PY'
import random, sys
path, mib = sys.argv[1], int(sys.argv[2])
rng = random.Random(20240601)
with open(path, "wb") as f:
    for i in range(mib * 256):
        if i % 8 == 7:
            f.write(rng.randbytes(4096))
        else:
            run = rng.randbytes(rng.randint(16, 2400))
            f.write((run * (4096 // len(run) + 1))[:4096])
PY
want=$(sha256sum < "$data" | cut -d' ' -f1)
bytes=$((mib << 20))
blocks=$((bytes / 4096))

data_blocks_used () {
  "$VDOADM" stats --json "$img" | /usr/bin/python3 -c \
    'import json,sys; print(json.load(sys.stdin)["data_blocks_used"])'
}

writer=$tmpdir/write.py
cat > "$writer" <<'PY'
import sys
import nbd
uri, path, offset = sys.argv[1], sys.argv[2], int(sys.argv[3])
h = nbd.NBD()
h.connect_uri(uri)
chunk = 4 << 20
with open(path, "rb") as f:
    pos = 0
    while True:
        buf = f.read(chunk)
        if not buf:
            break
        h.pwrite(buf, offset + pos)
        pos += len(buf)
h.flush()
# With a fourth argument, go on writing without a flush: these may be
# lost in a crash, but must not disturb what was flushed.
if len(sys.argv) > 4:
    tail = int(sys.argv[4])
    f = open(path, "rb")
    for at in range(0, 4 << 20, 65536):
        f.seek(at)
        h.pwrite(f.read(65536), tail + at)
    open(sys.argv[5], "w").close()
    import time
    time.sleep(60)
PY

reader=$tmpdir/read.py
cat > "$reader" <<'PY'
import hashlib, sys
import nbd
uri, offset, length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
h = nbd.NBD()
h.connect_uri(uri)
digest = hashlib.sha256()
chunk = 4 << 20
pos = 0
while pos < length:
    n = min(chunk, length - pos)
    digest.update(h.pread(n, offset + pos))
    pos += n
print(digest.hexdigest())
PY

check_copy () {
  local got
  got=$(nbdkit_vdo -U - disk="$img" \
          --run "/usr/bin/python3 $reader \"\$uri\" $1 $bytes")
  if [ "$got" != "$want" ]; then
    echo "copy at $1 reads back $got, expected $want" >&2
    exit 1
  fi
}

audit () {
  "$VDOADM" audit "$img" > "$tmpdir/audit.txt" || {
    cat "$tmpdir/audit.txt" >&2
    exit 1
  }
}

# Distinct data everywhere below, so dedupe plays no part.
used0=$(data_blocks_used)
nbdkit_vdo -v -U - disk="$img" \
  --run "/usr/bin/python3 $writer \"\$uri\" $data 0" 2> "$tmpdir/on.log"
used1=$(data_blocks_used)
grep -o "compressed fragments written [0-9]* in [0-9]* blocks" \
  "$tmpdir/on.log" || {
  echo "no compression statistics in nbdkit's log" >&2
  exit 1
}
echo "data blocks used: $((used1 - used0)) for $blocks blocks compressed"
# Seven blocks in eight shrink to 1.2 KB on average: well under 60%.
if [ $((100 * (used1 - used0))) -gt $((60 * blocks)) ]; then
  echo "compression saved too little" >&2
  exit 1
fi
check_copy 0
audit

# The same data, shifted so dedupe finds none of it, uncompressed.
shifted=$tmpdir/shifted.bin
{ printf 'x'; head -c $((bytes - 1)) "$data"; } > "$shifted"
nbdkit_vdo -U - disk="$img" compression=off \
  --run "/usr/bin/python3 $writer \"\$uri\" $shifted $((2 * bytes))"
used2=$(data_blocks_used)
echo "data blocks used: $((used2 - used1)) for $blocks blocks uncompressed"
if [ $((used2 - used1)) -lt "$blocks" ]; then
  echo "compression=off still compressed" >&2
  exit 1
fi
check_copy 0
audit

# Flushed compressed data survives SIGKILL; unflushed writes parked in
# the packer at the kill may be lost, but nothing else.
pidfile=$tmpdir/nbdkit.pid
sock=$tmpdir/nbd.sock
log=$tmpdir/nbdkit.log
ready=$tmpdir/ready
server=
cleanup_fns+=('[ -n "$server" ] && kill -9 "$(cat "$pidfile")"')
nbdkit_vdo -f -v -U "$sock" -P "$pidfile" disk="$img" 2> "$log" &
server=$!
tries=0
until grep -q ": serving [0-9]* logical blocks" "$log"; do
  if ! kill -0 "$server" 2> /dev/null || [ $((++tries)) -gt 1200 ]; then
    cat "$log" >&2
    echo "nbdkit did not start" >&2
    exit 1
  fi
  sleep 0.05
done
/usr/bin/python3 "$writer" "nbd+unix:///?socket=$sock" "$data" \
  $((4 * bytes)) $((6 * bytes)) "$ready" &
client=$!
tries=0
until [ -e "$ready" ]; do
  if ! kill -0 "$client" 2> /dev/null || [ $((++tries)) -gt 12000 ]; then
    echo "the writer did not finish" >&2
    exit 1
  fi
  sleep 0.05
done
kill -9 "$(cat "$pidfile")"
wait "$server" || true
server=
kill "$client" 2> /dev/null || true
wait "$client" 2> /dev/null || true
check_copy 0
check_copy $((4 * bytes))
audit
echo "audit clean"
