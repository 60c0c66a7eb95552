/* SHA-256 through OpenSSL's EVP interface. */
#include "core/hash.h"

#include <openssl/evp.h>
#include <stdio.h>

int sha256_init(Sha256 *h)
{
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL)) {
        sha256_release(h);
        return -1;
    }
    return 0;
}

void sha256_update(Sha256 *h, const void *data, size_t n)
{
    EVP_DigestUpdate(h->ctx, data, n);
}

void sha256_final_hex(Sha256 *h, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(h->ctx, md, &len);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    sha256_release(h);
}

void sha256_release(Sha256 *h)
{
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}

void sha256_hex(const void *data, size_t n, char hex[65])
{
    Sha256 h;
    if (sha256_init(&h) != 0) {
        hex[0] = '\0';
        return;
    }
    sha256_update(&h, data, n);
    sha256_final_hex(&h, hex);
}
