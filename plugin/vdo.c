/* nbdkit-vdo: the nbdkit plugin.
 *
 * A thin layer: it maps nbdkit's callbacks onto libvdo's volume API.  The
 * volume is opened and checked in get_ready, so configuration and format
 * errors reach the user's terminal; its threads start in after_fork; it
 * is drained and saved CLEAN in cleanup.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "index-geometry.h"
#include "logger.h"
#include "vdo.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static char *disk;
/* Acknowledging writes before a flush is what a disk with a volatile
 * cache does, and what NBD clients expect of one. */
static struct vdo_options options = {
  .write_policy = VDO_WRITE_POLICY_ASYNC,
  /* As nbdkit's file plugin and QEMU's default cache mode do. */
  .data_cache = true,
  /* Deduplication is why people run VDO. */
  .dedupe = true,
  /* As the kernel's lvcreate --type vdo does by default. */
  .compression = true,
};
static struct vdo *vdo;

static void
log_to_nbdkit (enum vdo_log_level level, const char *message)
{
  if (level <= VDO_LOG_WARNING)
    nbdkit_error ("%s", message);
  else
    nbdkit_debug ("%s", message);
}

static void
vdo_plugin_load (void)
{
  vdo_set_log_sink (log_to_nbdkit);
}

static void
vdo_plugin_unload (void)
{
  vdo_free (vdo);
  free (disk);
}

/* Zone thread counts given, and how many of them were 0. */
static unsigned zone_counts_given, zone_counts_zero;

/* A zone thread count: 0..MAX, 0 meaning one shared zone thread. */
static int
parse_zone_count (const char *key, const char *value, unsigned max,
                  unsigned *out)
{
  unsigned r;

  if (nbdkit_parse_unsigned (key, value, &r) == -1)
    return -1;
  if (r > max) {
    nbdkit_error ("%s must be between 0 and %u", key, max);
    return -1;
  }
  zone_counts_given++;
  zone_counts_zero += r == 0;
  *out = r;
  return 0;
}

/* Test hook: inject-error=OPS:AFTER[:COUNT], OPS being read, write,
 * flush or all, joined by '+'.  Once serving, the I/O layer fails COUNT
 * (default: every) such operations after AFTER of them succeeded. */
static int
parse_inject_error (const char *value)
{
  char ops[64], *op, *save;
  unsigned long long after, count = 0;
  int n;

  n = sscanf (value, "%63[a-z+]:%llu:%llu", ops, &after, &count);
  if (n < 2) {
    nbdkit_error ("inject-error: expected OPS:AFTER[:COUNT], got '%s'", value);
    return -1;
  }
  options.inject_ops = 0;
  for (op = strtok_r (ops, "+", &save); op; op = strtok_r (NULL, "+", &save)) {
    if (strcmp (op, "read") == 0)
      options.inject_ops |= VDO_INJECT_READ;
    else if (strcmp (op, "write") == 0)
      options.inject_ops |= VDO_INJECT_WRITE;
    else if (strcmp (op, "flush") == 0)
      options.inject_ops |= VDO_INJECT_FLUSH;
    else if (strcmp (op, "all") == 0)
      options.inject_ops |= VDO_INJECT_READ | VDO_INJECT_WRITE | VDO_INJECT_FLUSH;
    else {
      nbdkit_error ("inject-error: unknown operation '%s'", op);
      return -1;
    }
  }
  options.inject_after = after;
  options.inject_count = count;
  return 0;
}

