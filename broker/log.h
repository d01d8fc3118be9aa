/* SPDX-License-Identifier: MIT */
/* The broker's log: one line per event on stderr (journald adds the time).
 * Never pass it an address, a note or a secret. */
#ifndef BRK_LOG_H
#define BRK_LOG_H

typedef enum { BRK_LOG_ERROR, BRK_LOG_WARN, BRK_LOG_INFO, BRK_LOG_DEBUG } brk_log_level_t;

void brk_log_set_level(brk_log_level_t level);
int brk_log_level_parse(const char *s);   /* -EINVAL if unknown */
void brk_log(brk_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
