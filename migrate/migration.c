/* Shared migration machinery. The rollback is written as a sequence of idempotent steps,
 * each recorded in the journal before the next starts, so that running it again after a
 * crash continues where the last run stopped; nothing is deleted before the split stack is
 * confirmed healthy again. */
#include "migration.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/archive_dir.h"
#include "../common/fsutil.h"
#include "../common/pg_control.h"
#include "../common/progress.h"
#include "compose.h"
#include "fingerprint.h"
#include "fingerprint_snap.h"
#include "health.h"
#include "ownership.h"
#include "up_snapshot_repo.h"
#include "up_precopy.h"

int hm_mig_init(hm_mig *m, const char *stack_dir, const char *profile, hm_error *err)
{
	char abs[PATH_MAX];
	memset(m, 0, sizeof *m);
	m->lock.fd = -1;
	m->stop_timeout = 30;
	m->health_timeout = 120;
	if (!realpath(stack_dir, abs))
		return hm_error_errno(err, errno, "find the stack directory", stack_dir);
	snprintf(m->stack_dir, sizeof m->stack_dir, "%s", abs);
	snprintf(m->profile, sizeof m->profile, "%s", profile);
	if (hm_path_join(m->state_dir, sizeof m->state_dir, abs, ".hive-migrate", err) != 0)
		return -1;
	return hm_journal_path(m->state_dir, profile, m->journal_path, sizeof m->journal_path, err);
}

void hm_mig_record_stack(hm_mig *m)
{
	const hm_compose_project *p = &m->stack.compose;
	hm_journal *j = &m->j;
	_Static_assert(HM_JOURNAL_MAX_FILES == HM_STACK_MAX_FILES,
		       "journal and stack hold as many compose files");
	j->n_compose_files = p->n_files;
	for (int i = 0; i < p->n_files; i++)
		snprintf(j->compose_files[i], sizeof j->compose_files[i], "%s", p->files[i]);
	snprintf(j->project_dir, sizeof j->project_dir, "%s", p->dir);
	snprintf(j->project_name, sizeof j->project_name, "%s", m->stack.project);
	snprintf(j->db_service, sizeof j->db_service, "%s", m->stack.pg_service);
	snprintf(j->api_service, sizeof j->api_service, "%s", m->stack.api_service);
}

int hm_mig_lock(hm_mig *m, hm_error *err)
{
	char path[PATH_MAX];
	/* journal, lock and secrets live here: private to this user, never a symlink */
	if (hm_private_dir(m->state_dir, "state directory", err) != 0)
		return -1;
	if (hm_path_join(path, sizeof path, m->state_dir, "lock", err) != 0)
		return -1;
	return hm_lock_acquire(&m->lock, path, err);
}

void hm_mig_unlock(hm_mig *m)
{
	hm_lock_release(&m->lock);
}

int hm_mig_save(hm_mig *m, hm_error *err)
{
	return hm_journal_save(m->journal_path, &m->j, err);
}

