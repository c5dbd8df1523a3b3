/* up's snapshot in an object store (up_snapshot_repo.h): the offline backup of the
 * repository format, taken by backup/offline.c, verified and restored by backup/verify.c,
 * located through the journal. */
#include "up_snapshot_repo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../backup/offline.h"
#include "../backup/repo.h"
#include "../backup/repo_cli.h"
#include "../backup/repo_io.h"
#include "../backup/verify.h"
#include "../common/fsutil.h"

#define SNAP_ARCHIVE "data.tar.zst"	      /* the archive name of an offline backup */
#define SNAP_LABEL "hive-migrate up snapshot" /* how up's snapshots are told from other backups */

/* The S3 options given on this process's command line (up or rollback). */
static hm_repo_cli g_cli;

int hm_upsnap_is_remote(const char *location)
{
	return location && hm_repo_is_remote(location);
}

int hm_upsnap_cli_option(int opt, const char *arg)
{
	if (opt == HM_REPO_OPT_KEY_FILE || opt == HM_REPO_OPT_PASSPHRASE_FILE)
		return 0; /* not for snapshots (yet): the encryption options stay backup's */
	return hm_repo_cli_option(&g_cli, opt, arg);
}

/* The connection to the snapshot's repository: the command line's options, else what the
 * journal recorded at up's preflight. The credentials are found as for backup (the
 * environment, ~/.aws/credentials, --s3-credentials-file), never from the journal. */
static void snap_conn(const hm_mig *m, hm_repo_conn *c)
{
	const hm_journal *j = &m->j;
	*c = g_cli.conn;
	if (!c->s3.endpoint && j->snapshot_s3_endpoint[0])
		c->s3.endpoint = j->snapshot_s3_endpoint;
	if (!c->s3.region && j->snapshot_s3_region[0])
		c->s3.region = j->snapshot_s3_region;
	if (!c->s3.ca_file && j->snapshot_s3_ca_file[0])
		c->s3.ca_file = j->snapshot_s3_ca_file;
	if (c->s3.style == HM_S3_STYLE_AUTO && !strcmp(j->snapshot_s3_uri_style, "path"))
		c->s3.style = HM_S3_STYLE_PATH;
	else if (c->s3.style == HM_S3_STYLE_AUTO && !strcmp(j->snapshot_s3_uri_style, "host"))
		c->s3.style = HM_S3_STYLE_HOST;
}

/* Split a location "s3://BUCKET/PREFIX/<id>[/data.tar.zst]" into the repository and the
 * id. 0 or -1 (HM_EXIT_USAGE). */
static int split_location(const char *loc, char *repo, size_t repsz, char *id, size_t idsz, hm_error *err)
{
	char buf[PATH_MAX];
	size_t n = strlen(loc), an = strlen("/" SNAP_ARCHIVE);
	if (n >= sizeof buf)
		return hm_error_set(err, HM_EXIT_USAGE, "snapshot location too long: \"%s\"", loc);
	memcpy(buf, loc, n + 1);
	while (n > 5 && buf[n - 1] == '/')
		buf[--n] = '\0';
	if (n > an && !strcmp(buf + n - an, "/" SNAP_ARCHIVE))
		buf[n -= an] = '\0';
	char *slash = strrchr(buf, '/');
	if (!slash || slash < buf + 5 || !slash[1] || (size_t)(slash - buf) <= strlen("s3://")) {
		hm_error_set(err, HM_EXIT_USAGE, "\"%s\" names no snapshot in an object store", loc);
		return hm_error_hint(err, "give s3://BUCKET/PREFIX/ID (hive-migrate backups list --repo "
					  "s3://BUCKET/PREFIX shows the ids)");
	}
	*slash = '\0';
	if (snprintf(repo, repsz, "%s", buf) >= (int)repsz ||
	    snprintf(id, idsz, "%s", slash + 1) >= (int)idsz)
		return hm_error_set(err, HM_EXIT_USAGE, "snapshot location too long: \"%s\"", loc);
	return 0;
}

