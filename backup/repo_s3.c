/* The repository in an object store (s3://BUCKET/PREFIX) through backup/storage. There is
 * no rename, so the order of writes is the commit protocol: a backup's archive object
 * first, its backup.json last (PUT If-None-Match: *), and on removal backup.json first.
 * A directory without backup.json is therefore never a backup: list skips it, and the
 * next run that holds the lock (backup, verify, prune) removes it, together with the
 * multipart uploads that killed runs left incomplete. The lock is the storage's lease
 * object PREFIX/.lock (storage.h); docs/backup.md says what it does not protect against. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/fsutil.h"
#include "repo_int.h"

int hm_repo_s3_fail(hm_error *err)
{
	if (err->code == HM_EXIT_IO)
		err->code = HM_EXIT_STORAGE;
	return -1;
}

typedef struct dirs {
	char (*v)[HM_STORAGE_NAME_MAX + 1];
	size_t n, cap;
} dirs;

/* List callback: collect one-level directories (candidate backups). */
static int collect_dir(void *ctx, const hm_storage_info *info, hm_error *err)
{
	dirs *d = ctx;
	if (!info->is_dir || info->name[0] == '.')
		return 0;
	if (d->n == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 16;
		void *nv = realloc(d->v, nc * sizeof *d->v);
		if (!nv)
			return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		d->v = nv;
		d->cap = nc;
	}
	snprintf(d->v[d->n++], HM_STORAGE_NAME_MAX + 1, "%s", info->name);
	return 0;
}

static int list_dirs(const hm_repo *r, dirs *d, hm_error *err)
{
	memset(d, 0, sizeof *d);
	if (hm_storage_list(r->st, "", 0, collect_dir, d, err) != 0) {
		free(d->v);
		d->v = NULL;
		return hm_repo_s3_fail(err);
	}
	return 0;
}

/* backup.json of directory name: 1 a backup (m filled, maybe broken), 0 none, -1 error. */
static int read_entry(const hm_repo *r, const char *name, hm_backup_meta *m, hm_error *err)
{
	char key[HM_STORAGE_NAME_MAX + 32], disp[HM_STORAGE_NAME_MAX + 4200], *text = NULL;
	size_t len;
	hm_error e = {0};
	snprintf(key, sizeof key, "%s/%s", name, HM_REPO_META);
	snprintf(disp, sizeof disp, "%s/%s", r->path, key);
	int rc = hm_storage_get(r->st, key, HM_REPO_META_MAX, &text, &len, &e);
	if (rc == HM_STORAGE_MISSING)
		return 0;
	if (rc != 0 && e.code != HM_EXIT_CORRUPT && e.code != HM_EXIT_INPUT) {
		*err = e;
		return hm_repo_s3_fail(err);
	}
	if (rc == 0 && strlen(text) != len)
		rc = hm_error_set(&e, HM_EXIT_CORRUPT, "%s holds a NUL byte", disp);
	if (rc == 0 && hm_repo_decode_entry(name, text, disp, m, &e) == 0) {
		free(text);
		return 1;
	}
	free(text);
	hm_repo_mark_broken(m, name, &e);
	return 1;
}

int hm_repo_s3_list(const hm_repo *r, hm_backup_meta **out, size_t *n, hm_error *err)
{
	dirs d;
	hm_backup_meta *v = NULL;
	size_t cnt = 0;
	*out = NULL;
	*n = 0;
	if (list_dirs(r, &d, err) != 0)
		return -1;
	if (d.n && !(v = calloc(d.n, sizeof *v))) {
		free(d.v);
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory listing \"%s\"", r->path);
	}
	for (size_t i = 0; i < d.n; i++) {
		int rc = read_entry(r, d.v[i], &v[cnt], err);
		if (rc < 0) {
			free(v);
			free(d.v);
			return -1;
		}
		cnt += (size_t)rc;
	}
	free(d.v);
	if (cnt)
		qsort(v, cnt, sizeof *v, hm_repo_cmp_meta);
	*out = v;
	*n = cnt;
	return 0;
}

int hm_repo_s3_save_meta(const hm_repo *r, const hm_backup_meta *m, int exclusive, hm_error *err)
{
	char key[200];
	if (snprintf(key, sizeof key, "%s/%s", m->id, HM_REPO_META) >= (int)sizeof key)
		return hm_error_set(err, HM_EXIT_INPUT, "backup id too long: \"%s\"", m->id);
	/* the commit point: only while the lease is still ours */
	if (r->slock && hm_storage_lock_check(r->slock, err) != 0)
		return hm_repo_s3_fail(err);
	char *j = hm_meta_encode_public(m, 1);
	if (!j)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	int rc = hm_storage_put(r->st, key, j, strlen(j), exclusive ? HM_STORAGE_EXCLUSIVE : 0, err);
	free(j);
	return rc == 0 ? 0 : hm_repo_s3_fail(err);
}

