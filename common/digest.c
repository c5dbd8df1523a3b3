/* SHA-256 through OpenSSL's EVP interface (hardware-accelerated where the CPU allows). */
#include "digest.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct hm_sha256 {
	EVP_MD_CTX *md;
};

hm_sha256 *hm_sha256_new(void)
{
	hm_sha256 *c = malloc(sizeof *c);
	if (!c)
		return NULL;
	c->md = EVP_MD_CTX_new();
	if (!c->md || EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c->md);
		free(c);
		return NULL;
	}
	return c;
}

void hm_sha256_update(hm_sha256 *ctx, const void *data, size_t len)
{
	EVP_DigestUpdate(ctx->md, data, len);
}

void hm_sha256_final_hex(hm_sha256 *ctx, char hex[HM_SHA256_HEX_LEN + 1])
{
	unsigned char raw[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_DigestFinal_ex(ctx->md, raw, &n);
	for (unsigned int i = 0; i < n && i < HM_SHA256_HEX_LEN / 2; i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	hex[HM_SHA256_HEX_LEN] = '\0';
	hm_sha256_free(ctx);
}

void hm_sha256_free(hm_sha256 *ctx)
{
	if (!ctx)
		return;
	EVP_MD_CTX_free(ctx->md);
	free(ctx);
}

int hm_sha256_fd(int fd, const char *path, char hex[HM_SHA256_HEX_LEN + 1], hm_error *err)
{
	static const size_t bufsz = 1 << 17;
	if (lseek(fd, 0, SEEK_SET) != 0)
		return hm_error_errno(err, errno, "rewind", path);
	unsigned char *buf = malloc(bufsz);
	hm_sha256 *ctx = hm_sha256_new();
	if (!buf || !ctx) {
		free(buf);
		hm_sha256_free(ctx);
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory hashing \"%s\"", path);
	}
	for (;;) {
		ssize_t n = read(fd, buf, bufsz);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(buf);
			hm_sha256_free(ctx);
			return hm_error_errno(err, e, "read", path);
		}
		if (n == 0)
			break;
		hm_sha256_update(ctx, buf, (size_t)n);
	}
	free(buf);
	hm_sha256_final_hex(ctx, hex);
	return 0;
}

int hm_sha256_file(const char *path, char hex[HM_SHA256_HEX_LEN + 1], hm_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hm_error_errno(err, errno, "open", path);
	int rc = hm_sha256_fd(fd, path, hex, err);
	close(fd);
	return rc;
}
