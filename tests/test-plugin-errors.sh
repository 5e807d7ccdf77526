#!/usr/bin/env bash
# Bad input stops nbdkit at start-up with the reason on stderr and
# changes nothing on disk.
source "${srcdir:-.}/functions.sh"
require_plugin

refuses () {  # PATTERN ARGS... : nbdkit must fail to start, saying PATTERN
  local pattern=$1 rc=0
  shift
  nbdkit_vdo -U - "$@" --run 'exit 0' > "$tmpdir/out" 2> "$tmpdir/err" || rc=$?
  if [ "$rc" -eq 0 ] || ! grep -q -- "$pattern" "$tmpdir/err"; then
    echo "FAIL: nbdkit vdo $* exited $rc; stderr:" >&2
    cat "$tmpdir/err" >&2
    exit 1
  fi
  echo "ok: refused ($*): $(grep -- "$pattern" "$tmpdir/err" | head -n1)"
}

unchanged () {
  "$srcdir/compare-images.py" "$1" "$2" > /dev/null || {
    echo "FAIL: $1 was written" >&2; exit 1; }
}

refuses "No such file" disk="$tmpdir/missing.img"
refuses "disk=" cache=128M

head -c 4M /dev/urandom > "$tmpdir/random.img"
cp "$tmpdir/random.img" "$tmpdir/random.copy"
refuses "bad magic" disk="$tmpdir/random.img"
unchanged "$tmpdir/random.img" "$tmpdir/random.copy"

img=$tmpdir/vol.img
make_volume "$img" 3G --slab-bits=13
cp --sparse=always "$img" "$tmpdir/vol.copy"
for opt in cache=abc cache=1K logical-threads=61 \
           physical-threads=17 readonly=maybe frobnicate=1; do
  refuses "" disk="$img" "$opt"
done
refuses "at most" disk="$img" physical-threads=16   # 9 slabs: too many zones
refuses "all 0 or all non-zero" disk="$img" logical-threads=0
refuses "all 0 or all non-zero" disk="$img" logical-threads=0 \
        physical-threads=0 hash-threads=2
unchanged "$img" "$tmpdir/vol.copy"

sb=$("$VDOADM" dump --json "$img" | /usr/bin/python3 -c \
  'import json,sys; print(json.load(sys.stdin)["super_block"]["pbn"])')
cp --sparse=always "$img" "$tmpdir/corrupt.img"
printf '\x07' | dd of="$tmpdir/corrupt.img" bs=1 seek=$((sb * 4096 + 40)) conv=notrunc status=none
cp --sparse=always "$tmpdir/corrupt.img" "$tmpdir/corrupt.copy"
refuses "checksum mismatch" disk="$tmpdir/corrupt.img"
unchanged "$tmpdir/corrupt.img" "$tmpdir/corrupt.copy"

cp --sparse=always "$img" "$tmpdir/short.img"
truncate -s $(( (3 << 30) - (1 << 20) )) "$tmpdir/short.img"
cp --sparse=always "$tmpdir/short.img" "$tmpdir/short.copy"
refuses "too small" disk="$tmpdir/short.img"
unchanged "$tmpdir/short.img" "$tmpdir/short.copy"