int hm_repo_s3_remove(const hm_repo *r, const char *id, hm_error *err)
{
	char key[200];
	const char *names[1] = {key};
	if (snprintf(key, sizeof key, "%s/%s", id, HM_REPO_META) >= (int)sizeof key)
		return hm_error_set(err, HM_EXIT_INPUT, "backup id too long: \"%s\"", id);
	/* backup.json first: the backup leaves the list at once; the rest is a leftover that
	 * the next locked run removes if this one dies here */
	if (hm_storage_remove(r->st, names, 1, err) != 0 || hm_storage_remove_dir(r->st, id, err) != 0)
		return hm_repo_s3_fail(err);
	return 0;
}

/* Sweep callback: say what is cleaned. */
static void on_partial(void *ctx, const char *name, time_t started)
{
	const hm_repo *r = ctx;
	(void)started;
	fprintf(stderr, "hive-migrate: aborted an unfinished upload %s/%s (left by a killed run)\n", r->path,
		name);
}

/* With the lock held: abort killed uploads, remove directories without backup.json. */
static int clean_leftovers(hm_repo *r, hm_error *err)
{
	dirs d;
	if (hm_storage_sweep(r->st, "", 0, on_partial, r, NULL, err) != 0)
		return hm_repo_s3_fail(err);
	if (list_dirs(r, &d, err) != 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < d.n && rc == 0; i++) {
		char key[HM_STORAGE_NAME_MAX + 32];
		hm_storage_info info;
		snprintf(key, sizeof key, "%s/%s", d.v[i], HM_REPO_META);
		int s = hm_storage_stat(r->st, key, &info, err);
		if (s == HM_STORAGE_MISSING) {
			rc = hm_storage_remove_dir(r->st, d.v[i], err);
			if (rc == 0)
				fprintf(stderr,
					"hive-migrate: removed %s/%s/, an incomplete backup (no backup.json) "
					"left by a killed run\n",
					r->path, d.v[i]);
		} else if (s != 0) {
			rc = -1;
		}
	}
	free(d.v);
	return rc == 0 ? 0 : hm_repo_s3_fail(err);
}

/* The restore lock PREFIX/.restore-lock (a lease like .lock): restores and the source of a
 * copy hold it while they read, prune holds it beside .lock while it deletes. 0 or -1. */
static int take_restore_lock(hm_repo *r, hm_repo_lock lock, unsigned lease_s, hm_error *err)
{
	char owner[128];
	snprintf(owner, sizeof owner, "hive-migrate %s",
		 lock == HM_REPO_PRUNE ? "backups prune" : "backups restore or copy");
	if (hm_storage_lock_acquire(r->st, ".restore-lock", owner, &r->srlock, err) != 0) {
		r->srlock = NULL;
		return hm_repo_s3_fail(err);
	}
	r->lease_s = lease_s;
	clock_gettime(CLOCK_MONOTONIC, &r->renewed);
	return 0;
}

int hm_repo_s3_open(hm_repo *r, const char *url, const hm_repo_conn *conn, int create, hm_repo_lock lock,
		    hm_error *err)
{
	hm_storage_options so;
	char owner[128];
	memset(&so, 0, sizeof so);
	if (conn)
		so.s3 = conn->s3;
	(void)create; /* the bucket must exist: creating buckets is the operator's job */
	if (hm_storage_open(url, &so, &r->st, err) != 0) {
		r->st = NULL;
		return hm_repo_s3_fail(err);
	}
	if (lock == HM_REPO_EXCLUSIVE || lock == HM_REPO_PRUNE) {
		snprintf(owner, sizeof owner, "hive-migrate %s",
			 lock == HM_REPO_PRUNE ? "backups prune" : "backup or backups verify");
		if (hm_storage_lock_acquire(r->st, ".lock", owner, &r->slock, err) != 0) {
			r->slock = NULL;
			hm_repo_s3_fail(err);
			hm_repo_close(r);
			return -1;
		}
		r->lease_s = so.s3.lock_ttl_s ? so.s3.lock_ttl_s : 600;
		clock_gettime(CLOCK_MONOTONIC, &r->renewed);
		if (clean_leftovers(r, err) != 0) {
			hm_repo_close(r);
			return -1;
		}
	}
	if ((lock == HM_REPO_PRUNE || lock == HM_REPO_RESTORE) &&
	    take_restore_lock(r, lock, so.s3.lock_ttl_s ? so.s3.lock_ttl_s : 600, err) != 0) {
		hm_repo_close(r);
		return -1;
	}
	return 0;
}

void hm_repo_s3_close(hm_repo *r)
{
	hm_storage_lock_release(r->srlock);
	r->srlock = NULL;
	hm_storage_lock_release(r->slock);
	r->slock = NULL;
	hm_storage_close(r->st);
	r->st = NULL;
}

void hm_repo_discard(const hm_repo *r, const char *id)
{
	hm_error ignored;
	if (r->st && id[0])
		hm_storage_remove_dir(r->st, id, &ignored);
}

int hm_repo_keepalive(hm_repo *r, hm_error *err)
{
	struct timespec now;
	if (!r->slock && !r->srlock)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if ((double)(now.tv_sec - r->renewed.tv_sec) < r->lease_s / 3.0)
		return 0;
	if ((r->slock && hm_storage_lock_check(r->slock, err) != 0) ||
	    (r->srlock && hm_storage_lock_check(r->srlock, err) != 0))
		return hm_repo_s3_fail(err);
	r->renewed = now;
	return 0;
}
