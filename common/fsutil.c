/* Durable file writes and symlink-proof removal. The directory fsync after rename is what
 * makes the new name survive a power loss; without it the rename may be lost even though
 * the data was synced. Removal walks with directory fds (openat O_NOFOLLOW + unlinkat)
 * rather than paths, the way `rm -r` must to be safe in a directory another user can
 * write: a path walk can be redirected mid-way by swapping a directory for a symlink. */
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RMTREE_MAX_DEPTH 400 /* each level holds a directory fd */

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

int hm_path_split(const char *path, char *dir, size_t dirsz, char *base, size_t basesz, hm_error *err)
{
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	size_t b = n;
	while (b > 0 && path[b - 1] != '/')
		b--;
	size_t bl = n - b;
	if (bl == 0 || (bl == 1 && path[b] == '.') || (bl == 2 && path[b] == '.' && path[b + 1] == '.'))
		return hm_error_set(err, HM_EXIT_INPUT, "\"%s\" does not name a file or directory", path);
	if (bl >= basesz)
		return hm_error_set(err, HM_EXIT_INPUT, "path too long: \"%s\"", path);
	memcpy(base, path + b, bl);
	base[bl] = '\0';
	size_t dl = b;
	while (dl > 1 && path[dl - 1] == '/')
		dl--;
	if (dl >= dirsz)
		return hm_error_set(err, HM_EXIT_INPUT, "path too long: \"%s\"", path);
	if (dl == 0)
		snprintf(dir, dirsz, ".");
	else {
		memcpy(dir, path, dl);
		dir[dl] = '\0';
	}
	return 0;
}

int hm_fsync_parent(const char *path, hm_error *err)
{
	char dir[PATH_MAX], base[NAME_MAX + 1];
	if (hm_path_split(path, dir, sizeof dir, base, sizeof base, err) != 0)
		return -1;
	return hm_fsync_dir(dir, err);
}

/* Open the parent directory of path (following the path the caller gave) and return the
 * last component in base. The fd, or -1. */
static int open_parent(const char *path, char *base, size_t basesz, hm_error *err)
{
	char dir[PATH_MAX];
	if (hm_path_split(path, dir, sizeof dir, base, basesz, err) != 0)
		return -1;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return hm_error_errno(err, errno, "open directory", dir);
	return fd;
}

int hm_write_file_atomic_at(int dirfd, const char *name, const char *display, const void *data, size_t len,
			    mode_t mode, hm_error *err)
{
	char tmp[NAME_MAX + 1];
	int fd = -1, rc = -1;
	/* a dot name of bounded length: long names must not push it past NAME_MAX */
	snprintf(tmp, sizeof tmp, ".%.200s.tmp.%ld", name, (long)getpid());
	(void)unlinkat(dirfd, tmp, 0); /* a leftover of a killed run with this pid (never followed) */
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return hm_error_errno(err, errno, "create a temporary file next to", display);
	if (fchmod(fd, mode) != 0) { /* umask must not widen or narrow what we asked for */
		hm_error_errno(err, errno, "chmod", display);
		goto cleanup;
	}
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, (const char *)data + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			hm_error_errno(err, errno, "write", display);
			goto cleanup;
		}
		off += (size_t)n;
	}
	if (fsync(fd) != 0) {
		hm_error_errno(err, errno, "fsync", display);
		goto cleanup;
	}
	if (close(fd) != 0) {
		fd = -1;
		hm_error_errno(err, errno, "close", display);
		goto cleanup;
	}
	fd = -1;
	if (renameat(dirfd, tmp, dirfd, name) != 0) {
		hm_error_errno(err, errno, "rename into place", display);
		goto cleanup;
	}
	if (fsync(dirfd) != 0) {
		hm_error_errno(err, errno, "fsync the directory of", display);
		return -1;
	}
	rc = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		unlinkat(dirfd, tmp, 0);
	return rc;
}

int hm_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, hm_error *err)
{
	char base[NAME_MAX + 1];
	int dfd = open_parent(path, base, sizeof base, err);
	if (dfd < 0)
		return -1;
	int rc = hm_write_file_atomic_at(dfd, base, path, data, len, mode, err);
	close(dfd);
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

int hm_read_fd(int fd, const char *display, size_t max, char **out, size_t *len, hm_error *err)
{
	char *buf = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			char *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory reading \"%s\"",
						    display);
			}
			buf = nb;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(buf);
			return hm_error_errno(err, e, "read", display);
		}
		n += (size_t)r;
		if (n > max) {
			free(buf);
			return hm_error_set(err, HM_EXIT_INPUT, "\"%s\" is larger than %zu bytes", display,
					    max);
		}
		if (r == 0)
			break;
	}
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return 0;
}

