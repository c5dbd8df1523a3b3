/* The posix driver: a repository in a local directory. Everything below the root is reached
 * with *at() calls from the root's descriptor and O_NOFOLLOW on every component, so a symlink
 * planted inside the repository is never followed. A write goes to ".hm-tmp.<random>" in the
 * target's directory (created O_EXCL, 0600), and its commit is fsync, rename (renameat2
 * RENAME_NOREPLACE for an exclusive write) and an fsync of the directory. */
#include "storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "../../common/fsutil.h"

#define TMP_PREFIX ".hm-tmp."
#define MAX_DEPTH 32

typedef struct posix_write posix_write;

typedef struct posix_storage {
	hm_storage base;
	int rootfd;
	posix_write *active; /* writers in progress: their temp files are not partials */
} posix_storage;

struct posix_write {
	hm_storage_writer base;
	posix_storage *st;
	int dirfd, fd;
	unsigned flags;
	char tmp[32];
	char leaf[HM_STORAGE_NAME_MAX + 1];
	char name[HM_STORAGE_NAME_MAX + 1];
	posix_write *next;
};

typedef struct posix_read {
	hm_storage_reader base;
	int fd;
	uint64_t left;
	char name[HM_STORAGE_NAME_MAX + 1];
} posix_read;

typedef struct posix_lock {
	hm_storage_lock base;
	int fd;
} posix_lock;

static int fail_errno(hm_error *err, int e, const char *what, posix_storage *st, const char *name)
{
	char path[HM_STORAGE_NAME_MAX * 2 + 80];
	snprintf(path, sizeof path, "%s/%s", st->base.location, name);
	return hm_error_errno(err, e, what, path);
}

/* Open the directory holding name's last component (creating missing directories 0700 when
 * create). *leaf points into name. The descriptor, or -1: HM_STORAGE_MISSING in *rc when a
 * component does not exist, else an error. */
static int open_parent(posix_storage *st, const char *name, int create, const char **leaf, int *rc,
		       hm_error *err)
{
	int fd = dup(st->rootfd);
	const char *c = name;
	*rc = HM_STORAGE_ERROR;
	if (fd < 0) {
		fail_errno(err, errno, "open", st, "");
		return -1;
	}
	for (;;) {
		const char *e = strchr(c, '/');
		if (!e)
			break;
		char comp[HM_STORAGE_NAME_MAX + 1];
		memcpy(comp, c, (size_t)(e - c));
		comp[e - c] = '\0';
		int sub = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0 && errno == ENOENT && create) {
			if (mkdirat(fd, comp, 0700) != 0 && errno != EEXIST) {
				fail_errno(err, errno, "create directory", st, name);
				close(fd);
				return -1;
			}
			fsync(fd); /* the new directory's name must survive a crash with the file */
			sub = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (sub < 0) {
			int e2 = errno;
			struct stat sb;
			/* O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR: tell the two apart. */
			if ((e2 == ENOTDIR || e2 == ELOOP) &&
			    fstatat(fd, comp, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode))
				e2 = ELOOP;
			close(fd);
			if (e2 == ENOENT || e2 == ENOTDIR) {
				*rc = HM_STORAGE_MISSING;
				hm_error_set(err, HM_EXIT_NOT_FOUND, "no such object \"%s\" in %s", name,
					     st->base.location);
			} else if (e2 == ELOOP) {
				hm_error_set(err, HM_EXIT_INPUT,
					     "\"%s\" in %s goes through a symlink (refused)", name,
					     st->base.location);
			} else {
				fail_errno(err, e2, "open directory", st, name);
			}
			return -1;
		}
		close(fd);
		fd = sub;
		c = e + 1;
	}
	*leaf = c;
	return fd;
}