/* Open repository repo with lock. wait: while another run holds the lock (a killed up or
 * rollback holds it until its lease expires), poll once a second until the lease could
 * have expired (--s3-lock-ttl, default 600 s, plus 5 s). */
static int open_repo(const hm_mig *m, const char *repo, hm_repo_lock lock, int wait, hm_repo *r,
		     hm_error *err)
{
	hm_repo_conn c;
	snap_conn(m, &c);
	double deadline = hm_progress_now() + (c.s3.lock_ttl_s ? c.s3.lock_ttl_s : 600) + 5;
	int rc, told = 0;
	hm_error e = {0}; /* the repository may leave a message in it on success (left-overs) */
	while ((rc = hm_repo_open(r, repo, &c, 1, lock, &e)) != 0 && wait && e.code == HM_EXIT_LOCKED &&
	       hm_progress_now() < deadline) {
		hm_repo_close(r);
		if (!told++)
			hm_mig_log(m, "waiting for the lock of %s (%s)", repo, e.message);
		struct timespec ts = {1, 0};
		nanosleep(&ts, NULL);
		memset(&e, 0, sizeof e);
	}
	if (rc != 0) {
		*err = e;
		hm_repo_close(r);
		if (!err->hint[0])
			hm_error_hint(err,
				      "the snapshot is in %s: the object store must answer with the "
				      "credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
				      "~/.aws/credentials or --s3-credentials-file)",
				      repo);
		return -1;
	}
	return 0;
}

int hm_upsnap_preflight(hm_mig *m, const char *archive_dir, hm_error *err)
{
	hm_journal *j = &m->j;
	hm_repo r;
	if (!hm_upsnap_is_remote(archive_dir))
		return 0;
	if (j->cross_major) {
		hm_error_set(err, HM_EXIT_PREFLIGHT,
			     "--archive-dir %s: a snapshot in an object store is for a migration within "
			     "one PostgreSQL major; this one goes across majors",
			     archive_dir);
		return hm_error_hint(err, "leave out --archive-dir (the old directory is kept beside the "
					  "new one, its snapshot stays local)");
	}
	size_t n = strlen(archive_dir);
	while (n > 5 && archive_dir[n - 1] == '/')
		n--;
	if (n >= sizeof j->snapshot_repo)
		return hm_error_set(err, HM_EXIT_PREFLIGHT, "--archive-dir is too long");
	snprintf(j->snapshot_repo, sizeof j->snapshot_repo, "%.*s", (int)n, archive_dir);
	const hm_s3_options *s = &g_cli.conn.s3;
	snprintf(j->snapshot_s3_endpoint, sizeof j->snapshot_s3_endpoint, "%s",
		 s->endpoint ? s->endpoint : "");
	snprintf(j->snapshot_s3_region, sizeof j->snapshot_s3_region, "%s", s->region ? s->region : "");
	snprintf(j->snapshot_s3_ca_file, sizeof j->snapshot_s3_ca_file, "%s", s->ca_file ? s->ca_file : "");
	snprintf(j->snapshot_s3_uri_style, sizeof j->snapshot_s3_uri_style, "%s",
		 s->style == HM_S3_STYLE_PATH	? "path"
		 : s->style == HM_S3_STYLE_HOST ? "host"
						: "");
	/* as pg_upgrade --check: the connection, the credentials, the bucket and a write (the
	 * lease lock), before the split stack is stopped */
	if (open_repo(m, j->snapshot_repo, HM_REPO_EXCLUSIVE, 0, &r, err) != 0) {
		err->code = HM_EXIT_PREFLIGHT;
		return hm_error_prefix(err,
				       "refused by preflight: the snapshot repository %s cannot be "
				       "used (nothing was changed)",
				       j->snapshot_repo);
	}
	hm_repo_close(&r);
	memset(err, 0, sizeof *err);
	hm_mig_log(m, "snapshot repository %s: reachable, credentials accepted, lock taken and released",
		   j->snapshot_repo);
	return 0;
}

