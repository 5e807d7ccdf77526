/* nbdkit-vdo: where libvdo's messages go.
 *
 * The library reports each error once, where its cause is known.  The
 * embedding program (vdoadm, the nbdkit plugin) chooses the sink: stderr
 * for tools, nbdkit_error/nbdkit_debug for the plugin.
 */
#ifndef VDO_LOGGER_H
#define VDO_LOGGER_H

#include <stdarg.h>

enum vdo_log_level {
  VDO_LOG_ERROR,
  VDO_LOG_WARNING,
  VDO_LOG_INFO,
  VDO_LOG_DEBUG,
};

typedef void (*vdo_log_sink) (enum vdo_log_level level, const char *message);

/* Replace the sink; NULL restores the default (stderr, without debug). */
void vdo_set_log_sink (vdo_log_sink sink);

void vdo_log (enum vdo_log_level level, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));

#define vdo_log_error(...) vdo_log (VDO_LOG_ERROR, __VA_ARGS__)
#define vdo_log_warning(...) vdo_log (VDO_LOG_WARNING, __VA_ARGS__)
#define vdo_log_info(...) vdo_log (VDO_LOG_INFO, __VA_ARGS__)
#define vdo_log_debug(...) vdo_log (VDO_LOG_DEBUG, __VA_ARGS__)

#endif /* VDO_LOGGER_H */
