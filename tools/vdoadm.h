/* nbdkit-vdo: vdoadm subcommands. */
#ifndef VDOADM_H
#define VDOADM_H

#include <stdbool.h>
#include <stdint.h>

/* Each subcommand parses its own options and returns an exit status. */
int vdoadm_format (int argc, char **argv);
int vdoadm_dump (int argc, char **argv);
int vdoadm_list (int argc, char **argv);
int vdoadm_read_only (int argc, char **argv);
int vdoadm_force_rebuild (int argc, char **argv);
int vdoadm_audit (int argc, char **argv);
int vdoadm_stats (int argc, char **argv);

/* The exit status for a libvdo status code: like the real tools, the
 * code modulo 256, but never 0 for a failure. */
int vdoadm_exit_status (int status);

/* Parse vdoformat's size syntax: a number with an optional B, K, M, G, T
 * or P suffix (powers of 1024, any case); no suffix means MiB. */
int vdoadm_parse_size (const char *text, uint64_t *bytes);

/* Print a byte count as vdoformat does, e.g. "2.28 GB". */
void vdoadm_print_readable_size (uint64_t bytes);

/* Parse "[--json] DISK" for commands that take only a disk: returns -1
 * to continue, or the exit status to return. */
int vdoadm_parse_disk_args (int argc, char **argv, const char *command,
                            bool allow_json, bool *json, const char **disk);

/* Print S as a quoted JSON string. */
void vdoadm_print_json_string (const char *s);

struct vdo_volume;
/* Open a volume, printing why it cannot be used. */
int vdoadm_open_volume (const char *disk, bool writable,
                        struct vdo_volume **volume);

extern const char *vdoadm_program;

#endif /* VDOADM_H */