int hm_read_file(const char *path, size_t max, char **out, size_t *len, hm_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hm_error_errno(err, errno, "open", path);
	int rc = hm_read_fd(fd, path, max, out, len, err);
	close(fd);
	return rc;
}

int hm_read_secret_file(const char *path, size_t max, char **out, hm_error *err)
{
	struct stat st;
	size_t len = 0;
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hm_error_errno(err, errno, "read password file", path);
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return hm_error_set(err, HM_EXIT_INPUT, "password file \"%s\" is not a regular file", path);
	}
	if (st.st_mode & 077) {
		close(fd);
		hm_error_set(err, HM_EXIT_PERMISSION,
			     "password file \"%s\" is readable by others (mode %03o)", path,
			     (unsigned)(st.st_mode & 0777));
		return hm_error_hint(err, "chmod 600 %s", path);
	}
	int rc = hm_read_fd(fd, path, max, out, &len, err);
	close(fd);
	if (rc == 0)
		(*out)[strcspn(*out, "\r\n")] = '\0';
	return rc;
}

int hm_path_join(char *out, size_t outsz, const char *a, const char *b, hm_error *err)
{
	size_t la = strlen(a);
	int n = snprintf(out, outsz, "%s%s%s", a, (la && a[la - 1] == '/') ? "" : "/", b);
	if (n < 0 || (size_t)n >= outsz)
		return hm_error_set(err, HM_EXIT_INPUT, "path too long: \"%s/%s\"", a, b);
	return 0;
}

int hm_open_dir_at(int dirfd, const char *name, const char *display, hm_error *err)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	int e = errno;
	struct stat st;
	if ((e == ELOOP || e == ENOTDIR) && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISLNK(st.st_mode)) {
			hm_error_set(err, HM_EXIT_PERMISSION, "\"%s\" is a symlink, which is never followed",
				     display);
			hm_error_hint(err, "remove the symlink; hive-migrate recreates what it needs");
			return -1;
		}
		hm_error_set(err, HM_EXIT_INPUT, "\"%s\" is not a directory", display);
		return -1;
	}
	hm_error_errno(err, e, "open directory", display);
	return -1;
}

static int rmtree_entry(int dirfd, const char *name, char *disp, size_t nl, int depth, hm_error *err);

/* Remove every entry of the directory open as fd; disp (a PATH_MAX buffer) holds its
 * display path of length dlen, extended in place for children. */
static int rm_children(int fd, char *disp, size_t dlen, int depth, hm_error *err)
{
	int dfd = dup(fd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return hm_error_errno(err, errno, "list directory", disp);
	}
	rewinddir(d); /* the offset is shared with every dup of fd: someone may have read it */
	struct dirent *e;
	int rc = 0;
	errno = 0;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(disp + dlen, PATH_MAX - dlen, "/%s", e->d_name);
		int r = rmtree_entry(fd, e->d_name, disp, strlen(disp), depth + 1, err);
		disp[dlen] = '\0';
		if (r != 0) {
			rc = -1;
			break;
		}
		errno = 0;
	}
	if (rc == 0 && errno != 0)
		rc = hm_error_errno(err, errno, "list directory", disp);
	closedir(d);
	return rc;
}

/* Remove name inside dirfd (disp: its display path, of length nl). */
static int rmtree_entry(int dirfd, const char *name, char *disp, size_t nl, int depth, hm_error *err)
{
	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	int e = errno;
	if (e != EISDIR && e != EPERM)
		return hm_error_errno(err, e, "remove", disp);
	if (depth > RMTREE_MAX_DEPTH)
		return hm_error_set(err, HM_EXIT_IO, "cannot remove \"%s\": nested too deeply", disp);
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0
				       : hm_error_errno(err, errno == ENOTDIR ? e : errno, "remove", disp);
	int rc = rm_children(fd, disp, nl, depth, err);
	close(fd);
	if (rc != 0)
		return -1;
	if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
		return hm_error_errno(err, errno, "remove directory", disp);
	return 0;
}

/* A PATH_MAX display buffer holding display; its length. */
static size_t disp_init(char *disp, const char *display)
{
	snprintf(disp, PATH_MAX, "%s", display);
	return strlen(disp);
}

int hm_rmtree_at(int dirfd, const char *name, const char *display, hm_error *err)
{
	char disp[PATH_MAX];
	size_t dl = disp_init(disp, display);
	return rmtree_entry(dirfd, name, disp, dl, 0, err);
}

int hm_empty_dir_fd(int fd, const char *display, hm_error *err)
{
	char disp[PATH_MAX];
	size_t dl = disp_init(disp, display);
	return rm_children(fd, disp, dl, 0, err);
}

