/* Escape probe run inside an rrun container: tries each privileged
 * operation and prints `name=ok` or `name=<errno name>`. Linked static so
 * it runs in the busybox image. The runtime must refuse every line. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *name, long r) {
    if (r >= 0) printf("%s=ok\n", name);
    else printf("%s=%s\n", name, strerrorname_np(errno) ? strerrorname_np(errno) : "E?");
    fflush(stdout);
}

/* Probes that would change this process run in a child. */
static void in_child(const char *name, long (*f)(void)) {
    pid_t p = fork();
    if (p == 0) { long r = f(); _exit(r >= 0 ? 0 : (errno & 0xff)); }
    int st = 0;
    waitpid(p, &st, 0);
    int e = WEXITSTATUS(st);
    if (e == 0) printf("%s=ok\n", name);
    else printf("%s=%s\n", name, strerrorname_np(e) ? strerrorname_np(e) : "E?");
    fflush(stdout);
}

static long do_unshare_user(void) { return unshare(CLONE_NEWUSER); }
static long do_unshare_mnt(void) { return unshare(CLONE_NEWNS); }
static long do_pivot_root(void) {
    if (chdir("/") < 0) return -1;
    return syscall(SYS_pivot_root, ".", ".");
}

/* Writes the file's current content back: refused is the expected outcome,
 * and should the write go through the host keeps the same value. */
static long write_same(const char *path) {
    char buf[512] = {0};
    int rfd = open(path, O_RDONLY);
    if (rfd < 0) return -1;
    long n = read(rfd, buf, sizeof buf - 1);
    close(rfd);
    if (n < 0) return -1;
    if (n == 0) { buf[0] = '\n'; n = 1; }
    int fd = open(path, O_WRONLY);
    if (fd < 0) return -1;
    long r = write(fd, buf, n);
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

static long write_file(const char *path, const char *data) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) return -1;
    long r = write(fd, data, strlen(data));
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

/* `probe status`: what a setuid / file-capability copy of this binary got. */
static int status(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Uid:", 4) || !strncmp(line, "Cap", 3) || !strncmp(line, "NoNewPrivs:", 11))
            fputs(line, stdout);
    report("setuid0", setuid(0));
    report("mount", mount("tmpfs", "/tmp", "tmpfs", 0, NULL));
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "status")) return status();
    if (argc > 1 && !strcmp(argv[1], "nr")) {
        /* `probe nr N...`: syscall N with zero arguments, `nr_N=<result>`. */
        for (int i = 2; i < argc; i++) {
            char name[32];
            snprintf(name, sizeof name, "nr_%s", argv[i]);
            report(name, syscall(atol(argv[i]), 0, 0, 0, 0, 0, 0));
        }
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "control")) {
        /* Harmless even where allowed (--privileged): shows the probe can
         * tell success from refusal. */
        report("mount", mount("tmpfs", "/tmp", "tmpfs", 0, NULL));
        report("keyctl_join", syscall(SYS_keyctl, 1, "rbox-escape"));
        return 0;
    }
    report("mount", mount("tmpfs", "/tmp", "tmpfs", 0, NULL));
    report("remount_root_rw", mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND, NULL));
    report("umount_proc", umount2("/proc", MNT_DETACH));
    report("umount_masked", umount2("/proc/kcore", MNT_DETACH));
    in_child("pivot_root", do_pivot_root);
    in_child("unshare_user", do_unshare_user);
    in_child("unshare_mnt", do_unshare_mnt);
    report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
    report("kexec_file_load", syscall(SYS_kexec_file_load, -1, -1, 0, "", 0));
    report("init_module", syscall(SYS_init_module, NULL, 0, ""));
    report("finit_module", syscall(SYS_finit_module, 0, "", 0));
    report("delete_module", syscall(SYS_delete_module, "overlay", O_NONBLOCK));
    report("keyctl_join", syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, "rbox-escape"));
    report("add_key", syscall(SYS_add_key, "user", "rbox-escape", "x", 1, -3 /* session */));
    report("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, O_RDONLY));
    report("write_proc_sys", write_file("/proc/sys/kernel/hostname", "escaped"));
    report("write_core_pattern", write_same("/proc/sys/kernel/core_pattern"));
    report("write_proc_sys_vm", write_same("/proc/sys/vm/overcommit_memory"));
    report("write_sys_thp", write_same("/sys/kernel/mm/transparent_hugepage/enabled"));
    report("write_sys_thp_defrag", write_same("/sys/kernel/mm/transparent_hugepage/defrag"));
    report("mkdir_sys", mkdir("/sys/fs/escaped", 0755));
    return 0;
}
