#!/usr/bin/env bash
# The main job: install what is missing, build, format a sparse demo
# volume, and show it.  DEMO_DIR keeps the volume (default: a temp dir).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

"$top/scripts/install-deps.sh"
"$top/scripts/build.sh"

dir=${DEMO_DIR:-$(mktemp -d -t vdo-demo.XXXXXX)}
disk=$dir/demo.img
rm -f "$disk"
truncate -s 8G "$disk"
"$top/build/tools/vdoadm" format --logical-size=20G --slab-bits=15 "$disk"
"$top/build/tools/vdoadm" dump "$disk"
echo
echo "Demo volume: $disk"
