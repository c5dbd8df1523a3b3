/* hive-migrate up, what it tells: the preflight that refuses or lets a migration start,
 * the plan of a dry run and the final summary (human lines or JSON). */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/progress.h"
#include "compose.h"
#include "health.h"
#include "major.h"
#include "migration.h"
#include "preflight.h"
#include "up_int.h"
#include "up_snapshot_repo.h"

/* Everything `check` checks, plus what up itself needs (image, ports, a running stack).
 * Refusals are HM_EXIT_PREFLIGHT; nothing has changed when this fails. */
int hm_up_preflight(hm_mig *m, const hm_up_opts *o, hm_error *err)
{
	hm_preflight_opts po;
	hm_preflight_report r;
	int rc = -1;
	hm_preflight_opts_init(&po);
	po.data_dir = m->stack.pgdata;
	po.image = m->j.image;
	/* a snapshot in an object store needs no local room beside the stack's own */
	po.snapshot_dir =
		o->archive_dir && !hm_upsnap_is_remote(o->archive_dir) ? o->archive_dir : m->stack_dir;
	po.host = hm_mig_split_params(m).host;
	po.port = m->stack.pg_port;
	po.user = m->stack.db_user;
	po.dbname = m->stack.db_name;
	po.password = m->stack.db_password;
	po.stack = &m->stack;
	po.locale_map = o->locale_map[0] ? o->locale_map : NULL;
	memset(&r, 0, sizeof r);
	int have = hm_docker_image_exists(m->j.image, err);
	if (have < 0)
		return -1;
	if (!have) {
		hm_error_set(err, HM_EXIT_PREFLIGHT, "the unified image \"%s\" does not exist", m->j.image);
		return hm_error_hint(err, "build it with docker/build-image.sh, or pass --image");
	}
	if (hm_preflight_run(&po, &r, err) != 0) {
		hm_preflight_report_print(&r, stderr);
		hm_preflight_report_free(&r);
		err->code = HM_EXIT_PREFLIGHT;
		return hm_error_prefix(err, "preflight could not complete");
	}
	if (r.verdict == HM_VERDICT_INCOMPATIBLE || r.verdict == HM_VERDICT_ERROR) {
		hm_preflight_report_print(&r, stderr);
		const hm_problem *p = NULL;
		for (size_t i = 0; i < r.n_problems; i++)
			if (r.problems[i].severity >= HM_SEV_INCOMPATIBLE) {
				p = &r.problems[i];
				break;
			}
		hm_error_set(err, HM_EXIT_PREFLIGHT, "refused by preflight: %s",
			     p ? p->message : "incompatible");
		if (p && p->hint[0])
			hm_error_hint(err, "%s", p->hint);
		goto cleanup;
	}
	for (size_t i = 0; i < r.n_problems; i++)
		if (strcmp(r.problems[i].code, "server-running") != 0)
			hm_mig_log(m, "preflight warning: %s", r.problems[i].message);
	if (hm_preflight_find(&r, "major-upgrade") && hm_major_up_setup(m, &r.facts, err) != 0)
		goto cleanup;
	if (m->j.api_port != m->stack.api_port && !hm_port_free("0.0.0.0", m->j.api_port)) {
		hm_error_set(err, HM_EXIT_PREFLIGHT, "port %d for the unified API is already in use",
			     m->j.api_port);
		hm_error_hint(err, "free it or pass --api-port");
		goto cleanup;
	}
	if (m->j.pg_port != m->stack.pg_port && !hm_port_free("127.0.0.1", m->j.pg_port)) {
		hm_error_set(err, HM_EXIT_PREFLIGHT, "port %d for the unified PostgreSQL is already in use",
			     m->j.pg_port);
		hm_error_hint(err, "free it or pass --pg-port");
		goto cleanup;
	}
	if (hm_upsnap_preflight(m, o->archive_dir, err) != 0)
		goto cleanup;
	rc = 0;
cleanup:
	hm_preflight_report_free(&r);
	return rc;
}
/* Print the plan of a dry run. */
void hm_up_print_plan(const hm_mig *m, const hm_up_opts *o)
{
	const hm_journal *j = &m->j;
	printf("plan for profile %s (dry run: nothing was changed)\n", m->profile);
	printf("  1. preflight: passed (data %s, target %s)\n", m->stack.pgdata, j->image);
	printf("  2. fingerprint every table of %s@127.0.0.1:%d into %s/fingerprint-%s.json\n",
	       m->stack.db_user, m->stack.pg_port, m->state_dir, m->profile);
	char desc[2048], settings[4096];
	hm_compose_project_describe(&m->stack.compose, desc, sizeof desc);
	printf("  3. stop services");
	for (int i = 0; i < m->stack.n_api_services; i++)
		printf(" %s", m->stack.api_services[i]);
	printf(" %s (docker compose %s stop -t %d); require \"shut down\"\n", m->stack.pg_service, desc,
	       m->stop_timeout);
	int remote = m->j.snapshot_repo[0] || hm_upsnap_is_remote(o->archive_dir);
	if (remote || o->no_precopy) {
		char step4[PATH_MAX * 2 + 512];
		hm_upsnap_plan_line(m, o->archive_dir, step4, sizeof step4);
		fputs(step4, stdout);
	} else {
		printf("  2a. before step 2, while the split stack runs: pre-copy %s into "
		       "%s/<uuid>.base.tar.zst, verify it\n",
		       j->data_dir, o->archive_dir ? o->archive_dir : "STACK/.hive-migrate/archives");
		printf("  4. archive what changed since the pre-copy into <uuid>.delta.tar.zst, verify "
		       "it (the whole snapshot if the pre-copy cannot be used); after step 7, merge "
		       "both into <uuid>.tar.zst\n");
	}
	printf("  5. change owners below %s to %d:%d (undo record kept)\n", j->data_dir, HM_UP_UNIFIED_UID,
	       HM_UP_UNIFIED_GID);
	printf("  6. start %s from %s (project %s), API port %d, PostgreSQL 127.0.0.1:%d\n",
	       j->unified_container, j->template_file, j->unified_project, j->api_port, j->pg_port);
	if (hm_stack_settings_arg(&m->stack, settings, sizeof settings) == 0 && settings[0])
		printf("     with the settings of the split server's command line: %s\n", settings);
	printf("  7. wait up to %d s for health; meanwhile fingerprint under the snapshot of the "
	       "start (when it predates every write of the new server; else after the health "
	       "wait), compare\n",
	       m->health_timeout);
	printf("  8. on failure: roll back automatically and start the split stack again\n");
}

