#!/usr/bin/env bash
# Install what is missing, build, and run every test: once in a normal
# build and once under ASan and UBSan.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export PATH=/usr/bin:$PATH       # nbdsh and python3-libnbd need Debian's python

"$top/scripts/install-deps.sh"

run_suite () {
  local build=$1; shift
  BUILD_DIR=$build "$top/scripts/build.sh" "$@"
  local rc=0
  make -C "$build" -j"$(nproc)" --no-print-directory check >/dev/null || rc=$?
  echo "== $build: Check unit tests =="
  grep -h -E '^[0-9]+%: Checks:' "$build"/tests/*.log || true
  echo "== $build: test results =="
  sed -n '/^# TOTAL/,/^# ERROR/p' "$build/tests/test-suite.log"
  if [ $rc -ne 0 ]; then
    cat "$build/tests/test-suite.log"
    exit $rc
  fi
}

run_suite "$top/build"
run_suite "$top/build-sanitizers" --enable-sanitizers
