#!/usr/bin/env bash
# Crash recovery and read-only rebuild, through the plugin:
#  (a) written-dirty, crashed by the real VDO code, is recovered at start:
#      every LBN reads back as expected.txt says, the audit is clean, and
#      the next start is a clean load;
#  (b) vdoadm read-only + force-rebuild of a volume the plugin wrote, and
#      of the forcerebuild-8g fixture: the next start rebuilds;
#  (c) reference blocks, slab journals and the summary of written-clean
#      smashed, a leaf entry planted pointing at metadata: a rebuild
#      repairs all of it;
#  (f) written-dirty's journal rewritten in the old format 1: recovery
#      refuses it and leaves the volume DIRTY, a rebuild reads it;
#  (d) kill -9 of nbdkit under a write load of mostly compressible data,
#      VDO_CRASH_ITERATIONS times (default 20) on one volume, so crashes
#      find fragments waiting in the packer: each restart recovers, every FUA write
#      acknowledged and every write flushed before the kill reads back,
#      others read old or new, and the audit is clean.
# ((e), the injected I/O error, is test-plugin-ioerror.sh.)
source "${srcdir:-.}/functions.sh"
require_fixtures
require_plugin

iterations=${VDO_CRASH_ITERATIONS:-20}
seed=${VDO_TEST_SEED:-$RANDOM}
echo "seed: $seed (set VDO_TEST_SEED to repeat)"
RANDOM=$seed

blocks=$tmpdir/blocks.py
cat > "$blocks" <<'PY'
"""Check and write blocks over NBD.

expected URI EXPECTED-TXT [KINDS]
                             every LBN listed reads back with its sha256,
                             except those of the comma-separated KINDS
verify URI MODEL             every block in MODEL reads back as one of
                             the values MODEL allows; then MODEL holds
                             just what was read
load URI MODEL SEED [crash]  random writes, trims and zeroes in batches,
                             each batch followed by a flush; with crash,
                             until the server dies, and MODEL keeps every
                             value a block may now hold
"""
import hashlib, json, os, random, sys, time
import nbd

BLOCK = 4096
LBNS = 2048                  # the load stays within the first 8 MiB
ZERO = hashlib.sha256(bytes(BLOCK)).hexdigest()

def sha(data):
    return hashlib.sha256(data).hexdigest()

def connect(uri):
    h = nbd.NBD()
    h.connect_uri(uri)
    return h

def load_model(path):
    if not os.path.exists(path):
        return {}
    return {int(k): set(v) for k, v in json.load(open(path)).items()}

def save_model(path, model):
    with open(path + ".tmp", "w") as f:
        json.dump({str(k): sorted(v) for k, v in model.items()}, f)
    os.replace(path + ".tmp", path)

