#!/usr/bin/env bash
# Expose a VDO volume as a regular file (mnt/nbd) through FUSE, e.g. to
# run a tool that only accepts files.  Unmount with: fusermount3 -u mnt
set -euo pipefail
img=${1:-vdo.img}
mkdir -p mnt
nbdfuse mnt/nbd [ nbdkit vdo disk="$img" ] &
echo "mnt/nbd is the volume's logical contents"
