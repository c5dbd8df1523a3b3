/* backups copy. The copy keeps the backup's id, so the same backup has the same name in
 * every repository, and a second copy into the same place is refused. */
#include "copy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/fsutil.h"
#include "repo_io.h"
#include "verify.h"

/* The plain archive of a plain backup of src into partial/<archive> (to be encrypted). */
static int copy_plain(const hm_repo *src, const hm_backup_meta *m, const char *partial, hm_error *err)
{
	char path[4800];
	unsigned char *buf = malloc(1u << 20);
	int in = -1, out = -1, rc = -1;
	snprintf(path, sizeof path, "%s/%s", partial, m->archive);
	if (!buf)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	if ((in = hm_repo_open_archive(src, m, NULL, err)) < 0)
		goto cleanup;
	if ((out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		hm_error_errno(err, errno, "create", path);
		goto cleanup;
	}
	for (;;) {
		ssize_t n = read(in, buf, 1u << 20);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			hm_error_errno(err, errno, "read the archive of", m->id);
			goto cleanup;
		}
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				hm_error_errno(err, errno, "write", path);
				goto cleanup;
			}
			off += w;
		}
	}
	rc = 0;
cleanup:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) != 0 && rc == 0)
		rc = hm_error_errno(err, errno, "write", path);
	free(buf);
	return rc;
}

/* Check the source: fully when its contents can be read, else its stored digests. *full
 * says which. 0 or -1. */
static int verify_source(const hm_repo *src, const hm_backup_meta *m, hm_crypt_secret *secret, int *full,
			 hm_error *err)
{
	*full = !hm_repo_encrypted(m) || secret;
	if (!*full)
		return hm_repo_check_stored(src, m, err);
	hm_verify_report rep;
	hm_verify_opts vo = {.secret = hm_repo_encrypted(m) ? secret : NULL};
	int rc = hm_verify_backup(src, m, &vo, &rep, err);
	hm_verify_report_free(&rep);
	return rc;
}

int hm_backup_copy(const hm_repo *src, const hm_repo *dst, const hm_backup_meta *m, hm_crypt_secret *secret,
		   hm_backup_meta *out, hm_error *err)
{
	char partial[4500];
	hm_backup_meta m2, there;
	hm_error e2 = {0};
	int full;
	if (m->broken)
		return hm_error_set(err, HM_EXIT_VERIFY_FAILED, "backup %s cannot be copied: %s", m->id,
				    m->verify_error);
	if (hm_repo_find(dst, m->id, &there, &e2) == 0 && !strcmp(there.id, m->id)) {
		hm_error_set(err, HM_EXIT_INPUT, "repository \"%s\" already holds backup %s", dst->path,
			     m->id);
		return hm_error_hint(err, "nothing to do; verify it there with backups verify");
	}
	if (e2.code != HM_EXIT_OK && e2.code != HM_EXIT_NOT_FOUND && e2.code != HM_EXIT_USAGE) {
		*err = e2;
		return -1;
	}
	if (verify_source(src, m, secret, &full, err) != 0)
		return hm_error_prefix(err, "copy refused: the source does not verify");
	m2 = *m;
	if (full) {
		m2.verified = 1;
		m2.verified_time = time(NULL);
		m2.verify_error[0] = '\0';
	}
	if (hm_repo_partial(dst, m->id, partial, sizeof partial, err) != 0)
		return -1;
	int rc;
	if (!hm_repo_encrypted(m) && secret) {
		/* a plain backup, encrypted on its way */
		m2.stored_name[0] = '\0';
		m2.stored_size = 0;
		m2.stored_sha256[0] = '\0';
		rc = copy_plain(src, m, partial, err);
		if (rc == 0)
			rc = hm_repo_store_archive(dst, partial, &m2, secret, err);
		if (rc == 0)
			rc = hm_repo_seal_meta(dst, partial, &m2, secret, err);
	} else {
		rc = hm_repo_copy_stored(src, dst, partial, &m2, err);
		if (rc == 0 && hm_repo_encrypted(m))
			rc = hm_repo_copy_sealed(src, dst, partial, m, err);
	}
	if (rc == 0)
		rc = hm_repo_check_partial(dst, partial, &m2, err);
	if (rc == 0 && !dst->st && !hm_repo_encrypted(&m2)) {
		/* a plain local backup keeps the layout of earlier versions: the archive itself */
		m2.stored_name[0] = '\0';
		m2.stored_size = 0;
		m2.stored_sha256[0] = '\0';
	}
	if (rc == 0)
		rc = hm_repo_commit(dst, partial, &m2, err);
	if (rc != 0) {
		hm_error ignored;
		hm_rmtree(partial, &ignored);
		hm_repo_discard(dst, m->id);
		return -1;
	}
	*out = m2;
	return 0;
}
