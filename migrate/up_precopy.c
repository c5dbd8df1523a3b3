/* The pre-copy of up's snapshot (up_precopy.h): base before the stop, delta after it,
 * merge after health. */
#include "up_precopy.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "../common/archive_delta.h"
#include "../common/fsutil.h"
#include "../common/progress.h"
#include "major.h"
#include "up_int.h"
#include "up_snapshot_repo.h"

/* ARCHIVE_DIR/ID.<suffix> next to the snapshot j->archive (ARCHIVE_DIR/ID.tar.zst). */
static int part_path(const hm_journal *j, const char *suffix, char *out, size_t outsz)
{
	size_t l = strlen(j->archive), sl = strlen(".tar.zst");
	if (l <= sl || strcmp(j->archive + l - sl, ".tar.zst") != 0 ||
	    snprintf(out, outsz, "%.*s.%s", (int)(l - sl), j->archive, suffix) >= (int)outsz)
		return -1;
	return 0;
}

/* Remove the parts of a pre-copy (base, its record, delta, leftovers of killed writes). */
static void remove_parts(const hm_journal *j)
{
	const char *sfx[] = {"base.tar.zst", "base.tar.zst.partial", "base.stat", "delta.tar.zst",
			     "delta.tar.zst.partial"};
	char p[PATH_MAX];
	for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++)
		if (part_path(j, sfx[i], p, sizeof p) == 0)
			unlink(p);
}

/* Give the pre-copy up: its files go, the whole snapshot is taken after the stop. */
static int give_up(hm_mig *m, const char *why, hm_error *err)
{
	hm_mig_log(m, "pre-copy not used (%s): the whole snapshot is taken after the stop", why);
	remove_parts(&m->j);
	snprintf(m->j.precopy, sizeof m->j.precopy, "off");
	m->j.precopy_sha256[0] = '\0';
	return hm_mig_save(m, err);
}

int hm_up_precopy_pending(const hm_journal *j)
{
	return !strcmp(j->precopy, "base") || !strcmp(j->precopy, "delta");
}

void hm_up_precopy_discard(const hm_journal *j)
{
	/* before the stop only the pre-copy names the snapshot (snapshot() names it at step 4) */
	if (j->archive[0] && strcmp(j->precopy, "off") != 0 && j->step <= HM_STEP_FINGERPRINTED)
		remove_parts(j);
}

/* State of the base's walk: the records of every file read. */
typedef struct base_ctx {
	hm_pc_records rec;
	int faulted;
} base_ctx;

/* archive_dir's file_done hook: record a file read for the base. */
static int base_file_done(void *ctx, const char *rel, const struct stat *before, const struct stat *after,
			  const char *sha256, int torn, hm_error *err)
{
	base_ctx *c = ctx;
	hm_pc_stat b, a;
	hm_pc_stat_from(&b, before);
	hm_pc_stat_from(&a, after);
	if (!c->faulted++)
		hm_fault_point("during:precopy"); /* test hook: kill -9 with the base half written */
	return hm_pc_records_add(&c->rec, rel, &b, &a, sha256, torn, err);
}

/* The archive directory (created) and the snapshot's id and path in the journal. */
static int name_snapshot(hm_mig *m, const hm_up_opts *o, hm_error *err)
{
	hm_journal *j = &m->j;
	char dir[PATH_MAX], name[64];
	uuid_t u;
	if (o->archive_dir)
		snprintf(dir, sizeof dir, "%s", o->archive_dir);
	else if (hm_path_join(dir, sizeof dir, m->state_dir, "archives", err) != 0)
		return -1;
	if (hm_mkdir_p(dir, 0700, err) != 0)
		return -1;
	uuid_generate(u);
	uuid_unparse_lower(u, j->backup_id);
	snprintf(name, sizeof name, "%s.tar.zst", j->backup_id);
	if (hm_path_join(j->archive, sizeof j->archive, dir, name, err) == 0)
		return 0;
	j->backup_id[0] = j->archive[0] = '\0'; /* snapshot() names it then */
	return -1;
}

