/* SPDX-License-Identifier: MIT */
/* Private files read without stdio: whole, bounded, from pipes too; the
 * referral note reader and the INI parser built on them. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../../common/cli.h"
#include "../../common/inifile.h"
#include "../../common/privfile.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/haven-privfile-XXXXXX");
    cr_assert(mkdtemp(dir));
}
static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
TestSuite(privfile, .init = setup, .fini = teardown);

static void
s_write(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t) strlen(text));
    cr_assert_eq(close(fd), 0);
    cr_assert_eq(chmod(path, mode), 0);
}

/* Read path whole (at most max bytes), assert it holds want; its mode. */
static mode_t
s_reads(const char *path, size_t max, const char *want)
{
    char *text = NULL;
    size_t len = 0;
    mode_t mode = 0;
    cr_assert_eq(hv_privfile_read(path, max, &text, &len, &mode), 0, "%s", path);
    cr_assert_str_eq(text, want);
    cr_assert_eq(len, strlen(want));
    sodium_free(text);
    return mode;
}

Test(privfile, reads_the_whole_file_up_to_the_limit)
{
    char path[128], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/note.txt", dir);
    s_write(path, "line one\nline two\n", 0600);
    cr_assert_eq(s_reads(path, 18, "line one\nline two\n") & 0777, 0600);
    cr_assert_eq(hv_privfile_read(path, 17, &text, &len, NULL), -EFBIG);
    cr_assert_null(text, "outputs are untouched on failure");
    cr_assert_eq(hv_privfile_read("/nonexistent/note.txt", 100, &text, &len, NULL), -ENOENT);
    s_write(path, "", 0644);
    cr_assert_eq(s_reads(path, 100, "") & 0777, 0644);
}

Test(privfile, reads_a_pipe)
{
    char path[64], *text = NULL;
    size_t len = 0;
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(write(fds[1], "from a pipe", 11), 11);
    cr_assert_eq(close(fds[1]), 0);
    /* --note-file <(...) names a pipe like this one */
    snprintf(path, sizeof path, "/proc/self/fd/%d", fds[0]);
    s_reads(path, 100, "from a pipe");
    close(fds[0]);

    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(write(fds[1], "0123456789", 10), 10);
    cr_assert_eq(close(fds[1]), 0);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fds[0]);
    cr_assert_eq(hv_privfile_read(path, 9, &text, &len, NULL), -EFBIG);
    close(fds[0]);
}

Test(privfile, the_note_reader_reads_whole_notes_and_refuses_long_ones)
{
    char path[128], err[256];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/note.txt", dir);
    s_write(path, "Survivor A. Example\ncode word bluebell\n", 0600);
    char *note = hv_read_file(path, 100, &len, err, sizeof err);
    cr_assert_not_null(note, "%s", err);
    cr_assert_str_eq(note, "Survivor A. Example\ncode word bluebell\n");
    cr_assert_eq(len, strlen(note));
    sodium_free(note);
    cr_assert_null(hv_read_file(path, 10, &len, err, sizeof err));
    cr_assert(strstr(err, "larger than 10 bytes"), "%s", err);
    cr_assert_null(hv_read_file("/nonexistent/note.txt", 10, &len, err, sizeof err));
    cr_assert(strstr(err, "cannot read /nonexistent/note.txt"), "%s", err);
}

typedef struct {
    int *lineno;
    int seen_line[4];
    char value[4][64];
    int n;
} s_seen_t;

static int
s_handler(void *user, const char *section, const char *name, const char *value)
{
    s_seen_t *s = user;
    (void) section;
    if (strcmp(name, "bad") == 0 || s->n >= 4)
        return 0;
    s->seen_line[s->n] = *s->lineno;
    snprintf(s->value[s->n], sizeof s->value[0], "%s", value);
    s->n++;
    return 1;
}

Test(privfile, the_private_ini_parser_counts_lines_as_the_stdio_one_does)
{
    char path[128];
    int lineno = 0;
    mode_t mode = 0;
    s_seen_t s = { .lineno = &lineno };
    snprintf(path, sizeof path, "%s/cat.ini", dir);
    s_write(path, "; a comment\n[unit a]\n\naddress = 1 Road\nx = 2", 0600);
    cr_assert_eq(hv_ini_parse_private(path, 4096, s_handler, &s, &lineno, &mode), 0);
    cr_assert_eq(s.n, 2);
    cr_assert_eq(s.seen_line[0], 4);
    cr_assert_str_eq(s.value[0], "1 Road");
    cr_assert_eq(s.seen_line[1], 5, "a last line without a newline is still read");
    cr_assert_str_eq(s.value[1], "2");
    cr_assert_eq(mode & 0777, 0600);

    s_seen_t s2 = { .lineno = &lineno };
    s_write(path, "[a]\nx = 1\nbad = 1\n", 0600);
    cr_assert_eq(hv_ini_parse_private(path, 4096, s_handler, &s2, &lineno, NULL), 3);
    s_seen_t s3 = { .lineno = &lineno };
    cr_assert_eq(hv_ini_parse(path, s_handler, &s3, &lineno), 3);
    cr_assert_eq(hv_ini_parse_private(path, 8, s_handler, &s2, &lineno, NULL), -EFBIG);
    cr_assert_eq(hv_ini_parse_private("/nonexistent.ini", 8, s_handler, &s2, &lineno, NULL), -ENOENT);
}
