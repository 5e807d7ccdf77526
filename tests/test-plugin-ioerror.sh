#!/usr/bin/env bash
# A backing-device write error (the I/O layer's test hook) puts the volume
# into read-only mode: later writes fail with EROFS, the state is
# persisted, and the next start serves the volume read-only, with every
# acknowledged write readable (the journal's changes are laid over the
# block map pages in memory, as they were never written).  Then vdoadm
# force-rebuild and a restart make it writable again, its data intact
# and its audit clean.
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
        # FUA: under the default asynchronous write policy only FUA
        # writes (and flushes) promise durability when acknowledged.
        h.pwrite(data, i * 65536, nbd.CMD_FLAG_FUA)
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

# Every acknowledged write reads back; more blocks may be given, which
# must read back too.
check=$tmpdir/check.py
cat > "$check" <<PY
import hashlib
def check_acked(paths):
    n = 0
    for path in paths:
        for line in open(path):
            i, digest = line.split()
            got = hashlib.sha256(h.pread(65536, int(i) * 65536)).hexdigest()
            assert got == digest, "write %s reads back wrong" % i
            n += 1
    print("%d acknowledged writes read back" % n)
PY

nbdkit_vdo -v -U - disk="$img" --run "nbdsh -u \"\$uri\" -c 'exec(open(\"$check\").read())' -c 'assert h.is_read_only()' -c 'check_acked([\"$tmpdir/acked\"])'" 2> "$tmpdir/err2" || { grep -v "debug: \(recv\|send\)" "$tmpdir/err2" | tail -30; exit 1; }
grep -q "read-only mode" "$tmpdir/err2"
grep -q "serving read-only with [0-9]* journal entries" "$tmpdir/err2"
[ "$(volume_state "$img")" = READ_ONLY_MODE ]
echo "ok: restarted read-only, every acknowledged write reads back"

"$VDOADM" force-rebuild "$img" > /dev/null
[ "$(volume_state "$img")" = FORCE_REBUILD ]
more=$tmpdir/more.py
cat > "$more" <<PY
import hashlib, os
assert not h.is_read_only()
with open("$tmpdir/more", "w") as f:
    for i in range(1000, 1100):
        data = os.urandom(65536)
        h.pwrite(data, i * 65536)
        f.write("%d %s\\n" % (i, hashlib.sha256(data).hexdigest()))
PY
nbdkit_vdo -v -U - disk="$img" --run "nbdsh -u \"\$uri\" -c 'exec(open(\"$check\").read())' -c 'check_acked([\"$tmpdir/acked\"])' -c 'exec(open(\"$more\").read())'" 2> "$tmpdir/err3" || { grep -v "debug: \(recv\|send\)" "$tmpdir/err3" | tail -30; exit 1; }
grep -q "read-only rebuild complete" "$tmpdir/err3"
[ "$(volume_state "$img")" = CLEAN ]
"$VDOADM" audit "$img" > "$tmpdir/audit" || { cat "$tmpdir/audit"; exit 1; }
grep -q "All pbn references matched" "$tmpdir/audit"
nbdkit_vdo -U - disk="$img" --run "nbdsh -u \"\$uri\" -c 'exec(open(\"$check\").read())' -c 'check_acked([\"$tmpdir/acked\", \"$tmpdir/more\"])'" 2> "$tmpdir/err4" || { cat "$tmpdir/err4"; exit 1; }
[ "$(volume_state "$img")" = CLEAN ]
echo "ok: force-rebuild made it writable again, data intact, audit clean"
