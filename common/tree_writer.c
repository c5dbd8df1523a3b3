/* The tree writer. Members of one directory usually arrive together (base/16384/...), so
 * the fd of the last parent directory is kept: most members cost one openat or mkdirat.
 * File data goes through a write-behind queue (write_queue.h): the caller's decompression
 * and hashing overlap the write system calls; each file's queue is drained before its
 * owner, mode and time are set and it is closed, so a write error is that file's. */
#include "tree_writer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "write_queue.h"

/* A directory whose attributes are applied at the end. */
typedef struct deferred_dir {
	char *path;
	size_t depth;
	size_t seq;
	uint32_t mode, uid, gid;
	int64_t mtime;
} deferred_dir;

struct hm_tree_writer {
	int parentfd; /* not owned */
	char *name, *display;
	int rootfd;
	struct stat root_st;
	int chown_ok;
	hm_tree_owner owner;
	char *cache_path; /* relative path of cache_fd ("" = none) */
	int cache_fd;
	deferred_dir *dirs;
	size_t ndirs, capdirs;
	int fd; /* the regular file being written */
	hm_tree_item file;
	char *file_path;
	hm_wqueue *queue;    /* NULL until the first large file */
	uint64_t file_bytes; /* data of the open file so far */
	int file_queued;     /* some of it went through the queue */
};

/* Display path of rel for messages (static buffer per call site is enough: one error). */
static const char *disp(const hm_tree_writer *w, const char *rel, char *buf, size_t bufsz)
{
	if (!strcmp(rel, "."))
		snprintf(buf, bufsz, "%s", w->display);
	else
		snprintf(buf, bufsz, "%s/%s", w->display, rel);
	return buf;
}

static int fail(const hm_tree_writer *w, int e, const char *what, const char *rel, hm_error *err)
{
	char b[PATH_MAX + 64];
	return hm_error_errno(err, e, what, disp(w, rel, b, sizeof b));
}

