/* nbdkit-vdo: message sink. */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>

#include "logger.h"

static void
default_sink (enum vdo_log_level level, const char *message)
{
  if (level == VDO_LOG_DEBUG)
    return;
  fprintf (stderr, "%s%s\n",
           level == VDO_LOG_ERROR ? "error: " :
           level == VDO_LOG_WARNING ? "warning: " : "",
           message);
}

static vdo_log_sink current_sink = default_sink;

void
vdo_set_log_sink (vdo_log_sink sink)
{
  current_sink = sink ? sink : default_sink;
}

void
vdo_log (enum vdo_log_level level, const char *fmt, ...)
{
  char message[1024];
  va_list args;

  va_start (args, fmt);
  vsnprintf (message, sizeof message, fmt, args);
  va_end (args);
  current_sink (level, message);
}