void hm_upsnap_plan_line(const hm_mig *m, const char *archive_dir, char *out, size_t outsz)
{
	if (m->j.snapshot_repo[0] || hm_upsnap_is_remote(archive_dir))
		snprintf(out, outsz,
			 "  4. snapshot %s as an offline backup into %s/<id>/%s (multipart upload, bounded "
			 "memory), then verify it in full as read back from the object store (a rollback "
			 "then needs the network and the credentials)\n",
			 m->j.data_dir, m->j.snapshot_repo[0] ? m->j.snapshot_repo : archive_dir,
			 SNAP_ARCHIVE);
	else
		snprintf(out, outsz, "  4. snapshot %s into %s/<uuid>.tar.zst, then verify it\n",
			 m->j.data_dir, archive_dir ? archive_dir : "STACK/.hive-migrate/archives");
}

/* Verify backup f of r in full from the object store (record the outcome in its
 * backup.json when record). *secs gets the time taken. 0 or -1. */
static int verify_stored(hm_mig *m, hm_repo *r, hm_backup_meta *f, int record, double *secs, hm_error *err)
{
	hm_progress pr;
	hm_verify_report rep;
	double t0 = hm_progress_now();
	memset(&rep, 0, sizeof rep);
	hm_progress_init(&pr, stderr, "verify", f->archive_size, m->quiet);
	hm_verify_opts vo = {.progress = &pr};
	int rc = hm_verify_backup(r, f, &vo, &rep, err);
	hm_verify_report_free(&rep);
	if (rc == 0)
		hm_progress_finish(&pr);
	if (secs)
		*secs = hm_progress_now() - t0;
	if (record && (rc == 0 || err->code == HM_EXIT_VERIFY_FAILED)) {
		hm_error se = {0};
		f->verified = rc == 0;
		f->verified_time = time(NULL);
		snprintf(f->verify_error, sizeof f->verify_error, "%s", rc == 0 ? "" : err->message);
		if (hm_repo_save_meta(r, f, &se) != 0)
			hm_mig_log(m, "could not record the verification in %s/%s/backup.json: %s", r->path,
				   f->id, se.message);
	}
	return rc;
}

/* The backup of a killed run (j->backup_id): 1 verified and reused (st filled), 0 to be
 * taken again (removed when it was there but does not verify), -1 error. */
static int reuse_killed(hm_mig *m, hm_repo *r, hm_archive_stats *st, hm_error *err)
{
	hm_journal *j = &m->j;
	hm_backup_meta f;
	hm_error fe = {0};
	if (hm_repo_find(r, j->backup_id, &f, &fe) != 0) {
		if (fe.code != HM_EXIT_NOT_FOUND) {
			*err = fe;
			return -1;
		}
		hm_mig_log(m, "the snapshot %s of the interrupted run was never completed: taking it again",
			   j->backup_id);
		return 0;
	}
	hm_mig_log(m, "verifying the snapshot left by the interrupted run: %s", j->archive);
	if (verify_stored(m, r, &f, 1, NULL, &fe) == 0) {
		st->bytes = f.database_size;
		st->archive_bytes = f.archive_size;
		return 1;
	}
	if (fe.code != HM_EXIT_VERIFY_FAILED) {
		*err = fe;
		return -1;
	}
	hm_mig_log(m, "it does not verify (%s): taking it again", fe.message);
	if (hm_repo_remove(r, f.id, &fe) != 0)
		hm_mig_log(m, "could not remove it (%s); the next locked run does", fe.message);
	return 0;
}

/* Stream a new snapshot into r and commit it; j->backup_id/archive name it (journaled
 * before the first byte goes out). 0 or -1 (nothing of it stays listed). */
