#!/usr/bin/env bash
# The plugin serves volumes made by the real VDO code: written-clean (the
# dm-vdo kernel code wrote it, with dedupe and compression) reads back as
# expected.txt says, compressed blocks included; then it and every fresh
# fixture, and a volume of our own format, take new writes, are saved
# CLEAN, read back after a restart and pass vdoadm audit.
source "${srcdir:-.}/functions.sh"
require_fixtures
require_plugin

seed=${VDO_TEST_SEED:-$RANDOM}
echo "seed: $seed (set VDO_TEST_SEED to repeat)"

# One Python program drives every phase against one server:
#   expected URI EXPECTED-TXT          read every listed LBN, check sha256
#   write URI MODEL SEED [EXPECTED]    workload; record the expected
#                                      sha256 of every block it touched
#   verify URI MODEL [EXPECTED]        every block of MODEL (and of
#                                      EXPECTED not in MODEL) reads back
workload=$tmpdir/workload.py
cat > "$workload" <<'PY'
import hashlib, json, random, sys
import nbd

BLOCK = 4096
ZERO_SHA = hashlib.sha256(bytes(BLOCK)).hexdigest()

def connect(uri):
    h = nbd.NBD()
    h.set_strict_mode(0)
    h.connect_uri(uri)
    return h

