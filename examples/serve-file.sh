#!/usr/bin/env bash
# Format a sparse 16 GiB file as a VDO volume with a 64 GiB logical size,
# serve it on a Unix socket, and copy a disk image into it.
set -euo pipefail
img=${1:-vdo.img}
src=${2:-}

[ -e "$img" ] || { truncate -s 16G "$img"; vdoadm format --logical-size=64G "$img"; }
if [ -n "$src" ]; then
  # nbdcopy skips the source's holes and zeros: they cost nothing here.
  nbdkit -U - vdo disk="$img" --run "nbdcopy '$src' \"\$uri\""
  vdoadm stats "$img"
else
  echo "Serving $img on /tmp/vdo.sock (Ctrl-C stops and saves it)"
  nbdkit -f -U /tmp/vdo.sock vdo disk="$img"
fi