static int store_new(hm_mig *m, hm_repo *r, hm_backup_meta *meta, hm_archive_stats *st, hm_error *err)
{
	hm_journal *j = &m->j;
	hm_progress pr;
	char partial[PATH_MAX + 80], tp[PATH_MAX];
	hm_meta_init(meta);
	meta->start_time = time(NULL);
	hm_repo_new_id(meta->start_time, meta->id, meta->uuid);
	snprintf(meta->label, sizeof meta->label, SNAP_LABEL " (profile %s)", m->profile);
	snprintf(j->backup_id, sizeof j->backup_id, "%s", meta->id);
	if (snprintf(j->archive, sizeof j->archive, "%s/%s/%s", j->snapshot_repo, meta->id, SNAP_ARCHIVE) >=
	    (int)sizeof j->archive)
		return hm_error_set(err, HM_EXIT_INPUT, "the snapshot location is too long");
	if (hm_mig_save(m, err) != 0)
		return -1;
	hm_mig_log(m, "snapshot of %s into %s", j->data_dir, j->archive);
	hm_progress_init(&pr, stderr, "snapshot", hm_tree_bytes(AT_FDCWD, j->data_dir), m->quiet);
	int rc = hm_offline_backup(r, j->data_dir, j->pgdata, meta, NULL, &pr, st, err);
	snprintf(partial, sizeof partial, "%s/%s", hm_repo_tmp_path(r, tp, sizeof tp), meta->id);
	if (rc == 0)
		rc = hm_repo_store_archive(r, partial, meta, NULL, err);
	if (rc == 0) /* the archive is stored, its backup.json not yet: a left-over, not a backup */
		hm_fault_point("during:snapshot-upload");
	if (rc == 0)
		rc = hm_repo_commit(r, partial, meta, err);
	if (rc != 0) {
		hm_error ignored;
		hm_rmtree(partial, &ignored);
		hm_repo_discard(r, meta->id);
		return hm_error_prefix(err, "cannot store the snapshot in %s", j->snapshot_repo);
	}
	return 0;
}

int hm_upsnap_take(hm_mig *m, hm_archive_stats *st, hm_up_times *t, hm_error *err)
{
	hm_journal *j = &m->j;
	hm_repo r;
	hm_backup_meta meta, f;
	int rc = -1;
	memset(st, 0, sizeof *st);
	if (open_repo(m, j->snapshot_repo, HM_REPO_EXCLUSIVE, 1, &r, err) != 0)
		return -1;
	if (j->backup_id[0] && hm_upsnap_is_remote(j->archive)) {
		int got = reuse_killed(m, &r, st, err);
		if (got < 0)
			goto cleanup;
		if (got > 0) {
			rc = 0;
			goto cleanup;
		}
	}
	if (store_new(m, &r, &meta, st, err) != 0)
		goto cleanup;
	t->snapshot = st->seconds;
	hm_fault_point("during:snapshot-verify");
	/* read back from the object store, not from anything local */
	if (hm_repo_find(&r, meta.id, &f, err) != 0 || verify_stored(m, &r, &f, 1, &t->verify, err) != 0) {
		hm_error_prefix(err, "the snapshot just stored in %s does not verify", j->snapshot_repo);
		goto cleanup;
	}
	snprintf(j->manifest_sha256, sizeof j->manifest_sha256, "%s", st->manifest_sha256);
	hm_mig_log(m, "snapshot %s verified as read back from %s", meta.id, j->snapshot_repo);
	rc = 0;
cleanup:
	hm_repo_close(&r);
	if (rc == 0) /* up reads any message as a failure */
		memset(err, 0, sizeof *err);
	return rc;
}

/* Open the repository of snapshot location archive for reading and find its backup. */
static int open_snapshot(hm_mig *m, const char *archive, hm_repo *r, hm_backup_meta *f, hm_error *err)
{
	char repo[PATH_MAX], id[64];
	if (split_location(archive, repo, sizeof repo, id, sizeof id, err) != 0 ||
	    open_repo(m, repo, HM_REPO_RESTORE, 1, r, err) != 0)
		return -1;
	if (hm_repo_find(r, id, f, err) != 0) {
		hm_repo_close(r);
		return -1;
	}
	return 0;
}