def load_expected(path):
    """expected.txt: lbn kind sha256 mapping..."""
    want = {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        f = line.split()
        want[int(f[0])] = (f[1], f[2])
    return want

def check_blocks(h, want, what):
    bad = []
    for lbn in sorted(want):
        got = hashlib.sha256(h.pread(BLOCK, lbn * BLOCK)).hexdigest()
        if got != want[lbn]:
            bad.append(lbn)
    if bad:
        raise SystemExit("%s: %d of %d blocks differ, first LBNs %s"
                         % (what, len(bad), len(want), bad[:10]))
    print("%s: %d blocks match" % (what, len(want)))

class Model:
    """The expected contents of every block the workload touched."""
    def __init__(self, h, base):
        self.h = h
        self.base = base            # lbn -> sha256 the block had before
        self.blocks = {}            # lbn -> bytearray

    def block(self, lbn):
        if lbn not in self.blocks:
            data = self.h.pread(BLOCK, lbn * BLOCK)
            want = self.base.get(lbn, ZERO_SHA)
            assert hashlib.sha256(data).hexdigest() == want, \
                "LBN %d read back wrong before the workload touched it" % lbn
            self.blocks[lbn] = bytearray(data)
        return self.blocks[lbn]

    def _store(self, offset, data):
        while data:
            lbn, at = divmod(offset, BLOCK)
            n = min(BLOCK - at, len(data))
            self.block(lbn)[at:at + n] = data[:n]
            offset += n
            data = data[n:]

    def write(self, offset, data, flags=0):
        for lbn in range(offset // BLOCK, (offset + len(data) - 1) // BLOCK + 1):
            self.block(lbn)
        self.h.pwrite(data, offset, flags)
        self._store(offset, data)

    def trim(self, offset, length):
        # The plugin unmaps whole blocks and writes zeros to partial ones.
        for lbn in range(offset // BLOCK, (offset + length - 1) // BLOCK + 1):
            self.block(lbn)
        self.h.trim(length, offset)
        self._store(offset, bytes(length))

    def zero(self, offset, length, flags=0):
        for lbn in range(offset // BLOCK, (offset + length - 1) // BLOCK + 1):
            self.block(lbn)
        self.h.zero(length, offset, flags)
        self._store(offset, bytes(length))

    def digests(self):
        return {lbn: hashlib.sha256(bytes(b)).hexdigest()
                for lbn, b in self.blocks.items()}

def run_workload(h, model, rng, extra):
    size = h.get_size()
    last = size // BLOCK - 1
    rand = lambda n: rng.randbytes(n)
    B = BLOCK

    model.write(0, rand(1 << 20))                        # unique, 256 blocks
    one = rand(B)
    for i in range(64):                                  # 64 copies of a block
        model.write((300 + i) * B, one)
    model.write(400 * B, b"nbdkit-vdo!" * (16 * B // 11) + b"x" * (16 * B % 11))
    model.write(500 * B, bytes(16 * B))                  # explicit zeros
    model.write(64 * B, bytes(8 * B))                    # zeros over data
    model.write(128 * B, rand(32 * B))                   # overwrites
    model.write(310 * B, rand(B))                        # one copy replaced
    model.write(1000 * B + 123, rand(3000))              # sub-4K, unaligned
    model.write(1001 * B + 4000, rand(200))              # across a boundary
    model.write(1003 * B, rand(512), nbd.CMD_FLAG_FUA)   # 512-byte FUA
    model.write(2000 * B + 512, rand(5 * B))             # unaligned, multi-block
    model.trim(192 * B, 32 * B)                          # trim whole blocks
    model.trim(220 * B + 1000, 3 * B)                    # trim, ragged edges
    model.zero(240 * B, 8 * B)                           # zero, may not trim
    model.zero(248 * B, 4 * B, nbd.CMD_FLAG_NO_HOLE)
    h.flush()
    # Other subtrees of the block map: the middle and the very end.
    model.write((last // 2) * B, rand(8 * B))
    model.write((last - 7) * B, rand(8 * B))
    model.write(last * B + 3584, rand(512))
    model.write((last // 3) * B, rand(2 << 20))          # 512 blocks, 2 MiB
    model.write((last // 3 + 100) * B, rand(B))          # overwrite inside it
    extra(model, rand)
    h.flush()

def written_clean_extra(model, rand):
    """Overwrite, trim and zero blocks that the kernel deduplicated or
    compressed, so their shared and compressed references drop."""
    B = BLOCK
    model.write(256 * B, rand(4 * B))            # packed_overwritten LBNs
    model.write(264 * B, rand(8 * B))            # compressed fragments
    model.trim(370 * B, 8 * B)                   # compressed fragments
    model.zero(380 * B, 2 * B)
    model.write(420 * B + 700, rand(300))        # a zero_write block, partly
    model.write(290 * B + 10, rand(10))          # a fragment, partly
    model.write(5242870 * B, rand(2 * B))        # dup_of_compressible
    model.write(1000004 * B + 100, rand(100))    # far, partial
    model.write(3000002 * B, rand(B))            # far, compressed

def main():
    mode, uri = sys.argv[1], sys.argv[2]
    h = connect(uri)
    if mode == "expected":
        want = load_expected(sys.argv[3])
        check_blocks(h, {lbn: sha for lbn, (kind, sha) in want.items()},
                     "expected.txt")
        kinds = {}
        for kind, sha in want.values():
            kinds[kind] = kinds.get(kind, 0) + 1
        print("  kinds:", ", ".join("%s %d" % kv for kv in sorted(kinds.items())))
    elif mode == "write":
        model_path, seed = sys.argv[3], int(sys.argv[4])
        base = {}
        if len(sys.argv) > 5:
            base = {lbn: sha for lbn, (kind, sha) in load_expected(sys.argv[5]).items()}
        rng = random.Random(seed)
        model = Model(h, base)
        run_workload(h, model, rng,
                     written_clean_extra if base else lambda m, r: None)
        digests = model.digests()
        # Read back in the same session first.
        check_blocks(h, digests, "same session")
        json.dump({str(k): v for k, v in digests.items()}, open(model_path, "w"))
    elif mode == "verify":
        digests = {int(k): v for k, v in json.load(open(sys.argv[3])).items()}
        want = {}
        if len(sys.argv) > 4:
            want = {lbn: sha for lbn, (kind, sha) in load_expected(sys.argv[4]).items()}
        want.update(digests)
        check_blocks(h, want, "after restart")
    h.shutdown()

main()
PY

serve_args=()
run () {  # IMAGE MODE ARGS... : serve IMAGE to one phase of the workload
  local img=$1 mode=$2
  shift 2
  nbdkit_vdo -U - disk="$img" "${serve_args[@]}" \
    --run "/usr/bin/python3 $workload $mode \"\$uri\" $*"
}

clean_and_audited () {  # IMAGE
  local state
  state=$(volume_state "$1")
  if [ "$state" != CLEAN ]; then
    echo "FAIL: $1 was left $state, not CLEAN" >&2
    exit 1
  fi
  if ! "$VDOADM" audit "$1" > "$tmpdir/audit" 2>&1; then
    echo "FAIL: vdoadm audit $1:" >&2
    cat "$tmpdir/audit" >&2
    exit 1
  fi
}

# --- (a) written-clean ----------------------------------------------------
expected=$fixtures/written-clean.expected.txt
img=$tmpdir/written-clean.img
copy_image "$(restore_fixture written-clean)" "$img"

# Served read-only first: the same contents, and not a byte written.
nbdkit_vdo -r -U - disk="$img" readonly=true \
  --run "/usr/bin/python3 $workload expected \"\$uri\" $expected"
if ! "$srcdir/compare-images.py" "$(restore_fixture written-clean)" "$img"; then
  echo "FAIL: serving written-clean read-only changed it" >&2
  exit 1
fi
run "$img" expected "$expected"
echo "ok: written-clean reads back as the kernel wrote it, read-only and not"
run "$img" write "$tmpdir/model" "$seed" "$expected"
clean_and_audited "$img"
echo "ok: written-clean took writes, saved CLEAN, audits clean"
run "$img" verify "$tmpdir/model" "$expected"
clean_and_audited "$img"
echo "ok: written-clean: old and new data after a restart"
# The slab summary was saved for one physical zone; regrouped for three.
serve_args=(logical-threads=2 physical-threads=3)
run "$img" verify "$tmpdir/model" "$expected"
clean_and_audited "$img"
echo "ok: written-clean: the same with 2 logical and 3 physical zones"
serve_args=()
rm -f "$img"

# --- (b) fresh volumes: the real vdoformat's, and ours -------------------
one_volume () {  # NAME IMAGE
  local name=$1 img=$2
  run "$img" write "$tmpdir/model" "$seed"
  clean_and_audited "$img"
  run "$img" verify "$tmpdir/model"
  clean_and_audited "$img"
  echo "ok: $name: written, saved CLEAN, read back after a restart, audits clean"
  rm -f "$img" "$tmpdir/model"
}

for name in fresh-8g-l20g-s15 fresh-5g-s13 fresh-24g-sparse-s16 fresh-8g-l4t-s15; do
  img=$tmpdir/$name.img
  copy_image "$(restore_fixture "$name")" "$img"
  one_volume "$name" "$img"
done

img=$tmpdir/ours.img
make_volume "$img" 6G --logical-size=30G --slab-bits=14
one_volume "vdoadm format" "$img"

# More zones than the defaults, on a real vdoformat volume; then read
# back with the defaults, so the slab summary's zones are regrouped.
img=$tmpdir/zones.img
copy_image "$(restore_fixture fresh-8g-l20g-s15)" "$img"
serve_args=(logical-threads=3 physical-threads=2)
run "$img" write "$tmpdir/model" "$seed"
clean_and_audited "$img"
serve_args=()
run "$img" verify "$tmpdir/model"
clean_and_audited "$img"
echo "ok: fresh-8g-l20g-s15 written with 3 logical and 2 physical zones, read with 1 and 1"
