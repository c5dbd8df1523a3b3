/* Repository layout and bookkeeping. The rename of a finished backup directory out of .tmp
 * is the only commit point: a run killed at any moment leaves either a complete backup or
 * litter under .tmp that the next locked run removes. Every access goes through the
 * repository's directory fd (and O_NOFOLLOW below it): the repository is private to its
 * user, but what is already inside it may have been planted or copied from elsewhere. */
#include "repo.h"
#include "repo_int.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "../common/fsutil.h"

/* Open (creating it when missing) REPO/.tmp, check it and empty it: the caller holds
 * .lock, so nothing there is live. */
static int open_tmp(hm_repo *r, hm_error *err)
{
	char disp[4200];
	struct stat st;
	snprintf(disp, sizeof disp, "%s/.tmp", r->path);
	if (mkdirat(r->fd, ".tmp", 0700) != 0 && errno != EEXIST)
		return hm_error_errno(err, errno, "create directory", disp);
	if ((r->tmpfd = hm_open_dir_at(r->fd, ".tmp", disp, err)) < 0)
		return -1;
	if (fstat(r->tmpfd, &st) != 0)
		return hm_error_errno(err, errno, "stat", disp);
	if (hm_check_private_dir(&st, "the repository's work area", disp, err) != 0)
		return -1;
	return hm_empty_dir_fd(r->tmpfd, disp, err);
}

/* Take one of the repository's lock files. */
static int take(hm_repo *r, hm_lock *l, const char *name, int shared, const char *busy, const char *hint,
		hm_error *err)
{
	char disp[4200];
	snprintf(disp, sizeof disp, "%s/%s", r->path, name);
	if (hm_lock_acquire_at(l, r->fd, name, disp, shared, err) == 0)
		return 0;
	if (err->code == HM_EXIT_LOCKED && busy) {
		hm_error_set(err, HM_EXIT_LOCKED, "%s \"%s\" (lock %s)", busy, r->path, disp);
		hm_error_hint(err, "%s", hint);
	}
	return -1;
}

int hm_repo_is_remote(const char *location)
{
	return hm_storage_is_url(location);
}

/* Remove the work directories hive-migrate-PID-* under tmp of runs that died (kill -9):
 * the pid is gone and the directory is ours; anything else is left alone. */
static void remove_stale_stages(const char *tmp)
{
	int pfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = pfd >= 0 ? fdopendir(pfd) : NULL;
	if (!d) {
		if (pfd >= 0)
			close(pfd);
		return;
	}
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		char *end, disp[4400];
		struct stat st;
		hm_error ignored;
		if (strncmp(e->d_name, "hive-migrate-", 13) != 0)
			continue;
		long pid = strtol(e->d_name + 13, &end, 10);
		if (end == e->d_name + 13 || *end != '-' || pid <= 0 || pid == (long)getpid())
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue; /* alive, or not ours to signal */
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode) ||
		    st.st_uid != geteuid())
			continue;
		snprintf(disp, sizeof disp, "%s/%s", tmp, e->d_name);
		hm_rmtree_at(dirfd(d), e->d_name, disp, &ignored);
	}
	closedir(d);
}

/* Where work directories go: $TMPDIR, else /var/tmp (room for an archive; /tmp may be RAM). */
static const char *stage_parent(void)
{
	const char *t = getenv("TMPDIR");
	return t && t[0] ? t : "/var/tmp";
}

