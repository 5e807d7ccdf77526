#!/usr/bin/env bash
# A backing-device write error (the I/O layer's test hook) puts the volume
# into read-only mode: later writes fail with EROFS, the state is
# persisted, and the next start serves the volume read-only.  (Reading
# acknowledged writes whose block map pages were never written needs the
# journal replayed at that start: the crash recovery issue.)
source "${srcdir:-.}/functions.sh"
require_plugin

img=$tmpdir/vol.img
make_volume "$img" 8G --logical-size=3G

script=$tmpdir/write.py
cat > "$script" <<PY
import errno, hashlib, os
acked = {}
failed_with = None
for i in range(400):
    data = os.urandom(65536)
    try:
        h.pwrite(data, i * 65536)
        acked[i] = hashlib.sha256(data).hexdigest()
    except nbd.Error as e:
        failed_with = e.errno
        break
assert failed_with is not None, "the injected error never surfaced"
# Everything after the error is refused as read-only: EROFS, which the
# NBD protocol carries as EPERM.
try:
    h.pwrite(b"x" * 4096, 100 << 20)
    raise SystemExit("a write succeeded after the error")
except nbd.Error as e:
    assert e.errno in ("EROFS", "EPERM"), e   # libnbd gives the name
with open("$tmpdir/acked", "w") as f:
    for i, digest in acked.items():
        f.write("%d %s\n" % (i, digest))
print("acknowledged %d writes before error %s" % (len(acked), failed_with))
PY
# One write fails after the first 300: a transient fault, so the super
# block can still record read-only mode.
nbdkit_vdo -U - disk="$img" inject-error=write:300:1 \
  --run "nbdsh -u \"\$uri\" -c 'exec(open(\"$script\").read())'" 2> "$tmpdir/err" || { cat "$tmpdir/err"; exit 1; }
grep -q "injected write error" "$tmpdir/err"
grep -q "entering read-only mode" "$tmpdir/err"
[ "$(volume_state "$img")" = READ_ONLY_MODE ]
echo "ok: the error put the volume in read-only mode, persisted"
cat "$tmpdir/err"

check=$tmpdir/check.py
cat > "$check" <<PY
assert h.is_read_only()
h.pread(65536, 0)
PY
nbdkit_vdo -U - disk="$img" --run "nbdsh -u \"\$uri\" -c 'exec(open(\"$check\").read())'" 2> "$tmpdir/err2" || { cat "$tmpdir/err2"; exit 1; }
grep -q "read-only mode" "$tmpdir/err2"
[ "$(volume_state "$img")" = READ_ONLY_MODE ]
echo "ok: restarted read-only"
