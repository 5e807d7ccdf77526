# nbdkit-vdo: helpers sourced by the shell tests.
# shellcheck shell=bash

set -euo pipefail
export PATH=/usr/bin:$PATH     # Debian's python3 for nbdsh, before pyenv

: "${VDOADM:?VDOADM must name the vdoadm binary (set by make check)}"
fixtures=${VDO_FIXTURES:-}

# Skip (77) when the reference fixtures are absent, unless CI requires
# them, in which case their absence is a failure.
require_fixtures () {
  if [ -z "$fixtures" ] || [ ! -r "$fixtures/README.md" ]; then
    if [ -n "${VDO_REQUIRE_FIXTURES:-}" ]; then
      echo "$0: fixtures not found at '${fixtures}'" >&2
      exit 1
    fi
    echo "$0: fixtures not found, skipping" >&2
    exit 77
  fi
}

# A private temporary directory, removed on exit with anything the test
# registered in cleanup_fns.
cleanup_fns=()
cleanup () {
  local fn
  for fn in "${cleanup_fns[@]}"; do eval "$fn" || true; done
  [ -n "${tmpdir:-}" ] && rm -rf "$tmpdir"
}
trap cleanup EXIT
tmpdir=$(mktemp -d -t vdo-test.XXXXXX)

# Restored fixtures are kept between tests in a cache: they are sparse,
# so 8 GiB of apparent size costs a few MiB of disk.
fixture_cache=${VDO_FIXTURE_CACHE:-${TMPDIR:-/tmp}/nbdkit-vdo-fixtures}

meta_field () {  # NAME FIELD-PREFIX -> the text after the prefix
  sed -n "s/^$2//p" "$fixtures/$1.meta.txt" | head -n 1
}

fixture_nonce () { meta_field "$1" '  nonce: '; }
fixture_uuid () { meta_field "$1" '  uuid: '; }
fixture_device_bytes () { meta_field "$1" 'device size bytes: ' | cut -d' ' -f1; }

fixture_sha256 () {
  meta_field "$1" 'image sha256 (whole restored file, all [0-9]* bytes): '
}

# Restore fixture NAME (once; concurrent tests wait on a lock) and print
# the path of the restored image, checked against meta.txt's sha256.
restore_fixture () {
  local name=$1 img expected
  mkdir -p "$fixture_cache"
  img=$fixture_cache/$name.img
  expected=$(fixture_sha256 "$name")
  (
    flock 9
    # The stamp holds the sha256 the restored image was checked against.
    if [ "$(cat "$img.ok" 2>/dev/null)" != "$expected" ]; then
      rm -f "$img" "$img.ok"
      zstd -q -d --sparse "$fixtures/$name.img.zst" -o "$img"
      sum=$("$srcdir/compare-images.py" --sha256 "$img")
      if [ "$sum" != "$expected" ]; then
        echo "restored $name has sha256 $sum, expected $expected" >&2
        exit 1
      fi
      echo "$expected" > "$img.ok"
    fi
  ) 9>"$fixture_cache/$name.lock"
  echo "$img"
}

# Copy an image sparsely, so tests may change the copy.
copy_image () {
  cp --sparse=always "$1" "$2"
}

all_fixtures () {
  local f
  for f in "$fixtures"/*.img.zst; do basename "$f" .img.zst; done
}

fresh_fixtures () {
  all_fixtures | grep '^fresh-'
}

# Running the plugin.  A sanitizer build of the plugin needs the ASan
# runtime preloaded into nbdkit, which is not built with it.  With only
# libasan preloaded, libp11-kit (pulled in by nbdkit's gnutls) runs its
# constructor in an order that leaves glibc's locale lock unbalanced,
# and nbdkit hangs in p11-kit's destructor when it exits after an
# error message that used strerror.  Preloading libp11-kit right after
# libasan restores the normal order.  Programs that do not link
# libp11-kit hang the same way when it is preloaded, so the --run
# command drops the preload before it starts the client.
: "${PLUGIN:=}"
nbdkit_vdo () {
  local preload p11kit arg args=()
  # Not "ldd | grep -q": under pipefail, grep quitting early can kill
  # ldd with SIGPIPE and the test would run without the preload.
  if [ -z "$PLUGIN" ] || [[ "$(ldd "$PLUGIN" 2>/dev/null)" != *libasan* ]]; then
    nbdkit "$PLUGIN" "$@"
    return
  fi
  preload=$(gcc -print-file-name=libasan.so)
  p11kit=$(ldd "$(command -v nbdkit)" 2>/dev/null |
             sed -n 's/^[[:space:]]*libp11-kit[^ ]* => \([^ ]*\) .*/\1/p')
  [ -n "$p11kit" ] && preload="$preload $p11kit"
  while [ $# -gt 0 ]; do
    arg=$1; shift
    case $arg in
      --run) args+=("$arg" "unset LD_PRELOAD; $1"); shift ;;
      --run=*) args+=("--run=unset LD_PRELOAD; ${arg#--run=}") ;;
      *) args+=("$arg") ;;
    esac
  done
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} LD_PRELOAD=$preload \
    nbdkit "$PLUGIN" "${args[@]}"
}

require_plugin () {
  if [ ! -r "$PLUGIN" ]; then
    echo "$0: plugin not built at '$PLUGIN'" >&2
    exit 1
  fi
}

# A fresh sparse volume of SIZE (default 8G) formatted with ARGS (after
# defaults of a 20G logical size and 128 MiB slabs).
make_volume () {
  local img=$1 size=${2:-8G}
  shift 2 || shift $#
  truncate -s "$size" "$img"
  "$VDOADM" format --logical-size=20G --slab-bits=15 "$@" "$img" > /dev/null
}

volume_state () {
  "$VDOADM" dump --json "$1" | /usr/bin/python3 -c \
    'import json,sys; print(json.load(sys.stdin)["super_block"]["state"])'
}
