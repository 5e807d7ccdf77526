#!/usr/bin/env bash
# vdoadm audit agrees with the real vdoaudit on the fixtures and reports
# each kind of corruption planted in a copy of written-clean; vdoadm
# stats derives vdostats' figures from the same walk.
source "${srcdir:-.}/functions.sh"
require_fixtures

: "${PATCH_SUPER_BLOCK:=./patch-super-block}"

# Where written-clean keeps things (vdodumpblockmap, vdolistmetadata):
# slab 0's data starts at PBN 679189 and its first reference block is
# 711724; the slab summary starts at 2097088 (zone count 1, so zone 0's
# region holds every slab).  LBN 0 maps PBN 679316 (sbn 127, count 1);
# PBN 679192 (sbn 3) is the leaf page for LBNs 0..811.
SLAB0=679189
REF0=711724
SUMMARY=2097088
LEAF=679192

audit () {  # STATUS IMAGE [ARGS...]: audit exits STATUS; output in $tmpdir/out
  local want=$1 rc=0
  shift
  "$VDOADM" audit "$@" > "$tmpdir/out" 2>&1 || rc=$?
  if [ "$rc" -ne "$want" ]; then
    echo "FAIL: vdoadm audit $* exited $rc, want $want:" >&2
    cat "$tmpdir/out" >&2
    exit 1
  fi
}

says () {  # PATTERN...: each is in the last output
  local p
  for p in "$@"; do
    if ! grep -q -- "$p" "$tmpdir/out"; then
      echo "FAIL: output lacks '$p':" >&2
      cat "$tmpdir/out" >&2
      exit 1
    fi
  done
}

poke () {  # IMAGE BYTE-OFFSET HEX: overwrite bytes in place
  /usr/bin/python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); f.write(bytes.fromhex(sys.argv[3]))' "$@"
}

# Counter byte of a slab 0 block: reference block sbn / 4032, sector
# (sbn % 4032) / 504, byte 8 + sbn % 504 in that sector (vdo-journals.md 3.2).
counter_offset () {
  local sbn=$1
  echo $(( (REF0 + sbn / 4032) * 4096 + ((sbn % 4032) / 504) * 512 + 8 + sbn % 504 ))
}

clean=$(restore_fixture written-clean)
dirty=$(restore_fixture written-dirty)

# The fixtures, against vdoaudit's recorded output (meta.txt).
audit 0 "$clean" --verbose
says "Logical block count matched at 576" "All pbn references matched." \
  "block map tree pages:   16 (super block: 16)" \
  "data blocks allocated:  282 of 1366470"
echo "ok: written-clean audits clean"
audit 0 "$dirty"
says "WARNING: The VDO was not cleanly shut down (it has state 'DIRTY')" \
  "Logical block count matched at 0" "All pbn references matched."
echo "ok: written-dirty audits as vdoaudit did"
for name in $(fresh_fixtures); do
  audit 1 "$(restore_fixture "$name")"
  says "The VDO volume is newly formatted and has no auditable state"
done
echo "ok: fresh volumes have no auditable state"
# vdoaudit crashes on a never-started read-only volume; we take its
# unwritten slab summary as "nothing allocated".
audit 0 "$(restore_fixture readonly-8g)"
says "READ_ONLY_MODE" "slab summary was never written" "All pbn references matched."
echo "ok: readonly-8g audits with a warning"

img=$tmpdir/corrupt.img
fresh_copy () { rm -f "$img"; copy_image "$clean" "$img"; }

# A stored reference count changed: LBN 0's block (count 1) says 2.
fresh_copy
poke "$img" "$(counter_offset 127)" 02
audit 1 "$img"
says "PBN 679316: the block map has 1 reference but slab 0 stores 2" \
  "slab 0 at PBN $SLAB0 has 1 reference count error in SBN range \[127 .. 127\]" \
  "Logical block count matched at 576" "Audit failed: 1 reference count error in 1 slab."
echo "ok: a changed reference count is reported"

