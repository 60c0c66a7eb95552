/* SHA-256 (OpenSSL) for checksums of stored tasks and identity hashes. */
#ifndef XFER_HASH_H
#define XFER_HASH_H

#include <stddef.h>

typedef struct Sha256 {
    void *ctx; /* EVP_MD_CTX */
} Sha256;

int sha256_init(Sha256 *h);
void sha256_update(Sha256 *h, const void *data, size_t n);
/* Writes 64 lowercase hex digits and a NUL into hex; releases the context. */
void sha256_final_hex(Sha256 *h, char hex[65]);
void sha256_release(Sha256 *h);
/* One-shot hash of a NUL-terminated string. */
void sha256_hex(const void *data, size_t n, char hex[65]);

#endif
