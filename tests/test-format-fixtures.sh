#!/usr/bin/env bash
# vdoadm format reproduces vdoformat's images: with each fresh fixture's
# parameters, nonce and UUID the whole image has the fixture's sha256;
# with a random nonce and UUID it differs only in the masked bytes.
source "${srcdir:-.}/functions.sh"
require_fixtures

for name in $(fresh_fixtures); do
  ref=$(restore_fixture "$name")
  # The exact vdoformat command line, with vdoadm's synonyms for its options.
  args=$(meta_field "$name" '  vdoformat ' | sed 's| /dev/loop[0-9]*$||')
  size=$(fixture_device_bytes "$name")

  img=$tmpdir/$name.img
  truncate -s "$size" "$img"
  # shellcheck disable=SC2086
  "$VDOADM" format $args --nonce="$(fixture_nonce "$name")" \
    --uuid="$(fixture_uuid "$name")" "$img" > "$tmpdir/out"
  sum=$("$srcdir/compare-images.py" --sha256 "$img")
  if [ "$sum" != "$(fixture_sha256 "$name")" ]; then
    echo "FAIL: $name: vdoadm format's image has sha256 $sum" >&2
    "$srcdir/compare-images.py" "$ref" "$img" >&2 || true
    exit 1
  fi
  # vdoformat's report, line for line.
  sed -n '/^vdoformat output:/,/^  rc=/p' "$fixtures/$name.meta.txt" \
    | sed '1d;$d;s/^  //' > "$tmpdir/expected-out"
  diff -u "$tmpdir/expected-out" "$tmpdir/out"
  echo "ok: $name: identical image and output with the fixture's nonce and UUID"

  # The same blocks written as vdoformat wrote (its zeros included).
  sed -n '/^extents vdoformat[/a-z]* actually wrote/,/^[^ ]/p' "$fixtures/$name.meta.txt" \
    | sed -n 's/^  \([0-9]* [0-9]*\)$/\1/p' > "$tmpdir/expected-extents"
  "$srcdir/compare-images.py" --extents "$img" > "$tmpdir/extents"
  diff -u "$tmpdir/expected-extents" "$tmpdir/extents"
  echo "ok: $name: writes exactly the blocks vdoformat writes"

  # A random nonce and UUID: only the masked byte ranges may differ.
  rm "$img"
  truncate -s "$size" "$img"
  # shellcheck disable=SC2086
  "$VDOADM" format $args "$img" > /dev/null
  sb=$(( $("$VDOADM" dump --json "$img" | /usr/bin/python3 -c \
          'import json,sys; print(json.load(sys.stdin)["super_block"]["pbn"])') * 4096 ))
  "$srcdir/compare-images.py" "$ref" "$img" 32-55 97-100 \
    $((sb + 100))-$((sb + 107)) $((sb + 434))-$((sb + 437))
  # and the masked bytes did change: the nonce is not the fixture's.
  ! "$srcdir/compare-images.py" "$ref" "$img" > /dev/null
  echo "ok: $name: random nonce and UUID differ only in masked bytes"
  rm -f "$img"
done