# A tree page must be stored as 254 (or 1); 5 is wrong.
fresh_copy
poke "$img" "$(counter_offset 3)" 05
audit 1 "$img"
says "PBN $LEAF is a block map tree page but slab 0 stores 5"
echo "ok: a tree page's wrong count is reported"

# A provisional 255 written for a free block is accepted.
fresh_copy
poke "$img" "$(counter_offset 20000)" ff
audit 0 "$img"
echo "ok: a stored provisional count on a free block passes"

# A leaf entry pointing at slab 0's first reference block: vdoaudit's
# "refers to slab metadata block", which stops the audit (A5).
fresh_copy
poke "$img" $(( LEAF * 4096 + 36 )) "01$(printf '%08x' $REF0 | sed 's/\(..\)\(..\)\(..\)\(..\)/\4\3\2\1/')"
audit 1 "$img"
says "block map page $LEAF slot 0 (height 0) -> PBN $REF0 (state 1): a slab metadata block" \
  "Audit aborted" "walk stopped after 1 logical blocks"
if grep -q "All pbn references matched" "$tmpdir/out"; then
  echo "FAIL: an aborted audit claims success" >&2; exit 1
fi
echo "ok: a leaf entry naming a reference block aborts the audit"

# An unmapped entry that names a block (A1) also stops it.
fresh_copy
poke "$img" $(( LEAF * 4096 + 36 )) 00
audit 1 "$img"
says "unmapped but names a physical block" "Audit aborted"
echo "ok: an unmapped entry with a PBN aborts the audit"

# LBN 0 remapped to LBN 1's block: one block loses its only reference,
# the other gains one (A12).
fresh_copy
poke "$img" $(( LEAF * 4096 + 36 )) "01$(printf '%08x' 679317 | sed 's/\(..\)\(..\)\(..\)\(..\)/\4\3\2\1/')"
audit 1 "$img"
says "PBN 679316: the block map has 0 references but slab 0 stores 1" \
  "PBN 679317: the block map has 2 references but slab 0 stores 1"
echo "ok: a remapped leaf entry shows as two count errors"

# A leaf mapping a tree page (A8).
fresh_copy
poke "$img" $(( LEAF * 4096 + 36 )) "01$(printf '%08x' $LEAF | sed 's/\(..\)\(..\)\(..\)\(..\)/\4\3\2\1/')"
audit 1 "$img"
says "data mapped to a block map tree page"
echo "ok: a leaf entry naming a tree page is reported"

# logical_blocks_used in the super block (A9), re-encoded by libvdo so the
# checksum still holds.
fresh_copy
"$PATCH_SUPER_BLOCK" "$img" logical-blocks-used 575
audit 1 "$img"
says "Logical block count mismatch! Expected 575, got 576" \
  "Audit failed: logical block count mismatch."
echo "ok: a wrong logical block count is reported"

# A wrong fullness hint: slab 0's entry "02 7e" (hint 62, 32253 free)
# becomes hint 10; and slab 1's default "00 3f" becomes hint 48.
fresh_copy
poke "$img" $(( SUMMARY * 4096 + 1 )) 4a
poke "$img" $(( SUMMARY * 4096 + 3 )) 30
audit 1 "$img"
says "slab 0: the summary hint 10 says about 5120 free blocks, but 32253 are free" \
  "slab 1: the summary hint 48 says about 24576 free blocks, but 32535 are free" \
  "free space hint errors: 2" "Logical block count matched at 576" \
  "Audit failed: 2 free space hint errors."
echo "ok: wrong summary hints are reported"

# A leaf page stored at the wrong PBN reads as empty, so its 576
# mappings vanish and every count it held is off.
fresh_copy
poke "$img" $(( LEAF * 4096 + 16 )) "$(printf '%016x' 123456 | sed 's/\(..\)\(..\)\(..\)\(..\)\(..\)\(..\)\(..\)\(..\)/\8\7\6\5\4\3\2\1/')"
audit 1 "$img"
says "block map page at PBN $LEAF (height 0) belongs at PBN 123456" \
  "Logical block count mismatch! Expected 576, got"
