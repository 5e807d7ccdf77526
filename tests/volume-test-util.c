/* nbdkit-vdo: temporary test volumes (volume-test-util.h). */
#include <config.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <check.h>

#include "audit.h"
#include "status.h"
#include "volume.h"
#include "volume-test-util.h"

void
test_volume_create (struct test_volume *v, const char *name,
                    uint64_t device_bytes, uint64_t logical_blocks,
                    unsigned int slab_bits)
{
  struct vdo_format_options format = {
    .logical_bytes = logical_blocks * VDO_BLOCK_SIZE,
    .slab_bits = slab_bits,
    .force = true,
  };
  struct vdo_format_result result;
  int fd;

  snprintf (v->directory, sizeof v->directory, "/tmp/vdo-%s.XXXXXX", name);
  ck_assert_ptr_nonnull (mkdtemp (v->directory));
  snprintf (v->path, sizeof v->path, "%s/volume", v->directory);
  fd = open (v->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (ftruncate (fd, (off_t) device_bytes), 0);
  close (fd);
  ck_assert_int_eq (vdo_volume_format (v->path, &format, &result),
                    VDO_SUCCESS);
}

void
test_volume_remove (struct test_volume *v)
{
  unlink (v->path);
  rmdir (v->directory);
}

void
test_volume_audit (const char *path)
{
  struct vdo_audit_result result;
  struct vdo_volume *volume;

  ck_assert_int_eq (vdo_volume_open (path, false, &volume), VDO_SUCCESS);
  ck_assert_int_eq (vdo_audit_volume (volume, NULL, NULL, &result),
                    VDO_SUCCESS);
  ck_assert_msg (vdo_audit_passed (&result), "the audit of %s failed", path);
  vdo_volume_close (volume);
}

void
test_volume_stop_and_audit (struct vdo *vdo, const char *path)
{
  ck_assert_int_eq (vdo_flush (vdo), 0);
  ck_assert_int_eq (vdo_stop (vdo), VDO_SUCCESS);
  vdo_free (vdo);
  test_volume_audit (path);
}