/* Enough room for base + delta + merged archive (all bounded by the data's size)? */
static int room_for_precopy(const char *archive, uint64_t data_bytes, char *why, size_t whysz)
{
	char dir[PATH_MAX], base[NAME_MAX + 1];
	struct statvfs vf;
	hm_error e = {0};
	if (hm_path_split(archive, dir, sizeof dir, base, sizeof base, &e) != 0 || statvfs(dir, &vf) != 0) {
		snprintf(why, whysz, "cannot tell the free space of the archive directory");
		return 0;
	}
	uint64_t avail = (uint64_t)vf.f_bavail * vf.f_frsize, need = data_bytes * 2 + (64u << 20);
	if (avail >= need)
		return 1;
	snprintf(why, whysz, "%llu MB free in %s, the pre-copy needs up to %llu MB (twice the data)",
		 (unsigned long long)(avail >> 20), dir, (unsigned long long)(need >> 20));
	return 0;
}

/* Write and verify the base, check the records against its manifest, save them. 0 or -1. */
static int write_base(hm_mig *m, const char *base, const char *stat_path, hm_up_times *t, hm_error *err)
{
	hm_journal *j = &m->j;
	struct timespec ts;
	base_ctx c = {0};
	hm_archive_stats st, vst;
	hm_manifest man;
	hm_progress pr;
	char meta[256];
	int rc = -1;
	const char *thr = getenv("HIVE_MIGRATE_PRECOPY_THROTTLE_US");
	hm_archive_hooks hooks = {
		.ctx = &c, .live = 1, .throttle_us = thr ? atoi(thr) : 0, .file_done = base_file_done};
	snprintf(meta, sizeof meta, "{\"kind\":\"migration-snapshot-base\",\"backup_id\":\"%s\"}",
		 j->backup_id);
	hm_archive_opts ao = {.metadata_json = meta, .zstd_level = 1, .progress = &pr, .hooks = &hooks};
	hm_manifest_init(&man);
	clock_gettime(CLOCK_REALTIME, &ts);
	hm_pc_records_init(&c.rec, (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	hm_mig_log(m, "pre-copy: archiving %s into %s while the split stack runs", j->data_dir, base);
	hm_progress_init(&pr, stderr, "pre-copy", hm_tree_bytes(AT_FDCWD, j->data_dir), m->quiet);
	unlink(base);
	if (hm_archive_dir_create(j->data_dir, base, &ao, &st, err) != 0)
		goto cleanup;
	hm_progress_finish(&pr);
	t->precopy = st.seconds;
	hm_progress_init(&pr, stderr, "verify", st.bytes, m->quiet);
	if (hm_archive_verify_manifest(base, &pr, &vst, &man, err) != 0 ||
	    hm_pc_records_check(&c.rec, &man, err) != 0)
		goto cleanup;
	hm_progress_finish(&pr);
	t->precopy_verify = vst.seconds;
	if (hm_pc_records_save(&c.rec, stat_path, j->precopy_sha256, err) != 0)
		goto cleanup;
	size_t torn = 0;
	for (size_t i = 0; i < c.rec.n; i++)
		torn += c.rec.v[i].torn ? 1 : 0;
	hm_mig_log(m,
		   "pre-copy: %zu files (%zu read while written: they go into the delta) in %.1f s, "
		   "verified in %.1f s",
		   c.rec.n, torn, t->precopy, t->precopy_verify);
	rc = 0;
cleanup:
	hm_manifest_free(&man);
	hm_pc_records_free(&c.rec);
	return rc;
}

int hm_up_precopy_base(hm_mig *m, const hm_up_opts *o, hm_up_times *t, hm_error *err)
{
	hm_journal *j = &m->j;
	char base[PATH_MAX], stat_path[PATH_MAX], why[PATH_MAX + 128];
	hm_error e = {0};
	if (o->no_precopy) {
		snprintf(j->precopy, sizeof j->precopy, "off");
		hm_mig_log(m, "pre-copy off (--no-precopy): the whole snapshot is taken after the stop");
		return hm_mig_save(m, err);
	}
	if (hm_upsnap_is_remote(o->archive_dir)) { /* the delta/merge shape is local-only */
		snprintf(j->precopy, sizeof j->precopy, "off");
		hm_mig_log(m, "pre-copy off: the snapshot goes to an object store, whole, after the stop");
		return hm_mig_save(m, err);
	}
	if (name_snapshot(m, o, &e) != 0)
		return give_up(m, e.message, err);
	if (part_path(j, "base.tar.zst", base, sizeof base) != 0 ||
	    part_path(j, "base.stat", stat_path, sizeof stat_path) != 0)
		return give_up(m, "the archive path is too long", err);
	if (!room_for_precopy(j->archive, hm_tree_bytes(AT_FDCWD, j->data_dir), why, sizeof why))
		return give_up(m, why, err);
	if (hm_mig_save(m, err) != 0) /* the parts are named before they exist */
		return -1;
	if (write_base(m, base, stat_path, t, &e) != 0)
		return give_up(m, e.message, err);
	snprintf(j->precopy, sizeof j->precopy, "base");
	if (hm_mig_save(m, err) != 0)
		return -1;
	hm_fault_point("after:precopy");
	return hm_major_fail_point("after:precopy", &e) == 0 ? 0 : give_up(m, e.message, err);
}

/* State of the delta's walk: the base's records and the copies reused from it. */
typedef struct delta_ctx {
	const char *data_dir;
	hm_pc_records rec;
	hm_manifest reused; /* sorted once decided */
	size_t skipped;
	int faulted;
} delta_ctx;

/* Which base copies are still exact now that the server is stopped (archive_delta.h's
 * rule); each goes into c->reused with its stat of now. 0 or -1. */
static int decide(delta_ctx *c, hm_error *err)
{
	int dfd = open(c->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return hm_error_errno(err, errno, "open directory", c->data_dir);
	for (size_t i = 0; i < c->rec.n; i++) {
		const hm_pc_record *r = &c->rec.v[i];
		struct stat st;
		hm_pc_stat now;
		if (r->torn || fstatat(dfd, r->path, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
			continue; /* read while written, or gone, or no longer a file: the delta decides */
		hm_pc_stat_from(&now, &st);
		if (!hm_precopy_reusable(&r->st, &r->st, &now, c->rec.t0_ns))
			continue;
		hm_manifest_entry e = {.path = r->path,
				       .type = HM_ENTRY_FILE,
				       .size = (uint64_t)st.st_size,
				       .mode = st.st_mode & 0777,
				       .uid = st.st_uid,
				       .gid = st.st_gid,
				       .mtime = st.st_mtim.tv_sec};
		snprintf(e.sha256, sizeof e.sha256, "%s", r->sha256);
		if (hm_manifest_add(&c->reused, &e, err) != 0) {
			close(dfd);
			return -1;
		}
	}
	close(dfd);
	return hm_manifest_sort(&c->reused, err);
}

/* archive_dir's skip_file hook: leave a reused file out of the delta, if it is still the
 * file decided on (anything writing to the stopped directory is an error). */
static int delta_skip(void *ctx, const char *rel, const struct stat *st, hm_error *err)
{
	delta_ctx *c = ctx;
	hm_pc_stat now;
	if (!c->faulted++)
		hm_fault_point("during:delta"); /* test hook: kill -9 with the delta half written */
	if (!hm_manifest_find(&c->reused, rel))
		return 0;
	const hm_pc_record *r = hm_pc_records_find(&c->rec, rel);
	hm_pc_stat_from(&now, st);
	if (!r || !hm_pc_stat_equal(&r->st, &now)) {
		hm_error_set(err, HM_EXIT_IO, "\"%s/%s\" changed after the split stack was stopped",
			     c->data_dir, rel);
		return hm_error_hint(err,
				     "something writes to the stopped data directory: stop it and run up "
				     "again");
	}
	c->skipped++;
	return 1;
}

/* Write and verify the delta; st gets its stats. 0 or -1. */
static int write_delta(hm_mig *m, delta_ctx *c, const char *meta, const char *base, const char *delta,
		       hm_archive_stats *st, hm_up_times *t, hm_error *err)
{
	char *dmeta = NULL, dir[PATH_MAX], bname[NAME_MAX + 1];
	hm_archive_hooks hooks = {.ctx = c, .skip_file = delta_skip};
	hm_archive_opts ao = {.zstd_level = 1, .hooks = &hooks};
	hm_archive_stats vst;
	hm_manifest dm, full;
	int rc = -1;
	hm_manifest_init(&dm);
	hm_manifest_init(&full);
	if (hm_path_split(base, dir, sizeof dir, bname, sizeof bname, err) != 0 || decide(c, err) != 0 ||
	    hm_delta_metadata(meta, bname, &c->reused, &dmeta, err) != 0)
		goto cleanup;
	ao.metadata_json = dmeta;
	hm_mig_log(m, "delta of %s into %s (%zu files reused from the pre-copy)", m->j.data_dir, delta,
		   c->reused.count);
	unlink(delta);
	if (hm_archive_dir_create(m->j.data_dir, delta, &ao, st, err) != 0)
		goto cleanup;
	t->delta = st->seconds;
	if (c->skipped != c->reused.count) {
		hm_error_set(err, HM_EXIT_IO, "%zu of the files reused from the pre-copy are no longer in %s",
			     c->reused.count - c->skipped, m->j.data_dir);
		goto cleanup;
	}
	hm_fault_point("during:snapshot-verify"); /* the same moment as the whole snapshot's */
	if (hm_archive_verify_manifest(delta, NULL, &vst, &dm, err) != 0 ||
	    hm_delta_full_manifest(&dm, &c->reused, &full, err) != 0)
		goto cleanup;
	t->delta_verify = vst.seconds;
	t->snapshot = t->delta; /* what the snapshot cost in the downtime */
	t->verify = t->delta_verify;
	hm_mig_log(m,
		   "delta: %llu entries (%llu files, %.1f MB) changed, new or directories, %zu files "
		   "reused, in %.2f s; verified in %.2f s",
		   (unsigned long long)st->entries, (unsigned long long)st->files, (double)st->bytes / 1e6,
		   c->reused.count, t->delta, t->delta_verify);
	st->entries = full.count;
	for (size_t i = 0; i < c->reused.count; i++) {
		st->files++;
		st->bytes += c->reused.entries[i].size;
	}
	rc = 0;
cleanup:
	free(dmeta);
	hm_manifest_free(&dm);
	hm_manifest_free(&full);
	return rc;
}

int hm_up_precopy_delta(hm_mig *m, const char *meta, hm_archive_stats *st, hm_up_times *t, hm_error *err)
{
	hm_journal *j = &m->j;
	char base[PATH_MAX], delta[PATH_MAX], stat_path[PATH_MAX];
	delta_ctx c = {.data_dir = j->data_dir};
	hm_error e = {0};
	struct stat bst;
	int rc = 1;
	hm_manifest_init(&c.reused);
	if (part_path(j, "base.tar.zst", base, sizeof base) != 0 ||
	    part_path(j, "delta.tar.zst", delta, sizeof delta) != 0 ||
	    part_path(j, "base.stat", stat_path, sizeof stat_path) != 0)
		return give_up(m, "the archive path is too long", err) == 0 ? 1 : -1;
	if (!strcmp(j->precopy, "delta") && access(delta, F_OK) == 0) {
		hm_mig_log(m, "verifying the delta left by the interrupted run: %s", delta);
		if (hm_archive_verify(delta, NULL, st, &e) == 0)
			return 0;
		hm_mig_log(m, "it does not verify (%s): taking it again", e.message);
	}
	if (hm_major_fail_point("before:delta", &e) != 0 ||
	    hm_pc_records_load(stat_path, j->precopy_sha256, &c.rec, &e) != 0 ||
	    write_delta(m, &c, meta, base, delta, st, t, &e) != 0) {
		rc = give_up(m, e.message, err) == 0 ? 1 : -1;
		goto cleanup;
	}
	if (stat(base, &bst) == 0)
		st->archive_bytes += (uint64_t)bst.st_size;
	snprintf(j->precopy, sizeof j->precopy, "delta");
	snprintf(j->manifest_sha256, sizeof j->manifest_sha256, "%s", st->manifest_sha256);
	rc = hm_mig_save(m, err) == 0 ? 0 : -1;
cleanup:
	hm_pc_records_free(&c.rec);
	hm_manifest_free(&c.reused);
	return rc;
}

/* The merge's hook: a test kill -9 once the merged archive is half written. */
static int merge_file_done(void *ctx, const char *rel, const struct stat *before, const struct stat *after,
			   const char *sha256, int torn, hm_error *err)
{
	int *n = ctx;
	(void)rel, (void)before, (void)after, (void)sha256, (void)torn, (void)err;
	if (!(*n)++)
		hm_fault_point("during:merge");
	return 0;
}

/* Merge base + delta into j->archive (or adopt a merged archive a killed run left), then
 * remove the parts. 0 or -1. */
static int do_merge(hm_mig *m, hm_up_times *t, hm_error *err)
{
	hm_journal *j = &m->j;
	char base[PATH_MAX], delta[PATH_MAX];
	hm_archive_stats st;
	hm_error e = {0};
	int n = 0;
	const char *thr = getenv("HIVE_MIGRATE_PRECOPY_THROTTLE_US");
	hm_archive_hooks hooks = {
		.ctx = &n, .throttle_us = thr ? atoi(thr) : 0, .file_done = merge_file_done};
	hm_archive_opts ao = {.zstd_level = 1, .hooks = &hooks};
	if (part_path(j, "base.tar.zst", base, sizeof base) != 0 ||
	    part_path(j, "delta.tar.zst", delta, sizeof delta) != 0)
		return hm_error_set(err, HM_EXIT_INPUT, "path too long: \"%s\"", j->archive);
	if (access(j->archive, F_OK) == 0) {
		hm_mig_log(m, "verifying the merged snapshot left by the interrupted run: %s", j->archive);
		if (hm_archive_verify(j->archive, NULL, &st, &e) != 0) {
			hm_mig_log(m, "it does not verify (%s): merging again", e.message);
			unlink(j->archive);
		}
	}
	if (access(j->archive, F_OK) != 0) {
		hm_mig_log(m, "merging the pre-copy %s and the delta %s into %s", base, delta, j->archive);
		if (hm_archive_merge(base, delta, j->archive, &ao, &st, err) != 0)
			return hm_error_hint(err, "the two parts are kept; run the command again when "
						  "there is room for a third copy");
		t->merge = st.seconds;
	}
	snprintf(j->precopy, sizeof j->precopy, "merged");
	snprintf(j->manifest_sha256, sizeof j->manifest_sha256, "%s", st.manifest_sha256);
	if (hm_mig_save(m, err) != 0)
		return -1;
	remove_parts(j);
	hm_mig_log(m, "the snapshot is one verified archive again: %s (merged in %.1f s)", j->archive,
		   t->merge);
	return 0;
}

void hm_up_precopy_merge(hm_mig *m, hm_up_times *t)
{
	hm_error e = {0};
	if (strcmp(m->j.precopy, "delta") != 0)
		return;
	if (do_merge(m, t, &e) != 0)
		hm_mig_log(m, "warning: the snapshot stays in two parts (%s); a rollback merges them first",
			   e.message);
}

int hm_up_precopy_materialize(hm_mig *m, hm_error *err)
{
	hm_up_times t = {0};
	if (strcmp(m->j.precopy, "delta") != 0)
		return 0;
	hm_mig_log(m, "the snapshot is still in two parts (pre-copy and delta): merging them first");
	return do_merge(m, &t, err);
}
