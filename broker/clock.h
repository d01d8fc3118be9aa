/* SPDX-License-Identifier: MIT */
/* The broker's two clocks: wall-clock seconds for what is stored and
 * compared with stored times, monotonic milliseconds for what only the
 * running process times (rates, queued replies, silent connections). */
#ifndef BRK_CLOCK_H
#define BRK_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t
brk_now(void)
{
    return (int64_t) time(NULL);
}

static inline int64_t
brk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
