#!/usr/bin/env bash
# Boot a guest whose disk is a VDO volume served over an NBD Unix socket.
# Trims from the guest (fstrim, discard mount option) unmap VDO blocks.
set -euo pipefail
img=${1:-vdo.img}
sock=/tmp/vdo-qemu.sock

nbdkit -U "$sock" -P /tmp/vdo-qemu.pid vdo disk="$img" logical-threads=2
trap 'kill "$(cat /tmp/vdo-qemu.pid)"' EXIT
qemu-system-x86_64 -m 2G -enable-kvm \
  -drive file=nbd+unix:///?socket=$sock,format=raw,if=virtio,discard=unmap,cache=none
