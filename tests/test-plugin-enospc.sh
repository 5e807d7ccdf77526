#!/usr/bin/env bash
# Filling a small volume with unique data ends in ENOSPC, which the
# client sees as such; what was acknowledged before stays intact, a trim
# frees space for new writes, the volume is saved CLEAN, audits clean,
# vdoadm stats counts what was written, and nothing acknowledged is lost
# across a restart.
source "${srcdir:-.}/functions.sh"
require_plugin

seed=${VDO_TEST_SEED:-$RANDOM}
echo "seed: $seed (set VDO_TEST_SEED to repeat)"

# 9 slabs of 7966 data blocks: about 280 MB for 1 GiB of logical space.
img=$tmpdir/vol.img
make_volume "$img" 3G --slab-bits=13 --logical-size=1G
free_blocks () {
  "$VDOADM" stats --json "$img" | /usr/bin/python3 -c \
    'import json,sys; print(json.load(sys.stdin)["free_blocks"])'
}
slab_data_blocks=$(free_blocks)
echo "free data blocks: $slab_data_blocks"

# The model: MODEL holds "LBN sha256" for every LBN that maps data;
# every other LBN reads as zeros.
script=$tmpdir/enospc.py
cat > "$script" <<'PY'
import errno, hashlib, random, sys, threading
import nbd

BLOCK = 4096
CHUNK = 1 << 20
mode, uri, model_path, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rng = random.Random(seed * 10 + {"fill": 1, "trim": 2, "verify": 3, "race": 4}[mode])

def connect():
    h = nbd.NBD()
    h.connect_uri(uri)
    return h

h = connect()
size = h.get_size()

def sha(b):
    return hashlib.sha256(b).hexdigest()

def load():
    model = {}
    try:
        for line in open(model_path):
            lbn, digest = line.split()
            model[int(lbn)] = digest
    except FileNotFoundError:
        pass
    return model

def save(model):
    with open(model_path, "w") as f:
        for lbn in sorted(model):
            f.write("%d %s\n" % (lbn, model[lbn]))

