#!/usr/bin/env bash
# The crash sweep: recover thousands of simulated power cuts taken from a
# seeded workload, and check what every acknowledged write left behind
# (see crash-sweep.c).  make check runs a short sweep; make check-crash
# sets CRASH_SWEEP_IMAGES=20000.  CRASH_SWEEP_SEED picks another history.
source "${srcdir:-.}/functions.sh"

: "${CRASH_SWEEP:=./crash-sweep}"
images=${CRASH_SWEEP_IMAGES:-2000}
seed=${CRASH_SWEEP_SEED:-1}
# Weights of prefix, subset, torn and dying-device images.
mix=${CRASH_SWEEP_MIX:-30,25,25,20}
export TMPDIR=$tmpdir

"$CRASH_SWEEP" --seed "$seed" --images "$images" --mix "$mix"

# The asynchronous write policy (the plugin's default): writes are
# durable once a later flush returns, or at once with FUA.
"$CRASH_SWEEP" --seed "$((seed + 2))" --images "$((images / 2))" \
  --mix "$mix" --async-writes

# Duplicate-heavy data through the deduplicating runtime, both write
# policies.
"$CRASH_SWEEP" --seed "$((seed + 1))" --images "$((images / 4))" \
  --mix "$mix" --dedupe-heavy --dedupe
"$CRASH_SWEEP" --seed "$((seed + 3))" --images "$((images / 4))" \
  --mix "$mix" --dedupe-heavy --dedupe --async-writes

# Compressible data through the compressing runtime, both write
# policies: crashes find fragments parked in the packer, compressed
# blocks with some fragments journaled, and freed ones.
"$CRASH_SWEEP" --seed "$((seed + 4))" --images "$((images / 2))" \
  --mix "$mix" --compression --async-writes
"$CRASH_SWEEP" --seed "$((seed + 5))" --images "$((images / 4))" \
  --mix "$mix" --compression --dedupe

# As the plugin runs by default on two CPUs: asynchronous writes,
# deduplication and compression, every zone on one thread.
"$CRASH_SWEEP" --seed "$((seed + 6))" --images "$((images / 4))" \
  --mix "$mix" --dedupe --compression --async-writes --single-zone-thread
