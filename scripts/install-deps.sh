#!/usr/bin/env bash
# Install the Debian 12 packages nbdkit-vdo needs to build and test,
# skipping the update and install when everything is already present.
set -euo pipefail

packages=(
  build-essential autoconf automake libtool pkg-config perl
  nbdkit nbdkit-plugin-dev libaio-dev libglib2.0-dev check
  liblz4-dev zlib1g-dev uuid-dev
  zstd util-linux
  libnbd-bin python3-libnbd qemu-utils fio
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "Installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
