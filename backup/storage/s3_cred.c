/* Credential discovery. The parser never copies a value into a message; a malformed file is
 * named with its line number only. */
#include "s3_cred.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define CRED_FILE_MAX (64 * 1024)

void hm_s3_credentials_wipe(hm_s3_credentials *c)
{
	OPENSSL_cleanse(c, sizeof *c);
}

static int set_value(char *dst, size_t dstsz, const char *v, size_t vlen)
{
	if (vlen == 0 || vlen >= dstsz)
		return -1;
	for (size_t i = 0; i < vlen; i++)
		if ((unsigned char)v[i] < 0x21 || (unsigned char)v[i] > 0x7e)
			return -1; /* keys and tokens are printable ASCII without spaces */
	memcpy(dst, v, vlen);
	dst[vlen] = '\0';
	return 0;
}

static const char *trim(const char *s, const char *end, const char **tend)
{
	while (s < end && (*s == ' ' || *s == '\t' || *s == '\r'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		end--;
	*tend = end;
	return s;
}

int hm_s3_credentials_parse(const char *text, size_t len, const char *profile, int allow_bare,
			    const char *what, hm_s3_credentials *out, hm_error *err)
{
	const char *p = text, *end = text + len;
	int in_section = allow_bare, found_section = 0, line = 0;
	char id[sizeof out->access_key] = "", secret[sizeof out->secret_key] = "";
	char token[sizeof out->session_token] = "";
	int rc = -1;
	if (!profile || !*profile)
		profile = "default";
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end, *te;
		const char *s = trim(p, le, &te);
		line++;
		p = nl ? nl + 1 : end;
		if (memchr(s, '\0', (size_t)(te - s))) {
			hm_error_set(err, HM_EXIT_INPUT, "credentials file %s: line %d holds a NUL byte",
				     what, line);
			goto cleanup;
		}
		if (s == te || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			if (te[-1] != ']' || te - s < 3) {
				hm_error_set(err, HM_EXIT_INPUT,
					     "credentials file %s: line %d is not a valid [section]", what,
					     line);
				goto cleanup;
			}
			const char *ne, *n = trim(s + 1, te - 1, &ne);
			in_section = (size_t)(ne - n) == strlen(profile) &&
				     memcmp(n, profile, (size_t)(ne - n)) == 0;
			found_section |= in_section;
			continue;
		}
		const char *eq = memchr(s, '=', (size_t)(te - s));
		if (!eq) {
			hm_error_set(err, HM_EXIT_INPUT,
				     "credentials file %s: line %d is neither a section nor key = value",
				     what, line);
			goto cleanup;
		}
		if (!in_section)
			continue;
		const char *ke, *k = trim(s, eq, &ke), *ve, *v = trim(eq + 1, te, &ve);
		size_t kl = (size_t)(ke - k), vl = (size_t)(ve - v);
		char *dst = NULL;
		size_t dstsz = 0;
		if (kl == 17 && strncasecmp(k, "aws_access_key_id", kl) == 0) {
			dst = id;
			dstsz = sizeof id;
		} else if (kl == 21 && strncasecmp(k, "aws_secret_access_key", kl) == 0) {
			dst = secret;
			dstsz = sizeof secret;
		} else if ((kl == 17 && strncasecmp(k, "aws_session_token", kl) == 0) ||
			   (kl == 18 && strncasecmp(k, "aws_security_token", kl) == 0)) {
			dst = token;
			dstsz = sizeof token;
		}
		if (dst && set_value(dst, dstsz, v, vl) != 0) {
			hm_error_set(
				err, HM_EXIT_INPUT,
				"credentials file %s: line %d has an empty, too long or non-printable value",
				what, line);
			goto cleanup;
		}
	}
	if (!id[0] && !secret[0]) {
		rc = 1;
		goto cleanup;
	}
	if (!id[0] || !secret[0]) {
		hm_error_set(err, HM_EXIT_INPUT, "credentials file %s: profile \"%s\" has %s but no %s", what,
			     found_section ? profile : "(no section)",
			     id[0] ? "aws_access_key_id" : "aws_secret_access_key",
			     id[0] ? "aws_secret_access_key" : "aws_access_key_id");
		goto cleanup;
	}
	memset(out, 0, sizeof *out);
	strcpy(out->access_key, id);
	strcpy(out->secret_key, secret);
	strcpy(out->session_token, token);
	snprintf(out->source, sizeof out->source, "%s [%s]", what, found_section ? profile : "no section");
	rc = 0;
cleanup:
	OPENSSL_cleanse(id, sizeof id);
	OPENSSL_cleanse(secret, sizeof secret);
	OPENSSL_cleanse(token, sizeof token);
	return rc;
}

/* Read a credentials file that only its owner may read. 0, 1 when it does not exist
 * (and missing_ok), -1 with err. *text is malloc'd. */
static int read_private(const char *path, int missing_ok, char **text, size_t *len, hm_error *err)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT && missing_ok)
			return 1;
		return hm_error_errno(err, errno, "open the S3 credentials file", path);
	}
	if (fstat(fd, &st) != 0) {
		hm_error_errno(err, errno, "stat", path);
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return hm_error_set(err, HM_EXIT_INPUT,
				    "the S3 credentials file \"%s\" is not a regular file", path);
	}
	if ((st.st_mode & 077) != 0 || (st.st_uid != geteuid() && st.st_uid != 0)) {
		close(fd);
		hm_error_set(err, HM_EXIT_PERMISSION,
			     "the S3 credentials file \"%s\" is readable or writable by others (mode %04o, "
			     "owner %u): refused",
			     path, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
		return hm_error_hint(err, "chmod 600 \"%s\" (and make it yours)", path);
	}
	if (st.st_size > CRED_FILE_MAX) {
		close(fd);
		return hm_error_set(err, HM_EXIT_INPUT,
				    "the S3 credentials file \"%s\" is larger than %d bytes", path,
				    CRED_FILE_MAX);
	}
	char *buf = malloc((size_t)st.st_size + 1);
	size_t off = 0;
	if (!buf) {
		close(fd);
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	}
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			OPENSSL_cleanse(buf, off);
			free(buf);
			close(fd);
			return hm_error_errno(err, e, "read", path);
		}
		off += (size_t)n;
	}
	close(fd);
	buf[off] = '\0';
	*text = buf;
	*len = off;
	return 0;
}