static int
vdo_plugin_config (const char *key, const char *value)
{
  if (strcmp (key, "disk") == 0) {
    free (disk);
    disk = nbdkit_realpath (value);
    if (disk == NULL)
      return -1;
  }
  else if (strcmp (key, "cache") == 0) {
    int64_t bytes = nbdkit_parse_size (value);

    if (bytes == -1)
      return -1;
    if (bytes < 4096 * 16) {
      nbdkit_error ("cache must be at least 64K");
      return -1;
    }
    options.cache_pages = bytes / 4096;
  }
  else if (strcmp (key, "logical-threads") == 0) {
    if (parse_zone_count (key, value, 60, &options.logical_zones) == -1)
      return -1;
  }
  else if (strcmp (key, "physical-threads") == 0) {
    if (parse_zone_count (key, value, 16, &options.physical_zones) == -1)
      return -1;
  }
  else if (strcmp (key, "hash-threads") == 0) {
    if (parse_zone_count (key, value, 100, &options.hash_zones) == -1)
      return -1;
  }
  else if (strcmp (key, "dedupe") == 0) {
    int r = nbdkit_parse_bool (value);

    if (r == -1)
      return -1;
    options.dedupe = r;
  }
  else if (strcmp (key, "compression") == 0) {
    int r = nbdkit_parse_bool (value);

    if (r == -1)
      return -1;
    options.compression = r;
  }
  else if (strcmp (key, "index-memory") == 0) {
    /* The message names the accepted values. */
    if (vdo_parse_index_memory (value, &options.index_memory) != 0)
      return -1;
  }
  else if (strcmp (key, "write-policy") == 0) {
    if (strcmp (value, "async") == 0)
      options.write_policy = VDO_WRITE_POLICY_ASYNC;
    else if (strcmp (value, "sync") == 0)
      options.write_policy = VDO_WRITE_POLICY_SYNC;
    else {
      nbdkit_error ("write-policy must be 'sync' or 'async', not '%s'", value);
      return -1;
    }
  }
  else if (strcmp (key, "data-cache") == 0) {
    int r = nbdkit_parse_bool (value);

    if (r == -1)
      return -1;
    options.data_cache = r;
  }
  else if (strcmp (key, "inject-error") == 0) {
    if (parse_inject_error (value) == -1)
      return -1;
  }
  else if (strcmp (key, "readonly") == 0) {
    int r = nbdkit_parse_bool (value);

    if (r == -1)
      return -1;
    options.read_only = r;
  }
  else {
    nbdkit_error ("unknown parameter '%s'", key);
    return -1;
  }
  return 0;
}

/* With no thread counts given: one zone thread on a machine of two
 * CPUs or fewer, where zone threads would mostly wait for each other. */
static bool
default_single_zone_thread (void)
{
  return sysconf (_SC_NPROCESSORS_ONLN) <= 2;
}

static int
vdo_plugin_config_complete (void)
{
  if (disk == NULL) {
    nbdkit_error ("you must supply the disk=<FILE|DEVICE> parameter");
    return -1;
  }
  /* As dm-vdo: all three 0 runs the zones on one thread. */
  if (zone_counts_zero > 0
      && (zone_counts_zero < 3 || zone_counts_given > 3)) {
    nbdkit_error ("logical-threads, physical-threads and hash-threads must "
                  "be all 0 or all non-zero");
    return -1;
  }
  if (zone_counts_zero == 3)
    options.single_zone_thread = true;
  else if (zone_counts_given == 0)
    options.single_zone_thread = default_single_zone_thread ();
  return 0;
}

#define vdo_plugin_config_help \
  "disk=<FILE|DEVICE>     (required) The VDO volume.\n" \
  "cache=<SIZE>           Block map cache (default 128M).\n" \
  "logical-threads=<N>    Logical zones (default 1).\n" \
  "physical-threads=<N>   Physical zones (default 1).\n" \
  "hash-threads=<N>       Hash zones (default 1).\n" \
  "dedupe=false           Do not deduplicate (default true).\n" \
  "compression=off        Do not compress (default on).\n" \
  "index-memory=<GB>      Dedupe index memory: 0.25, 0.5, 0.75, 1, 2 ...\n" \
  "                       (default: the volume's).\n" \
  "readonly=true          Serve read-only and write nothing.\n" \
  "data-cache=false       User data bypasses the page cache (O_DIRECT).\n" \
  "write-policy=async|sync  Acknowledge writes before a flush makes them\n" \
  "                       durable (async, default), or once durable."

static void
vdo_plugin_dump_plugin (void)
{
  printf ("vdo_options=disk,cache,logical-threads,physical-threads,"
          "hash-threads,dedupe,compression,index-memory,readonly,"
          "write-policy,data-cache\n");
  printf ("vdo_default_cache=128M\n");
}

static int
vdo_plugin_get_ready (void)
{
  int r = vdo_load (disk, &options, &vdo);

  if (r != 0) {
    nbdkit_error ("cannot serve %s", disk);
    return -1;
  }
  return 0;
}

static int
vdo_plugin_after_fork (void)
{
  if (vdo_start (vdo) != 0) {
    nbdkit_error ("starting %s failed", disk);
    return -1;
  }
  return 0;
}

static void
vdo_plugin_cleanup (void)
{
  if (vdo)
    vdo_stop (vdo);
}

/* Every connection shares the one volume. */
static void *
vdo_plugin_open (int readonly)
{
  return vdo;
}