int hm_upsnap_verify(hm_mig *m, const char *archive, hm_error *err)
{
	hm_repo r;
	hm_backup_meta f;
	if (open_snapshot(m, archive, &r, &f, err) != 0)
		return -1;
	hm_mig_log(m, "verifying the snapshot %s as read from the object store", archive);
	int rc = verify_stored(m, &r, &f, 0, NULL, err);
	hm_repo_close(&r);
	if (rc == 0)
		memset(err, 0, sizeof *err);
	return rc;
}

int hm_upsnap_extract(hm_mig *m, const char *archive, const char *restore_dir, hm_progress *pr, hm_error *err)
{
	char parent[PATH_MAX], name[256];
	hm_repo r;
	hm_backup_meta f;
	hm_verify_report rep;
	int rc = -1, pfd;
	if (hm_path_split(restore_dir, parent, sizeof parent, name, sizeof name, err) != 0)
		return -1;
	if ((pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return hm_error_errno(err, errno, "open", parent);
	if (open_snapshot(m, archive, &r, &f, err) != 0) {
		close(pfd);
		return -1;
	}
	memset(&rep, 0, sizeof rep);
	hm_verify_opts vo = {.extract_name = name,
			     .extract_parent_fd = pfd,
			     .extract_display = restore_dir,
			     .progress = pr};
	hm_mig_log(m, "downloading, verifying and extracting %s into %s", archive, restore_dir);
	if (hm_verify_backup(&r, &f, &vo, &rep, err) == 0) {
		if (syncfs(pfd) != 0)
			hm_error_errno(err, errno, "sync the file system of", restore_dir);
		else
			rc = 0;
	}
	hm_verify_report_free(&rep);
	hm_repo_close(&r);
	close(pfd);
	if (rc == 0)
		memset(err, 0, sizeof *err);
	return rc;
}

int hm_upsnap_find_backup(const hm_mig *m, const char *archive_dir, const char *backup, char *out,
			  size_t outsz, hm_error *err)
{
	char repo[PATH_MAX], id[64];
	hm_repo r;
	hm_backup_meta f;
	if (hm_upsnap_is_remote(backup)) {
		if (split_location(backup, repo, sizeof repo, id, sizeof id, err) != 0)
			return -1;
	} else if (hm_upsnap_is_remote(archive_dir) ||
		   (!archive_dir && !strchr(backup, '/') && m->j.snapshot_repo[0])) {
		const char *base = archive_dir ? archive_dir : m->j.snapshot_repo;
		if (snprintf(repo, sizeof repo, "%s", base) >= (int)sizeof repo ||
		    snprintf(id, sizeof id, "%s", backup) >= (int)sizeof id)
			return hm_error_set(err, HM_EXIT_USAGE, "--backup or --archive-dir is too long");
	} else {
		return 1;
	}
	if (open_repo(m, repo, HM_REPO_NO_LOCK, 0, &r, err) != 0)
		return -1;
	int rc = hm_repo_find(&r, id, &f, err);
	hm_repo_close(&r);
	if (rc != 0) {
		if (err->code == HM_EXIT_NOT_FOUND)
			hm_error_hint(err, "list them with: hive-migrate backups list --repo %s", repo);
		return -1;
	}
	if (strcmp(f.kind, "offline") != 0 || hm_repo_encrypted(&f) ||
	    strncmp(f.label, SNAP_LABEL, strlen(SNAP_LABEL)) != 0) {
		hm_error_set(err, HM_EXIT_INPUT, "backup %s in %s is not a snapshot of up (%s%s%s)", f.id,
			     repo, f.kind, hm_repo_encrypted(&f) ? ", encrypted" : "",
			     f.label[0] ? ", another label" : "");
		return hm_error_hint(err, "restore it with hive-migrate backups restore %s --repo %s", f.id,
				     repo);
	}
	if (snprintf(out, outsz, "%s/%s/%s", repo, f.id, SNAP_ARCHIVE) >= (int)outsz)
		return hm_error_set(err, HM_EXIT_USAGE, "the snapshot location is too long");
	memset(err, 0, sizeof *err);
	return 0;
}