static int from_file(const char *path, int missing_ok, const char *profile, int allow_bare,
		     hm_s3_credentials *out, hm_error *err)
{
	char *text = NULL;
	size_t len = 0;
	int rc = read_private(path, missing_ok, &text, &len, err);
	if (rc != 0)
		return rc;
	rc = hm_s3_credentials_parse(text, len, profile, allow_bare, path, out, err);
	OPENSSL_cleanse(text, len);
	free(text);
	return rc;
}

int hm_s3_credentials_load(const char *option_file, hm_s3_credentials *out, hm_error *err)
{
	const char *id = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
	const char *token = getenv("AWS_SESSION_TOKEN"), *profile = getenv("AWS_PROFILE");
	char shared[4096];
	memset(out, 0, sizeof *out);
	if ((id && *id) || (secret && *secret)) {
		if (!id || !*id || !secret || !*secret)
			return hm_error_set(err, HM_EXIT_INPUT, "%s is set but %s is not",
					    id && *id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
					    id && *id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		if (set_value(out->access_key, sizeof out->access_key, id, strlen(id)) != 0 ||
		    set_value(out->secret_key, sizeof out->secret_key, secret, strlen(secret)) != 0 ||
		    (token && *token &&
		     set_value(out->session_token, sizeof out->session_token, token, strlen(token)) != 0)) {
			hm_s3_credentials_wipe(out);
			return hm_error_set(err, HM_EXIT_INPUT,
					    "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_SESSION_TOKEN "
					    "is too long or not printable");
		}
		snprintf(out->source, sizeof out->source, "environment");
		return 0;
	}
	const char *env_file = getenv("AWS_SHARED_CREDENTIALS_FILE");
	if (env_file && *env_file) {
		snprintf(shared, sizeof shared, "%s", env_file);
	} else {
		const char *home = getenv("HOME");
		struct passwd *pw = (!home || !*home) ? getpwuid(geteuid()) : NULL;
		if (pw)
			home = pw->pw_dir;
		snprintf(shared, sizeof shared, "%s/.aws/credentials", home && *home ? home : "/nonexistent");
	}
	int rc = from_file(shared, !(env_file && *env_file), profile, 0, out, err);
	if (rc <= 0)
		return rc;
	if (option_file && *option_file) {
		rc = from_file(option_file, 0, profile, 1, out, err);
		if (rc <= 0)
			return rc;
		hm_error_set(err, HM_EXIT_INPUT,
			     "the S3 credentials file \"%s\" has no keys for profile \"%s\"", option_file,
			     profile && *profile ? profile : "default");
		return hm_error_hint(err,
				     "write aws_access_key_id = ... and aws_secret_access_key = ... into it");
	}
	if (profile && *profile) {
		hm_error_set(err, HM_EXIT_INPUT, "AWS_PROFILE is \"%s\" but %s has no such profile", profile,
			     shared);
		return hm_error_hint(
			err, "add a [%s] section with aws_access_key_id and aws_secret_access_key", profile);
	}
	hm_error_set(err, HM_EXIT_INPUT,
		     "no S3 credentials: none in the environment, in %s or in a credentials file", shared);
	return hm_error_hint(err,
			     "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write them to a 0600 "
			     "file (~/.aws/credentials, or the one named by the credentials-file option)");
}