int hm_tree_writer_new(hm_tree_writer **out, int parentfd, const char *name, const char *display,
		       const hm_tree_owner *owner, hm_error *err)
{
	hm_tree_writer *w = calloc(1, sizeof *w);
	*out = NULL;
	if (!w || !(w->name = strdup(name)) || !(w->display = strdup(display)) ||
	    !(w->cache_path = strdup(""))) {
		if (w) {
			free(w->name);
			free(w->display);
		}
		free(w);
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	}
	w->parentfd = parentfd;
	w->rootfd = w->cache_fd = w->fd = -1;
	if (owner)
		w->owner = *owner;
	w->chown_ok = geteuid() == 0 || w->owner.set;
	if (mkdirat(parentfd, name, 0700) != 0) {
		int e = errno;
		if (e == EEXIST)
			hm_error_set(err, HM_EXIT_INPUT, "cannot create \"%s\": it already exists", display);
		else
			hm_error_errno(err, e, "create directory", display);
		goto fail;
	}
	/* opened without following, then checked: a directory swapped in between (by someone
	 * who can write the parent) is not ours and not empty-and-0700 */
	if ((w->rootfd = hm_open_dir_at(parentfd, name, display, err)) < 0)
		goto fail_created;
	if (fstat(w->rootfd, &w->root_st) != 0) {
		hm_error_errno(err, errno, "stat", display);
		goto fail_created;
	}
	int dfd = dup(w->rootfd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	int entries = 0;
	if (d)
		rewinddir(d);
	for (struct dirent *de; d && (de = readdir(d)) != NULL;)
		entries += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	if (d)
		closedir(d);
	else if (dfd >= 0)
		close(dfd);
	if (!d || entries || w->root_st.st_uid != geteuid() || (w->root_st.st_mode & 077)) {
		hm_error_set(err, HM_EXIT_IO, "\"%s\" was replaced right after it was created", display);
		hm_error_hint(err, "someone who can write its parent directory swapped it; check who");
		goto fail; /* not ours: never remove it */
	}
	*out = w;
	return 0;
fail_created:
	unlinkat(parentfd, name, AT_REMOVEDIR);
fail:
	hm_tree_writer_free(w);
	return -1;
}

int hm_tree_writer_rootfd(const hm_tree_writer *w)
{
	return w->rootfd;
}

const struct stat *hm_tree_writer_root_stat(const hm_tree_writer *w)
{
	return &w->root_st;
}

/* Open the directory rel (relative to the top; "" = the top itself) component by
 * component, never through a symlink; with create, missing directories are made (0700)
 * and recorded with owner and time taken from like. Returns an fd the caller closes
 * (a dup of rootfd for the top), or -1. */
static int open_dir(hm_tree_writer *w, const char *rel, const hm_tree_item *like, hm_error *err);

static int defer_dir(hm_tree_writer *w, const char *path, const hm_tree_item *it, uint32_t mode,
		     hm_error *err)
{
	if (w->ndirs == w->capdirs) {
		size_t nc = w->capdirs ? w->capdirs * 2 : 256;
		deferred_dir *nd = realloc(w->dirs, nc * sizeof *nd);
		if (!nd)
			return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		w->dirs = nd;
		w->capdirs = nc;
	}
	deferred_dir *d = &w->dirs[w->ndirs];
	if (!(d->path = strdup(path)))
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	d->depth = 0;
	for (const char *p = path; *p; p++)
		d->depth += *p == '/';
	d->depth += strcmp(path, ".") != 0;
	d->seq = w->ndirs;
	d->mode = mode;
	d->uid = it->uid;
	d->gid = it->gid;
	d->mtime = it->mtime;
	w->ndirs++;
	return 0;
}

static int open_dir(hm_tree_writer *w, const char *rel, const hm_tree_item *like, hm_error *err)
{
	int cur = dup(w->rootfd);
	char comp[NAME_MAX + 1], sofar[PATH_MAX];
	size_t sl = 0;
	if (cur < 0)
		return fail(w, errno, "open directory", ".", err);
	for (const char *p = rel; *p;) {
		const char *s = strchr(p, '/');
		size_t n = s ? (size_t)(s - p) : strlen(p);
		if (n == 0 || n > NAME_MAX || sl + n + 2 > sizeof sofar) {
			close(cur);
			return hm_error_set(err, HM_EXIT_INTERNAL, "bad path \"%s\"", rel);
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		sl += (size_t)snprintf(sofar + sl, sizeof sofar - sl, "%s%s", sl ? "/" : "", comp);
		int fd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT && like) {
			if (mkdirat(cur, comp, 0700) != 0 && errno != EEXIST) {
				int e = errno;
				close(cur);
				return fail(w, e, "create directory", sofar, err);
			}
			if (defer_dir(w, sofar, like, 0700, err) != 0) {
				close(cur);
				return -1;
			}
			fd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		int e = errno;
		close(cur);
		if (fd < 0)
			return fail(w, e, "open directory", sofar, err);
		cur = fd;
		p = s ? s + 1 : p + n;
	}
	return cur;
}

/* The fd of the directory holding rel (cached), and rel's last component in *leaf. */
static int parent_of(hm_tree_writer *w, const hm_tree_item *it, const char **leaf, hm_error *err)
{
	const char *rel = it->path;
	const char *slash = strrchr(rel, '/');
	size_t pl = slash ? (size_t)(slash - rel) : 0;
	*leaf = slash ? slash + 1 : rel;
	if (w->cache_fd >= 0 && strlen(w->cache_path) == pl && !memcmp(w->cache_path, rel, pl))
		return w->cache_fd;
	char *p = strndup(rel, pl);
	if (!p)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	int fd = open_dir(w, p, it, err);
	if (fd < 0) {
		free(p);
		return -1;
	}
	if (w->cache_fd >= 0)
		close(w->cache_fd);
	free(w->cache_path);
	w->cache_path = p;
	w->cache_fd = fd;
	return fd;
}

static uid_t uid_of(const hm_tree_writer *w, uint32_t uid)
{
	return w->owner.set ? w->owner.uid : (uid_t)uid;
}

static gid_t gid_of(const hm_tree_writer *w, uint32_t gid)
{
	return w->owner.set ? w->owner.gid : (gid_t)gid;
}

int hm_tree_writer_add(hm_tree_writer *w, const hm_tree_item *it, hm_error *err)
{
	const char *leaf;
	if (w->fd >= 0)
		return hm_error_set(err, HM_EXIT_INTERNAL, "tree writer: a file is still open");
	if (!strcmp(it->path, ".")) /* the top: attributes only, at the end */
		return it->type == 'd'
			       ? defer_dir(w, ".", it, hm_tree_mode(it), err)
			       : hm_error_set(err, HM_EXIT_INTERNAL, "tree writer: \".\" is no directory");
	int pfd = parent_of(w, it, &leaf, err);
	if (pfd < 0)
		return -1;
	if (it->type == 'd') {
		if (mkdirat(pfd, leaf, 0700) != 0) {
			int e = errno;
			struct stat st;
			if (e != EEXIST || fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
			    !S_ISDIR(st.st_mode))
				return fail(w, e, "create directory", it->path, err);
			/* created for an earlier child (the rule allows that order): its record
			 * gets the archived attributes */
			for (size_t i = 0; i < w->ndirs; i++)
				if (!strcmp(w->dirs[i].path, it->path)) {
					w->dirs[i].mode = hm_tree_mode(it);
					w->dirs[i].uid = it->uid;
					w->dirs[i].gid = it->gid;
					w->dirs[i].mtime = it->mtime;
					return 0;
				}
		}
		return defer_dir(w, it->path, it, hm_tree_mode(it), err);
	}
	if (it->type == 'l') {
		struct timespec ts[2] = {{it->mtime, 0}, {it->mtime, 0}};
		if (symlinkat(it->target, pfd, leaf) != 0)
			return fail(w, errno, "create symlink", it->path, err);
		if (w->chown_ok &&
		    fchownat(pfd, leaf, uid_of(w, it->uid), gid_of(w, it->gid), AT_SYMLINK_NOFOLLOW) != 0)
			return fail(w, errno, "change owner of", it->path, err);
		if (utimensat(pfd, leaf, ts, AT_SYMLINK_NOFOLLOW) != 0)
			return fail(w, errno, "set mtime of", it->path, err);
		return 0;
	}
	w->fd = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (w->fd < 0)
		return fail(w, errno, "create", it->path, err);
	free(w->file_path);
	if (!(w->file_path = strdup(it->path))) {
		close(w->fd);
		w->fd = -1;
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	}
	w->file = *it;
	w->file.path = w->file_path;
	w->file_bytes = 0;
	w->file_queued = 0;
	w->file.target = NULL;
	return 0;
}

/* Write all of buf to fd now. 0 or an errno. */
static int write_now(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int hm_tree_writer_data(hm_tree_writer *w, const void *buf, size_t len, hm_error *err)
{
	int e;
	if (w->fd < 0)
		return hm_error_set(err, HM_EXIT_INTERNAL, "tree writer: no file open");
	/* a file's first slot's worth is written here: handing a small file to the thread
	 * and waiting for it would cost more than the write (and two wake-ups on a busy
	 * machine); after that, in order, through the queue */
	if (!w->file_queued && w->file_bytes + len <= HM_WQ_SLOT) {
		e = write_now(w->fd, buf, len);
	} else {
		if (!w->queue && hm_wqueue_new(&w->queue, err) != 0)
			return -1;
		w->file_queued = 1;
		e = hm_wqueue_write(w->queue, w->fd, buf, len);
	}
	w->file_bytes += len;
	return e ? fail(w, e, "write", w->file.path, err) : 0;
}

int hm_tree_writer_end_file(hm_tree_writer *w, hm_error *err)
{
	int fd = w->fd, rc = -1;
	struct timespec ts[2] = {{w->file.mtime, 0}, {w->file.mtime, 0}};
	if (fd < 0)
		return hm_error_set(err, HM_EXIT_INTERNAL, "tree writer: no file open");
	w->fd = -1;
	int we = w->file_queued ? hm_wqueue_drain(w->queue) : 0;
	/* owner before mode: a chown may clear mode bits */
	if (we != 0)
		fail(w, we, "write", w->file.path, err);
	else if (w->chown_ok && fchown(fd, uid_of(w, w->file.uid), gid_of(w, w->file.gid)) != 0)
		fail(w, errno, "change owner of", w->file.path, err);
	else if (fchmod(fd, hm_tree_mode(&w->file)) != 0)
		fail(w, errno, "chmod", w->file.path, err);
	else if (futimens(fd, ts) != 0)
		fail(w, errno, "set mtime of", w->file.path, err);
	else
		rc = 0;
	if (close(fd) != 0 && rc == 0)
		rc = fail(w, errno, "close", w->file.path, err);
	return rc;
}

/* Deepest first; among equals, later first. */
static int cmp_dir(const void *a, const void *b)
{
	const deferred_dir *x = a, *y = b;
	if (x->depth != y->depth)
		return x->depth < y->depth ? 1 : -1;
	return x->seq < y->seq ? 1 : (x->seq > y->seq ? -1 : 0);
}

int hm_tree_writer_finish(hm_tree_writer *w, hm_error *err)
{
	if (w->fd >= 0)
		return hm_error_set(err, HM_EXIT_INTERNAL, "tree writer: a file is still open");
	if (w->cache_fd >= 0) {
		close(w->cache_fd);
		w->cache_fd = -1;
		w->cache_path[0] = '\0';
	}
	if (w->ndirs)
		qsort(w->dirs, w->ndirs, sizeof *w->dirs, cmp_dir);
	for (size_t i = 0; i < w->ndirs; i++) {
		deferred_dir *d = &w->dirs[i];
		struct timespec ts[2] = {{d->mtime, 0}, {d->mtime, 0}};
		int fd = open_dir(w, strcmp(d->path, ".") ? d->path : "", NULL, err);
		if (fd < 0)
			return -1;
		int rc = 0;
		if (w->chown_ok && fchown(fd, uid_of(w, d->uid), gid_of(w, d->gid)) != 0)
			rc = fail(w, errno, "change owner of", d->path, err);
		else if (fchmod(fd, d->mode) != 0)
			rc = fail(w, errno, "chmod", d->path, err);
		else if (futimens(fd, ts) != 0)
			rc = fail(w, errno, "set mtime of", d->path, err);
		close(fd);
		if (rc != 0)
			return -1;
	}
	if (syncfs(w->rootfd) != 0)
		return fail(w, errno, "sync", ".", err);
	return 0;
}

void hm_tree_writer_free(hm_tree_writer *w)
{
	if (!w)
		return;
	hm_wqueue_free(w->queue); /* its last writes are done before any fd is closed */
	if (w->fd >= 0)
		close(w->fd);
	if (w->cache_fd >= 0)
		close(w->cache_fd);
	if (w->rootfd >= 0)
		close(w->rootfd);
	for (size_t i = 0; i < w->ndirs; i++)
		free(w->dirs[i].path);
	free(w->dirs);
	free(w->cache_path);
	free(w->file_path);
	free(w->name);
	free(w->display);
	free(w);
}

void hm_tree_writer_abort(hm_tree_writer *w)
{
	hm_error ignored;
	struct stat st;
	if (!w)
		return;
	hm_wqueue_free(w->queue); /* no write may land after the tree is emptied */
	w->queue = NULL;
	if (w->rootfd >= 0) {
		/* emptied through its fd (wherever it is now); removed by name only if that name
		 * is still this directory */
		hm_empty_dir_fd(w->rootfd, w->display, &ignored);
		if (fstatat(w->parentfd, w->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) &&
		    st.st_dev == w->root_st.st_dev && st.st_ino == w->root_st.st_ino)
			unlinkat(w->parentfd, w->name, AT_REMOVEDIR);
	}
	hm_tree_writer_free(w);
}
