/* Durable file writes. The directory fsync after rename is what makes the new name survive
 * a power loss; without it the rename may be lost even though the data was synced. */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int hm_fsync_dir(const char *dir, hm_error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return hm_error_errno(err, errno, "open directory", dir);
	if (fsync(fd) != 0) {
		int e = errno;
		close(fd);
		return hm_error_errno(err, e, "fsync directory", dir);
	}
	close(fd);
	return 0;
}

int hm_fsync_parent(const char *path, hm_error *err)
{
	char copy[PATH_MAX];
	if (strlen(path) >= sizeof copy)
		return hm_error_set(err, HM_EXIT_INPUT, "path too long: \"%s\"", path);
	strcpy(copy, path);
	return hm_fsync_dir(dirname(copy), err);
}

int hm_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, hm_error *err)
{
	char tmp[PATH_MAX];
	int fd = -1, rc = -1;
	if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
		return hm_error_set(err, HM_EXIT_INPUT, "path too long: \"%s\"", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return hm_error_errno(err, errno, "create", tmp);
	if (fchmod(fd, mode) != 0) { /* umask must not widen or narrow what we asked for */
		hm_error_errno(err, errno, "chmod", tmp);
		goto cleanup;
	}
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, (const char *)data + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			hm_error_errno(err, errno, "write", tmp);
			goto cleanup;
		}
		off += (size_t)n;
	}
	if (fsync(fd) != 0) {
		hm_error_errno(err, errno, "fsync", tmp);
		goto cleanup;
	}
	if (close(fd) != 0) {
		fd = -1;
		hm_error_errno(err, errno, "close", tmp);
		goto cleanup;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		hm_error_errno(err, errno, "rename into place", path);
		goto cleanup;
	}
	rc = hm_fsync_parent(path, err);
cleanup:
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		unlink(tmp);
	return rc;
}

int hm_mkdir_p(const char *path, mode_t mode, hm_error *err)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof buf)
		return hm_error_set(err, HM_EXIT_INPUT, "invalid directory path \"%s\"", path);
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(buf, mode) != 0 && errno != EEXIST)
				return hm_error_errno(err, errno, "create directory", buf);
			*p = c;
			if (c == '\0')
				break;
		}
	}
	struct stat st;
	if (stat(path, &st) != 0)
		return hm_error_errno(err, errno, "stat", path);
	if (!S_ISDIR(st.st_mode))
		return hm_error_set(err, HM_EXIT_INPUT, "\"%s\" exists and is not a directory", path);
	return 0;
}

int hm_read_file(const char *path, size_t max, char **out, size_t *len, hm_error *err)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;
	if (!f)
		return hm_error_errno(err, errno, "open", path);
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			char *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory reading \"%s\"",
						    path);
			}
			buf = nb;
		}
		size_t r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
		if (n > max) {
			free(buf);
			fclose(f);
			return hm_error_set(err, HM_EXIT_INPUT, "\"%s\" is larger than %zu bytes", path, max);
		}
		if (r == 0)
			break;
	}
	if (ferror(f)) {
		int e = errno;
		free(buf);
		fclose(f);
		return hm_error_errno(err, e, "read", path);
	}
	fclose(f);
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return 0;
}

int hm_path_join(char *out, size_t outsz, const char *a, const char *b, hm_error *err)
{
	size_t la = strlen(a);
	int n = snprintf(out, outsz, "%s%s%s", a, (la && a[la - 1] == '/') ? "" : "/", b);
	if (n < 0 || (size_t)n >= outsz)
		return hm_error_set(err, HM_EXIT_INPUT, "path too long: \"%s/%s\"", a, b);
	return 0;
}

/* nftw callback: children come first with FTW_DEPTH, so directories are empty by then. */
static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

int hm_rmtree(const char *path, hm_error *err)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : hm_error_errno(err, errno, "stat", path);
	if (nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS) != 0)
		return hm_error_errno(err, errno, "remove", path);
	return 0;
}
