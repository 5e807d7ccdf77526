#!/usr/bin/env bash
# vdoadm refuses bad input with a clear message and an exit status, and
# writes nothing unless the command is meant to write.
source "${srcdir:-.}/functions.sh"

expect_fail () {  # STATUS PATTERN COMMAND... : fails with STATUS, says PATTERN
  local want=$1 pattern=$2 rc=0
  shift 2
  "$@" > "$tmpdir/out" 2> "$tmpdir/err" || rc=$?
  if [ "$rc" -ne "$want" ] || ! grep -q -- "$pattern" "$tmpdir/err"; then
    echo "FAIL: '$*' exited $rc (want $want), stderr:" >&2
    cat "$tmpdir/err" >&2
    exit 1
  fi
  echo "ok: $* -> $rc: $(head -n1 "$tmpdir/err")"
}

unchanged () {  # FILE SAVED-COPY
  "$srcdir/compare-images.py" "$1" "$2" > /dev/null || {
    echo "FAIL: $1 was written" >&2; exit 1; }
}

# Missing device, for every command.
for cmd in dump list read-only force-rebuild format; do
  expect_fail 2 "No such file" "$VDOADM" $cmd "$tmpdir/missing.img"
done
# A directory.
expect_fail 21 "Is a directory" "$VDOADM" dump "$tmpdir"

# A non-VDO device: random data, or all zeros.
head -c 1M /dev/urandom > "$tmpdir/random.img"
cp "$tmpdir/random.img" "$tmpdir/random.copy"
for cmd in dump list read-only force-rebuild; do
  expect_fail 207 "bad magic" "$VDOADM" $cmd "$tmpdir/random.img"
done
unchanged "$tmpdir/random.img" "$tmpdir/random.copy"
truncate -s 1M "$tmpdir/zero.img"
expect_fail 70 "no VDO volume" "$VDOADM" dump "$tmpdir/zero.img"
truncate -s 100 "$tmpdir/tiny.img"
expect_fail 70 "smaller than one" "$VDOADM" list "$tmpdir/tiny.img"

# A valid volume to corrupt.
img=$tmpdir/vol.img
truncate -s 3G "$img"
"$VDOADM" format --slab-bits=13 "$img" > /dev/null
sb=$("$VDOADM" dump --json "$img" | /usr/bin/python3 -c \
  'import json,sys; print(json.load(sys.stdin)["super_block"]["pbn"])')

# A flipped bit under the super block checksum: every command refuses it
# and nothing is written.
cp --sparse=always "$img" "$tmpdir/corrupt.img"
printf '\x07' | dd of="$tmpdir/corrupt.img" bs=1 seek=$((sb * 4096 + 40)) conv=notrunc status=none
cp --sparse=always "$tmpdir/corrupt.img" "$tmpdir/corrupt.copy"
for cmd in dump list read-only force-rebuild; do
  expect_fail 197 "checksum mismatch" "$VDOADM" $cmd "$tmpdir/corrupt.img"
done
expect_fail 69 "already holds a VDO volume" "$VDOADM" format "$tmpdir/corrupt.img"
unchanged "$tmpdir/corrupt.img" "$tmpdir/corrupt.copy"

# A truncated device.
cp --sparse=always "$img" "$tmpdir/short.img"
truncate -s $(( (3 << 30) - (1 << 20) )) "$tmpdir/short.img"
cp --sparse=always "$tmpdir/short.img" "$tmpdir/short.copy"
expect_fail 66 "too small" "$VDOADM" read-only "$tmpdir/short.img"
unchanged "$tmpdir/short.img" "$tmpdir/short.copy"

# format refusals, each writing nothing.
cp --sparse=always "$img" "$tmpdir/vol.copy"
expect_fail 69 "use --force" "$VDOADM" format "$img"
unchanged "$img" "$tmpdir/vol.copy"
truncate -s 2G "$tmpdir/small.img"
head -c 8192 /dev/urandom | dd of="$tmpdir/small.img" conv=notrunc status=none
cp --sparse=always "$tmpdir/small.img" "$tmpdir/small.copy"
expect_fail 187 "Minimum required size for VDO volume: 2949992448 bytes" \
  "$VDOADM" format --slab-bits=13 "$tmpdir/small.img"
unchanged "$tmpdir/small.img" "$tmpdir/small.copy"
truncate -s $(( 67829077 * 4096 )) "$tmpdir/huge.img"
expect_fail 202 "slabs" "$VDOADM" format --slab-bits=13 "$tmpdir/huge.img"
[ "$(du -k "$tmpdir/huge.img" | cut -f1)" -eq 0 ] || { echo "FAIL: huge.img written" >&2; exit 1; }
expect_fail 1 "invalid slab bits" "$VDOADM" format --slab-bits=12 "$tmpdir/small.img"
expect_fail 1 "invalid slab bits" "$VDOADM" format --slab-bits=24 "$tmpdir/small.img"
expect_fail 1 "multiple of block size" "$VDOADM" format --logical-size=4097B "$tmpdir/small.img"
expect_fail 1 "invalid logical size" "$VDOADM" format --logical-size=12Q "$tmpdir/small.img"
expect_fail 1 "index memory" "$VDOADM" format --index-memory=0.3 "$tmpdir/small.img"
expect_fail 1 "Usage" "$VDOADM" format
expect_fail 1 "unknown command" "$VDOADM" frobnicate
unchanged "$tmpdir/small.img" "$tmpdir/small.copy"

# --force formats over an existing volume.
"$VDOADM" format --force --slab-bits=13 "$img" > /dev/null
"$VDOADM" dump "$img" | grep -q 'state: *NEW'
echo "ok: --force reformats"