int hm_repo_stage_fd(const hm_repo *cr, hm_error *err)
{
	hm_repo *r = (hm_repo *)cr; /* the stage is a cache created on first use */
	if (r->stagefd >= 0)
		return r->stagefd;
	const char *t = stage_parent();
	if (snprintf(r->stage, sizeof r->stage, "%s/hive-migrate-%ld-XXXXXX", t, (long)getpid()) >=
	    (int)sizeof r->stage) {
		r->stage[0] = '\0';
		return hm_error_set(err, HM_EXIT_INPUT, "TMPDIR is too long");
	}
	if (!mkdtemp(r->stage)) {
		int e = errno;
		char disp[4200];
		snprintf(disp, sizeof disp, "%s", r->stage);
		r->stage[0] = '\0';
		hm_error_errno(err, e, "create a work directory", disp);
		return hm_error_hint(err, "set TMPDIR to a writable directory with room for one archive");
	}
	if ((r->stagefd = open(r->stage, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		hm_error_errno(err, errno, "open", r->stage);
		rmdir(r->stage);
		r->stage[0] = '\0';
		return -1;
	}
	return r->stagefd;
}

/* Remove the stage (and everything in it). */
static void drop_stage(hm_repo *r)
{
	if (r->stagefd >= 0)
		close(r->stagefd);
	r->stagefd = -1;
	if (r->stage[0]) {
		hm_error ignored;
		hm_rmtree(r->stage, &ignored);
		r->stage[0] = '\0';
	}
}

static int hm_repo_open_local(hm_repo *r, const char *path, int create, hm_repo_lock lock, hm_error *err);

int hm_repo_open(hm_repo *r, const char *path, const hm_repo_conn *conn, int create, hm_repo_lock lock,
		 hm_error *err)
{
	memset(r, 0, sizeof *r);
	r->fd = r->tmpfd = r->stagefd = r->lock.fd = r->restore_lock.fd = -1;
	if (snprintf(r->path, sizeof r->path, "%s", path) >= (int)sizeof r->path)
		return hm_error_set(err, HM_EXIT_INPUT, "repository path too long: \"%s\"", path);
	int rc = hm_repo_is_remote(path) ? hm_repo_s3_open(r, path, conn, create, lock, err)
					 : hm_repo_open_local(r, path, create, lock, err);
	/* a locked run: the work directories of runs that were killed go */
	if (rc == 0 && (lock == HM_REPO_EXCLUSIVE || lock == HM_REPO_PRUNE))
		remove_stale_stages(stage_parent());
	return rc;
}

static int hm_repo_open_local(hm_repo *r, const char *path, int create, hm_repo_lock lock, hm_error *err)
{
	struct stat st;
	/* REPO itself is the path the user gave (it may be a symlink to a disk elsewhere) */
	r->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->fd < 0 && errno == ENOENT && create) {
		if (hm_mkdir_p(path, 0700, err) != 0 || hm_fsync_parent(path, err) != 0)
			return -1;
		r->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (r->fd < 0) {
		if (errno == ENOTDIR)
			return hm_error_set(err, HM_EXIT_INPUT, "repository \"%s\" is not a directory", path);
		hm_error_errno(err, errno, "open repository", path);
		return hm_error_hint(err, "run \"hive-migrate backup --repo %s\" to create it", path);
	}
	if (fstat(r->fd, &st) != 0) {
		hm_error_errno(err, errno, "stat", path);
		hm_repo_close(r);
		return -1;
	}
	if (hm_check_private_dir(&st, "repository", path, err) != 0) {
		hm_repo_close(r);
		return -1;
	}
	int rc = 0;
	if (lock == HM_REPO_EXCLUSIVE || lock == HM_REPO_PRUNE)
		rc = take(r, &r->lock, ".lock", 0, NULL, NULL, err);
	if (rc == 0 && lock == HM_REPO_PRUNE)
		rc = take(r, &r->restore_lock, ".restore-lock", 0, "a restore is reading from repository",
			  "wait for it to finish: prune never deletes a backup that is being restored", err);
	if (rc == 0 && lock == HM_REPO_RESTORE)
		rc = take(r, &r->restore_lock, ".restore-lock", 1, "prune is deleting backups in repository",
			  "wait for it to finish, then restore", err);
	if (rc == 0 && (lock == HM_REPO_EXCLUSIVE || lock == HM_REPO_PRUNE))
		rc = open_tmp(r, err);
	if (rc != 0)
		hm_repo_close(r);
	return rc;
}

void hm_repo_close(hm_repo *r)
{
	drop_stage(r);
	if (r->st) {
		hm_repo_s3_close(r);
		return;
	}
	hm_lock_release(&r->restore_lock);
	hm_lock_release(&r->lock);
	if (r->tmpfd >= 0)
		close(r->tmpfd);
	if (r->fd >= 0)
		close(r->fd);
	r->fd = r->tmpfd = -1;
}

int hm_repo_tmpfd(const hm_repo *r)
{
	if (r->st) {
		hm_error ignored;
		return hm_repo_stage_fd(r, &ignored);
	}
	return r->tmpfd;
}

const char *hm_repo_tmp_path(const hm_repo *r, char *buf, size_t bufsz)
{
	hm_error ignored;
	if (r->st && hm_repo_stage_fd(r, &ignored) >= 0)
		snprintf(buf, bufsz, "%s", r->stage);
	else if (r->st)
		snprintf(buf, bufsz, "(no work directory)");
	else
		snprintf(buf, bufsz, "%s/.tmp", r->path);
	return buf;
}

int hm_repo_file(const hm_repo *r, const char *id, const char *name, char *out, size_t outsz, hm_error *err)
{
	int n = snprintf(out, outsz, "%s/%s/%s", r->path, id, name);
	if (n < 0 || (size_t)n >= outsz)
		return hm_error_set(err, HM_EXIT_INPUT, "path too long in repository \"%s\"", r->path);
	return 0;
}

/* The directory of backup id, opened without following. The fd, or -1. */
static int open_backup_dir(const hm_repo *r, const char *id, hm_error *err)
{
	char disp[4200];
	snprintf(disp, sizeof disp, "%s/%s", r->path, id);
	if (!id[0] || id[0] == '.' || strchr(id, '/'))
		return hm_error_set(err, HM_EXIT_INPUT, "\"%s\" is not a backup id", id);
	return hm_open_dir_at(r->fd, id, disp, err);
}

int hm_repo_open_file(const hm_repo *r, const char *id, const char *name, int flags, hm_error *err)
{
	char disp[4600];
	hm_repo_file(r, id, name, disp, sizeof disp, err);
	int dfd = open_backup_dir(r, id, err);
	if (dfd < 0)
		return -1;
	int fd = openat(dfd, name, flags | O_NOFOLLOW | O_CLOEXEC, 0600);
	int e = errno;
	close(dfd);
	if (fd < 0) {
		if (e == ELOOP)
			return hm_error_set(err, HM_EXIT_PERMISSION,
					    "\"%s\" is a symlink, which is never followed", disp);
		return hm_error_errno(err, e, "open", disp);
	}
	return fd;
}

/* Order metadata by id (ids start with the UTC time, so this is chronological). */
int hm_repo_cmp_meta(const void *a, const void *b)
{
	return strcmp(((const hm_backup_meta *)a)->id, ((const hm_backup_meta *)b)->id);
}

int hm_repo_decode_entry(const char *name, const char *text, const char *disp, hm_backup_meta *m, hm_error *e)
{
	if (hm_meta_decode(text, disp, m, e) != 0)
		return -1;
	if (strcmp(m->id, name) != 0)
		return hm_error_set(e, HM_EXIT_CORRUPT, "%s names another backup (\"%.60s\")", disp, m->id);
	return 0;
}

void hm_repo_mark_broken(hm_backup_meta *m, const char *name, const hm_error *e)
{
	/* shown as broken, so it is never silently lost, pruned or taken for "latest" */
	hm_meta_init(m);
	snprintf(m->id, sizeof m->id, "%.63s", name);
	snprintf(m->kind, sizeof m->kind, "unknown");
	m->verified = 0;
	m->broken = 1;
	snprintf(m->verify_error, sizeof m->verify_error, "%s", e->message);
}

/* Read backup.json of the directory name into m. 1: a backup (m filled; broken when it
 * cannot be read or decoded); 0: not a backup (no such directory or no backup.json). */
static int read_entry(const hm_repo *r, const char *name, hm_backup_meta *m)
{
	char disp[4600], *text = NULL;
	hm_error e = {0};
	struct stat st;
	int dfd = openat(r->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return 0; /* a file, or a symlink: not a backup, never followed */
	snprintf(disp, sizeof disp, "%s/%s/%s", r->path, name, HM_REPO_META);
	int fd = openat(dfd, HM_REPO_META, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	int oe = errno;
	close(dfd);
	if (fd < 0 && oe == ENOENT)
		return 0;
	if (fd < 0 && oe == ELOOP)
		hm_error_set(&e, HM_EXIT_CORRUPT, "%s is a symlink, which is never followed", disp);
	else if (fd < 0)
		hm_error_errno(&e, oe, "open", disp);
	else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		hm_error_set(&e, HM_EXIT_CORRUPT, "%s is not a regular file", disp);
	else if (hm_read_fd(fd, disp, HM_REPO_META_MAX, &text, NULL, &e) == 0 &&
		 hm_repo_decode_entry(name, text, disp, m, &e) == 0) {
		free(text);
		close(fd);
		return 1;
	}
	free(text);
	if (fd >= 0)
		close(fd);
	hm_repo_mark_broken(m, name, &e);
	return 1;
}

int hm_repo_list(const hm_repo *r, hm_backup_meta **out, size_t *n, hm_error *err)
{
	int dfd = dup(r->fd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	hm_backup_meta *v = NULL;
	size_t cnt = 0, cap = 0;
	*out = NULL;
	*n = 0;
	if (r->st) {
		if (d)
			closedir(d);
		return hm_repo_s3_list(r, out, n, err);
	}
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return hm_error_errno(err, errno, "open repository", r->path);
	}
	/* rewinding matters: the fd is shared by every fdopendir on it */
	rewinddir(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			hm_backup_meta *nv = realloc(v, cap * sizeof *v);
			if (!nv) {
				free(v);
				closedir(d);
				return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory listing \"%s\"",
						    r->path);
			}
			v = nv;
		}
		if (read_entry(r, e->d_name, &v[cnt]))
			cnt++;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof *v, hm_repo_cmp_meta);
	*out = v;
	*n = cnt;
	return 0;
}

int hm_repo_find(const hm_repo *r, const char *id, hm_backup_meta *out, hm_error *err)
{
	hm_backup_meta *v;
	size_t n, hit = (size_t)-1, hits = 0;
	int latest = !strcmp(id, "latest");
	if (hm_repo_list(r, &v, &n, err) != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (latest) {
			if (!v[i].broken) {
				hit = i;
				hits = 1;
			}
		} else if (!strcmp(v[i].id, id)) {
			hit = i;
			hits = 1;
			break;
		} else if (!strncmp(v[i].id, id, strlen(id)) ||
			   (!v[i].broken && v[i].uuid[0] && !strncmp(v[i].uuid, id, strlen(id)))) {
			hit = i;
			hits++;
		}
	}
	if (hits == 1 && hit != (size_t)-1)
		*out = v[hit];
	free(v);
	if (hits == 0) {
		hm_error_set(err, HM_EXIT_NOT_FOUND, "no %sbackup \"%s\" in repository \"%s\"",
			     latest ? "readable " : "", id, r->path);
		return hm_error_hint(err, "list them with: hive-migrate backups list --repo %s", r->path);
	}
	if (hits > 1)
		return hm_error_set(err, HM_EXIT_USAGE, "backup id \"%s\" is ambiguous in \"%s\"", id,
				    r->path);
	return 0;
}

int hm_repo_save_meta(const hm_repo *r, const hm_backup_meta *m, hm_error *err)
{
	char p[4500];
	if (r->st)
		return hm_repo_s3_save_meta(r, m, 0, err);
	if (hm_repo_file(r, m->id, HM_REPO_META, p, sizeof p, err) != 0)
		return -1;
	int dfd = open_backup_dir(r, m->id, err);
	if (dfd < 0)
		return -1;
	char *text = hm_meta_encode_public(m, 1);
	int rc = text ? hm_write_file_atomic_at(dfd, HM_REPO_META, p, text, strlen(text), 0600, err)
		      : hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	free(text);
	close(dfd);
	return rc;
}

/* REPO/.tmp must be open (the caller holds .lock). */
static int need_tmp(const hm_repo *r, hm_error *err)
{
	return r->tmpfd >= 0 || r->st
		       ? 0
		       : hm_error_set(err, HM_EXIT_INTERNAL, "repository \"%s\" is not locked", r->path);
}

int hm_repo_partial(const hm_repo *r, const char *id, char *out, size_t outsz, hm_error *err)
{
	char tp[4200];
	int n = snprintf(out, outsz, "%s/%s", hm_repo_tmp_path(r, tp, sizeof tp), id);
	if (n < 0 || (size_t)n >= outsz)
		return hm_error_set(err, HM_EXIT_INPUT, "path too long in repository \"%s\"", r->path);
	if (need_tmp(r, err) != 0)
		return -1;
	int tfd = r->st ? hm_repo_stage_fd(r, err) : r->tmpfd;
	if (tfd < 0)
		return -1;
	if (mkdirat(tfd, id, 0700) != 0)
		return hm_error_errno(err, errno, "create directory", out);
	return 0;
}

int hm_repo_commit(const hm_repo *r, const char *partial, const hm_backup_meta *m, hm_error *err)
{
	char dst[4500], mp[4700];
	const char *id = m->id;
	if (r->st) {
		if (hm_repo_s3_save_meta(r, m, 1, err) != 0)
			return -1;
		hm_error ignored;
		hm_rmtree(partial, &ignored);
		return 0;
	}
	snprintf(dst, sizeof dst, "%s/%s", r->path, id);
	if (need_tmp(r, err) != 0)
		return -1;
	int pfd = hm_open_dir_at(r->tmpfd, id, partial, err);
	if (pfd < 0)
		return -1;
	char *j = hm_meta_encode_public(m, 1);
	snprintf(mp, sizeof mp, "%s/%s", partial, HM_REPO_META);
	int rc = j ? hm_write_file_atomic_at(pfd, HM_REPO_META, mp, j, strlen(j), 0600, err)
		   : hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	free(j);
	if (rc != 0) {
		close(pfd);
		return -1;
	}
	rc = fsync(pfd);
	close(pfd);
	if (rc != 0)
		return hm_error_errno(err, errno, "fsync directory", partial);
	if (renameat(r->tmpfd, id, r->fd, id) != 0)
		return hm_error_errno(err, errno, "rename into place", dst);
	if (fsync(r->fd) != 0)
		return hm_error_errno(err, errno, "fsync directory", r->path);
	return 0;
}

int hm_repo_remove(const hm_repo *r, const char *id, hm_error *err)
{
	char src[4500], dst[200], disp[4600];
	if (r->st)
		return hm_repo_s3_remove(r, id, err);
	snprintf(src, sizeof src, "%s/%s", r->path, id);
	if (snprintf(dst, sizeof dst, "removing-%s", id) >= (int)sizeof dst)
		return hm_error_set(err, HM_EXIT_INPUT, "backup id too long: \"%s\"", id);
	snprintf(disp, sizeof disp, "%s/.tmp/%s", r->path, dst);
	if (need_tmp(r, err) != 0 || hm_rmtree_at(r->tmpfd, dst, disp, err) != 0)
		return -1;
	if (renameat(r->fd, id, r->tmpfd, dst) != 0)
		return hm_error_errno(err, errno, "move aside for removal", src);
	if (fsync(r->fd) != 0)
		return hm_error_errno(err, errno, "fsync directory", r->path);
	return hm_rmtree_at(r->tmpfd, dst, disp, err);
}

void hm_repo_new_id(time_t t, char id[64], char uuid[40])
{
	uuid_t u;
	struct tm tm;
	struct timespec now;
	char ts[32];
	uuid_generate(u);
	uuid_unparse_lower(u, uuid);
	/* milliseconds keep ids in start order even for runs within the same second */
	clock_gettime(CLOCK_REALTIME, &now);
	if (now.tv_sec != t)
		now.tv_nsec = 0;
	gmtime_r(&t, &tm);
	strftime(ts, sizeof ts, "%Y%m%dT%H%M%S", &tm);
	snprintf(id, 64, "%s.%03ldZ-%.8s", ts, now.tv_nsec / 1000000, uuid);
}
