#!/usr/bin/env bash
# Attach a VDO volume as /dev/nbd0 with the kernel's NBD client, using
# four connections (the plugin supports multi-conn), then make a
# filesystem on it.  Run as root; detach with: nbd-client -d /dev/nbd0
set -euo pipefail
img=${1:-vdo.img}
sock=/tmp/vdo-nbd.sock

modprobe nbd
nbdkit -U "$sock" vdo disk="$img"
nbd-client -unix "$sock" /dev/nbd0 -C 4 -b 4096
# -E: mkfs would otherwise discard the whole device block by block.
mkfs.ext4 -E nodiscard /dev/nbd0
