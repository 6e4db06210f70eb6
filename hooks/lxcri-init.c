/*
 * lxcri-init: exec an OCI process with its exact argv, environment and ids.
 *
 * An LXC config line cannot carry every argv (LXC splits lxc.execute.cmd on
 * spaces and knows only whole-word '...' or "..." quoting), so lxcri writes
 * the argv and the environment as NUL-terminated strings into files and
 * bind-mounts them, with this static binary, into the container:
 *
 *   /.lxcri/init   this program (lxc.execute.cmd = /.lxcri/init)
 *   /.lxcri/argv   argv[0] NUL argv[1] NUL ...
 *   /.lxcri/env    KEY=VALUE NUL ...   (the complete environment)
 *   /.lxcri/user   UID NUL GID NUL GROUP NUL ...   (optional)
 *
 * With a user file the shim starts as the container's root and becomes
 * UID:GID with exactly those supplementary groups (setgroups, setgid, setuid):
 * LXC sets lxc.init.groups only for privileged containers, and a process it
 * has already made UID can no longer set its groups. Without the file the ids
 * are left as LXC set them (lxc.init.uid/gid).
 *
 * Exec mode, for `lxcri exec` through lxc-attach (as the container's root):
 *
 *   init --exec UID GID GROUPS CWD -- ARGV...
 *
 * GROUPS is a comma-separated list of gids (may be empty). The environment
 * is built only from the variables LXCRI_ENV_<n>=KEY=VALUE, so what
 * lxc-attach adds of its own (container=lxc, a default PATH) is dropped and
 * the values never appear on a command line.
 *
 * It runs under LXC's init.lxc, which reaps zombies and forwards signals.
 * Exit status: the program's own (via exec); 127 when it cannot be found,
 * 126 when it cannot be executed (or the ids or cwd cannot be set), as
 * docker does. Static and small, so it works in any image (even FROM scratch).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

static char *slurp(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) < 0) { close(fd); return NULL; }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) { close(fd); return NULL; }
    size_t off = 0;
    while (off < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);
        if (n <= 0) break;
        off += (size_t)n;
    }
    close(fd);
    buf[off] = '\0';
    *len = off;
    return buf;
}

/* Split a buffer of NUL-terminated strings into a NULL-terminated vector. */
static char **split(char *buf, size_t len) {
    size_t count = 0;
    for (size_t i = 0; i < len; i++) if (buf[i] == '\0') count++;
    char **vec = calloc(count + 1, sizeof(char *));
    if (!vec) return NULL;
    size_t k = 0, start = 0;
    for (size_t i = 0; i < len && k < count; i++) {
        if (buf[i] == '\0') { vec[k++] = buf + start; start = i + 1; }
    }
    return vec;
}

/* A decimal id; -1 for anything else (so a bad file never means root). */
static long long id_of(const char *s) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || *s == '-' || v >= 0xffffffffULL) return -1;
    return (long long)v;
}

static int fail(const char *what, const char *arg) {
    fprintf(stderr, "lxcri-init: %s %s: %s\n", what, arg, strerror(errno));
    return 126;
}

/* Become uid:gid with exactly the groups in ids[0..n); 0 or an exit status. */
static int become(char **ids, size_t n) {
    long long uid = n > 0 ? id_of(ids[0]) : -1, gid = n > 1 ? id_of(ids[1]) : -1;
    if (uid < 0 || gid < 0) { errno = EINVAL; return fail("bad user", "ids"); }
    gid_t *groups = calloc(n, sizeof(gid_t));
    if (!groups) return fail("out of", "memory");
    size_t ng = 0;
    for (size_t i = 2; i < n; i++) {
        long long g = id_of(ids[i]);
        if (g < 0) { errno = EINVAL; return fail("bad group", ids[i]); }
        groups[ng++] = (gid_t)g;
    }
    /* already so (LXC switched, or exec without CAP_SETUID): nothing to do */
    if (ng == 0 && getuid() == (uid_t)uid && geteuid() == (uid_t)uid &&
        getgid() == (gid_t)gid && getegid() == (gid_t)gid)
        return 0;
    if (setgroups(ng, groups) < 0) return fail("setgroups for", ids[0]);
    if (setgid((gid_t)gid) < 0) return fail("setgid", ids[1]);
    if (setuid((uid_t)uid) < 0) return fail("setuid", ids[0]);
    free(groups);
    return 0;
}

static int run(char **args, char **env) {
    /* execvpe searches the PATH of the *new* environment, as docker does. */
    for (char **e = env; *e; e++)
        if (strncmp(*e, "PATH=", 5) == 0) setenv("PATH", *e + 5, 1);
    execvpe(args[0], args, env);
    int err = errno;
    fprintf(stderr, "lxcri-init: exec \"%s\": %s\n", args[0],
            err == ENOENT ? "executable file not found in $PATH" : strerror(err));
    return err == ENOENT ? 127 : 126;
}

/* init --exec UID GID GROUPS CWD -- ARGV... */
static int exec_mode(int argc, char **argv) {
    if (argc < 8 || strcmp(argv[6], "--") != 0) {
        fprintf(stderr, "lxcri-init: usage: --exec UID GID GROUPS CWD -- ARGV...\n");
        return 126;
    }
    size_t n = 2;
    char **ids = calloc(strlen(argv[4]) + 3, sizeof(char *));
    if (!ids) return fail("out of", "memory");
    ids[0] = argv[2];
    ids[1] = argv[3];
    for (char *g = strtok(argv[4], ","); g; g = strtok(NULL, ",")) ids[n++] = g;
    size_t count = 0;
    for (char **e = environ; *e; e++) count++;
    char **env = calloc(count + 1, sizeof(char *));
    if (!env) return fail("out of", "memory");
    size_t k = 0;
    for (char **e = environ; *e; e++) {
        char *eq = strchr(*e, '=');
        if (strncmp(*e, "LXCRI_ENV_", 10) == 0 && eq) env[k++] = eq + 1;
    }
    /* chdir first, as root: runc lets a user start in a directory only root can enter */
    if (chdir(argv[5]) < 0) return fail("chdir", argv[5]);
    int rc = become(ids, n);
    return rc ? rc : run(argv + 7, env);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--exec") == 0) return exec_mode(argc, argv);
    const char *dir = argc > 1 ? argv[1] : "/.lxcri";
    char path[4096];
    size_t alen = 0, elen = 0, ulen = 0;
    snprintf(path, sizeof path, "%s/argv", dir);
    char *abuf = slurp(path, &alen);
    if (!abuf || alen == 0) {
        fprintf(stderr, "lxcri-init: cannot read %s: %s\n", path, strerror(errno));
        return 127;
    }
    snprintf(path, sizeof path, "%s/env", dir);
    char *ebuf = slurp(path, &elen);
    char **args = split(abuf, alen);
    char **env = ebuf ? split(ebuf, elen) : calloc(1, sizeof(char *));
    if (!args || !env || !args[0]) {
        fprintf(stderr, "lxcri-init: empty or unreadable argv\n");
        return 127;
    }
    snprintf(path, sizeof path, "%s/user", dir);
    char *ubuf = slurp(path, &ulen);
    /* a user file that is there but unreadable must not mean "stay root" */
    if (!ubuf && errno != ENOENT) return fail("cannot read", path);
    if (ubuf) {
        char **ids = split(ubuf, ulen);
        size_t n = 0;
        while (ids && ids[n]) n++;
        int rc = ids ? become(ids, n) : 126;
        if (rc) return rc;
    }
    return run(args, env);
}
