/* Streaming SHA-256 (OpenSSL libcrypto) for manifests and fingerprints. */
#ifndef HM_DIGEST_H
#define HM_DIGEST_H

#include <stddef.h>

#include "error.h"

#define HM_SHA256_HEX_LEN 64

typedef struct hm_sha256 hm_sha256;

/* New context, or NULL when out of memory. */
hm_sha256 *hm_sha256_new(void);
void hm_sha256_update(hm_sha256 *ctx, const void *data, size_t len);
/* Finish into hex (HM_SHA256_HEX_LEN + 1 bytes, NUL-terminated) and free the context. */
void hm_sha256_final_hex(hm_sha256 *ctx, char hex[HM_SHA256_HEX_LEN + 1]);
/* Free without finishing (error paths). */
void hm_sha256_free(hm_sha256 *ctx);

/* SHA-256 of a whole file, read in blocks. 0 or -1 with err set. */
int hm_sha256_file(const char *path, char hex[HM_SHA256_HEX_LEN + 1], hm_error *err);

/* The same for an open file (read from its start; not closed); path names it. */
int hm_sha256_fd(int fd, const char *path, char hex[HM_SHA256_HEX_LEN + 1], hm_error *err);

#endif
