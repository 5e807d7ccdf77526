/* nbdkit-vdo: entering read-only mode once. */
#include <config.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "logger.h"
#include "read-only.h"
#include "status.h"

struct vdo_read_only_notifier {
  atomic_int error;             /* 0 while writable */
  vdo_read_only_hook hook;
  void *context;
};

int
vdo_make_read_only_notifier (bool start_read_only, vdo_read_only_hook hook,
                             void *context,
                             struct vdo_read_only_notifier **notifier_ret)
{
  struct vdo_read_only_notifier *n = calloc (1, sizeof *n);

  *notifier_ret = NULL;
  if (n == NULL)
    return ENOMEM;
  atomic_init (&n->error, start_read_only ? VDO_READ_ONLY : 0);
  n->hook = hook;
  n->context = context;
  *notifier_ret = n;
  return 0;
}

void
vdo_free_read_only_notifier (struct vdo_read_only_notifier *n)
{
  free (n);
}

bool
vdo_is_read_only (const struct vdo_read_only_notifier *n)
{
  return atomic_load_explicit (&n->error, memory_order_acquire) != 0;
}

int
vdo_read_only_error (const struct vdo_read_only_notifier *n)
{
  return atomic_load (&n->error);
}

int
vdo_enter_read_only_mode (struct vdo_read_only_notifier *n, int error_code)
{
  int expected = 0;

  if (error_code == 0)
    error_code = VDO_READ_ONLY;
  if (!atomic_compare_exchange_strong (&n->error, &expected, error_code))
    return VDO_READ_ONLY;
  vdo_log_error ("entering read-only mode: %s", vdo_status_to_string (error_code));
  if (n->hook)
    n->hook (n->context, error_code);
  return VDO_READ_ONLY;
}
