/* SPDX-License-Identifier: MIT */
/* haven-broker: `init` a data directory, or serve in the foreground. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>
#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif
#include "broker.h"
#include "config.h"

static int s_stop_pipe[2] = { -1, -1 };

static void
s_on_signal(int sig)
{
    (void) sig;
    int saved = errno;
    /* the loop polls this pipe: no race between a flag and zmq_poll */
    if (write(s_stop_pipe[1], "x", 1) < 0) {
    }
    errno = saved;
}

static void
s_usage(FILE *f)
{
    fprintf(f,
            "usage: haven-broker --config FILE [--ready-fd N]\n"
            "       haven-broker init --config FILE --admin-key ADMIN.pub [--admin-name NAME]\n"
            "\n"
            "Serves Haven clients in the foreground until SIGTERM or SIGINT.\n"
            "  --config FILE      broker configuration (see config/broker.conf.example)\n"
            "  --ready-fd N       once serving, write the bound endpoint and a newline to fd N\n"
            "  --admin-key FILE   init: the first administrator's public key (PATH.pub)\n"
            "  --admin-name NAME  init: that administrator's name (default admin)\n"
            "  --help, --version\n");
}

typedef struct {
    const char *config, *admin_key, *admin_name;
    int ready_fd;
    bool init;
} s_args_t;

/* The command line into a. Returns -1 to go on, or the exit code. */
static int
s_parse(int argc, char **argv, s_args_t *a)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "ready-fd", required_argument, NULL, 'r' },
        { "admin-key", required_argument, NULL, 'k' },
        { "admin-name", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    *a = (s_args_t) { .admin_name = "admin", .ready_fd = -1 };
    if (argc > 1 && strcmp(argv[1], "init") == 0) {
        a->init = true;
        argv++;
        argc--;
    }
    while ((c = getopt_long(argc, argv, "c:r:k:n:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': a->config = optarg; break;
        case 'r': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 65535) {
                fprintf(stderr, "haven-broker: --ready-fd must be a file descriptor number\n");
                return EX_USAGE;
            }
            a->ready_fd = (int) v;
            break;
        }
        case 'k': a->admin_key = optarg; break;
        case 'n': a->admin_name = optarg; break;
        case 'h': s_usage(stdout); return EX_OK;
        case 'V': printf("haven-broker %s\n", HAVEN_VERSION); return EX_OK;
        default: s_usage(stderr); return EX_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "haven-broker: unexpected argument '%s'\n", argv[optind]);
        return EX_USAGE;
    }
    if (!a->config)
        a->config = getenv("HAVEN_BROKER_CONFIG");
    if (!a->config) {
        fprintf(stderr, "haven-broker: give --config FILE\n");
        return EX_USAGE;
    }
    if (a->init && !a->admin_key) {
        fprintf(stderr, "haven-broker: init needs --admin-key ADMIN.pub\n");
        return EX_USAGE;
    }
    return -1;
}

/* Serve until SIGTERM or SIGINT. Returns the exit code. */
static int
s_serve(const brk_config_t *cfg, int ready_fd)
{
    char err[1024];
    if (pipe2(s_stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        perror("haven-broker: pipe");
        return EX_OSERR;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    brk_broker_t *broker = NULL;
    if (brk_broker_new(cfg, &broker, err, sizeof err) < 0) {
        fprintf(stderr, "haven-broker: %s\n", err);
        return EX_CONFIG;
    }
    if (ready_fd >= 0) {
        dprintf(ready_fd, "%s\n", brk_broker_endpoint(broker));
        close(ready_fd);
    }
#ifdef HAVE_SYSTEMD
    sd_notifyf(0, "READY=1\nSTATUS=serving on %s", brk_broker_endpoint(broker));
#endif
    int rc = brk_broker_run(broker, s_stop_pipe[0]);
#ifdef HAVE_SYSTEMD
    sd_notify(0, "STOPPING=1");
#endif
    if (rc < 0)
        fprintf(stderr, "haven-broker: stopped on an error: %s\n", strerror(-rc));
    brk_broker_destroy(&broker);
    close(s_stop_pipe[0]);
    close(s_stop_pipe[1]);
    return rc == 0 ? EX_OK : EX_SOFTWARE;
}

int
main(int argc, char **argv)
{
    s_args_t a;
    char err[1024];
    int rc = s_parse(argc, argv, &a);
    if (rc >= 0)
        return rc;
    brk_config_t *cfg = NULL;
    if (brk_config_load(a.config, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "haven-broker: %s\n", err);
        return EX_CONFIG;
    }
    if (a.init) {
        rc = brk_broker_init(cfg, a.admin_key, a.admin_name, err, sizeof err);
        if (rc < 0)
            fprintf(stderr, "haven-broker: %s\n", err);
        else
            printf("initialised %s; clients need %s/broker.pub\n", cfg->data_dir, cfg->data_dir);
        rc = rc == 0 ? EX_OK : rc == -EEXIST ? EX_CANTCREAT : EX_DATAERR;
    } else {
        rc = s_serve(cfg, a.ready_fd);
    }
    brk_config_destroy(&cfg);
    return rc;
}
