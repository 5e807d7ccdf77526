/* nbdkit-vdo: a power-cut simulator, for tests only.
 *
 * A simulator is a struct vdo_io backend (so libvdo's real code runs on
 * it unchanged) that behaves as a disk with a volatile write cache in
 * front of an underlying device, the "lower" one.  The lower device is
 * only ever read: every write goes to a log file (one unlinked file per
 * simulator, in options->log_dir), and reads see the newest logged data
 * of each block, else the lower device's.  libvdo itself never builds a
 * simulator; it lives in libvdo_sim.la, which only the tests link.
 *
 * The history.  Every operation that reaches the simulator is numbered
 * on one clock: a write or flush takes a tick when it is submitted and
 * another when it completes (a synchronous call takes both at once), so
 * the history records issue and completion order.  A crash "at point T"
 * keeps the events numbered below T and loses the rest; T runs from 0
 * (nothing happened) to vdo_sim_clock () (everything so far).
 *
 * The model of what a power cut leaves, at point T:
 *
 *   - A write is durable at T if it completed before T and either had
 *     fua set, or completed before a flush was submitted that itself
 *     completed before T.  (A flush says nothing of writes that were in
 *     flight when it was submitted.)
 *   - Every other write submitted before T is volatile: it completed
 *     into the cache, or was still in flight, and may or may not be on
 *     the media, in whole or (see torn below) in part.
 *   - The image holds the simulator's initial content, then every
 *     durable write in completion order, then some volatile writes in
 *     any order.  A volatile write never overrides, on a given block, a
 *     durable write that was submitted after the volatile one completed:
 *     the cache had already replaced it.  Two writes in flight together
 *     to one block have no order, and either may win.
 *   - Sectors (512 bytes) are atomic; blocks and multi-block writes are
 *     not.  A torn image keeps, in some blocks of some volatile writes,
 *     only some of their sectors (at least one old and one new).
 *   - A write that failed (see vdo_sim_fail_from) never reaches the
 *     media.
 *
 * So a crash image holds all durable writes and an arbitrary subset of
 * the volatile ones.  Three kinds are made, all seeded:
 *
 *   VDO_SIM_CRASH_DURABLE  the durable writes only.  Taking T from
 *                          vdo_sim_boundaries gives every prefix of the
 *                          durable history that ends at a flush or FUA
 *                          completion.
 *   VDO_SIM_CRASH_SUBSET   plus a random subset of the volatile writes,
 *                          each whole, applied in random order.  Each
 *                          image draws its own keep probability, so some
 *                          keep few and some keep most.
 *   VDO_SIM_CRASH_TORN     the same, but about half the kept writes are
 *                          torn: each of their blocks keeps a random
 *                          mixture of new and old sectors (or none, or
 *                          all).  If any write is volatile, one at least
 *                          is kept and really torn (unless a durable
 *                          write overrode all its blocks).
 *
 * The fourth mode, a dying device (dm-vdo's "dory"), is live:
 * vdo_sim_fail_from makes a chosen operation and every one after it
 * fail, as do requests already queued; nothing after that reaches the
 * history, so a crash image at vdo_sim_clock () shows what the dead
 * device kept.
 *
 * An image is opened as a new simulator over the same lower device (so
 * nothing is copied but torn blocks, and the runtime's recovery can run
 * on it and itself be crash-tested), or written out to a target device
 * that holds the lower device's content.
 *
 * Threads: the vdo_io functions may be called from any thread, as for
 * any backend, and so may the vdo_sim_* ones (vdo_sim_release from one
 * test thread).  A crash image is made from the history as it stands:
 * a point must not be past the clock, and a write still in flight then
 * counts as volatile even if it completes later.
 */
#ifndef VDO_IO_SIMULATOR_H
#define VDO_IO_SIMULATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "constants.h"
#include "io.h"

#define VDO_SIM_SECTOR_SIZE 512
#define VDO_SIM_SECTORS_PER_BLOCK (VDO_BLOCK_SIZE / VDO_SIM_SECTOR_SIZE)

struct vdo_sim;

struct vdo_sim_options {
  /* Directory for the data log; NULL: $TMPDIR, else /tmp. */
  const char *log_dir;
  bool read_only;               /* writes fail with EROFS */
  /* Complete queued requests in an order drawn from seed, not in
   * submission order, as a real device may. */
  bool reorder;
  uint64_t seed;
  /* Tests: queued requests wait for vdo_sim_release (all of them must
   * be released before a drain or close, which would wait forever). */
  bool hold;
};