echo "ok: a misplaced tree page is reported"

# Many errors: slab 0's counts all zero.  Only the first 20 problems are
# printed unless --verbose; the total is always there.
fresh_copy
dd if=/dev/zero of="$img" bs=4096 seek=$REF0 count=1 conv=notrunc status=none
audit 1 "$img"
says "more problems (use --verbose to see all)" "reference count errors: 282 in 1 slab"
[ "$(grep -c 'stores 0' "$tmpdir/out")" -eq 20 ] || { echo "FAIL: cap" >&2; exit 1; }
audit 1 "$img" --verbose
[ "$(grep -c 'stores 0' "$tmpdir/out")" -eq 282 ] || { echo "FAIL: --verbose" >&2; exit 1; }
echo "ok: problems are capped, with a total"

# Stats on written-clean.  The expected data blocks: every LBN the
# workload left mapped, uncompressed or compressed (expected.txt column
# 4), names the PBN in column 5; the distinct non-zero PBNs among them
# are the data blocks in use (zero-block writes allocate nothing, and
# the 14 fragments of a compressed block share one).  vdodumpblockmap
# gives the same set from the height-0 entries.  Tree pages are the
# dumpblockmap entries of heights 1..4: 4 trees of 4 pages below the root.
want_data=$(awk '!/^#/ && ($4 == "mapped" || $4 == "compressed") && $5 != 0 { print $5 }' \
  "$fixtures/written-clean.expected.txt" | sort -u | wc -l)
from_dump=$(grep 'height 0' "$fixtures/written-clean.dumpblockmap.txt" \
  | sed 's/.*-> PBN \([0-9]*\).*/\1/' | grep -v '^0$' | sort -u | wc -l)
want_tree=$(grep -vc 'height 0' "$fixtures/written-clean.dumpblockmap.txt")
if [ "$want_data" -ne 266 ] || [ "$from_dump" -ne 266 ] || [ "$want_tree" -ne 16 ]; then
  echo "FAIL: fixture derivation gave $want_data / $from_dump / $want_tree" >&2
  exit 1
fi

"$VDOADM" stats --json "$clean" > "$tmpdir/stats.json"
/usr/bin/python3 - "$tmpdir/stats.json" "$want_data" "$want_tree" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
data, tree = int(sys.argv[2]), int(sys.argv[3])
physical, slab_data = 2097152, 42 * 32535
want = {
    "logical_blocks": 5242880,
    "logical_blocks_used": 576,
    "logical_blocks_mapped": 576,
    "physical_blocks": physical,
    "data_blocks_used": data,
    "block_map_blocks": tree,
    # Everything outside slab data, plus the tree pages (the kernel's sum).
    "overhead_blocks_used": physical - slab_data + tree,
    "free_blocks": slab_data - data - tree,
    "1k_blocks": physical * 4,
    "1k_blocks_used": (data + physical - slab_data + tree) * 4,
    "1k_blocks_available": (slab_data - data - tree) * 4,
    "used_percent": 35,
    # vdostats: int(100 * (576 - 266) / 576) = 53.
    "saving_percent": int(100.0 * (576 - data) / 576),
}
for k, v in want.items():
    assert s[k] == v, (k, s[k], v)
PY
"$VDOADM" stats "$clean" > "$tmpdir/out"
says "logical blocks used *: 576" "data blocks used *: 266" \
  "block map blocks *: 16" "saving percent *: 53" "1K-blocks *: 8388608"
echo "ok: stats on written-clean"

"$VDOADM" stats "$dirty" > "$tmpdir/out" 2>&1
says "not cleanly shut down" "logical blocks used *: 0" "saving percent *: 0"
"$VDOADM" stats --json "$(restore_fixture fresh-8g-l20g-s15)" > "$tmpdir/stats.json"
/usr/bin/python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))
assert s["data_blocks_used"] == 0 and s["free_blocks"] == 42 * 32535, s' "$tmpdir/stats.json"
echo "ok: stats on written-dirty and a fresh volume"
