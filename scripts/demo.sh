#!/usr/bin/env bash
# The main job: install what is missing, build, format a sparse demo
# volume and serve it on a Unix socket with nbdkit.
#
#   DEMO_DIR=dir   keep the volume there (default: a temp dir)
#   DEMO_RUN=cmd   run CMD against the server ($uri) and stop, instead of
#                  serving until Ctrl-C (which saves the volume cleanly)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export PATH=/usr/bin:$PATH

"$top/scripts/install-deps.sh"
"$top/scripts/build.sh"

dir=${DEMO_DIR:-$(mktemp -d -t vdo-demo.XXXXXX)}
disk=$dir/demo.img
sock=$dir/nbd.sock
if [ ! -e "$disk" ]; then
  truncate -s 8G "$disk"
  "$top/build/tools/vdoadm" format --logical-size=20G --slab-bits=15 "$disk"
fi
"$top/build/tools/vdoadm" dump "$disk" | sed -n '1,12p'

plugin=$top/build/plugin/.libs/nbdkit-vdo-plugin.so
echo
echo "Serving $disk on $sock (uri nbd+unix:///?socket=$sock)"
if [ -n "${DEMO_RUN:-}" ]; then
  nbdkit -U "$sock" "$plugin" disk="$disk" --run "$DEMO_RUN"
else
  echo "Try: nbdinfo 'nbd+unix:///?socket=$sock'   (Ctrl-C to stop)"
  exec nbdkit -f -U "$sock" "$plugin" disk="$disk"
fi