/* The final summary (human lines on stderr, or JSON on stdout). */
void hm_up_summary(const hm_mig *m, const hm_up_opts *o, int code, const hm_archive_stats *ast,
		   const hm_up_times *t, const hm_error *err, const char *failed_step, json_object *arr)
{
	const hm_journal *j = &m->j;
	/* the app is down from the stop of the split stack on (its stop included; journals of
	 * earlier versions only have the end of the stop) until the unified API answers */
	double down_from = j->stop_started_at > 0 ? j->stop_started_at : j->stopped_at;
	double downtime = j->healthy_at > 0 && down_from > 0 ? j->healthy_at - down_from : -1;
	double verified = j->verified_at > 0 && down_from > 0 ? j->verified_at - down_from : -1;
	hm_archive_stats merged;
	struct stat sb;
	if (!strcmp(j->precopy, "merged") && stat(j->archive, &sb) == 0) {
		merged = *ast; /* the one archive now, not its two parts */
		merged.archive_bytes = (uint64_t)sb.st_size;
		ast = &merged;
	}
	json_object *s = json_object_new_object();
	json_object_object_add(s, "profile", json_object_new_string(m->profile));
	json_object_object_add(s, "result",
			       json_object_new_string(code == 0			    ? "migrated"
						      : code == HM_EXIT_ROLLED_BACK ? "rolled-back"
										    : "failed"));
	json_object_object_add(s, "exit_code", json_object_new_int(code));
	json_object_object_add(s, "backup_id", json_object_new_string(j->backup_id));
	json_object_object_add(s, "archive", json_object_new_string(j->archive));
	if (j->snapshot_repo[0]) /* --archive-dir s3://: the repository holding backup backup_id */
		json_object_object_add(s, "snapshot_repo", json_object_new_string(j->snapshot_repo));
	json_object_object_add(s, "archive_bytes", json_object_new_int64((int64_t)ast->archive_bytes));
	json_object_object_add(s, "data_bytes", json_object_new_int64((int64_t)ast->bytes));
	json_object_object_add(s, "snapshot_seconds", json_object_new_double(ast->seconds));
	json_object_object_add(s, "downtime_seconds", json_object_new_double(downtime));
	if (!j->cross_major) /* stop begun -> data verified equal (may end after the health) */
		json_object_object_add(s, "verified_seconds", json_object_new_double(verified));
	json_object *st = json_object_new_object();
	if (j->cross_major) {
		const hm_major_times *x = &t->major;
		const struct {
			const char *name;
			double s;
		} steps[] = {{"api_stop", x->api_stop}, {"fingerprint", x->fingerprint},
			     {"dump", x->dump},		{"old_stop", x->old_stop},
			     {"snapshot", x->snapshot}, {"restore", x->restore},
			     {"analyze", x->analyze},	{"cutover", x->cutover},
			     {"start", x->start},	{"health", x->health},
			     {"verify", x->verify}};
		for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
			json_object_object_add(st, steps[i].name, json_object_new_double(steps[i].s));
		goto steps_done;
	}
	json_object_object_add(st, "stop", json_object_new_double(t->stop));
	json_object_object_add(st, "snapshot", json_object_new_double(t->snapshot));
	json_object_object_add(st, "verify", json_object_new_double(t->verify));
	json_object_object_add(st, "chown", json_object_new_double(t->chown));
	json_object_object_add(st, "start", json_object_new_double(t->start));
	json_object_object_add(st, "health", json_object_new_double(t->health));
	json_object_object_add(st, "fingerprint", json_object_new_double(t->fingerprint));
	json_object_object_add(st, "pg_ready", json_object_new_double(t->pg_ready));
	json_object_object_add(st, "refingerprint", json_object_new_double(t->refingerprint));
	json_object_object_add(st, "precopy", json_object_new_double(t->precopy));
	json_object_object_add(st, "precopy_verify", json_object_new_double(t->precopy_verify));
	json_object_object_add(st, "delta", json_object_new_double(t->delta));
	json_object_object_add(st, "delta_verify", json_object_new_double(t->delta_verify));
	json_object_object_add(st, "merge", json_object_new_double(t->merge));
	json_object_object_add(s, "precopy", json_object_new_string(j->precopy));
	json_object_object_add(s, "fingerprint_during_health", json_object_new_boolean(t->fp_concurrent));
steps_done:
	json_object_object_add(s, "step_seconds", st);
	json_object_object_add(s, "container", json_object_new_string(j->unified_container));
	json_object_object_add(s, "api_port", json_object_new_int(j->api_port));
	json_object_object_add(s, "pg_port", json_object_new_int(j->pg_port));
	json_object_object_add(s, "journal", json_object_new_string(m->journal_path));
	if (code != 0) {
		json_object_object_add(s, "failed_step",
				       json_object_new_string(failed_step ? failed_step : ""));
		json_object_object_add(s, "error", json_object_new_string(err->message));
		/* a rollback that had to keep the failed attempt's directory (writes may be there) */
		struct stat kb;
		if (j->displaced_dir[0] && stat(j->displaced_dir, &kb) == 0)
			json_object_object_add(s, "displaced_dir", json_object_new_string(j->displaced_dir));
	}
	if (j->cross_major) {
		json_object_object_add(s, "cross_major", json_object_new_boolean(1));
		json_object_object_add(s, "old_major", json_object_new_int(j->old_major));
		json_object_object_add(s, "old_data_dir", json_object_new_string(j->old_data_dir));
		json_object_object_add(s, "dump_dir", json_object_new_string(j->dump_dir));
	}
	if (arr)
		json_object_array_add(arr, s);
	else
		json_object_put(s);
	if (code == 0 && !o->json && j->cross_major)
		fprintf(stderr,
			"hive-migrate: [%s] migrated across majors: %s is healthy on API port %d, every "
			"table "
			"matches\n  downtime %.1f s; the old PostgreSQL %d directory is kept unchanged in "
			"%s; "
			"dump %s; snapshot %s\n",
			m->profile, j->unified_container, j->api_port, downtime, j->old_major,
			j->old_data_dir, j->dump_dir, j->archive);
	else if (code == 0 && !o->json) {
		char a[32], d[32];
		fprintf(stderr,
			"hive-migrate: [%s] migrated: %s is healthy on API port %d, every table matches\n"
			"  downtime %.1f s (stop -> API healthy; data verified at %.1f s); snapshot %s "
			"(%s of data in %s, backup id %s)\n",
			m->profile, j->unified_container, j->api_port, downtime, verified, j->archive,
			hm_progress_bytes(ast->bytes, d, sizeof d),
			hm_progress_bytes(ast->archive_bytes, a, sizeof a), j->backup_id);
	}
}