/* Open directory dir ("" = the root). -1 with *rc MISSING when it does not exist. */
static int open_dir(posix_storage *st, const char *dir, int *rc, hm_error *err)
{
	if (!*dir) {
		int fd = dup(st->rootfd);
		if (fd < 0)
			return fail_errno(err, errno, "open", st, "");
		return fd;
	}
	const char *leaf;
	int pfd = open_parent(st, dir, 0, &leaf, rc, err);
	if (pfd < 0)
		return -1;
	int fd = openat(pfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int e = errno;
	close(pfd);
	if (fd < 0) {
		if (e == ENOENT || e == ENOTDIR) {
			*rc = HM_STORAGE_MISSING;
			return -1;
		}
		*rc = HM_STORAGE_ERROR;
		return fail_errno(err, e, "open directory", st, dir);
	}
	return fd;
}

/* --- reading ------------------------------------------------------------------------- */
static int posix_read_read(hm_storage_reader *base, void *buf, size_t len, size_t *got, hm_error *err)
{
	posix_read *r = (posix_read *)base;
	if (r->left == 0)
		return 0;
	if (len > r->left)
		len = (size_t)r->left;
	for (;;) {
		ssize_t n = read(r->fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return hm_error_errno(err, errno, "read", r->name);
		if (n == 0)
			return hm_error_set(err, HM_EXIT_CORRUPT,
					    "\"%s\" ended %llu bytes early (truncated while read?)", r->name,
					    (unsigned long long)r->left);
		r->left -= (uint64_t)n;
		*got = (size_t)n;
		return 0;
	}
}

static void posix_read_close(hm_storage_reader *base)
{
	posix_read *r = (posix_read *)base;
	close(r->fd);
	free(r);
}

static const hm_storage_reader_ops posix_read_ops = {posix_read_read, posix_read_close};

static int posix_open_read(hm_storage *base, const char *name, uint64_t offset, uint64_t length,
			   hm_storage_reader **out, hm_error *err)
{
	posix_storage *st = (posix_storage *)base;
	const char *leaf;
	int rc;
	struct stat sb;
	int dfd = open_parent(st, name, 0, &leaf, &rc, err);
	if (dfd < 0)
		return rc;
	int fd = openat(dfd, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	int e = errno;
	close(dfd);
	if (fd < 0) {
		if (e == ENOENT || e == ENOTDIR) {
			hm_error_set(err, HM_EXIT_NOT_FOUND, "no such object \"%s\" in %s", name,
				     st->base.location);
			return HM_STORAGE_MISSING;
		}
		if (e == ELOOP)
			return hm_error_set(err, HM_EXIT_INPUT, "\"%s\" in %s is a symlink (refused)", name,
					    st->base.location);
		return fail_errno(err, e, "open", st, name);
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return hm_error_set(err, HM_EXIT_INPUT, "\"%s\" in %s is not a regular file", name,
				    st->base.location);
	}
	uint64_t size = (uint64_t)sb.st_size;
	if (offset > size) {
		close(fd);
		return hm_error_set(err, HM_EXIT_INPUT, "read of \"%s\" from byte %llu: it has only %llu",
				    name, (unsigned long long)offset, (unsigned long long)size);
	}
	uint64_t left = size - offset;
	if (length != HM_STORAGE_TO_END) {
		if (length > left) {
			close(fd);
			return hm_error_set(err, HM_EXIT_INPUT,
					    "read of \"%s\" to byte %llu: it has only %llu", name,
					    (unsigned long long)(offset + length), (unsigned long long)size);
		}
		left = length;
	}
	if (offset && lseek(fd, (off_t)offset, SEEK_SET) < 0) {
		e = errno;
		close(fd);
		return fail_errno(err, e, "seek in", st, name);
	}
	posix_read *r = calloc(1, sizeof *r);
	if (!r) {
		close(fd);
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	}
	r->base.ops = &posix_read_ops;
	r->base.object_size = size;
	r->fd = fd;
	r->left = left;
	snprintf(r->name, sizeof r->name, "%s", name);
	*out = &r->base;
	return 0;
}

/* --- writing ------------------------------------------------------------------------- */
static void unlink_active(posix_write *w)
{
	for (posix_write **p = &w->st->active; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			break;
		}
}

static void posix_write_free(posix_write *w, int remove_tmp)
{
	if (w->fd >= 0)
		close(w->fd);
	if (remove_tmp)
		unlinkat(w->dirfd, w->tmp, 0);
	close(w->dirfd);
	unlink_active(w);
	free(w);
}

static int posix_write_write(hm_storage_writer *base, const void *data, size_t len, hm_error *err)
{
	posix_write *w = (posix_write *)base;
	for (size_t off = 0; off < len;) {
		ssize_t n = write(w->fd, (const char *)data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail_errno(err, errno, "write", w->st, w->name);
		off += (size_t)n;
	}
	return 0;
}

static int posix_write_commit(hm_storage_writer *base, hm_storage_info *info, hm_error *err)
{
	posix_write *w = (posix_write *)base;
	struct stat sb;
	int rc = HM_STORAGE_ERROR;
	if (fsync(w->fd) != 0) {
		fail_errno(err, errno, "fsync", w->st, w->name);
		goto cleanup;
	}
	if (fstat(w->fd, &sb) != 0) {
		fail_errno(err, errno, "stat", w->st, w->name);
		goto cleanup;
	}
	if (close(w->fd) != 0) {
		w->fd = -1;
		fail_errno(err, errno, "close", w->st, w->name);
		goto cleanup;
	}
	w->fd = -1;
	if (w->flags & HM_STORAGE_EXCLUSIVE) {
		if (renameat2(w->dirfd, w->tmp, w->dirfd, w->leaf, RENAME_NOREPLACE) != 0) {
			if (errno == EEXIST) {
				hm_error_set(err, HM_EXIT_INPUT, "\"%s\" exists already in %s", w->name,
					     w->st->base.location);
				rc = HM_STORAGE_EXISTS;
				goto cleanup;
			}
			if (errno != EINVAL) {
				fail_errno(err, errno, "rename into place", w->st, w->name);
				goto cleanup;
			}
			/* A file system without RENAME_NOREPLACE: link() fails with EEXIST just the same. */
			if (linkat(w->dirfd, w->tmp, w->dirfd, w->leaf, 0) != 0) {
				if (errno == EEXIST) {
					hm_error_set(err, HM_EXIT_INPUT, "\"%s\" exists already in %s",
						     w->name, w->st->base.location);
					rc = HM_STORAGE_EXISTS;
				} else {
					fail_errno(err, errno, "link into place", w->st, w->name);
				}
				goto cleanup;
			}
			unlinkat(w->dirfd, w->tmp, 0);
		}
	} else if (renameat(w->dirfd, w->tmp, w->dirfd, w->leaf) != 0) {
		fail_errno(err, errno, "rename into place", w->st, w->name);
		goto cleanup;
	}
	if (fsync(w->dirfd) != 0) {
		fail_errno(err, errno, "fsync the directory of", w->st, w->name);
		posix_write_free(w, 0);
		return HM_STORAGE_ERROR;
	}
	if (info) {
		memset(info, 0, sizeof *info);
		snprintf(info->name, sizeof info->name, "%s", w->name);
		info->size = (uint64_t)sb.st_size;
		info->mtime = sb.st_mtime;
	}
	posix_write_free(w, 0);
	return 0;
cleanup:
	posix_write_free(w, 1);
	return rc;
}

static void posix_write_abort(hm_storage_writer *base)
{
	posix_write_free((posix_write *)base, 1);
}

static const hm_storage_writer_ops posix_write_ops = {posix_write_write, posix_write_commit,
						      posix_write_abort};

static int posix_open_write(hm_storage *base, const char *name, unsigned flags, uint64_t size_hint,
			    hm_storage_writer **out, hm_error *err)
{
	posix_storage *st = (posix_storage *)base;
	const char *leaf;
	unsigned char rnd[8];
	int rc;
	(void)size_hint;
	posix_write *w = calloc(1, sizeof *w);
	if (!w)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	w->fd = -1;
	w->dirfd = open_parent(st, name, 1, &leaf, &rc, err);
	if (w->dirfd < 0) {
		free(w);
		return HM_STORAGE_ERROR;
	}
	if (RAND_bytes(rnd, sizeof rnd) != 1) {
		close(w->dirfd);
		free(w);
		return hm_error_set(err, HM_EXIT_INTERNAL, "no random bytes for a temporary name");
	}
	snprintf(w->tmp, sizeof w->tmp, TMP_PREFIX "%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
		 rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	snprintf(w->leaf, sizeof w->leaf, "%s", leaf);
	snprintf(w->name, sizeof w->name, "%s", name);
	w->fd = openat(w->dirfd, w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		fail_errno(err, errno, "create a temporary file for", st, name);
		close(w->dirfd);
		free(w);
		return HM_STORAGE_ERROR;
	}
	w->base.ops = &posix_write_ops;
	w->st = st;
	w->flags = flags;
	w->next = st->active;
	st->active = w;
	*out = &w->base;
	return 0;
}

/* --- names ---------------------------------------------------------------------------- */
static int posix_stat(hm_storage *base, const char *name, hm_storage_info *out, hm_error *err)
{
	posix_storage *st = (posix_storage *)base;
	const char *leaf;
	int rc;
	struct stat sb;
	int dfd = open_parent(st, name, 0, &leaf, &rc, err);
	if (dfd < 0)
		return rc;
	int r = fstatat(dfd, leaf, &sb, AT_SYMLINK_NOFOLLOW);
	int e = errno;
	close(dfd);
	if (r != 0 && e != ENOENT)
		return fail_errno(err, e, "stat", st, name);
	if (r != 0 || !S_ISREG(sb.st_mode)) {
		hm_error_set(err, HM_EXIT_NOT_FOUND, "no such object \"%s\" in %s", name, st->base.location);
		return HM_STORAGE_MISSING;
	}
	snprintf(out->name, sizeof out->name, "%s", name);
	out->size = (uint64_t)sb.st_size;
	out->mtime = sb.st_mtime;
	return 0;
}

typedef struct walk {
	posix_storage *st;
	unsigned flags;
	hm_storage_list_cb cb;
	void *ctx;
	/* sweep */
	int sweep, dry_run;
	hm_storage_partial_cb pcb;
	size_t *count;
	const char *base_dir;
} walk;

static int is_active(posix_storage *st, const char *leaf)
{
	for (posix_write *w = st->active; w; w = w->next)
		if (strcmp(w->tmp, leaf) == 0)
			return 1;
	return 0;
}

static int walk_dir(walk *wk, int fd, const char *rel, int depth, hm_error *err)
{
	if (depth > MAX_DEPTH)
		return hm_error_set(err, HM_EXIT_INPUT, "%s: directories nested deeper than %d",
				    wk->st->base.location, MAX_DEPTH);
	int dfd = dup(fd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	int rc = 0;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return fail_errno(err, errno, "list", wk->st, rel);
	}
	rewinddir(d); /* a dup shares the offset: an earlier listing of the same fd ran to its end */
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		struct stat sb;
		char name[HM_STORAGE_NAME_MAX + 1];
		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
			continue;
		if (snprintf(name, sizeof name, "%s%s%s", rel, *rel ? "/" : "", n) >= (int)sizeof name)
			continue; /* longer than any name we could have written */
		if (fstatat(fd, n, &sb, AT_SYMLINK_NOFOLLOW) != 0)
			continue; /* gone meanwhile */
		int tmp = strncmp(n, TMP_PREFIX, strlen(TMP_PREFIX)) == 0;
		if (wk->sweep) {
			if (tmp && S_ISREG(sb.st_mode) && !is_active(wk->st, n)) {
				if (wk->pcb)
					wk->pcb(wk->ctx, name, sb.st_mtime);
				(*wk->count)++;
				if (!wk->dry_run && unlinkat(fd, n, 0) != 0 && errno != ENOENT) {
					rc = fail_errno(err, errno, "remove", wk->st, name);
					break;
				}
			} else if (S_ISDIR(sb.st_mode)) {
				int sub = openat(fd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (sub >= 0) {
					rc = walk_dir(wk, sub, name, depth + 1, err);
					close(sub);
					if (rc)
						break;
				}
			}
			continue;
		}
		if (tmp || (!S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode)))
			continue; /* partial writes, symlinks and devices are not objects */
		if (S_ISDIR(sb.st_mode) && (wk->flags & HM_STORAGE_RECURSIVE)) {
			int sub = openat(fd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0)
				continue;
			rc = walk_dir(wk, sub, name, depth + 1, err);
			close(sub);
			if (rc)
				break;
			continue;
		}
		hm_storage_info info;
		memset(&info, 0, sizeof info);
		snprintf(info.name, sizeof info.name, "%s", name);
		info.is_dir = S_ISDIR(sb.st_mode);
		info.size = info.is_dir ? 0 : (uint64_t)sb.st_size;
		info.mtime = sb.st_mtime;
		rc = wk->cb(wk->ctx, &info, err);
		if (rc)
			break;
	}
	closedir(d);
	return rc ? -1 : 0;
}

static int posix_list(hm_storage *base, const char *dir, unsigned flags, hm_storage_list_cb cb, void *ctx,
		      hm_error *err)
{
	posix_storage *st = (posix_storage *)base;
	int rc;
	int fd = open_dir(st, dir, &rc, err);
	if (fd < 0)
		return rc == HM_STORAGE_MISSING ? 0 : -1;
	walk wk = {st, flags, cb, ctx, 0, 0, NULL, NULL, dir};
	rc = walk_dir(&wk, fd, "", 0, err);
	close(fd);
	return rc;
}

static int posix_remove(hm_storage *base, const char *const *names, size_t n, hm_error *err)
{
	posix_storage *st = (posix_storage *)base;
	for (size_t i = 0; i < n; i++) {
		const char *leaf;
		int rc;
		int dfd = open_parent(st, names[i], 0, &leaf, &rc, err);
		if (dfd < 0) {
			if (rc == HM_STORAGE_MISSING)
				continue;
			return -1;
		}
		if (unlinkat(dfd, leaf, 0) != 0 && errno != ENOENT) {
			int e = errno;
			close(dfd);
			return fail_errno(err, e, "remove", st, names[i]);
		}
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

/* Remove everything inside the directory fd (no symlink is followed: unlinkat removes it). */
static int empty_dir(posix_storage *st, int fd, const char *rel, int depth, hm_error *err)
{
	if (depth > MAX_DEPTH)
		return hm_error_set(err, HM_EXIT_INPUT, "%s: directories nested deeper than %d",
				    st->base.location, MAX_DEPTH);
	int dfd = dup(fd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return fail_errno(err, errno, "list", st, rel);
	}
	struct dirent *de;
	int rc = 0;
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		struct stat sb;
		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
		    fstatat(fd, n, &sb, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISDIR(sb.st_mode)) {
			int sub = openat(fd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0 || (rc = empty_dir(st, sub, n, depth + 1, err)) != 0) {
				if (sub >= 0)
					close(sub);
				else
					rc = fail_errno(err, errno, "open directory", st, n);
				break;
			}
			close(sub);
			if (unlinkat(fd, n, AT_REMOVEDIR) != 0 && errno != ENOENT) {
				rc = fail_errno(err, errno, "remove directory", st, n);
				break;
			}
		} else if (unlinkat(fd, n, 0) != 0 && errno != ENOENT) {
			rc = fail_errno(err, errno, "remove", st, n);
			break;
		}
	}
	closedir(d);
	return rc;
}

static int posix_remove_dir(hm_storage *base, const char *dir, hm_error *err)
{
	posix_storage *st = (posix_storage *)base;
	int rc;
	int fd = open_dir(st, dir, &rc, err);
	if (fd < 0)
		return rc == HM_STORAGE_MISSING ? 0 : -1;
	rc = empty_dir(st, fd, dir, 0, err);
	close(fd);
	if (rc != 0 || !*dir)
		return rc;
	const char *leaf;
	int pfd = open_parent(st, dir, 0, &leaf, &rc, err);
	if (pfd < 0)
		return rc == HM_STORAGE_MISSING ? 0 : -1;
	if (unlinkat(pfd, leaf, AT_REMOVEDIR) != 0 && errno != ENOENT) {
		int e = errno;
		close(pfd);
		return fail_errno(err, e, "remove directory", st, dir);
	}
	fsync(pfd);
	close(pfd);
	return 0;
}

static int posix_sweep(hm_storage *base, const char *dir, int dry_run, hm_storage_partial_cb cb, void *ctx,
		       size_t *count, hm_error *err)
{
	posix_storage *st = (posix_storage *)base;
	int rc;
	int fd = open_dir(st, dir, &rc, err);
	if (fd < 0)
		return rc == HM_STORAGE_MISSING ? 0 : -1;
	char rel[HM_STORAGE_NAME_MAX + 1];
	snprintf(rel, sizeof rel, "%s", dir);
	walk wk = {st, 0, NULL, ctx, 1, dry_run, cb, count, dir};
	rc = walk_dir(&wk, fd, rel, 0, err);
	close(fd);
	return rc;
}

/* --- lock ----------------------------------------------------------------------------- */
static int posix_lock_acquire(hm_storage *base, const char *name, const char *owner, hm_storage_lock **out,
			      hm_error *err)
{
	posix_storage *st = (posix_storage *)base;
	const char *leaf;
	int rc;
	int dfd = open_parent(st, name, 1, &leaf, &rc, err);
	if (dfd < 0)
		return -1;
	int fd = openat(dfd, leaf, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	int e = errno;
	close(dfd);
	if (fd < 0)
		return fail_errno(err, e, "open the lock file", st, name);
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		e = errno;
		char holder[256] = "";
		ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
		close(fd);
		if (e != EWOULDBLOCK)
			return fail_errno(err, e, "lock", st, name);
		holder[n > 0 ? n : 0] = '\0';
		for (char *p = holder; *p; p++)
			if (*p == '\n')
				*p = p[1] ? ',' : '\0';
			else if ((unsigned char)*p < 0x20)
				*p = '?';
		hm_error_set(err, HM_EXIT_LOCKED, "another run holds the lock %s/%s (pid %s)",
			     st->base.location, name, holder[0] ? holder : "unknown");
		return hm_error_hint(err, "wait for it to finish; a killed run releases the lock by itself");
	}
	/* First line: the pid (what common/lock.c writes and reads); second: who. */
	char text[512];
	int len = snprintf(text, sizeof text, "%ld\n%.400s\n", (long)getpid(), owner);
	if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len) {
		e = errno;
		close(fd);
		return fail_errno(err, e, "write the lock file", st, name);
	}
	posix_lock *l = calloc(1, sizeof *l);
	if (!l) {
		close(fd);
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	}
	l->base.st = base;
	l->fd = fd;
	*out = &l->base;
	return 0;
}

static int posix_lock_check(hm_storage_lock *base, hm_error *err)
{
	(void)base;
	(void)err;
	return 0; /* the kernel holds a flock until we close it */
}

static void posix_lock_release(hm_storage_lock *base)
{
	posix_lock *l = (posix_lock *)base;
	flock(l->fd, LOCK_UN);
	close(l->fd);
	free(l);
}

static void posix_close(hm_storage *base)
{
	posix_storage *st = (posix_storage *)base;
	close(st->rootfd);
	free(st);
}

static const hm_storage_driver posix_driver = {
	"posix",	  posix_open_read,    posix_open_write,
	posix_stat,	  posix_list,	      posix_remove,
	posix_remove_dir, posix_sweep,	      posix_lock_acquire,
	posix_lock_check, posix_lock_release, posix_close,
};

int hm_storage_posix_open(const char *path, const hm_storage_options *opt, hm_storage **out, hm_error *err)
{
	if (!*path)
		return hm_error_set(err, HM_EXIT_USAGE, "empty repository path");
	if (strlen(path) >= sizeof((hm_storage *)0)->location)
		return hm_error_set(err, HM_EXIT_INPUT, "repository path too long");
	if (opt->create && hm_mkdir_p(path, 0700, err) != 0)
		return -1;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return hm_error_errno(err, errno, "open the repository", path);
	posix_storage *st = calloc(1, sizeof *st);
	if (!st) {
		close(fd);
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	}
	st->base.drv = &posix_driver;
	snprintf(st->base.location, sizeof st->base.location, "%s", path);
	st->rootfd = fd;
	*out = &st->base;
	return 0;
}
