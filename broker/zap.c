/* SPDX-License-Identifier: MIT */
/* The ZAP handler (see zap.h). */
#include <errno.h>
#include <sodium.h>
#include <string.h>
#include <time.h>
#include <zmq.h>
#include "log.h"
#include "zap.h"

#define ZAP_FRAMES 7                 /* version .. mechanism, then one credential */

static int
s_send(void *sock, const void *data, size_t len, int more)
{
    return zmq_send(sock, data, len, more ? ZMQ_SNDMORE : 0) < 0 ? -errno : 0;
}

static int s_quiet;             /* the self-test's refusal is not news */

static int64_t
s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
brk_zap_handle(void *sock, const brk_principals_t *principals, brk_guard_t *guard)
{
    zmq_msg_t frames[ZAP_FRAMES + 1];
    int n = 0, more = 1, rc = 0;
    while (more && n < ZAP_FRAMES + 1) {
        zmq_msg_init(&frames[n]);
        if (zmq_msg_recv(&frames[n], sock, 0) < 0) {
            int e = errno;
            for (int i = 0; i <= n; i++)
                zmq_msg_close(&frames[i]);
            return -e;
        }
        more = zmq_msg_more(&frames[n]);
        n++;
    }
    while (more) {               /* drain anything beyond what we expect */
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        if (zmq_msg_recv(&extra, sock, 0) < 0) {
            int e = errno;
            zmq_msg_close(&extra);
            for (int i = 0; i < n && i < ZAP_FRAMES + 1; i++)   /* n is past the array once marked */
                zmq_msg_close(&frames[i]);
            return -e;
        }
        more = zmq_msg_more(&extra);
        zmq_msg_close(&extra);
        n = ZAP_FRAMES + 2;      /* mark as malformed */
    }
    const char *status = "400", *text = "unknown key";
    char user[41] = "";
    const brk_principal_t *p = NULL;
    if (n == ZAP_FRAMES
        && zmq_msg_size(&frames[0]) == 3 && memcmp(zmq_msg_data(&frames[0]), "1.0", 3) == 0
        && zmq_msg_size(&frames[2]) == 5 && memcmp(zmq_msg_data(&frames[2]), "haven", 5) == 0
        && zmq_msg_size(&frames[5]) == 5 && memcmp(zmq_msg_data(&frames[5]), "CURVE", 5) == 0
        && zmq_msg_size(&frames[6]) == 32) {
        p = brk_principals_find(principals, zmq_msg_data(&frames[6]));
        if (p && !p->revoked && guard && !brk_guard_conn_admit(guard, p->curve_z85, s_now_ms())) {
            text = "too many connections for this key";
            brk_guard_refused(guard, p->name, BRK_REFUSE_CONNECTIONS);
        } else if (p && !p->revoked) {
            status = "200";
            text = "OK";
            memcpy(user, p->curve_z85, 41);
            rc = 1;
        } else if (p) {
            text = "revoked key";
            if (guard)
                brk_guard_refused(guard, p->name, BRK_REFUSE_REVOKED);
        } else if (guard) {
            brk_guard_refused(guard, NULL, BRK_REFUSE_UNKNOWN_KEY);
        }
    } else {
        text = "malformed ZAP request";
        rc = -EPROTO;
    }
    if (rc != 1 && !s_quiet)
        brk_log(BRK_LOG_DEBUG, "refused a connection: %s%s%s", text, p ? " of " : "", p ? p->name : "");
    /* The request id is echoed so libzmq can match the reply. */
    const void *reqid = n > 1 ? zmq_msg_data(&frames[1]) : "";
    size_t reqid_len = n > 1 ? zmq_msg_size(&frames[1]) : 0;
    int src = 0;
    if ((src = s_send(sock, "1.0", 3, 1)) == 0 && (src = s_send(sock, reqid, reqid_len, 1)) == 0
        && (src = s_send(sock, status, 3, 1)) == 0 && (src = s_send(sock, text, strlen(text), 1)) == 0
        && (src = s_send(sock, user, strlen(user), 1)) == 0)
        src = s_send(sock, "", 0, 0);
    for (int i = 0; i < n && i < ZAP_FRAMES + 1; i++)
        zmq_msg_close(&frames[i]);
    return src < 0 ? src : rc;
}

int
brk_zap_selftest(void *ctx, void *sock, const brk_principals_t *principals)
{
    uint8_t key[32];
    int rc = -EPROTO, linger = 0;
    void *req = zmq_socket(ctx, ZMQ_REQ);
    if (!req)
        return -errno;
    zmq_setsockopt(req, ZMQ_LINGER, &linger, sizeof linger);
    randombytes_buf(key, sizeof key);   /* a key nobody registered */
    if (zmq_connect(req, BRK_ZAP_ENDPOINT) < 0)
        goto out;
    const char *frames[] = { "1.0", "selftest", "haven", "127.0.0.1", "", "CURVE" };
    for (int i = 0; i < 6; i++)
        if (zmq_send(req, frames[i], strlen(frames[i]), ZMQ_SNDMORE) < 0)
            goto out;
    if (zmq_send(req, key, 32, 0) < 0)
        goto out;
    zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
    s_quiet = 1;
    int handled = zmq_poll(&item, 1, 1000) == 1 ? brk_zap_handle(sock, principals, NULL) : -1;
    s_quiet = 0;
    if (handled != 0)
        goto out;
    char buf[8][64];
    int n = 0, more = 1;
    zmq_pollitem_t ritem = { req, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll(&ritem, 1, 1000) != 1)
        goto out;
    while (more && n < 8) {
        int len = zmq_recv(req, buf[n], sizeof buf[n] - 1, 0);
        if (len < 0)
            goto out;
        buf[n][len < 63 ? len : 63] = '\0';
        size_t sz = sizeof more;
        zmq_getsockopt(req, ZMQ_RCVMORE, &more, &sz);
        n++;
    }
    if (n == 6 && strcmp(buf[2], "400") == 0)
        rc = 0;
out:
    zmq_close(req);
    return rc;
}
