#!/usr/bin/env bash
# vdoadm read-only and force-rebuild make the same super block changes as
# vdoreadonly and vdoforcerebuild: starting from the fresh fixture they
# give the readonly-8g and forcerebuild-8g images exactly.
source "${srcdir:-.}/functions.sh"
require_fixtures

fresh=$(restore_fixture fresh-8g-l20g-s15)
img=$tmpdir/state.img
copy_image "$fresh" "$img"

# force-rebuild needs a read-only volume; it fails like vdoforcerebuild
# (status 212) and writes nothing.
rc=0
"$VDOADM" force-rebuild "$img" 2> "$tmpdir/err" || rc=$?
[ "$rc" -eq 212 ] || { echo "FAIL: force-rebuild on a NEW volume exited $rc" >&2; exit 1; }
grep -q 'not in read-only mode' "$tmpdir/err"
"$srcdir/compare-images.py" "$fresh" "$img" || { echo "FAIL: force-rebuild wrote" >&2; exit 1; }

# Byte-equal to the restored fixtures, whose sha256 were checked.
"$VDOADM" read-only "$img"
"$srcdir/compare-images.py" "$(restore_fixture readonly-8g)" "$img" || {
  echo "FAIL: read-only image differs from readonly-8g" >&2; exit 1; }
"$VDOADM" dump --json "$img" | grep -q '"state": "READ_ONLY_MODE"'
echo "ok: read-only gives readonly-8g"

"$VDOADM" force-rebuild "$img"
"$srcdir/compare-images.py" "$(restore_fixture forcerebuild-8g)" "$img" || {
  echo "FAIL: force-rebuild image differs from forcerebuild-8g" >&2; exit 1; }
echo "ok: force-rebuild gives forcerebuild-8g"

# Read-only works from any state, so it applies to the rebuilt one too.
"$VDOADM" read-only "$img"
"$VDOADM" dump --json "$img" | grep -q '"state": "READ_ONLY_MODE"'
echo "ok: read-only from FORCE_REBUILD"