void hm_mig_log(const hm_mig *m, const char *fmt, ...)
{
	va_list ap;
	if (m->quiet)
		return;
	fprintf(stderr, "hive-migrate: [%s] ", m->profile);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

void hm_fault_point(const char *point)
{
	const char *f = getenv("HIVE_MIGRATE_FAULT");
	if (f && !strcmp(f, point)) {
		fprintf(stderr, "hive-migrate: fault injection: SIGKILL at %s\n", point);
		fflush(stderr);
		raise(SIGKILL);
	}
}

/* Value safe to write unquoted in a compose env file? */
static int plain_value(const char *v)
{
	for (; *v; v++)
		if (!((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') || (*v >= '0' && *v <= '9') ||
		      strchr("_-./:@+,=", *v)))
			return 0;
	return 1;
}

/* Append KEY=VALUE (quoted when needed; compose's single quotes take the text literally). */
static int env_line(char *buf, size_t sz, size_t *len, const char *k, const char *v, hm_error *err)
{
	int n;
	if (strchr(v, '\n') || (strchr(v, '\'') && !plain_value(v)))
		if (strchr(v, '\n') || strchr(v, '\''))
			return hm_error_set(err, HM_EXIT_INPUT, "value of %s holds a quote or newline", k);
	n = plain_value(v) ? snprintf(buf + *len, sz - *len, "%s=%s\n", k, v)
			   : snprintf(buf + *len, sz - *len, "%s='%s'\n", k, v);
	if (n < 0 || (size_t)n >= sz - *len)
		return hm_error_set(err, HM_EXIT_INTERNAL, "env file too long");
	*len += (size_t)n;
	return 0;
}

/* The host address the unified container publishes a port on: the split stack's own (all
 * interfaces when it gave none), else fallback (also for IPv6 addresses, kept narrow). */
static const char *bind_address(const char *split_bind, int split_port, const char *fallback)
{
	if (!split_port)
		return fallback;
	if (!split_bind[0])
		return "0.0.0.0";
	if (strspn(split_bind, "0123456789.") == strlen(split_bind))
		return split_bind;
	return fallback;
}

int hm_mig_write_env(const hm_mig *m, const char *path, const char *backup_password, hm_error *err)
{
	char buf[16384], api[16], pg[16], settings[12288];
	size_t len = 0;
	const hm_journal *j = &m->j;
	if (hm_stack_settings_arg(&m->stack, settings, sizeof settings) != 0)
		return hm_error_set(err, HM_EXIT_INPUT,
				    "the settings of the split database are too long to carry");
	snprintf(api, sizeof api, "%d", j->api_port);
	snprintf(pg, sizeof pg, "%d", j->pg_port);
	len += (size_t)snprintf(buf, sizeof buf, "# written by hive-migrate up: holds a secret, keep 0600\n");
	if (env_line(buf, sizeof buf, &len, "HIVE_DATA_DIR", j->data_dir, err) ||
	    env_line(buf, sizeof buf, &len, "HIVE_DB_USER", m->stack.db_user, err) ||
	    env_line(buf, sizeof buf, &len, "HIVE_DB_NAME", m->stack.db_name, err) ||
	    env_line(buf, sizeof buf, &len, "HIVE_DB_PASSWORD", m->stack.db_password, err) ||
	    env_line(buf, sizeof buf, &len, "HIVE_API_PORT", api, err) ||
	    env_line(buf, sizeof buf, &len, "HIVE_PG_PORT", pg, err) ||
	    env_line(buf, sizeof buf, &len, "HIVE_IMAGE", j->image, err) ||
	    env_line(buf, sizeof buf, &len, "HIVE_CONTAINER_NAME", j->unified_container, err) ||
	    env_line(buf, sizeof buf, &len, "HIVE_UID", "1000", err) ||
	    env_line(buf, sizeof buf, &len, "HIVE_GID", "1000", err) ||
	    env_line(buf, sizeof buf, &len, "HIVE_PG_SETTINGS", settings, err) ||
	    env_line(buf, sizeof buf, &len, "HIVE_PG_BIND",
		     bind_address(m->stack.pg_bind, m->stack.pg_port, "127.0.0.1"), err) ||
	    env_line(buf, sizeof buf, &len, "HIVE_API_BIND",
		     bind_address(m->stack.api_bind, m->stack.api_port, "0.0.0.0"), err))
		return -1;
	if (backup_password && env_line(buf, sizeof buf, &len, "HIVE_BACKUP_PASSWORD", backup_password, err))
		return -1;
	return hm_write_file_atomic(path, buf, len, 0600, err);
}

/* Does path exist (without following a final symlink)? */
static int exists(const char *p)
{
	struct stat st;
	return p[0] && lstat(p, &st) == 0;
}

int hm_mig_unified_down(hm_mig *m, hm_error *err)
{
	hm_journal *j = &m->j;
	char state[64];
	if (j->template_file[0] && exists(j->env_file) && exists(j->template_file)) {
		if (hm_compose_unified_down(j->template_file, j->unified_project, j->env_file,
					    m->stop_timeout, err) != 0)
			return -1;
	}
	if (!j->unified_container[0])
		return 0;
	if (hm_docker_container_state(j->unified_container, state, sizeof state, err) != 0)
		return -1;
	if (!state[0])
		return 0;
	char t[16];
	snprintf(t, sizeof t, "%d", m->stop_timeout);
	char *stop[] = {"docker", "stop", "-t", t, j->unified_container, NULL};
	char *rm[] = {"docker", "rm", "-f", j->unified_container, NULL};
	if (hm_proc_check(stop, "stopping the unified container", NULL, err) != 0 ||
	    hm_proc_check(rm, "removing the unified container", NULL, err) != 0)
		return -1;
	return 0;
}

hm_pg_params hm_mig_split_params(const hm_mig *m)
{
	hm_pg_params p = {m->stack.pg_host[0] ? m->stack.pg_host : "127.0.0.1",
			  m->stack.pg_port,
			  m->stack.db_user,
			  m->stack.db_name,
			  m->stack.db_password,
			  5};
	return p;
}

/* The split stack is healthy and (when compare != 0) holds the fingerprinted data. next_xid:
 * the nextXid of the data directory's shutdown checkpoint, read before the split stack
 * started (0: unknown). With it the fingerprint is taken under a snapshot opened as soon as
 * PostgreSQL answers, which none of the app's new writes can reach (fingerprint_snap.h), so
 * live traffic after the start cannot make the comparison fail. When it differs from the
 * fingerprint's guard, the directory (not restored: the migration never changed its data)
 * was written to after the fingerprint by a client, and there is nothing to compare with. */
static int split_confirm(hm_mig *m, int compare, unsigned long long next_xid, hm_error *err)
{
	hm_journal *j = &m->j;
	hm_pg_params p = hm_mig_split_params(m);
	json_object *before = NULL, *after = NULL;
	hm_fpsnap *fs = NULL;
	char why[700] = "";
	int rc = -1;
	compare = compare && j->fingerprint_file[0] && exists(j->fingerprint_file);
	if (compare && next_xid && j->fp_next_xid && next_xid != j->fp_next_xid) {
		hm_mig_log(m,
			   "the split data was written to after the fingerprint (next XID %llu then, %llu "
			   "at its last shutdown) and the migration never changed it: nothing to compare "
			   "with",
			   j->fp_next_xid, next_xid);
		compare = 0;
	}
	if (compare && next_xid) {
		if (hm_pg_wait_accepting("the split stack", &p, m->health_timeout, err) != 0)
			return -1;
		int o = hm_fpsnap_open(&p, next_xid, &fs, why, sizeof why, err);
		if (o < 0)
			return -1;
		if (o == 0 && hm_fpsnap_start(fs, err) != 0)
			goto cleanup;
		if (o == 1)
			hm_mig_log(m, "%s: the fingerprint runs after the health wait", why);
	}
	if (hm_wait_healthy("the split stack", m->stack.api_port, &p, m->health_timeout, err) != 0)
		goto cleanup;
	if (!compare) {
		rc = 0;
		goto cleanup;
	}
	if (!(before = json_object_from_file(j->fingerprint_file))) {
		hm_error_set(err, HM_EXIT_IO, "cannot read the fingerprint \"%s\"", j->fingerprint_file);
		goto cleanup;
	}
	if ((fs ? hm_fpsnap_finish(fs, &after, err) : hm_fingerprint_take(&p, &after, err)) != 0)
		goto cleanup;
	if (hm_fingerprint_compare(before, after, err) != 0) {
		hm_error_prefix(err, "the split stack's data differs from before the migration");
		goto cleanup;
	}
	rc = 0;
cleanup:
	hm_fpsnap_free(fs);
	json_object_put(before);
	json_object_put(after);
	return rc;
}

/* The next XID of the shutdown checkpoint of the cluster in pgdata, 0 unless it is cleanly
 * shut down (then a snapshot of the server started on it proves nothing). */
static unsigned long long shutdown_next_xid(const char *pgdata)
{
	hm_pg_control pc;
	hm_error e = {0};
	if (!pgdata[0] || hm_pg_control_read(pgdata, &pc, &e) != 0 || pc.state != HM_DB_SHUTDOWNED)
		return 0;
	return pc.next_full_xid;
}

/* May the directory a failed migration displaced be deleted? Only when it provably holds no
 * transaction of the unified server: the server never started on it, or it is cleanly shut
 * down and its checkpoint's next XID is still the one the split stack's stop left (every
 * transaction that writes takes an XID; the app answers once healthy, before the fingerprint
 * may have ended). 1 yes, 0 no; why says which. */
static int displaced_untouched(const hm_journal *j, char *why, size_t whysz)
{
	char pgdata[PATH_MAX];
	hm_pg_control pc;
	hm_error e = {0};
	size_t n = strlen(j->data_dir);
	if (j->step < HM_STEP_UNIFIED_STARTING) {
		snprintf(why, whysz, "the unified server never started on it");
		return 1;
	}
	if (!j->shut_next_xid) {
		snprintf(why, whysz, "the next transaction ID of the split stack's stop is not recorded");
		return 0;
	}
	if (strncmp(j->pgdata, j->data_dir, n) != 0 ||
	    snprintf(pgdata, sizeof pgdata, "%s%s", j->displaced_dir, j->pgdata + n) >= (int)sizeof pgdata ||
	    hm_pg_control_read(pgdata, &pc, &e) != 0) {
		snprintf(why, whysz, "its pg_control cannot be read");
		return 0;
	}
	if (pc.state != HM_DB_SHUTDOWNED) {
		snprintf(why, whysz, "the unified server left it \"%s\", not \"shut down\"",
			 hm_db_state_name(pc.state));
		return 0;
	}
	if (pc.next_full_xid != j->shut_next_xid) {
		snprintf(why, whysz,
			 "the unified server assigned transaction IDs %llu to %llu there (writes of the "
			 "API or of a client)",
			 j->shut_next_xid, (unsigned long long)pc.next_full_xid - 1);
		return 0;
	}
	snprintf(why, whysz, "no transaction of the unified server since the stop");
	return 1;
}

int hm_mig_rollback(hm_mig *m, const char *archive_override, hm_error *err)
{
	hm_journal *j = &m->j;
	const char *archive = archive_override ? archive_override : j->archive;
	int restore = archive_override != NULL || hm_journal_needs_restore(j);
	int migrated = j->step == HM_STEP_DONE;

	if (j->rb_step == HM_RB_DONE) {
		j->rb_step = HM_RB_NONE; /* a new rollback (e.g. of a later migration) */
		/* the earlier rollback's kept directory stays where its summary said; this
		 * rollback keeps the directory it displaces under a name of its own */
		j->displaced_dir[0] = '\0';
	}
	hm_mig_log(m, "rolling back (migration was at step \"%s\", status \"%s\")", hm_step_name(j->step),
		   hm_jstatus_name(j->status));

	/* 1. the snapshot, extracted next to the data directory: a bad archive stops here */
	if (restore && j->rb_step < HM_RB_EXTRACTED) {
		hm_progress pr;
		if (!archive_override && hm_up_precopy_materialize(m, err) != 0) { /* base + delta */
			err->code = HM_EXIT_ROLLBACK_FAILED;
			return -1;
		}
		hm_archive_stats st;
		if (!archive[0])
			return hm_error_set(err, HM_EXIT_ROLLBACK_FAILED,
					    "no snapshot is recorded to restore from");
		char restore_dir[PATH_MAX];
		if (snprintf(restore_dir, sizeof restore_dir, "%s.hive-restore", j->data_dir) >=
		    (int)sizeof restore_dir)
			return hm_error_set(err, HM_EXIT_ROLLBACK_FAILED, "path too long: \"%s\"",
					    j->data_dir);
		if (exists(restore_dir)) {
			if (strcmp(j->restore_dir, restore_dir) != 0)
				return hm_error_set(err, HM_EXIT_ROLLBACK_FAILED,
						    "\"%s\" exists and is not from this rollback",
						    restore_dir),
				       hm_error_hint(err,
						     "move it away, then run hive-migrate rollback again");
			hm_mig_log(m, "removing the incomplete extraction \"%s\" of an interrupted rollback",
				   restore_dir);
			if (hm_rmtree(restore_dir, err) != 0)
				return -1;
		}
		snprintf(j->restore_dir, sizeof j->restore_dir, "%s", restore_dir);
		if (hm_mig_save(m, err) != 0)
			return -1;
		hm_mig_log(m, "verifying and extracting the snapshot \"%s\"", archive);
		hm_progress_init(&pr, stderr, "restore", 0, m->quiet);
		if ((hm_upsnap_is_remote(archive)
			     ? hm_upsnap_extract(m, archive, restore_dir, &pr, err)
			     : hm_archive_extract(archive, restore_dir, &pr, &st, err)) != 0) {
			if (err->code != HM_EXIT_VERIFY_FAILED)
				err->code = HM_EXIT_ROLLBACK_FAILED;
			hm_error_prefix(err, "the snapshot cannot be restored; nothing was changed");
			return -1;
		}
		hm_progress_finish(&pr);
		j->rb_step = HM_RB_EXTRACTED;
	}
	j->status = HM_JS_ROLLING_BACK;
	if (hm_mig_save(m, err) != 0)
		return -1;
	hm_fault_point("rollback:after:extract");

	/* 2. the unified container goes away first: it holds the data directory */
	if (j->rb_step < HM_RB_UNIFIED_DOWN) {
		hm_mig_log(m, "stopping and removing the unified container %s", j->unified_container);
		if (hm_mig_unified_down(m, err) != 0)
			goto fail;
		if (restore) { /* --backup on a running split stack: never swap under a live server */
			if (hm_compose_split_stop(&m->stack, m->stop_timeout, err) != 0)
				goto fail;
		}
		j->rb_step = HM_RB_UNIFIED_DOWN;
		if (hm_mig_save(m, err) != 0)
			goto fail;
	}

	/* 3. swap the restored directory in; the displaced one is kept for now */
	if (restore && j->rb_step < HM_RB_SWAPPED) {
		if (!j->displaced_dir[0]) {
			/* a name nothing has yet (two rollbacks may fall in the same second) */
			for (int n = 0; n == 0 || (n < 100 && exists(j->displaced_dir)); n++)
				if (n == 0)
					snprintf(j->displaced_dir, sizeof j->displaced_dir,
						 "%s.displaced-%lld", j->data_dir, (long long)time(NULL));
				else
					snprintf(j->displaced_dir, sizeof j->displaced_dir,
						 "%s.displaced-%lld-%d", j->data_dir, (long long)time(NULL),
						 n);
			if (hm_mig_save(m, err) != 0)
				goto fail;
		}
		if (exists(j->restore_dir)) {
			if (exists(j->data_dir)) {
				if (exists(j->displaced_dir)) {
					hm_error_set(err, HM_EXIT_ROLLBACK_FAILED, "\"%s\" already exists",
						     j->displaced_dir);
					goto fail;
				}
				if (rename(j->data_dir, j->displaced_dir) != 0) {
					hm_error_errno(err, errno, "move aside", j->data_dir);
					goto fail;
				}
			}
			hm_fault_point("rollback:mid:swap");
			/* checked: never a symlink swapped in by whoever can write the parent */
			if (hm_rename_dir_checked(j->restore_dir, j->data_dir, err) != 0)
				goto fail;
			if (hm_fsync_parent(j->data_dir, err) != 0)
				goto fail;
		} else if (!exists(j->data_dir)) {
			hm_error_set(err, HM_EXIT_ROLLBACK_FAILED, "neither \"%s\" nor \"%s\" exists",
				     j->restore_dir, j->data_dir);
			goto fail;
		}
		hm_mig_log(m, "restored the snapshot into %s (previous directory kept as %s)", j->data_dir,
			   j->displaced_dir);
		j->rb_step = HM_RB_SWAPPED;
		if (hm_mig_save(m, err) != 0)
			goto fail;
	}

	/* 4. without a restore, give the files back to their original owner */
	if (!restore && j->rb_step < HM_RB_CHOWN_UNDONE) {
		if (j->step >= HM_STEP_CHOWNING && exists(j->chown_file)) {
			hm_mig_log(m, "restoring the original file owners in %s", j->data_dir);
			if (hm_owner_undo(j->data_dir, j->chown_file, err) != 0)
				goto fail;
		}
		j->rb_step = HM_RB_CHOWN_UNDONE;
		if (hm_mig_save(m, err) != 0)
			goto fail;
	}

	/* 5. the split stack again */
	unsigned long long next_xid = 0;
	if (j->rb_step < HM_RB_SPLIT_STARTED) {
		next_xid = shutdown_next_xid(j->pgdata);
		hm_mig_log(m, "starting the split stack");
		if (hm_compose_split_start(&m->stack, err) != 0)
			goto fail;
		j->rb_step = HM_RB_SPLIT_STARTED;
		if (hm_mig_save(m, err) != 0)
			goto fail;
	}
	hm_fault_point("rollback:after:split-start");

	/* 6. healthy, and holding what it held before */
	hm_mig_log(m, "waiting for the split stack to be healthy (up to %d s)", m->health_timeout);
	if (split_confirm(m, archive_override == NULL, next_xid, err) != 0)
		goto fail;

	/* 7. only now may the displaced directory go: after a failed migration it holds
	 * nothing new; after a completed one it may hold writes made on the unified container,
	 * so it is kept for the user to look at. */
	char why[256] = "";
	if (restore && exists(j->displaced_dir)) {
		if (migrated) {
			hm_mig_log(m,
				   "kept the unified container's data directory as %s (delete it when no "
				   "longer needed)",
				   j->displaced_dir);
		} else if (!displaced_untouched(j, why, sizeof why)) {
			hm_mig_log(m,
				   "kept the failed attempt's data directory as %s: %s; writes made on the "
				   "unified container are there, not in the restored data (delete it when no "
				   "longer needed)",
				   j->displaced_dir, why);
		} else {
			hm_mig_log(m, "removing %s (the failed attempt's data directory: %s)",
				   j->displaced_dir, why);
			hm_error rm_err;
			if (hm_rmtree(j->displaced_dir, &rm_err) != 0)
				hm_mig_log(m, "could not remove %s: %s (delete it by hand)", j->displaced_dir,
					   rm_err.message);
		}
	}
	j->rb_step = HM_RB_DONE;
	j->status = HM_JS_ROLLED_BACK;
	if (hm_mig_save(m, err) != 0)
		return -1;
	hm_mig_log(m, "rolled back: the split stack is healthy");
	return 0;
fail : {
	hm_error save_err = *err, e2;
	j->status = HM_JS_ROLLBACK_FAILED;
	hm_journal_save(m->journal_path, j, &e2);
	*err = save_err;
}
	err->code = HM_EXIT_ROLLBACK_FAILED;
	hm_error_prefix(err, "rollback failed at step \"%s\"", hm_rb_step_name(j->rb_step));
	if (!err->hint[0])
		hm_error_hint(err,
			      "fix the cause and run hive-migrate rollback again; docs/migration.md explains "
			      "the manual steps");
	return -1;
}