int hm_rmtree(const char *path, hm_error *err)
{
	char base[NAME_MAX + 1];
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : hm_error_errno(err, errno, "stat", path);
	int dfd = open_parent(path, base, sizeof base, err);
	if (dfd < 0)
		return -1;
	int rc = hm_rmtree_at(dfd, base, path, err);
	close(dfd);
	return rc;
}

int hm_check_private_dir(const struct stat *st, const char *what, const char *path, hm_error *err)
{
	if (!S_ISDIR(st->st_mode))
		return hm_error_set(err, HM_EXIT_INPUT, "%s \"%s\" is not a directory", what, path);
	if (st->st_uid != geteuid()) {
		hm_error_set(err, HM_EXIT_PERMISSION,
			     "%s \"%s\" belongs to uid %u, not to the user running hive-migrate (uid %u)",
			     what, path, (unsigned)st->st_uid, (unsigned)geteuid());
		return hm_error_hint(err,
				     "run hive-migrate as its owner, or give it to this user: chown %u %s",
				     (unsigned)geteuid(), path);
	}
	if (st->st_mode & 022) {
		hm_error_set(err, HM_EXIT_PERMISSION, "%s \"%s\" is writable by group or others (mode %04o)",
			     what, path, (unsigned)(st->st_mode & 07777));
		return hm_error_hint(err, "chmod 700 %s", path);
	}
	return 0;
}

int hm_private_dir(const char *path, const char *what, hm_error *err)
{
	struct stat st;
	if (lstat(path, &st) != 0) {
		if (errno != ENOENT)
			return hm_error_errno(err, errno, "stat", path);
		if (hm_mkdir_p(path, 0700, err) != 0)
			return -1;
		if (lstat(path, &st) != 0)
			return hm_error_errno(err, errno, "stat", path);
	}
	if (S_ISLNK(st.st_mode)) {
		hm_error_set(err, HM_EXIT_PERMISSION, "%s \"%s\" is a symlink, which is never followed", what,
			     path);
		return hm_error_hint(err, "replace it by a real directory (mode 0700)");
	}
	return hm_check_private_dir(&st, what, path, err);
}

int hm_rename_dir_checked(const char *from, const char *to, hm_error *err)
{
	char fb[NAME_MAX + 1], tb[NAME_MAX + 1];
	struct stat before, after;
	int ffd = -1, tfd = -1, rc = -1;
	if ((ffd = open_parent(from, fb, sizeof fb, err)) < 0 ||
	    (tfd = open_parent(to, tb, sizeof tb, err)) < 0)
		goto cleanup;
	if (fstatat(ffd, fb, &before, AT_SYMLINK_NOFOLLOW) != 0) {
		hm_error_errno(err, errno, "stat", from);
		goto cleanup;
	}
	if (!S_ISDIR(before.st_mode)) {
		hm_error_set(err, HM_EXIT_IO, "\"%s\" is no longer a directory (%s)", from,
			     S_ISLNK(before.st_mode) ? "a symlink" : "another file");
		hm_error_hint(err, "someone who can write its parent directory replaced it; check who");
		goto cleanup;
	}
	if (renameat(ffd, fb, tfd, tb) != 0) {
		hm_error_errno(err, errno, "rename into place", to);
		goto cleanup;
	}
	if (fstatat(tfd, tb, &after, AT_SYMLINK_NOFOLLOW) != 0 || after.st_dev != before.st_dev ||
	    after.st_ino != before.st_ino) {
		(void)renameat(tfd, tb, ffd, fb); /* not ours: put it back where it came from */
		hm_error_set(err, HM_EXIT_IO, "\"%s\" was replaced while being moved to \"%s\"", from, to);
		hm_error_hint(err, "someone who can write its parent directory swapped it; check who");
		goto cleanup;
	}
	if (fsync(tfd) != 0 || (ffd != tfd && fsync(ffd) != 0)) {
		hm_error_errno(err, errno, "fsync the directory of", to);
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (ffd >= 0)
		close(ffd);
	if (tfd >= 0)
		close(tfd);
	return rc;
}

/* One level of hm_tree_bytes; depth bounds the recursion on a hostile tree. */
static uint64_t tree_bytes(int dirfd, const char *name, int depth)
{
	if (depth > 64)
		return 0;
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	uint64_t sum = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (S_ISREG(st.st_mode))
			sum += (uint64_t)st.st_size;
		else if (S_ISDIR(st.st_mode))
			sum += tree_bytes(fd, e->d_name, depth + 1);
	}
	closedir(d);
	return sum;
}

uint64_t hm_tree_bytes(int dirfd, const char *name)
{
	return tree_bytes(dirfd, name, 0);
}
