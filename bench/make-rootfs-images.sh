#!/usr/bin/env bash
# Build the deduplication dataset: three ext4 images of Debian root
# filesystems that share most of their blocks, as a VM fleet's disks do.
#
#   A  a minimal Debian bookworm tree (debootstrap --variant=minbase)
#   B  the same tree with a few more packages installed (PACKAGES)
#   C  a byte copy of A whose filesystem UUID was then changed: with
#      metadata_csum, tune2fs rewrites the checksums of the superblocks,
#      group descriptors, inodes, extent and directory blocks, while the
#      file data stays the same, which is what cloning a VM costs
#
# The images are made with `mke2fs -d`, all IMAGE_SIZE big, with fixed
# UUIDs and hash seeds, so that rebuilding them from the same trees gives
# comparable images.  Every step is skipped when its output exists: delete
# a file or tree to redo it.  Needs root (debootstrap, chroot, mount).
#
#   bench/make-rootfs-images.sh [DIR]    (default $BENCH_IMAGES, or
#                                         /var/tmp/nbdkit-vdo-bench)
#
# Environment: SUITE (bookworm), MIRROR (http://deb.debian.org/debian),
# PACKAGES (python3 vim-tiny less), IMAGE_SIZE (1G).
set -euo pipefail
export PATH=/usr/bin:/usr/sbin:/sbin:$PATH
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-${BENCH_IMAGES:-/var/tmp/nbdkit-vdo-bench}}
suite=${SUITE:-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}
packages=${PACKAGES:-python3 vim-tiny less}
size=${IMAGE_SIZE:-1G}

# Fixed, so that a rebuilt image only differs where its tree does.
uuid_a=e98cd812-d48f-49f7-b04a-8aff8d58628f
uuid_b=ae2212a6-c4da-45be-ac03-1f7ce40cc9e8
uuid_c=1649ae41-c431-4349-b01b-aca0de149d7c
seed_a=05820245-f7be-449d-986c-82bc926690a6
seed_b=632abee0-14d2-4e0f-8107-53fc8ec3e465

