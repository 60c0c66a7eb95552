/* Writing (temporary file, hash while writing, rename) and mapping task files. */
#include "data/taskfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/hash.h"

typedef struct Out {
    FILE *f;
    Sha256 h;
    const char *path;
} Out;

static int out_write(Out *o, const void *p, size_t n, XErr *e)
{
    if (n && fwrite(p, 1, n, o->f) != n)
        return xerr_set(e, XE_FAIL, "'%s': write failed: %s", o->path, strerror(errno));
    sha256_update(&o->h, p, n);
    return XE_OK;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Records of split s (after the validation split) in file order. */
static int write_split(Out *o, const Builder *b, int s, int labels, XErr *e)
{
    size_t img = (size_t)b->h * (size_t)b->w * (size_t)b->c;
    /* train: records not moved; valid: the source's own, then moved ones */
    for (int from = SPLIT_TRAIN; from < SPLIT_COUNT; from++) {
        const SplitBuf *sb = &b->split[from];
        if (!(from == s || (s == SPLIT_VALID && from == SPLIT_TRAIN)))
            continue;
        if (s == SPLIT_VALID && from == SPLIT_TRAIN && b->split[SPLIT_VALID].n)
            continue;
        for (size_t i = 0; i < sb->n; i++) {
            int moved = from == SPLIT_TRAIN && b->to_valid[i];
            if (from == SPLIT_TRAIN && moved != (s == SPLIT_VALID))
                continue;
            if (labels) {
                uint8_t l[2] = { (uint8_t)sb->lab[i], (uint8_t)(sb->lab[i] >> 8) };
                if (out_write(o, l, 2, e))
                    return e->code;
            } else if (out_write(o, sb->pix + i * img, img, e)) {
                return e->code;
            }
        }
    }
    return XE_OK;
}

int taskfile_write(const Builder *b, const char *dir, const char *name, char **file,
                   char sha[65], XErr *e)
{
    uint8_t hdr[TASKFILE_HEADER] = { 0 };
    char *tmp = NULL, *final = NULL;
    Out o = { 0 };
    int fd = -1, rc = XE_FAIL;
    size_t n;
    *file = NULL;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return xerr_set(e, XE_FAIL, "'%s': cannot create directory: %s", dir, strerror(errno));
    n = strlen(dir) + strlen(name) + 32;
    tmp = malloc(n);
    final = malloc(n);
    if (!tmp || !final) {
        xerr_set(e, XE_FAIL, "out of memory");
        goto cleanup;
    }
    snprintf(tmp, n, "%s/.%s.XXXXXX", dir, name);
    fd = mkstemp(tmp);
    if (fd < 0) {
        xerr_set(e, XE_FAIL, "'%s': cannot create file: %s", dir, strerror(errno));
        goto cleanup;
    }
    {
        mode_t mask = umask(0);
        umask(mask);
        fchmod(fd, 0666 & ~mask); /* mkstemp makes 0600: a task is data to share */
    }
    o.path = tmp;
    o.f = fdopen(fd, "wb");
    if (!o.f || sha256_init(&o.h) != 0) {
        xerr_set(e, XE_FAIL, "'%s': %s", tmp, strerror(errno));
        goto cleanup;
    }
    fd = -1;
    setvbuf(o.f, NULL, _IOFBF, 1 << 20);
    memcpy(hdr, TASKFILE_MAGIC, 8);
    put32(hdr + 8, TASKFILE_VERSION);
    put32(hdr + 12, (uint32_t)b->h);
    put32(hdr + 16, (uint32_t)b->w);
    put32(hdr + 20, (uint32_t)b->c);
    put32(hdr + 24, (uint32_t)b->nout);
    put32(hdr + 28, 2);
    for (int s = 0; s < SPLIT_COUNT; s++)
        put64(hdr + 32 + 8 * s, b->count[s]);
    if (out_write(&o, hdr, sizeof hdr, e))
        goto cleanup;
    for (int s = 0; s < SPLIT_COUNT; s++)
        if (write_split(&o, b, s, 1, e) || write_split(&o, b, s, 0, e))
            goto cleanup;
    if (fflush(o.f) != 0 || fsync(fileno(o.f)) != 0) {
        xerr_set(e, XE_FAIL, "'%s': write failed: %s", tmp, strerror(errno));
        goto cleanup;
    }
    if (fclose(o.f) != 0) {
        o.f = NULL;
        xerr_set(e, XE_FAIL, "'%s': write failed: %s", tmp, strerror(errno));
        goto cleanup;
    }
    o.f = NULL;
    sha256_final_hex(&o.h, sha);
    snprintf(final, n, "%s/%s.%.12s.xtask", dir, name, sha);
    if (rename(tmp, final) != 0) {
        xerr_set(e, XE_FAIL, "'%s': cannot rename: %s", final, strerror(errno));
        goto cleanup;
    }
    *file = strdup(strrchr(final, '/') + 1);
    rc = *file ? XE_OK : xerr_set(e, XE_FAIL, "out of memory");
    if (rc)
        unlink(final);
cleanup:
    if (o.f)
        fclose(o.f);
    if (fd >= 0)
        close(fd);
    if (o.h.ctx)
        sha256_release(&o.h);
    if (rc && tmp && tmp[0])
        unlink(tmp);
    free(tmp);
    free(final);
    return rc;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

int taskfile_open(TaskFile *t, const char *path, XErr *e)
{
    struct stat st;
    const uint8_t *p;
    uint64_t off = TASKFILE_HEADER, img;
    int fd = open(path, O_RDONLY);
    memset(t, 0, sizeof *t);
    if (fd < 0)
        return xerr_set(e, XE_FAIL, "'%s': %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || st.st_size < TASKFILE_HEADER) {
        close(fd);
        return xerr_set(e, XE_FAIL, "'%s': not a task file (too short)", path);
    }
    t->size = (size_t)st.st_size;
    t->map = mmap(NULL, t->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (t->map == MAP_FAILED) {
        t->map = NULL;
        return xerr_set(e, XE_FAIL, "'%s': cannot map: %s", path, strerror(errno));
    }
    p = t->map;
    if (memcmp(p, TASKFILE_MAGIC, 8) != 0 || get32(p + 8) != TASKFILE_VERSION || get32(p + 28) != 2) {
        taskfile_close(t);
        return xerr_set(e, XE_FAIL, "'%s': not a version %d task file", path, TASKFILE_VERSION);
    }
    t->h = get32(p + 12);
    t->w = get32(p + 16);
    t->c = get32(p + 20);
    t->classes = get32(p + 24);
    img = (uint64_t)t->h * t->w * t->c;
    for (int s = 0; s < SPLIT_COUNT; s++) {
        t->n[s] = get64(p + 32 + 8 * s);
        if (t->n[s] > t->size || img > t->size || off + t->n[s] * (2 + img) > t->size) {
            taskfile_close(t);
            return xerr_set(e, XE_FAIL, "'%s': truncated task file", path);
        }
        t->labels[s] = p + off;
        off += 2 * t->n[s];
        t->images[s] = p + off;
        off += img * t->n[s];
    }
    if (off != t->size) {
        taskfile_close(t);
        return xerr_set(e, XE_FAIL, "'%s': %llu bytes, header says %llu", path,
                        (unsigned long long)t->size, (unsigned long long)off);
    }
    return XE_OK;
}

void taskfile_close(TaskFile *t)
{
    if (t->map)
        munmap(t->map, t->size);
    memset(t, 0, sizeof *t);
}

int taskfile_checksum(const char *path, char sha[65], XErr *e)
{
    unsigned char buf[1 << 16];
    Sha256 h;
    size_t got;
    FILE *f = fopen(path, "rb");
    if (!f)
        return xerr_set(e, XE_FAIL, "'%s': %s", path, strerror(errno));
    if (sha256_init(&h) != 0) {
        fclose(f);
        return xerr_set(e, XE_FAIL, "out of memory");
    }
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        sha256_update(&h, buf, got);
    if (ferror(f)) {
        sha256_release(&h);
        fclose(f);
        return xerr_set(e, XE_FAIL, "'%s': read error", path);
    }
    fclose(f);
    sha256_final_hex(&h, sha);
    return XE_OK;
}