/* Make a simulator over LOWER, which must stay open and unchanged until
 * the simulator and every image made from it are closed.  Returns 0 or
 * an errno value, logged. */
int vdo_sim_create (struct vdo_io *lower, const struct vdo_sim_options *options,
                    struct vdo_sim **sim);
/* The same over PATH, opened read-only and closed with the simulator. */
int vdo_sim_create_file (const char *path,
                         const struct vdo_sim_options *options,
                         struct vdo_sim **sim);

/* The device view, to hand to the runtime; vdo_io_close on it is the same
 * as vdo_sim_close. */
struct vdo_io *vdo_sim_io (struct vdo_sim *sim);
/* Close a simulator; close the images made from it first. */
void vdo_sim_close (struct vdo_sim *sim);

/* --- The history ------------------------------------------------------- */

/* The current point: a crash here keeps everything so far. */
uint64_t vdo_sim_clock (struct vdo_sim *sim);

struct vdo_sim_counts {
  uint64_t operations;          /* reads, writes and flushes received */
  uint64_t writes;              /* in the history, FUA ones included */
  uint64_t fua_writes;
  uint64_t flushes;
  uint64_t blocks_written;
  uint64_t failed;              /* operations failed by fail_from */
};
void vdo_sim_get_counts (struct vdo_sim *sim, struct vdo_sim_counts *counts);

/* The points just after each flush or FUA write completed, ascending and
 * distinct.  Returns how many there are; stores at most MAX of them (an
 * even sample when there are more, always including the last). */
size_t vdo_sim_boundaries (struct vdo_sim *sim, uint64_t *points, size_t max);

/* From operation number OP (counting from 0 every read, write and flush
 * received, as vdo_sim_counts.operations does) on, every operation fails
 * with ERROR (0: EIO), and so do queued requests that have not
 * completed, as though the device had died.  If OP has passed, the next
 * operation is the first to fail. */
void vdo_sim_fail_from (struct vdo_sim *sim, uint64_t op, int error);

/* Tests, with options.hold: how many requests wait, and complete the one
 * at INDEX in submission order.  Its callback runs on the calling thread
 * before this returns.  Returns false if there is no such request. */
size_t vdo_sim_pending (struct vdo_sim *sim);
bool vdo_sim_release (struct vdo_sim *sim, size_t index);

/* --- Crash images ------------------------------------------------------ */

enum vdo_sim_crash_kind {
  VDO_SIM_CRASH_DURABLE,
  VDO_SIM_CRASH_SUBSET,
  VDO_SIM_CRASH_TORN,
};

struct vdo_sim_crash {
  enum vdo_sim_crash_kind kind;
  uint64_t point;               /* 0 .. vdo_sim_clock () */
  uint64_t seed;
};

/* What a crash image was made of. */
struct vdo_sim_crash_info {
  uint64_t durable_writes;
  uint64_t volatile_writes;     /* candidates, whole writes */
  uint64_t kept_writes;         /* volatile ones kept, whole or torn */
  uint64_t torn_blocks;         /* blocks holding old and new sectors */
  uint64_t superseded_blocks;   /* kept blocks a durable write overrode */
};

/* Open the image of CRASH as a new simulator over the same lower device,
 * whose initial content is that image and whose history is empty.
 * OPTIONS may be NULL (defaults).  INFO may be NULL.  Returns 0, EINVAL
 * for a point past the clock, or an errno value, logged. */
int vdo_sim_open_crash (struct vdo_sim *sim, const struct vdo_sim_crash *crash,
                        const struct vdo_sim_options *options,
                        struct vdo_sim **image,
                        struct vdo_sim_crash_info *info);

/* Write the image of CRASH over TARGET, which must hold what the lower
 * device holds (a copy of it, or one restored by vdo_sim_restore_lower):
 * only blocks that differ from it are written.  Then TARGET is flushed. */
int vdo_sim_write_crash (struct vdo_sim *sim, const struct vdo_sim_crash *crash,
                         struct vdo_io *target,
                         struct vdo_sim_crash_info *info);

/* Copy the lower device's content over TARGET at every block the
 * simulator's initial content or history touched, so that a target on
 * which vdo_sim_write_crash wrote an image holds the lower device's
 * content again. */
int vdo_sim_restore_lower (struct vdo_sim *sim, struct vdo_io *target);

#endif /* VDO_IO_SIMULATOR_H */
