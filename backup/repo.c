/* Repository layout and bookkeeping. The rename of a finished backup directory out of .tmp
 * is the only commit point: a run killed at any moment leaves either a complete backup or
 * litter under .tmp that the next locked run removes. */
#include "repo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "../common/fsutil.h"

/* Delete everything under REPO/.tmp (caller holds the lock, so nothing there is live). */
static int clear_tmp(const hm_repo *r, hm_error *err)
{
	char tmp[4200], p[4500];
	if (hm_path_join(tmp, sizeof tmp, r->path, ".tmp", err) != 0)
		return -1;
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
		return hm_error_errno(err, errno, "create directory", tmp);
	DIR *d = opendir(tmp);
	if (!d)
		return hm_error_errno(err, errno, "open directory", tmp);
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof p, "%s/%s", tmp, e->d_name);
		if (hm_rmtree(p, err) != 0) {
			rc = -1;
			break;
		}
	}
	closedir(d);
	return rc;
}

int hm_repo_open(hm_repo *r, const char *path, int create, int lock, hm_error *err)
{
	struct stat st;
	char lp[4200];
	memset(r, 0, sizeof *r);
	r->lock.fd = -1;
	if (snprintf(r->path, sizeof r->path, "%s", path) >= (int)sizeof r->path)
		return hm_error_set(err, HM_EXIT_INPUT, "repository path too long: \"%s\"", path);
	if (stat(path, &st) != 0) {
		if (errno != ENOENT || !create) {
			hm_error_errno(err, errno, "open repository", path);
			return hm_error_hint(err, "run \"hive-migrate backup --repo %s\" to create it", path);
		}
		if (hm_mkdir_p(path, 0700, err) != 0 || chmod(path, 0700) != 0)
			return err->code ? -1 : hm_error_errno(err, errno, "chmod", path);
		if (hm_fsync_parent(path, err) != 0)
			return -1;
	} else if (!S_ISDIR(st.st_mode)) {
		return hm_error_set(err, HM_EXIT_INPUT, "repository \"%s\" is not a directory", path);
	}
	if (!lock)
		return 0;
	if (hm_path_join(lp, sizeof lp, path, ".lock", err) != 0 || hm_lock_acquire(&r->lock, lp, err) != 0)
		return -1;
	if (clear_tmp(r, err) != 0) {
		hm_repo_close(r);
		return -1;
	}
	return 0;
}

void hm_repo_close(hm_repo *r)
{
	hm_lock_release(&r->lock);
}

int hm_repo_file(const hm_repo *r, const char *id, const char *name, char *out, size_t outsz, hm_error *err)
{
	int n = snprintf(out, outsz, "%s/%s/%s", r->path, id, name);
	if (n < 0 || (size_t)n >= outsz)
		return hm_error_set(err, HM_EXIT_INPUT, "path too long in repository \"%s\"", r->path);
	return 0;
}

/* Order metadata by id (ids start with the UTC time, so this is chronological). */
static int cmp_meta(const void *a, const void *b)
{
	return strcmp(((const hm_backup_meta *)a)->id, ((const hm_backup_meta *)b)->id);
}

int hm_repo_list(const hm_repo *r, hm_backup_meta **out, size_t *n, hm_error *err)
{
	DIR *d = opendir(r->path);
	hm_backup_meta *v = NULL;
	size_t cnt = 0, cap = 0;
	char p[4500];
	*out = NULL;
	*n = 0;
	if (!d)
		return hm_error_errno(err, errno, "open repository", r->path);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s/%s", r->path, e->d_name, HM_REPO_META);
		char *text = NULL;
		hm_error ignored;
		if (hm_read_file(p, 1 << 20, &text, NULL, &ignored) != 0)
			continue; /* not a backup directory */
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			hm_backup_meta *nv = realloc(v, cap * sizeof *v);
			if (!nv) {
				free(text);
				free(v);
				closedir(d);
				return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory listing \"%s\"",
						    r->path);
			}
			v = nv;
		}
		/* an unreadable metadata file: shown as a failed backup so it is not silently lost */
		if (hm_meta_decode(text, p, &v[cnt], &ignored) != 0) {
			hm_meta_init(&v[cnt]);
			snprintf(v[cnt].id, sizeof v[cnt].id, "%.60s", e->d_name);
			snprintf(v[cnt].kind, sizeof v[cnt].kind, "unknown");
			v[cnt].verified = 0;
			snprintf(v[cnt].verify_error, sizeof v[cnt].verify_error, "%s", ignored.message);
		} else if (strcmp(v[cnt].id, e->d_name) != 0) {
			free(text);
			continue; /* a copied or renamed directory: not ours */
		}
		free(text);
		cnt++;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof *v, cmp_meta);
	*out = v;
	*n = cnt;
	return 0;
}

int hm_repo_find(const hm_repo *r, const char *id, hm_backup_meta *out, hm_error *err)
{
	hm_backup_meta *v;
	size_t n, hit = (size_t)-1, hits = 0;
	if (hm_repo_list(r, &v, &n, err) != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(id, "latest") || !strcmp(v[i].id, id)) {
			hit = i;
			hits = 1;
			if (strcmp(id, "latest") != 0)
				break;
		} else if (!strncmp(v[i].id, id, strlen(id)) || !strncmp(v[i].uuid, id, strlen(id))) {
			hit = i;
			hits++;
		}
	}
	if (hits == 1 && hit != (size_t)-1)
		*out = v[hit];
	free(v);
	if (hits == 0) {
		hm_error_set(err, HM_EXIT_NOT_FOUND, "no backup \"%s\" in repository \"%s\"", id, r->path);
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
	if (hm_repo_file(r, m->id, HM_REPO_META, p, sizeof p, err) != 0)
		return -1;
	char *text = hm_meta_encode(m, 1);
	if (!text)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	int rc = hm_write_file_atomic(p, text, strlen(text), 0600, err);
	free(text);
	return rc;
}

int hm_repo_partial(const hm_repo *r, const char *id, char *out, size_t outsz, hm_error *err)
{
	int n = snprintf(out, outsz, "%s/.tmp/%s", r->path, id);
	if (n < 0 || (size_t)n >= outsz)
		return hm_error_set(err, HM_EXIT_INPUT, "path too long in repository \"%s\"", r->path);
	if (mkdir(out, 0700) != 0)
		return hm_error_errno(err, errno, "create directory", out);
	return 0;
}

int hm_repo_commit(const hm_repo *r, const char *partial, const char *id, hm_error *err)
{
	char dst[4500];
	snprintf(dst, sizeof dst, "%s/%s", r->path, id);
	if (hm_fsync_dir(partial, err) != 0)
		return -1;
	if (rename(partial, dst) != 0)
		return hm_error_errno(err, errno, "rename into place", dst);
	return hm_fsync_dir(r->path, err);
}

int hm_repo_remove(const hm_repo *r, const char *id, hm_error *err)
{
	char src[4500], tmp[4500], dst[4600];
	snprintf(src, sizeof src, "%s/%s", r->path, id);
	snprintf(tmp, sizeof tmp, "%s/.tmp", r->path);
	snprintf(dst, sizeof dst, "%s/removing-%s", tmp, id);
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
		return hm_error_errno(err, errno, "create directory", tmp);
	if (hm_rmtree(dst, err) != 0)
		return -1;
	if (rename(src, dst) != 0)
		return hm_error_errno(err, errno, "move aside for removal", src);
	if (hm_fsync_dir(r->path, err) != 0)
		return -1;
	return hm_rmtree(dst, err);
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
