/*
 * lxcri-init: exec an OCI process with its exact argv and environment.
 *
 * An LXC config line cannot carry every argv (LXC splits lxc.execute.cmd on
 * spaces and knows only whole-word '...' or "..." quoting), so lxcri writes
 * the argv and the environment as NUL-terminated strings into two files and
 * bind-mounts them, with this static binary, into the container:
 *
 *   /.lxcri/init   this program (lxc.execute.cmd = /.lxcri/init)
 *   /.lxcri/argv   argv[0] NUL argv[1] NUL ...
 *   /.lxcri/env    KEY=VALUE NUL ...   (the complete environment)
 *
 * It runs under LXC's init.lxc, which reaps zombies and forwards signals.
 * Exit status: the program's own (via exec); 127 when it cannot be found,
 * 126 when it cannot be executed, as docker does. Static, no allocation
 * beyond the two files, so it works in any image (even FROM scratch).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/.lxcri";
    char path[4096];
    size_t alen = 0, elen = 0;
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
    /* execvpe searches the PATH of the *new* environment, as docker does. */
    for (char **e = env; *e; e++)
        if (strncmp(*e, "PATH=", 5) == 0) setenv("PATH", *e + 5, 1);
    execvpe(args[0], args, env);
    int err = errno;
    fprintf(stderr, "lxcri-init: exec \"%s\": %s\n", args[0],
            err == ENOENT ? "executable file not found in $PATH" : strerror(err));
    return err == ENOENT ? 127 : 126;
}
