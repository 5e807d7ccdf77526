#!/usr/bin/env bash
# Deduplication through the plugin: the same random data written twice,
# at different offsets and in separate runs of nbdkit (so across a
# clean restart, through the saved index), takes its data blocks once,
# and both copies read back exactly.  Then a third copy is written and
# nbdkit killed with SIGKILL after a flush: the restart recovers, every
# copy verifies, and the audit is clean, whatever the index kept.
source "${srcdir:-.}/functions.sh"
require_plugin

# 1 GiB as the issue asks; a quarter of it under the sanitizers.
mib=${VDO_DEDUPE_TEST_MIB:-1024}
img=$tmpdir/vol.img
make_volume "$img" 8G --slab-bits=15 --logical-size=8G
data=$tmpdir/data.bin
head -c "${mib}M" /dev/urandom > "$data"
want=$(sha256sum < "$data" | cut -d' ' -f1)

data_blocks_used () {
  "$VDOADM" stats --json "$img" | /usr/bin/python3 -c \
    'import json,sys; print(json.load(sys.stdin)["data_blocks_used"])'
}

# Write DATA at byte OFFSET, flush, and (unless KILL) let nbdkit stop.
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
PY

# The sha256 of LENGTH bytes at OFFSET.
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

bytes=$((mib << 20))
write_copy () {
  nbdkit_vdo -U - disk="$img" \
    --run "/usr/bin/python3 $writer \"\$uri\" $data $1"
}
check_copy () {
  local got
  got=$(nbdkit_vdo -U - disk="$img" \
          --run "/usr/bin/python3 $reader \"\$uri\" $1 $bytes")
  if [ "$got" != "$want" ]; then
    echo "copy at $1 reads back $got, expected $want" >&2
    exit 1
  fi
}

used0=$(data_blocks_used)
write_copy 0
used1=$(data_blocks_used)
write_copy $((2 * bytes))
used2=$(data_blocks_used)
blocks=$((bytes / 4096))
echo "data blocks used: $used0 before, $used1 after one copy," \
     "$used2 after two ($blocks blocks per copy)"
if [ $((used1 - used0)) -lt "$blocks" ]; then
  echo "the first copy used fewer blocks than it holds" >&2
  exit 1
fi
# The second copy shares every block: allow 1% for tree pages.
if [ $((used2 - used1)) -gt $((blocks / 100)) ]; then
  echo "the second copy used $((used2 - used1)) new blocks" >&2
  exit 1
fi
check_copy 0
check_copy $((2 * bytes))

# A third copy, flushed, then SIGKILL: nothing flushed may be lost.
pidfile=$tmpdir/nbdkit.pid
sock=$tmpdir/nbd.sock
log=$tmpdir/nbdkit.log
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
/usr/bin/python3 "$writer" "nbd+unix:///?socket=$sock" "$data" $((4 * bytes))
kill -9 "$(cat "$pidfile")"
wait "$server" || true
server=
check_copy 0
check_copy $((2 * bytes))
check_copy $((4 * bytes))
"$VDOADM" audit "$img" > "$tmpdir/audit.txt" || {
  cat "$tmpdir/audit.txt" >&2
  exit 1
}
echo "audit clean"
