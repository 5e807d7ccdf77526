/* nbdkit-vdo: read-only mode.
 *
 * Any module that meets an unrecoverable error (a metadata I/O error, an
 * invalid reference count change, a corrupt journal) calls
 * vdo_enter_read_only_mode.  From then on every module stops writing
 * metadata and every user write fails with VDO_READ_ONLY; the owner's
 * hook persists READ_ONLY_MODE in the super block, as dm-vdo does.
 */
#ifndef VDO_READ_ONLY_H
#define VDO_READ_ONLY_H

#include <stdbool.h>

struct vdo_read_only_notifier;

/* Called once, on the thread that first entered read-only mode. */
typedef void (*vdo_read_only_hook) (void *context, int error_code);

int vdo_make_read_only_notifier (bool start_read_only, vdo_read_only_hook hook,
                                 void *context,
                                 struct vdo_read_only_notifier **notifier);
void vdo_free_read_only_notifier (struct vdo_read_only_notifier *notifier);

/* Any thread; cheap enough for the data path. */
bool vdo_is_read_only (const struct vdo_read_only_notifier *notifier);

/* Any thread.  The first call logs the cause and runs the hook; later
 * calls do nothing.  Returns VDO_READ_ONLY for convenience. */
int vdo_enter_read_only_mode (struct vdo_read_only_notifier *notifier,
                              int error_code);

/* The error that caused read-only mode, or 0. */
int vdo_read_only_error (const struct vdo_read_only_notifier *notifier);

#endif /* VDO_READ_ONLY_H */