fail () {
  echo "$0: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || fail "must run as root (debootstrap, chroot, mount)"
mkdir -p "$out"

mounts=()
cleanup () {
  local i
  # Unmount in reverse order; a mount left behind would pin the tree.
  for (( i = ${#mounts[@]} - 1; i >= 0; i-- )); do
    umount "${mounts[$i]}" 2>/dev/null || umount -l "${mounts[$i]}" || true
  done
}
trap cleanup EXIT

# rm -rf of a tree with /dev still bound in it would empty the host's /dev.
remove_tree () {  # DIR
  if awk -v d="$1" '$2 == d || index($2, d "/") == 1 { found = 1 } END { exit !found }' /proc/mounts; then
    fail "something is still mounted under $1: unmount it first"
  fi
  rm -rf "$1"
}

if [ ! -d "$out/rootfs-a" ]; then
  if ! command -v debootstrap > /dev/null; then
    echo "== installing debootstrap"
    apt-get install -y debootstrap > /dev/null
  fi
  echo "== debootstrap $suite (minbase) into $out/rootfs-a"
  # Build under another name, so a half-made tree is never taken as done.
  remove_tree "$out/rootfs-a.tmp"
  debootstrap --variant=minbase "$suite" "$out/rootfs-a.tmp" "$mirror" \
    > "$out/debootstrap.log" 2>&1 ||
    { tail -n 20 "$out/debootstrap.log" >&2; fail "debootstrap failed (see $out/debootstrap.log)"; }
  # debootstrap leaves the packages it downloaded; an installed system
  # has them cleaned away, as rootfs-b's apt-get clean does.
  find "$out/rootfs-a.tmp/var/cache/apt/archives" -name '*.deb' -delete
  mv "$out/rootfs-a.tmp" "$out/rootfs-a"
fi

if [ ! -d "$out/rootfs-b" ]; then
  echo "== rootfs-b: rootfs-a plus $packages"
  tree=$out/rootfs-b.tmp
  remove_tree "$tree"
  cp -a "$out/rootfs-a" "$tree"
  mount -t proc proc "$tree/proc"
  mounts+=("$tree/proc")
  mount --bind /dev "$tree/dev"
  mounts+=("$tree/dev")
  # The chroot needs a resolver; put the tree's own file back afterwards.
  cp -a "$tree/etc/resolv.conf" "$out/resolv.conf.saved" 2>/dev/null || true
  cp /etc/resolv.conf "$tree/etc/resolv.conf"
  # shellcheck disable=SC2086 # PACKAGES is a list
  DEBIAN_FRONTEND=noninteractive chroot "$tree" sh -c \
    "apt-get update && apt-get install -y --no-install-recommends $packages && apt-get clean" \
    > "$out/packages.log" 2>&1 ||
    { tail -n 20 "$out/packages.log" >&2; fail "installing $packages failed (see $out/packages.log)"; }
  # apt-get update's package lists are not part of what was installed:
  # keep them as rootfs-a has them.
  rm -rf "$tree/var/lib/apt/lists"
  cp -a "$out/rootfs-a/var/lib/apt/lists" "$tree/var/lib/apt/lists"
  if [ -e "$out/resolv.conf.saved" ]; then
    cp -a "$out/resolv.conf.saved" "$tree/etc/resolv.conf"
    rm -f "$out/resolv.conf.saved"
  else
    rm -f "$tree/etc/resolv.conf"
  fi
  cleanup
  mounts=()
  mv "$tree" "$out/rootfs-b"
fi

check () {  # IMAGE
  e2fsck -fn "$1" > "$out/e2fsck.log" 2>&1 ||
    { cat "$out/e2fsck.log" >&2; fail "e2fsck found errors in $1"; }
}

make_image () {  # TREE IMAGE LABEL UUID HASH_SEED
  local tree=$1 img=$2 used
  [ -e "$img" ] && return
  echo "== $(basename "$img"): ext4, $size, from $(basename "$tree")"
  # Room for the tree and its metadata with some to spare, as a root
  # filesystem has.
  used=$(du -s --block-size=1 "$tree" | cut -f1)
  [ $(( used * 3 / 2 )) -le "$(numfmt --from=iec "$size")" ] ||
    fail "$tree ($(numfmt --to=iec "$used")) does not fit 1.5 times in IMAGE_SIZE=$size"
  rm -f "$img.tmp"
  mke2fs -q -F -t ext4 -b 4096 -L "$3" -U "$4" -E hash_seed="$5" \
    -d "$tree" "$img.tmp" "$size" > "$out/mke2fs.log" 2>&1 ||
    { cat "$out/mke2fs.log" >&2; fail "mke2fs failed"; }
  check "$img.tmp"
  mv "$img.tmp" "$img"
}

make_image "$out/rootfs-a" "$out/rootfs-a.img" rootfs-a "$uuid_a" "$seed_a"
make_image "$out/rootfs-b" "$out/rootfs-b.img" rootfs-b "$uuid_b" "$seed_b"

if [ ! -e "$out/rootfs-c.img" ]; then
  echo "== rootfs-c.img: rootfs-a.img with its UUID changed"
  rm -f "$out/rootfs-c.img.tmp"
  cp --sparse=always "$out/rootfs-a.img" "$out/rootfs-c.img.tmp"
  # Not metadata_csum_seed: then only the superblock would change.
  if dumpe2fs -h "$out/rootfs-c.img.tmp" 2>/dev/null | grep metadata_csum_seed > /dev/null; then
    fail "rootfs-a.img has metadata_csum_seed: a UUID change would not rewrite checksums"
  fi
  tune2fs -U "$uuid_c" "$out/rootfs-c.img.tmp" > /dev/null
  check "$out/rootfs-c.img.tmp"
  mv "$out/rootfs-c.img.tmp" "$out/rootfs-c.img"
fi

echo "== dataset in $out"
for t in rootfs-a rootfs-b; do
  printf '%-14s tree %s\n' "$t" "$(du -sh "$out/$t" | cut -f1)"
done
for i in a b c; do
  img=$out/rootfs-$i.img
  printf '%-14s %s, %s allocated, UUID %s\n' "rootfs-$i.img" \
    "$(numfmt --to=iec "$(stat -c %s "$img")")" "$(du -h "$img" | cut -f1)" \
    "$(dumpe2fs -h "$img" 2>/dev/null | sed -n 's/^Filesystem UUID: *//p')"
done
# The "new" column of rootfs-c.img is what the UUID change rewrote.
/usr/bin/python3 "$here/count-unique-blocks.py" \
  "$out/rootfs-a.img" "$out/rootfs-b.img" "$out/rootfs-c.img"
