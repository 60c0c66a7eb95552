/* Little-endian writers and readers for the model blobs (xfer.c, ranker.c):
 * each advances its pointer. Private to lib/model. */
#ifndef XFER_MODEL_BLOB_H
#define XFER_MODEL_BLOB_H

#include <stdint.h>
#include <string.h>

static inline unsigned char *blob_put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    return p + 4;
}

static inline unsigned char *blob_put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    return p + 8;
}

static inline unsigned char *blob_put_f32(unsigned char *p, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    return blob_put_u32(p, v);
}

static inline uint32_t blob_get_u32(const unsigned char **p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)(*p)[i] << (8 * i);
    *p += 4;
    return v;
}

static inline uint64_t blob_get_u64(const unsigned char **p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)(*p)[i] << (8 * i);
    *p += 8;
    return v;
}

static inline float blob_get_f32(const unsigned char **p)
{
    uint32_t v = blob_get_u32(p);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

#endif
