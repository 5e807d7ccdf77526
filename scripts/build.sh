#!/usr/bin/env bash
# Configure and build in BUILD_DIR (default: build), with any extra
# configure arguments given.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}

cd "$top"
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi
mkdir -p "$build"
cd "$build"
"$top/configure" --quiet "$@"
make -j"$(nproc)" --no-print-directory >/dev/null
