/* SPDX-License-Identifier: MIT */
/* The broker's log (see log.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "log.h"

static brk_log_level_t s_level = BRK_LOG_INFO;
static const char *const s_names[] = { "error", "warn", "info", "debug" };

void
brk_log_set_level(brk_log_level_t level)
{
    s_level = level;
}

int
brk_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, s_names[i]) == 0)
            return i;
    return -EINVAL;
}

void
brk_log(brk_log_level_t level, const char *fmt, ...)
{
    va_list ap;
    if (level > s_level)
        return;
    fprintf(stderr, "haven-broker: %s: ", s_names[level]);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