static int64_t
vdo_plugin_get_size (void *handle)
{
  return vdo_logical_bytes (vdo);
}

static int
vdo_plugin_block_size (void *handle, uint32_t *minimum, uint32_t *preferred,
                       uint32_t *maximum)
{
  *minimum = 512;
  *preferred = 4096;
  *maximum = 32 * 1024 * 1024;
  return 0;
}

static int
vdo_plugin_can_write (void *handle)
{
  return !vdo_is_serving_read_only (vdo);
}

static int
vdo_plugin_can_multi_conn (void *handle)
{
  /* One volume serves every connection, and flush and FUA are global. */
  return 1;
}

static int
vdo_plugin_can_fua (void *handle)
{
  return NBDKIT_FUA_NATIVE;
}

static int
vdo_plugin_can_yes (void *handle)
{
  return 1;
}

static int
set_error (int err)
{
  if (err == 0)
    return 0;
  nbdkit_set_error (err);
  return -1;
}

static int
vdo_plugin_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
                  uint32_t flags)
{
  return set_error (vdo_read (vdo, buf, count, offset));
}

static int
vdo_plugin_pwrite (void *handle, const void *buf, uint32_t count,
                   uint64_t offset, uint32_t flags)
{
  return set_error (vdo_write (vdo, buf, count, offset,
                               (flags & NBDKIT_FLAG_FUA) != 0));
}

static int
vdo_plugin_flush (void *handle, uint32_t flags)
{
  return set_error (vdo_flush (vdo));
}

static int
vdo_plugin_trim (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  return set_error (vdo_discard (vdo, count, offset, true));
}

/* A zero request never writes data: zeros map to the zero block, or to
 * nothing when trimming is allowed, so it is always fast. */
static int
vdo_plugin_zero (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  return set_error (vdo_discard (vdo, count, offset,
                                 flags & NBDKIT_FLAG_MAY_TRIM));
}

struct extents_context {
  struct nbdkit_extents *extents;
  bool req_one;
  bool added;
};

static int
add_extent (void *context, uint64_t offset, uint64_t length,
            enum vdo_extent_type type)
{
  struct extents_context *c = context;
  uint32_t nbd_type = type == VDO_EXTENT_HOLE_ZERO
                      ? NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO
                      : type == VDO_EXTENT_ZERO ? NBDKIT_EXTENT_ZERO : 0;

  if (c->req_one && c->added)
    return 0;
  c->added = true;
  return nbdkit_add_extent (c->extents, offset, length, nbd_type) == -1
         ? EIO : 0;
}

static int
vdo_plugin_extents (void *handle, uint32_t count, uint64_t offset,
                    uint32_t flags, struct nbdkit_extents *extents)
{
  struct extents_context c = {
    .extents = extents,
    .req_one = flags & NBDKIT_FLAG_REQ_ONE,
  };

  return set_error (vdo_extents (vdo, count, offset, add_extent, &c));
}

static struct nbdkit_plugin plugin = {
  .name = "vdo",
  .version = PACKAGE_VERSION,
  .longname = "nbdkit dm-vdo plugin",
  .description = "Serve dm-vdo volumes: deduplication, compression and thin provisioning",
  .load = vdo_plugin_load,
  .unload = vdo_plugin_unload,
  .config = vdo_plugin_config,
  .config_complete = vdo_plugin_config_complete,
  .config_help = vdo_plugin_config_help,
  .magic_config_key = "disk",
  .dump_plugin = vdo_plugin_dump_plugin,
  .get_ready = vdo_plugin_get_ready,
  .after_fork = vdo_plugin_after_fork,
  .cleanup = vdo_plugin_cleanup,
  .open = vdo_plugin_open,
  .get_size = vdo_plugin_get_size,
  .block_size = vdo_plugin_block_size,
  .can_write = vdo_plugin_can_write,
  .can_flush = vdo_plugin_can_yes,
  .can_trim = vdo_plugin_can_yes,
  .can_zero = vdo_plugin_can_yes,
  .can_fast_zero = vdo_plugin_can_yes,
  .can_extents = vdo_plugin_can_yes,
  .can_multi_conn = vdo_plugin_can_multi_conn,
  .can_fua = vdo_plugin_can_fua,
  .pread = vdo_plugin_pread,
  .pwrite = vdo_plugin_pwrite,
  .flush = vdo_plugin_flush,
  .trim = vdo_plugin_trim,
  .zero = vdo_plugin_zero,
  .extents = vdo_plugin_extents,
  .errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN (plugin)