def verify(model):
    """Read every 4 MiB that holds data, the 4 MiB after each, and the
    last 4 MiB of the volume: all but the data must read as zeros."""
    zero = sha(bytes(BLOCK))
    span = 4 * CHUNK
    spans = {lbn * BLOCK // span for lbn in model}
    spans |= {i + 1 for i in spans if (i + 1) * span < size}
    spans.add(size // span - 1)
    bad = []
    for offset in sorted(i * span for i in spans):
        data = h.pread(span, offset)
        for i in range(0, len(data), BLOCK):
            lbn = (offset + i) // BLOCK
            if sha(data[i:i + BLOCK]) != model.get(lbn, zero):
                bad.append(lbn)
    if bad:
        raise SystemExit("%d blocks differ from the model, first LBNs %s"
                         % (len(bad), bad[:10]))
    print("%d MiB read: they match the model (%d blocks of data)"
          % (len(spans) * span >> 20, len(model)))

def write_chunk(model, offset, length, h=h, rng=rng):
    """Write unique data; on ENOSPC, take what reads back (each block is
    either the new data or the zeros it held) and return False."""
    data = rng.randbytes(length)
    try:
        h.pwrite(data, offset)
    except nbd.Error as e:
        if e.errnum != errno.ENOSPC or e.errno != "ENOSPC":
            raise SystemExit("the write failed with %s (%s), not ENOSPC"
                             % (e.errno, e.errnum))
        back = h.pread(length, offset)
        for i in range(0, length, BLOCK):
            got = back[i:i + BLOCK]
            if got == data[i:i + BLOCK]:
                model[(offset + i) // BLOCK] = sha(got)
            elif got != bytes(BLOCK):
                raise SystemExit("LBN %d after ENOSPC holds neither the old nor "
                                 "the new data" % ((offset + i) // BLOCK))
        return False
    for i in range(0, length, BLOCK):
        model[(offset + i) // BLOCK] = sha(data[i:i + BLOCK])
    return True

def expect_enospc(offset, length, h=h, rng=rng):
    try:
        h.pwrite(rng.randbytes(length), offset)
    except nbd.Error as e:
        assert e.errnum == errno.ENOSPC, e
        return
    raise SystemExit("a write to a full volume succeeded")

model = load()
if mode == "fill":
    offset = 0
    while write_chunk(model, offset, CHUNK):
        offset += CHUNK
        if offset >= size:
            raise SystemExit("filled the logical space without ENOSPC")
    print("ENOSPC after %d MiB; %d blocks of data" % (offset >> 20, len(model)))
    full_at = offset + CHUNK
    # Still full: new blocks, a single block, and an overwrite all fail
    # (an overwrite allocates before it frees).
    expect_enospc(full_at, CHUNK)
    expect_enospc(full_at + CHUNK + 3 * BLOCK, BLOCK)
    expect_enospc(0, BLOCK)
    # A write of zeros needs no space: it works, and frees a block.
    h.pwrite(bytes(BLOCK), 5 * BLOCK)
    model.pop(5, None)
    h.flush()
    verify(model)
    open(model_path + ".end", "w").write("%d\n" % full_at)
elif mode == "race":
    # Eight clients fill ranges of their own at once until each gets
    # ENOSPC; every write they were acknowledged must read back.
    errors = []
    def client(c):
        try:
            ch, crng = connect(), random.Random(seed * 100 + c)
            start = c * (size // 8)
            offset = start
            while write_chunk(model, offset, CHUNK, ch, crng):
                offset += CHUNK
                assert offset < start + size // 8, "no ENOSPC"
            expect_enospc(offset + CHUNK, CHUNK, ch, crng)
            ch.flush()
            ch.shutdown()
        except BaseException as e:
            errors.append("client %d: %r" % (c, e))
    threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit("\n".join(errors))
    print("8 clients got ENOSPC after %d blocks of data in all" % len(model))
    verify(model)
elif mode == "trim":
    verify(model)
    full_at = int(open(model_path + ".end").read())
    # Free 8 MiB, then write 6 MiB of new data past the end of the fill
    # and 1 MiB over data.
    h.trim(8 * CHUNK, 16 * CHUNK)
    for lbn in range(16 * CHUNK // BLOCK, 24 * CHUNK // BLOCK):
        model.pop(lbn, None)
    h.flush()
    for i in range(6):
        assert write_chunk(model, full_at + (i + 2) * CHUNK, CHUNK), \
            "ENOSPC after a trim freed space"
    assert write_chunk(model, 40 * CHUNK, CHUNK), "ENOSPC on an overwrite"
    h.flush()
    verify(model)
else:
    verify(model)
save(model)
h.shutdown()
PY

server_args=()
run () {  # MODE
  nbdkit_vdo -U - disk="$img" "${server_args[@]}" \
    --run "/usr/bin/python3 $script $1 \"\$uri\" $tmpdir/model $seed"
}

checked () {  # ZERO-MAPPED [FREE]: CLEAN, audits clean, stats match the model
  local state used
  state=$(volume_state "$img")
  [ "$state" = CLEAN ] || { echo "FAIL: the volume is $state, not CLEAN" >&2; exit 1; }
  if ! "$VDOADM" audit "$img" > "$tmpdir/audit" 2>&1; then
    echo "FAIL: vdoadm audit:" >&2; cat "$tmpdir/audit" >&2; exit 1
  fi
  used=$(wc -l < "$tmpdir/model")
  "$VDOADM" stats --json "$img" > "$tmpdir/stats.json"
  /usr/bin/python3 - "$tmpdir/stats.json" "$used" "$slab_data_blocks" "$@" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
used, total, zero_mapped = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
# Unique data: one data block per LBN that maps data; LBNs mapping the
# zero block are used logical blocks without a data block.  Tree pages
# come out of the same slabs.
assert s["logical_blocks_used"] == used + zero_mapped, (s["logical_blocks_used"], used)
assert s["data_blocks_used"] == used, (s["data_blocks_used"], used)
assert s["data_blocks_used"] + s["block_map_blocks"] + s["free_blocks"] == total, s
if len(sys.argv) > 5:
    assert s["free_blocks"] == int(sys.argv[5]), s["free_blocks"]
print("stats: %d data blocks, %d tree pages, %d free"
      % (s["data_blocks_used"], s["block_map_blocks"], s["free_blocks"]))
PY
}

# One client.  LBN 5 maps the zero block from the fill on; the fill
# leaves the one block that zero write freed.
run fill
checked 1 1
echo "ok: filled to ENOSPC; data intact; saved CLEAN, audits clean"
run trim
checked 1
echo "ok: a trim made room for new writes; saved CLEAN, audits clean"
run verify
checked 1
echo "ok: every acknowledged write survived a restart"

# Eight clients at once, with two zones of each kind, on 4 slabs (about
# 124 MiB of data; two slabs per physical zone).
rm -f "$img" "$tmpdir/model"
make_volume "$img" 2910M --slab-bits=13 --logical-size=1G
slab_data_blocks=$(free_blocks)
server_args=(logical-threads=2 physical-threads=2)
run race
checked 0 0
run verify
checked 0 0
echo "ok: eight clients filled it at once; every acknowledged write survived"
