# shellcheck shell=bash
# Sourced by the bench scripts (bash, set -euo pipefail): where the build
# is, a temporary directory and the nbdkit servers, removed and killed at
# exit (only the PIDs started here), fio runs and their MiB/s.
export PATH=/usr/bin:$PATH      # Debian's python3 for nbd tools, before pyenv
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Sets build, vdoadm, plugin, dir (a new temporary directory) and pids.
bench_setup () {  # BUILD_DIR TEMPLATE
  build=${1:-$top/build}
  [ -x "$build/tools/vdoadm" ] || build=$top
  # shellcheck disable=SC2034 # for the scripts
  vdoadm=$build/tools/vdoadm
  plugin=$build/plugin/.libs/nbdkit-vdo-plugin.so
  [ -x "$vdoadm" ] || bench_fail "$vdoadm is not built (run make)"
  [ -r "$plugin" ] || bench_fail "$plugin is not built (run make)"
  dir=$(mktemp -d -t "$2.XXXXXX")
  pids=()
  declare -gA started=()
  trap bench_cleanup EXIT
  # run_fio's extra options, from DURABLE.
  durable_args=()
  case ${DURABLE:-0} in
    0) ;;
    1)
      durable_args=(--end_fsync=1)
      echo "DURABLE=1: each fio job ends with a flush (--end_fsync=1), and its MiB/s"
      echo "include the time the flush takes: what a server only buffered, it pays"
      echo "for writing out."
      ;;
    *) bench_fail "DURABLE must be 0 or 1, not '$DURABLE'" ;;
  esac
}

bench_cleanup () {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}

bench_fail () {
  echo "$0: $*" >&2
  exit 1
}

# Serve on $dir/NAME.sock in the background; the server's PID is in
# $dir/NAME.pid, and the PID of what was started (the same, unless nbdkit
# is a wrapper) in pids and started[NAME].  Output goes where the
# caller's goes.
start () {  # NAME ARGS...
  local name=$1; shift
  rm -f "$dir/$name.sock" "$dir/$name.pid"
  nbdkit -f -U "$dir/$name.sock" -P "$dir/$name.pid" "$@" &
  pids+=($!)
  started[$name]=$!
  # nbdkit writes the PID file after it binds the socket.
  for _ in $(seq 100); do [ -S "$dir/$name.sock" ] && [ -s "$dir/$name.pid" ] && break; sleep 0.1; done
  [ -s "$dir/$name.pid" ] || bench_fail "nbdkit $* did not start"
}

uri () {  # NAME
  echo "nbd+unix:///?socket=$dir/$1.sock"
}

# The server's peak RSS so far ("N kB").
peak_rss () {  # NAME
  awk '/^VmHWM:/ { print $2, $3 }' "/proc/$(cat "$dir/$1.pid")/status"
}

# Stop a server started by start, as a user would (SIGTERM: the vdo
# plugin then saves the volume CLEAN), and wait for it to exit.
stop () {  # NAME
  local pid=${started[$1]} i
  kill "$(cat "$dir/$1.pid")"
  for i in "${!pids[@]}"; do [ "${pids[$i]}" = "$pid" ] && unset "pids[$i]"; done
  wait "$pid" || bench_fail "nbdkit ($1) exited with status $?"
}

# Does the vdo plugin take this key?  (Its --help lists its keys.)
plugin_has () {  # KEY
  # Not grep -q: with pipefail, nbdkit killed by SIGPIPE would say no.
  nbdkit "$plugin" --help 2>/dev/null | grep "^ *$1=" > /dev/null
}

# The machine's CPU time so far, in clock ticks: "BUSY IDLE STEAL".
# BUSY counts every process and the kernel's own work (interrupts,
# kworkers writing back and syncing); STEAL is time the host ran
# something else.
cpu_ticks () {
  awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6, $9 }' /proc/stat
}

# shellcheck disable=SC2154 # size and runtime are the caller's
run_fio () {  # NAME TARGET ARGS...   (uses $size, $runtime, $durable_args)
  local name=$1 target=$2; shift 2
  # Start with no dirty pages: an earlier run's writeback (the file
  # plugin leaves gigabytes of it) must not be charged to this one.
  sync
  cpu_ticks > "$dir/$name-$target.cpu"
  fio --name="$name" --ioengine=nbd --uri="$(uri "$target")" \
      --size="$size" --runtime="$runtime" --time_based --refill_buffers \
      --randrepeat=0 --norandommap --output-format=json "${durable_args[@]}" "$@" \
      > "$dir/$name-$target.json"
  cpu_ticks >> "$dir/$name-$target.cpu"
}

# Read and write MiB/s of fio JSON outputs, one line each.
fio_mibs () {  # JSON...
  /usr/bin/python3 - "$@" <<'PY'
import json, sys
for path in sys.argv[1:]:
    text = open(path).read()
    # fio's nbd engine prints a line before the JSON.
    j = json.loads(text[text.index("{"):])["jobs"][0]
    print("%.3f" % ((j["read"]["bw"] + j["write"]["bw"]) / 1024.0))
PY
}

# The whole machine's CPU per I/O during run_fio runs, a line each:
# "US IDLE", the busy microseconds per I/O (fio, the server, and the
# kernel's work for both, such as writeback) and the percentage of time
# no CPU had work.  MiB/s say how fast; this says what each I/O cost,
# including the kernel work a server causes but does not run itself.
fio_cpu () {  # NAME-TARGET...
  /usr/bin/python3 - "$dir" "$(getconf CLK_TCK)" "$@" <<'PY'
import json, sys
base, hz = sys.argv[1], int(sys.argv[2])
for run in sys.argv[3:]:
    text = open("%s/%s.json" % (base, run)).read()
    j = json.loads(text[text.index("{"):])["jobs"][0]
    ios = j["read"]["total_ios"] + j["write"]["total_ios"]
    (b0, i0, s0), (b1, i1, s1) = [[int(x) for x in line.split()]
                                  for line in open("%s/%s.cpu" % (base, run))]
    busy, idle, steal = b1 - b0, i1 - i0, s1 - s0
    print("%.1f %.0f" % (busy * 1e6 / hz / max(1, ios),
                         100.0 * idle / max(1, busy + idle + steal)))
PY
}

ratio () {  # A B -> A / B as a percentage
  awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", (b > 0 ? 100 * a / b : 0) }'
}

percent () {  # A B -> 100 * A / B, to one decimal, for further arithmetic
  awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b > 0 ? 100 * a / b : 0) }'
}

# The top-level KEY of the JSON object in FILE.
json_field () {  # FILE KEY
  /usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# The sha256 of SIZE bytes at OFFSET of the export on SOCKET.
nbd_sha256 () {  # SOCKET OFFSET SIZE
  /usr/bin/python3 - "$@" <<'PY'
import hashlib, nbd, sys
h = nbd.NBD()
h.connect_unix(sys.argv[1])
offset, size = int(sys.argv[2]), int(sys.argv[3])
digest = hashlib.sha256()
chunk = 4 << 20
for pos in range(0, size, chunk):
    digest.update(h.pread(min(chunk, size - pos), offset + pos))
h.shutdown()
print(digest.hexdigest())
PY
}