def expected(uri, path, skip=""):
    want = {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        f = line.split()
        if f[1] not in skip.split(","):
            want[int(f[0])] = f[2]
    h = connect(uri)
    bad = [lbn for lbn in sorted(want)
           if sha(h.pread(BLOCK, lbn * BLOCK)) != want[lbn]]
    if bad:
        sys.exit("%d of %d LBNs read back wrong, first %s"
                 % (len(bad), len(want), bad[:10]))
    print("all %d expected LBNs read back" % len(want))

def read_blocks(h, lbns):
    """The sha256 of each block, read 64 at a time."""
    lbns = list(lbns)
    got = {}
    for at in range(0, len(lbns), 64):
        reads = []
        for lbn in lbns[at:at + 64]:
            buf = nbd.Buffer(BLOCK)
            reads.append((h.aio_pread(buf, lbn * BLOCK), lbn, buf))
        while reads:
            h.poll(-1)
            still = []
            for cookie, lbn, buf in reads:
                if h.aio_command_completed(cookie):
                    got[lbn] = sha(buf.to_bytearray())
                else:
                    still.append((cookie, lbn, buf))
            reads = still
    return got

def verify(uri, path):
    model = load_model(path)
    h = connect(uri)
    bad = []
    for lbn, value in sorted(read_blocks(h, model).items()):
        if value not in model[lbn]:
            bad.append(lbn)
        model[lbn] = {value}
    if bad:
        sys.exit("%d of %d blocks read back wrong, first LBNs %s"
                 % (len(bad), len(model), bad[:10]))
    save_model(path, model)
    print("verified %d blocks" % len(model))

def random_block(rng):
    """Random bytes, or (more often) a random run repeated: LZ4 fragments
    of many sizes for the packer, which the plugin runs by default."""
    if rng.random() < 0.3:
        return rng.randbytes(BLOCK)
    run = rng.randbytes(rng.randint(16, 2400))
    return (run * (BLOCK // len(run) + 1))[:BLOCK]

def load(uri, path, seed, crash):
    rng = random.Random(seed)
    model = load_model(path)
    h = connect(uri)
    # The test kills the server only once the load is under way: on a
    # busy machine Python can take longer to start than the kill delay.
    open(path + ".started", "w").close()
    batches = writes = 0
    deadline = time.monotonic() + 2
    try:
        while crash or time.monotonic() < deadline:
            # Distinct blocks, so no two commands in flight overlap.
            batch = rng.sample(range(LBNS), rng.randint(1, 24))
            last = {}
            commands = []
            for lbn in batch:
                kind = rng.random()
                offset = lbn * BLOCK
                buf = None
                flags = 0
                if kind < 0.8:
                    data = random_block(rng)
                    value = sha(data)
                    buf = nbd.Buffer.from_bytearray(bytearray(data))
                    flags = nbd.CMD_FLAG_FUA if rng.random() < 0.1 else 0
                    cookie = h.aio_pwrite(buf, offset, flags=flags)
                elif kind < 0.9:
                    value = ZERO
                    cookie = h.aio_trim(BLOCK, offset)
                else:
                    value = ZERO
                    cookie = h.aio_zero(BLOCK, offset)
                # From now on the new value may land.
                model.setdefault(lbn, {ZERO}).add(value)
                last[lbn] = value
                commands.append((cookie, lbn, value, buf, flags))
            while commands:
                h.poll(-1)
                still = []
                for command in commands:
                    cookie, lbn, value, buf, flags = command
                    if not h.aio_command_completed(cookie):
                        still.append(command)
                    elif buf is not None:
                        writes += 1
                        # An acknowledged FUA write is durable; others
                        # once a flush returns (write-policy=async).
                        if flags & nbd.CMD_FLAG_FUA:
                            model[lbn] = {value}
                commands = still
            h.flush()
            # Everything acknowledged before the flush is durable.
            for lbn in batch:
                model[lbn] = {last[lbn]}
            batches += 1
    except nbd.Error:
        if not crash:
            raise
    finally:
        save_model(path, model)
    print("%d batches, %d writes acknowledged" % (batches, writes))

cmd = sys.argv[1]
if cmd == "expected":
    expected(*sys.argv[2:5])
elif cmd == "verify":
    verify(sys.argv[2], sys.argv[3])
elif cmd == "load":
    load(sys.argv[2], sys.argv[3], int(sys.argv[4]),
         len(sys.argv) > 5 and sys.argv[5] == "crash")
else:
    sys.exit("unknown command " + cmd)
PY

uri_of () { echo "nbd+unix:///?socket=$1"; }

fail () { echo "FAIL: $*" >&2; exit 1; }

show_log () {  # LOG: what the plugin said, without nbdkit's request chatter
  grep -v 'debug: \(recv\|send\|sending\|handshake\|newstyle\|client\|connection\|flags\|negotiated\|export\|finalise\|close\|free\)' "$1" | tail -40 >&2
}

# Serve IMAGE with nbdkit -v (the plugin's progress is debug output),
# logging to LOG, and run the Python helper's COMMAND ARGS against it.
serve_run () {  # IMAGE LOG COMMAND ARGS...
  local img=$1 log=$2 cmd=$3
  shift 3
  nbdkit_vdo -v -U - disk="$img" \
    --run "python3 '$blocks' $cmd \"\$uri\" $*" 2> "$log" \
    || { show_log "$log"; fail "serving $img ($cmd) failed"; }
}

audit_clean () {  # IMAGE [PATTERN...]
  local img=$1 p
  shift
  "$VDOADM" audit "$img" > "$tmpdir/audit" 2>&1 \
    || { cat "$tmpdir/audit" >&2; fail "audit of $img"; }
  for p in "All pbn references matched" "$@"; do
    grep -q -- "$p" "$tmpdir/audit" \
      || { cat "$tmpdir/audit" >&2; fail "audit of $img lacks '$p'"; }
  done
}

super_block () {  # IMAGE FIELD
  "$VDOADM" dump --json "$1" | python3 -c \
    'import json,sys; print(json.load(sys.stdin)["super_block"][sys.argv[1]])' "$2"
}

expect_super_block () {  # IMAGE FIELD VALUE
  local got
  got=$(super_block "$1" "$2")
  [ "$got" = "$3" ] || fail "$1: super block $2 is $got, want $3"
}

logged () {  # LOG PATTERN
  grep -q -- "$2" "$1" || { show_log "$1"; fail "the log lacks '$2'"; }
}

not_logged () {  # LOG PATTERN
  if grep -q -- "$2" "$1"; then show_log "$1"; fail "the log has '$2'"; fi
}

poke_random () {  # IMAGE FIRST-BLOCK COUNT: overwrite blocks with noise
  python3 -c 'import os, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]) * 4096)
    f.write(os.urandom(int(sys.argv[3]) * 4096))' "$@"
}

poke () {  # IMAGE BYTE-OFFSET HEX
  python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); f.write(bytes.fromhex(sys.argv[3]))' "$@"
}

private_copy () {  # FIXTURE IMAGE
  copy_image "$(restore_fixture "$1")" "$2"
  chmod u+w "$2"
}

# --- (a) written-dirty -------------------------------------------------

img=$tmpdir/dirty.img
private_copy written-dirty "$img"
serve_run "$img" "$tmpdir/a1.log" expected "$fixtures/written-dirty.expected.txt"
logged "$tmpdir/a1.log" "recovering it from its journal"
logged "$tmpdir/a1.log" "replaying 904 journal entries into the block map"
logged "$tmpdir/a1.log" "recovery complete"
expect_super_block "$img" state CLEAN
expect_super_block "$img" complete_recoveries 1
audit_clean "$img" "Logical block count matched at 576"
echo "ok: written-dirty recovered: every expected LBN reads back, audit clean"

serve_run "$img" "$tmpdir/a2.log" expected "$fixtures/written-dirty.expected.txt"
not_logged "$tmpdir/a2.log" "recover"
not_logged "$tmpdir/a2.log" "replay"
expect_super_block "$img" state CLEAN
expect_super_block "$img" complete_recoveries 1
audit_clean "$img" "Logical block count matched at 576"
echo "ok: the next start is a clean load"

# --- (b) read-only rebuild of volumes the plugin or the tools wrote -----

img=$tmpdir/rebuild.img
model=$tmpdir/rebuild.model
make_volume "$img" 8G
serve_run "$img" "$tmpdir/b1.log" load "$model" "$RANDOM"
"$VDOADM" read-only "$img" > /dev/null
"$VDOADM" force-rebuild "$img" > /dev/null
serve_run "$img" "$tmpdir/b2.log" verify "$model"
logged "$tmpdir/b2.log" "read-only rebuild complete"
expect_super_block "$img" state CLEAN
expect_super_block "$img" read_only_recoveries 1
expect_super_block "$img" complete_recoveries 1
audit_clean "$img"
serve_run "$img" "$tmpdir/b3.log" load "$model" "$RANDOM"
serve_run "$img" "$tmpdir/b4.log" verify "$model"
not_logged "$tmpdir/b4.log" "read-only rebuild"
audit_clean "$img"
echo "ok: a volume the plugin wrote rebuilds and stays usable"

img=$tmpdir/forcerebuild.img
model=$tmpdir/forcerebuild.model
private_copy forcerebuild-8g "$img"
serve_run "$img" "$tmpdir/b5.log" load "$model" "$RANDOM"
logged "$tmpdir/b5.log" "read-only rebuild complete"
expect_super_block "$img" state CLEAN
expect_super_block "$img" read_only_recoveries 1
serve_run "$img" "$tmpdir/b6.log" verify "$model"
audit_clean "$img"
echo "ok: forcerebuild-8g rebuilds at its first start"

# --- (c) rebuild repairs smashed metadata -------------------------------

# Where written-clean keeps things (vdolistmetadata, vdodumpblockmap):
# slab 0's 9 reference blocks from 711724, its journal from 711733, the
# slab summary from 2097088; leaf page 679192 holds LBNs 0..811, and
# LBN 700 was never written.
REF0=711724
SLAB_JOURNAL0=711733
SUMMARY=2097088
LEAF=679192
img=$tmpdir/smashed.img
private_copy written-clean "$img"
poke_random "$img" "$REF0" 9
poke_random "$img" "$SLAB_JOURNAL0" 16
poke_random "$img" "$SUMMARY" 4
# LBN 700 -> slab 0's first reference block (vdo-journals.md 11.7).
poke "$img" $(( LEAF * 4096 + 36 + 700 * 5 )) \
  "01$(printf '%08x' $REF0 | sed 's/\(..\)\(..\)\(..\)\(..\)/\4\3\2\1/')"
if "$VDOADM" audit "$img" > /dev/null 2>&1; then
  fail "the smashed image passes the audit"
fi
"$VDOADM" read-only "$img" > /dev/null
"$VDOADM" force-rebuild "$img" > /dev/null
serve_run "$img" "$tmpdir/c1.log" expected "$fixtures/written-clean.expected.txt"
logged "$tmpdir/c1.log" "read-only rebuild complete"
logged "$tmpdir/c1.log" "1 unusable entries removed"
echo '{"700": ["ad7facb2586fc6e966c004d7d1d16b024f5805ff7cb47c7a85dabd8b48892ca7"]}' \
  > "$tmpdir/smashed.model"
serve_run "$img" "$tmpdir/c2.log" verify "$tmpdir/smashed.model"
audit_clean "$img" "Logical block count matched at 576"
echo "ok: smashed reference counts, slab journals and summary rebuilt"

# --- (f) an old-format journal ------------------------------------------

# written-dirty's journal rewritten in format 1 (vdo-journals.md 1.10):
# each remapping becomes a decrement of the old block, if any, and an
# increment of the new one, if mapped; 311 entries a block.  Recovery
# refuses it and leaves the volume DIRTY; a read-only rebuild reads it,
# though without the decrements it cannot undo discards.
img=$tmpdir/old-journal.img
private_copy written-dirty "$img"
python3 - "$img" <<'PY'
import struct, sys
ORIGIN, SIZE, BLOCK, SECTOR = 2064320, 32768, 4096, 512

def location(raw):
    return raw[0] & 0x0F, ((raw[0] >> 4) << 32) | struct.unpack_from("<I", raw, 1)[0]

with open(sys.argv[1], "r+b") as f:
    def block(seq):
        f.seek((ORIGIN + seq % SIZE) * BLOCK)
        return f.read(BLOCK)
    old = []
    seq = 1
    while True:
        b = block(seq)
        kind, count = struct.unpack_from("<BH", b, 32)
        if kind != 3 or count == 0:
            break
        nonce, recovery = struct.unpack_from("<Q", b, 24)[0], b[52]
        for s in range(1, 8):
            n = min(b[s * SECTOR + 2], count - (s - 1) * 31)
            for k in range(max(n, 0)):
                old.append(b[s * SECTOR + 3 + 16 * k:s * SECTOR + 19 + 16 * k])
        seq += 1
    last = seq - 1
    assert last == 5, last
    new = []
    for e in old:
        word, low = struct.unpack_from("<HI", e, 0)
        op, rest = word & 3, word & ~3
        mapping, unmapping = e[6:11], e[11:16]
        if op == 0 and location(unmapping)[0] != 0:
            new.append(struct.pack("<HI", rest | 0, low) + unmapping)
        if op == 1:
            new.append(struct.pack("<HI", rest | 3, low) + mapping)
        elif location(mapping)[0] != 0 or location(mapping)[1] == 0:
            new.append(struct.pack("<HI", rest | 1, low) + mapping)
    for seq in range(1, last + 1):
        f.seek((ORIGIN + seq) * BLOCK)
        f.write(bytes(BLOCK))
    seq = 1
    while new:
        chunk, new = new[:311], new[311:]
        check = 0x80 | ((seq // SIZE) & 0x7F)
        b = bytearray(BLOCK)
        struct.pack_into("<QQQQBHQQBB", b, 0, 1, 1, seq, nonce, 1,
                         len(chunk), 0, 0, check, recovery)
        at = 0
        for s in range(1, 8):
            part = chunk[at:at + (35 if s == 7 else 46)]
            if not part:
                break
            b[s * SECTOR:s * SECTOR + 3] = bytes([check, recovery, len(part)])
            for k, e in enumerate(part):
                b[s * SECTOR + 3 + 11 * k:s * SECTOR + 14 + 11 * k] = e
            at += len(part)
        f.seek((ORIGIN + seq) * BLOCK)
        f.write(b)
        seq += 1
PY
# Without --run, so that nbdkit's exit status says whether it started.
nbdkit_vdo -f -v -U "$tmpdir/e.sock" disk="$img" 2> "$tmpdir/e1.log" &
server=$!
while kill -0 "$server" 2> /dev/null; do
  if grep -q ": serving [0-9]* logical blocks" "$tmpdir/e1.log"; then
    kill "$server"
    fail "a format 1 journal was recovered"
  fi
  sleep 0.1
done
if wait "$server"; then
  fail "nbdkit started with a format 1 journal"
fi
server=
logged "$tmpdir/e1.log" "journal is in the old format 1"
logged "$tmpdir/e1.log" "vdoadm force-rebuild"
expect_super_block "$img" state DIRTY
expect_super_block "$img" complete_recoveries 0
"$VDOADM" read-only "$img" > /dev/null
"$VDOADM" force-rebuild "$img" > /dev/null
serve_run "$img" "$tmpdir/e2.log" expected \
  "$fixtures/written-dirty.expected.txt" discarded,dup_discarded
logged "$tmpdir/e2.log" "read-only rebuild complete"
audit_clean "$img"
echo "ok: an old-format journal is refused by recovery and read by rebuild"

# --- (d) kill -9 under load ---------------------------------------------

img=$tmpdir/crash.img
model=$tmpdir/crash.model
sock=$tmpdir/crash.sock
pidfile=$tmpdir/crash.pid
make_volume "$img" 8G
server=

start_server () {  # LOG
  local tries=0
  rm -f "$sock" "$pidfile"
  nbdkit_vdo -f -v -U "$sock" -P "$pidfile" disk="$img" 2> "$1" &
  server=$!
  # The pid file is written before after_fork, which repairs.
  until grep -q ": serving [0-9]* logical blocks" "$1"; do
    if ! kill -0 "$server" 2> /dev/null || [ $((++tries)) -gt 1200 ]; then
      show_log "$1"
      fail "nbdkit did not start"
    fi
    sleep 0.05
  done
}
stop_server () {  # SIGNAL
  kill "-$1" "$(cat "$pidfile")"
  wait "$server" || true
  server=
}
cleanup_fns+=('[ -n "$server" ] && kill -9 "$(cat "$pidfile")"')

started=$SECONDS
for i in $(seq 1 "$iterations"); do
  log=$tmpdir/crash-$i.log
  start_server "$log"
  if [ "$i" -gt 1 ]; then
    logged "$log" "recovery complete"
  fi
  python3 "$blocks" verify "$(uri_of "$sock")" "$model" > /dev/null \
    || { show_log "$log"; fail "iteration $i: data lost"; }
  # Recovery left the metadata consistent, with nothing written since.
  audit_clean "$img"
  rm -f "$model.started"
  python3 "$blocks" load "$(uri_of "$sock")" "$model" "$RANDOM" crash \
    > "$tmpdir/load.out" &
  loader=$!
  for _ in $(seq 600); do
    [ -e "$model.started" ] || ! kill -0 "$loader" 2>/dev/null && break
    sleep 0.1
  done
  sleep "0.$(( RANDOM % 6 + 2 ))"
  stop_server 9
  wait "$loader" || fail "iteration $i: the load failed"
  echo "crash $i: $(cat "$tmpdir/load.out")"
done
log=$tmpdir/crash-final.log
start_server "$log"
logged "$log" "recovery complete"
python3 "$blocks" verify "$(uri_of "$sock")" "$model"
stop_server TERM
expect_super_block "$img" state CLEAN
expect_super_block "$img" complete_recoveries "$iterations"
audit_clean "$img"
echo "ok: $iterations crashes under load recovered in $((SECONDS - started)) s"
