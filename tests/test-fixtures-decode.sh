#!/usr/bin/env bash
# Every fixture restores and decodes; its geometry and super block
# re-encode to identical bytes; vdoadm list prints exactly what
# vdolistmetadata printed; vdoadm dump decodes it.
source "${srcdir:-.}/functions.sh"
require_fixtures

for name in $(all_fixtures); do
  img=$(restore_fixture "$name")
  ./reencode-metadata "$img"
  "$VDOADM" list "$img" > "$tmpdir/$name.list"
  if ! diff -u "$fixtures/$name.listmetadata.txt" "$tmpdir/$name.list"; then
    echo "FAIL: vdoadm list differs from vdolistmetadata on $name" >&2
    exit 1
  fi
  "$VDOADM" dump --json "$img" > "$tmpdir/$name.json"
  nonce=$(fixture_nonce "$name")
  /usr/bin/python3 - "$tmpdir/$name.json" "$nonce" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["geometry"]["nonce"] == int(sys.argv[2]), (d["geometry"]["nonce"], sys.argv[2])
assert d["super_block"]["nonce"] == int(sys.argv[2])
PY
  echo "ok: $name lists and dumps"
done
