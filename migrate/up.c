/* hive-migrate up: move a running split stack onto the unified container, or put the split
 * stack back as it was. The steps and the journal are described in docs/migration.md and
 * migrate/journal.h; the rollback lives in migrate/migration.c (shared with `rollback`). */
#include <errno.h>
#include <dirent.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "../cli/commands.h"
#include "../common/archive_dir.h"
#include "../common/fsutil.h"
#include "../common/pg_control.h"
#include "../common/progress.h"
#include "../common/version.h"
#include "compose.h"
#include "fingerprint.h"
#include "health.h"
#include "major.h"
#include "migration.h"
#include "ownership.h"
#include "preflight.h"
#include "rollback_settings.h"
#include "stack_options.h"

#define UNIFIED_UID 1000
#define UNIFIED_GID 1000

/* Seconds spent per step in this run (0 when the step did not run here). */
typedef struct up_times {
	double stop, snapshot, verify, chown, start, health, fingerprint;
} up_times;

typedef struct up_opts {
	const char *stack;
	hm_stack_options split; /* --compose-file, --project-directory, --project-name, --db/api-service */
	const char *profile;
	const char *image;
	const char *templates;
	const char *archive_dir;
	const char *container_name;
	const char *name_prefix; /* prepended to the default container name hive-PROFILE-unified */
	const char *backup_password_file;
	char *backup_password; /* read from backup_password_file (secret: never printed) */
	int api_port, pg_port;
	int health_timeout, stop_timeout;
	int jobs;	       /* pg_dump -j / pg_restore -j across majors */
	char locale_map[1024]; /* --locale-map OLD=NEW lines (hm_major_locale_map_add) */
	int dry_run, json, yes, quiet;
} up_opts;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hive-migrate up [OPTIONS]\n\n"
		"Moves a running split stack (PostgreSQL + API containers) onto the unified container.\n"
		"Either the unified container ends healthy with every row present, or the split stack\n"
		"is put back as it was. An interrupted run resumes when started again.\n\n"
		"options:\n"
		"  --stack DIR            the split stack's directory: hive-migrate's state goes to\n"
		"                         DIR/.hive-migrate; its compose file is looked for there unless\n"
		"                         --compose-file is given (default: --project-directory, else .)\n");
	fputs(HM_STACK_OPTIONS_HELP("                         "), f);
	fprintf(f,
		"  --profile P            agent, genie or all (default agent)\n"
		"  --image IMAGE          unified image (default localhost/hive-unified:17)\n"
		"  --templates DIR        compose templates of the unified container\n"
		"                         (default: share/hive-migrate/docker/templates or "
		"./docker/templates)\n"
		"  --archive-dir DIR      where the snapshot goes (default STACK/.hive-migrate/archives;\n"
		"                         --snapshot-dir is the same option)\n"
		"  --container-name NAME  unified container name (default hive-PROFILE-unified)\n"
		"  --name-prefix PREFIX   default container name becomes PREFIXhive-PROFILE-unified\n"
		"                         (the way to name both containers of --profile all)\n"
		"  --api-port PORT        unified API host port (default: the split API's port)\n"
		"  --pg-port PORT         unified PostgreSQL host port on 127.0.0.1 (default: the split's)\n"
		"                         --container-name, --api-port and --pg-port need a single\n"
		"                         profile; with --profile all each profile keeps the split\n"
		"                         stack's own ports\n"
		"  --backup-password-file FILE  first line: password of the hive_backup role the\n"
		"                         unified container creates (for hive-migrate backup)\n"
		"  --health-timeout S     seconds to wait for health (default 120)\n"
		"  --stop-timeout S       seconds given to containers to stop (default 30)\n"
		"  --jobs N               parallel jobs of pg_dump/pg_restore when the data directory\n"
		"                         is an older PostgreSQL major than the image's (default 2)\n"
		"  --locale-map OLD=NEW   across majors: create a database whose locale is OLD with\n"
		"                         NEW instead (the image lacks OLD); repeatable\n"
		"  --dry-run              print the plan and change nothing\n"
		"  --json                 print the final summary as JSON on stdout\n"
		"  --yes                  do not ask for confirmation on a terminal\n"
		"  --quiet                no progress lines\n"
		"  -h, --help             this help\n\n"
		"exit codes: 0 migrated, 35 failed and rolled back, 36 rollback failed, 37 refused by\n"
		"preflight, 33 locked, 34 interrupted rollback pending; docs/exit-codes.md\n");
}

/* Parse a positive integer option. */
static int parse_int(const char *s, const char *name, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v <= 0 || v > 65535 * 100) {
		fprintf(stderr, "hive-migrate: error: %s needs a positive number, not \"%s\"\n", name, s);
		return -1;
	}
	*out = (int)v;
	return 0;
}

/* The templates directory: the option, else next to the installed binary, else the repo. */
static int resolve_templates(const char *opt, const char *profile, char *out, size_t outsz, hm_error *err)
{
	char exe[PATH_MAX], cand[PATH_MAX];
	if (opt) {
		if (snprintf(out, outsz, "%s/%s.yml", opt, profile) >= (int)outsz)
			return hm_error_set(err, HM_EXIT_INPUT, "path too long: \"%s\"", opt);
		if (access(out, R_OK) != 0)
			return hm_error_errno(err, errno, "read the template", out);
		return 0;
	}
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		const char *rel[] = {"../share/hive-migrate/docker/templates", "docker/templates"};
		for (size_t i = 0; i < 2; i++) {
			snprintf(cand, sizeof cand, "%s/%s/%s.yml", exe, rel[i], profile);
			if (access(cand, R_OK) == 0 && realpath(cand, out))
				return 0;
		}
	}
	snprintf(cand, sizeof cand, "docker/templates/%s.yml", profile);
	if (access(cand, R_OK) == 0 && realpath(cand, out))
		return 0;
	hm_error_set(err, HM_EXIT_INPUT, "no compose template %s.yml for the unified container", profile);
	return hm_error_hint(err, "pass --templates DIR (the docker/templates folder of hive-migrate)");
}

/* Wall clock in seconds (for the journal's downtime figures, which survive restarts). */
static double wall_now(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Bytes of regular files below dir (for the progress display's total); best effort. */
static uint64_t dir_bytes(const char *dir)
{
	uint64_t total = 0;
	DIR *d = opendir(dir);
	struct dirent *de;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char p[PATH_MAX];
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(p, sizeof p, "%s/%s", dir, de->d_name) >= (int)sizeof p || lstat(p, &st) != 0)
			continue;
		if (S_ISREG(st.st_mode))
			total += (uint64_t)st.st_size;
		else if (S_ISDIR(st.st_mode))
			total += dir_bytes(p);
	}
	closedir(d);
	return total;
}

/* Connection parameters of the unified container's database. */
static hm_pg_params unified_params(const hm_mig *m)
{
	hm_pg_params p = {"127.0.0.1",	    m->j.pg_port,	  m->stack.db_user,
			  m->stack.db_name, m->stack.db_password, 5};
	return p;
}

/* Everything `check` checks, plus what up itself needs (image, ports, a running stack).
 * Refusals are HM_EXIT_PREFLIGHT; nothing has changed when this fails. */
static int preflight(hm_mig *m, const up_opts *o, hm_error *err)
{
	hm_preflight_opts po;
	hm_preflight_report r;
	int rc = -1;
	hm_preflight_opts_init(&po);
	po.data_dir = m->stack.pgdata;
	po.image = m->j.image;
	po.snapshot_dir = o->archive_dir ? o->archive_dir : m->stack_dir;
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
	rc = 0;
cleanup:
	hm_preflight_report_free(&r);
	return rc;
}

/* Snapshot metadata (no secrets): who, what, when, and the pg_control facts. */
static char *snapshot_metadata(const hm_mig *m, const hm_pg_control *pc)
{
	json_object *o = json_object_new_object(), *src = json_object_new_object(),
		    *ctl = json_object_new_object();
	char sysid[32], lsn[32];
	json_object_object_add(o, "backup_id", json_object_new_string(m->j.backup_id));
	json_object_object_add(o, "kind", json_object_new_string("migration-snapshot"));
	json_object_object_add(o, "created_at", json_object_new_int64((int64_t)time(NULL)));
	json_object_object_add(o, "tool", json_object_new_string("hive-migrate"));
	json_object_object_add(o, "tool_version", json_object_new_string(HM_VERSION));
	json_object_object_add(src, "stack_dir", json_object_new_string(m->stack_dir));
	json_object_object_add(src, "project", json_object_new_string(m->stack.project));
	json_object_object_add(src, "project_dir", json_object_new_string(m->stack.dir));
	json_object_object_add(src, "profile", json_object_new_string(m->profile));
	json_object_object_add(src, "service", json_object_new_string(m->stack.pg_service));
	json_object_object_add(src, "image", json_object_new_string(m->stack.pg_image));
	json_object_object_add(src, "data_dir", json_object_new_string(m->j.data_dir));
	json_object_object_add(src, "pgdata", json_object_new_string(m->stack.pgdata_rel));
	json_object_object_add(o, "source", src);
	snprintf(sysid, sizeof sysid, "%llu", (unsigned long long)pc->system_identifier);
	snprintf(lsn, sizeof lsn, "%X/%X", (unsigned)(pc->checkpoint_lsn >> 32),
		 (unsigned)pc->checkpoint_lsn);
	json_object_object_add(ctl, "major", json_object_new_int(pc->major));
	json_object_object_add(ctl, "system_identifier", json_object_new_string(sysid));
	json_object_object_add(ctl, "pg_control_version", json_object_new_int64(pc->pg_control_version));
	json_object_object_add(ctl, "catalog_version_no", json_object_new_int64(pc->catalog_version_no));
	json_object_object_add(ctl, "state", json_object_new_string(hm_db_state_name(pc->state)));
	json_object_object_add(ctl, "checkpoint_lsn", json_object_new_string(lsn));
	json_object_object_add(ctl, "data_checksum_version",
			       json_object_new_int64(pc->data_checksum_version));
	json_object_object_add(o, "pg_control", ctl);
	char *s = strdup(
		json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

/* Stop the split stack and make sure its cluster is cleanly shut down: a cluster left "in
 * production" (killed) is started and stopped properly once; never archived silently. */
static int stop_split(hm_mig *m, hm_pg_control *pc, hm_error *err)
{
	for (int attempt = 0;; attempt++) {
		hm_mig_log(m, "stopping the split stack (docker compose stop -t %d)", m->stop_timeout);
		if (hm_compose_split_stop(&m->stack, m->stop_timeout, err) != 0)
			return -1;
		if (hm_pg_control_read(m->stack.pgdata, pc, err) != 0)
			return -1;
		if (pc->state == HM_DB_SHUTDOWNED)
			return 0;
		if (attempt > 0 || pc->state != HM_DB_IN_PRODUCTION) {
			hm_error_set(
				err, HM_EXIT_IO,
				"the split cluster in \"%s\" is \"%s\" after stopping, not \"shut down\"",
				m->stack.pgdata, hm_db_state_name(pc->state));
			return hm_error_hint(err, "start the split stack, let it recover, and stop it with "
						  "docker compose stop -t 30");
		}
		hm_mig_log(m,
			   "the cluster was not shut down cleanly (\"%s\"): starting it to recover, then "
			   "stopping "
			   "it again",
			   hm_db_state_name(pc->state));
		hm_pg_params p = hm_mig_split_params(m);
		if (hm_compose_split_start(&m->stack, err) != 0 ||
		    hm_wait_healthy("the split database", 0, &p, m->health_timeout, err) != 0)
			return -1;
	}
}

/* Step 4: the snapshot (reuses a finished one left by a killed run if it verifies). */
static int snapshot(hm_mig *m, const up_opts *o, const hm_pg_control *pc, hm_archive_stats *st, up_times *t,
		    hm_error *err)
{
	hm_journal *j = &m->j;
	char dir[PATH_MAX];
	if (o->archive_dir)
		snprintf(dir, sizeof dir, "%s", o->archive_dir);
	else if (hm_path_join(dir, sizeof dir, m->state_dir, "archives", err) != 0)
		return -1;
	if (!j->backup_id[0]) {
		uuid_t u;
		uuid_generate(u);
		uuid_unparse_lower(u, j->backup_id);
		if (hm_mkdir_p(dir, 0700, err) != 0)
			return -1;
		char name[64];
		snprintf(name, sizeof name, "%s.tar.zst", j->backup_id);
		if (hm_path_join(j->archive, sizeof j->archive, dir, name, err) != 0 ||
		    hm_mig_save(m, err) != 0)
			return -1;
	}
	if (access(j->archive, F_OK) == 0) {
		hm_mig_log(m, "verifying the snapshot left by the interrupted run: %s", j->archive);
		if (hm_archive_verify(j->archive, NULL, st, err) == 0) {
			snprintf(j->manifest_sha256, sizeof j->manifest_sha256, "%s", st->manifest_sha256);
			return 0;
		}
		hm_mig_log(m, "it does not verify (%s): taking it again", err->message);
		unlink(j->archive);
	}
	char *meta = snapshot_metadata(m, pc);
	if (!meta)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	hm_progress pr;
	hm_archive_opts ao = {.metadata_json = meta, .zstd_level = 1, .progress = &pr};
	hm_mig_log(m, "snapshot of %s into %s", j->data_dir, j->archive);
	hm_progress_init(&pr, stderr, "snapshot", dir_bytes(j->data_dir), m->quiet);
	int rc = hm_archive_dir_create(j->data_dir, j->archive, &ao, st, err);
	free(meta);
	if (rc != 0)
		return -1;
	hm_progress_finish(&pr);
	t->snapshot = st->seconds;
	hm_fault_point("during:snapshot-verify");
	hm_progress_init(&pr, stderr, "verify", st->bytes, m->quiet);
	hm_archive_stats vst;
	if (hm_archive_verify(j->archive, &pr, &vst, err) != 0)
		return hm_error_prefix(err, "the snapshot just written does not verify");
	hm_progress_finish(&pr);
	t->verify = vst.seconds;
	snprintf(j->manifest_sha256, sizeof j->manifest_sha256, "%s", st->manifest_sha256);
	return 0;
}

/* Is the unified container up, healthy, and holding the very same data? */
static int confirm_unified(hm_mig *m, up_times *t, hm_error *err)
{
	double t0 = hm_progress_now();
	hm_pg_params p = unified_params(m);
	json_object *before = NULL, *after = NULL;
	int rc = -1;
	hm_mig_log(m, "waiting for the unified container to be healthy (up to %d s)", m->health_timeout);
	if (hm_wait_healthy("the unified container", m->j.api_port, &p, m->health_timeout, err) != 0)
		return -1;
	t->health = hm_progress_now() - t0;
	t0 = hm_progress_now();
	hm_mig_log(m, "comparing the data with the fingerprint taken before the move");
	if (!(before = json_object_from_file(m->j.fingerprint_file)))
		return hm_error_set(err, HM_EXIT_IO, "cannot read the fingerprint \"%s\"",
				    m->j.fingerprint_file);
	if (hm_fingerprint_take(&p, &after, err) == 0 && hm_fingerprint_compare(before, after, err) == 0)
		rc = 0;
	t->fingerprint = hm_progress_now() - t0;
	json_object_put(before);
	json_object_put(after);
	return rc;
}

/* Everything from the stop of the split stack on (steps 3-8), resumable from j->step. */
static int forward(hm_mig *m, const up_opts *o, hm_archive_stats *ast, up_times *t, hm_error *err)
{
	double t0;
	hm_journal *j = &m->j;
	hm_pg_control pc;
	memset(&pc, 0, sizeof pc);

	if (j->step < HM_STEP_STOPPED) {
		j->step = HM_STEP_STOPPING;
		if (hm_mig_save(m, err) != 0)
			return -1;
		t0 = hm_progress_now();
		if (stop_split(m, &pc, err) != 0)
			return -1;
		t->stop = hm_progress_now() - t0;
		j->stopped_at = wall_now();
		j->step = HM_STEP_STOPPED;
		if (hm_mig_save(m, err) != 0)
			return -1;
		hm_fault_point("after:stop");
	} else if (j->step < HM_STEP_SNAPSHOTTED && hm_pg_control_read(m->stack.pgdata, &pc, err) != 0) {
		return -1;
	}

	if (j->step < HM_STEP_SNAPSHOTTED) {
		if (pc.state != HM_DB_SHUTDOWNED) /* resumed: make sure nobody started it meanwhile */
			if (stop_split(m, &pc, err) != 0)
				return -1;
		if (snapshot(m, o, &pc, ast, t, err) != 0)
			return -1;
		j->step = HM_STEP_SNAPSHOTTED;
		if (hm_mig_save(m, err) != 0)
			return -1;
		hm_fault_point("after:snapshot");
	}

	if (j->step < HM_STEP_CHOWNED) {
		if (j->step < HM_STEP_CHOWNING) {
			long n = 0;
			snprintf(j->chown_file, sizeof j->chown_file, "%s/owners-%s.txt", m->state_dir,
				 m->profile);
			if (hm_owner_plan(j->data_dir, UNIFIED_UID, UNIFIED_GID, j->chown_file, &n, err) != 0)
				return -1;
			j->step = HM_STEP_CHOWNING;
			if (hm_mig_save(m, err) != 0)
				return -1;
			hm_mig_log(m, "changing the owner of %ld entries to %d:%d (undo record %s)", n,
				   UNIFIED_UID, UNIFIED_GID, j->chown_file);
		}
		hm_fault_point("during:chown");
		t0 = hm_progress_now();
		if (hm_owner_apply(j->data_dir, j->chown_file, UNIFIED_UID, UNIFIED_GID, err) != 0)
			return -1;
		t->chown = hm_progress_now() - t0;
		j->step = HM_STEP_CHOWNED;
		if (hm_mig_save(m, err) != 0)
			return -1;
		hm_fault_point("after:chown");
	}

	if (j->step < HM_STEP_VERIFIED) {
		if (j->step < HM_STEP_UNIFIED_STARTING) {
			snprintf(j->env_file, sizeof j->env_file, "%s/unified-%s.env", m->state_dir,
				 m->profile);
			if (hm_mig_write_env(m, j->env_file, o->backup_password, err) != 0)
				return -1;
			/* the split stack's settings files as they are, for a live rollback */
			snprintf(j->settings_dir, sizeof j->settings_dir, "%s/settings-%s", m->state_dir,
				 m->profile);
			if (hm_settings_save_stage(j->pgdata, j->settings_dir, "before", err) != 0)
				return -1;
			j->step = HM_STEP_UNIFIED_STARTING;
			if (hm_mig_save(m, err) != 0)
				return -1;
		}
		hm_mig_log(m, "starting the unified container %s (%s)", j->unified_container, j->image);
		t0 = hm_progress_now();
		if (hm_compose_unified_up(j->template_file, j->unified_project, j->env_file, err) != 0)
			return -1;
		t->start = hm_progress_now() - t0;
		hm_fault_point("after:unified-start");
		if (confirm_unified(m, t, err) != 0)
			return -1;
		/* and as the unified container left them at its start (live rollback: issue 11) */
		if (j->settings_dir[0] &&
		    hm_settings_save_stage(j->pgdata, j->settings_dir, "after", err) != 0)
			return -1;
		j->healthy_at = wall_now();
		j->step = HM_STEP_VERIFIED;
		if (hm_mig_save(m, err) != 0)
			return -1;
		hm_fault_point("after:verify");
	}
	j->step = HM_STEP_DONE;
	j->status = HM_JS_DONE;
	j->failure[0] = '\0';
	return hm_mig_save(m, err);
}

/* Print the plan of a dry run. */
static void print_plan(const hm_mig *m, const up_opts *o)
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
	printf("  4. snapshot %s into %s/<uuid>.tar.zst, then verify it\n", j->data_dir,
	       o->archive_dir ? o->archive_dir : "STACK/.hive-migrate/archives");
	printf("  5. change owners below %s to %d:%d (undo record kept)\n", j->data_dir, UNIFIED_UID,
	       UNIFIED_GID);
	printf("  6. start %s from %s (project %s), API port %d, PostgreSQL 127.0.0.1:%d\n",
	       j->unified_container, j->template_file, j->unified_project, j->api_port, j->pg_port);
	if (hm_stack_settings_arg(&m->stack, settings, sizeof settings) == 0 && settings[0])
		printf("     with the settings of the split server's command line: %s\n", settings);
	printf("  7. wait up to %d s for health, compare the fingerprint\n", m->health_timeout);
	printf("  8. on failure: roll back automatically and start the split stack again\n");
}

/* The final summary (human lines on stderr, or JSON on stdout). */
static void summary(const hm_mig *m, const up_opts *o, int code, const hm_archive_stats *ast,
		    const up_times *t, const hm_error *err, const char *failed_step, json_object *arr)
{
	const hm_journal *j = &m->j;
	double downtime = j->healthy_at > 0 && j->stopped_at > 0 ? j->healthy_at - j->stopped_at : -1;
	json_object *s = json_object_new_object();
	json_object_object_add(s, "profile", json_object_new_string(m->profile));
	json_object_object_add(s, "result",
			       json_object_new_string(code == 0			    ? "migrated"
						      : code == HM_EXIT_ROLLED_BACK ? "rolled-back"
										    : "failed"));
	json_object_object_add(s, "exit_code", json_object_new_int(code));
	json_object_object_add(s, "backup_id", json_object_new_string(j->backup_id));
	json_object_object_add(s, "archive", json_object_new_string(j->archive));
	json_object_object_add(s, "archive_bytes", json_object_new_int64((int64_t)ast->archive_bytes));
	json_object_object_add(s, "data_bytes", json_object_new_int64((int64_t)ast->bytes));
	json_object_object_add(s, "snapshot_seconds", json_object_new_double(ast->seconds));
	json_object_object_add(s, "downtime_seconds", json_object_new_double(downtime));
	json_object *st = json_object_new_object();
	json_object_object_add(st, "stop", json_object_new_double(t->stop));
	json_object_object_add(st, "snapshot", json_object_new_double(t->snapshot));
	json_object_object_add(st, "verify", json_object_new_double(t->verify));
	json_object_object_add(st, "chown", json_object_new_double(t->chown));
	json_object_object_add(st, "start", json_object_new_double(t->start));
	json_object_object_add(st, "health", json_object_new_double(t->health));
	json_object_object_add(st, "fingerprint", json_object_new_double(t->fingerprint));
	json_object_object_add(s, "step_seconds", st);
	json_object_object_add(s, "container", json_object_new_string(j->unified_container));
	json_object_object_add(s, "api_port", json_object_new_int(j->api_port));
	json_object_object_add(s, "pg_port", json_object_new_int(j->pg_port));
	json_object_object_add(s, "journal", json_object_new_string(m->journal_path));
	if (code != 0) {
		json_object_object_add(s, "failed_step",
				       json_object_new_string(failed_step ? failed_step : ""));
		json_object_object_add(s, "error", json_object_new_string(err->message));
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
			"  downtime %.1f s; snapshot %s (%s of data in %s, backup id %s)\n",
			m->profile, j->unified_container, j->api_port, downtime, j->archive,
			hm_progress_bytes(ast->bytes, d, sizeof d),
			hm_progress_bytes(ast->archive_bytes, a, sizeof a), j->backup_id);
	}
}

/* One profile, start to end. Returns the exit code. */
static int up_profile(const up_opts *o, const char *profile, json_object *arr)
{
	hm_mig m;
	hm_error err = {0};
	hm_archive_stats ast = {0};
	up_times times = {0};
	hm_journal old;
	int code = HM_EXIT_OK, loaded;
	const char *failed_step = NULL;
	hm_journal *j = &m.j;

	hm_compose_project proj;
	hm_stack_select sel;
	if (hm_mig_init(&m, o->stack, profile, &err) != 0)
		goto out;
	m.stop_timeout = o->stop_timeout;
	m.health_timeout = o->health_timeout;
	m.quiet = o->quiet;
	if (!o->dry_run && hm_mig_lock(&m, &err) != 0)
		goto out;

	loaded = hm_journal_load(m.journal_path, &old, &err);
	if (loaded < 0)
		goto out;
	hm_resume action = hm_journal_resume_action(loaded == 0 ? &old : NULL);
	/* a migration under way (or done) goes on with the project it recorded */
	int recorded = action == HM_RESUME_CONTINUE || action == HM_RESUME_ALREADY_DONE ||
		       action == HM_RESUME_NEED_ROLLBACK;
	if (hm_stack_options_project(&o->split, m.stack_dir, profile, recorded ? &old : NULL, m.journal_path,
				     &proj, &sel, &err) != 0)
		goto out;
	if (action == HM_RESUME_ALREADY_DONE) {
		*j = old;
		if (!o->json)
			fprintf(stderr, "hive-migrate: [%s] already migrated (journal %s); nothing to do\n",
				profile, m.journal_path);
		goto out;
	}
	if (action == HM_RESUME_NEED_ROLLBACK && old.cross_major && !o->dry_run) {
		/* across majors the undo is up's own (no archive): finish it here */
		*j = old;
		if (hm_stack_load_project(&proj, &sel, &m.stack, &err) != 0)
			goto out;
		hm_mig_log(&m, "finishing the interrupted rollback of the cross-major migration");
		if (hm_major_rollback(&m, &err) == 0)
			hm_error_set(
				&err, HM_EXIT_ROLLED_BACK,
				"the interrupted cross-major migration was rolled back: the split stack is "
				"healthy with its data unchanged");
		goto out;
	}
	if (action == HM_RESUME_NEED_ROLLBACK) {
		hm_error_set(&err, HM_EXIT_INTERRUPTED,
			     "a rollback of profile %s is unfinished (status \"%s\")", profile,
			     hm_jstatus_name(old.status));
		hm_error_hint(&err, "run hive-migrate rollback --stack %s --profile %s", m.stack_dir,
			      profile);
		goto out;
	}
	if (hm_stack_load_project(&proj, &sel, &m.stack, &err) != 0)
		goto out;
	if (action == HM_RESUME_CONTINUE) {
		if (o->dry_run) {
			printf("an interrupted migration of profile %s stands at step \"%s\": up would "
			       "resume it\n",
			       profile, hm_step_name(old.step));
			goto out;
		}
		*j = old;
		if (!j->project_name[0])
			hm_mig_record_stack(&m); /* a journal from before they were recorded */
		hm_mig_log(&m, "resuming the interrupted migration at step \"%s\"", hm_step_name(j->step));
	} else {
		/* fresh (or restarted before anything changed) */
		hm_journal_init(j, profile, m.stack_dir);
		hm_mig_record_stack(&m);
		snprintf(j->image, sizeof j->image, "%s", o->image);
		hm_stack_unified_data_dir(&m.stack, j->data_dir, sizeof j->data_dir);
		snprintf(j->pgdata, sizeof j->pgdata, "%s", m.stack.pgdata);
		j->api_port = o->api_port ? o->api_port
					  : (m.stack.api_port ? m.stack.api_port
							      : (!strcmp(profile, "agent") ? 38886 : 48886));
		j->pg_port = o->pg_port ? o->pg_port
					: (m.stack.pg_port ? m.stack.pg_port
							   : (!strcmp(profile, "agent") ? 35532 : 48532));
		if (o->container_name)
			snprintf(j->unified_container, sizeof j->unified_container, "%s", o->container_name);
		else
			snprintf(j->unified_container, sizeof j->unified_container, "%shive-%s-unified",
				 o->name_prefix ? o->name_prefix : "", profile);
		snprintf(j->unified_project, sizeof j->unified_project, "%s", j->unified_container);
		for (char *c = j->unified_project; *c; c++)
			if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
				*c = (*c >= 'A' && *c <= 'Z') ? (char)(*c - 'A' + 'a') : '-';
		if (resolve_templates(o->templates, profile, j->template_file, sizeof j->template_file,
				      &err) != 0)
			goto out;
		if (action == HM_RESUME_RESTART) {
			hm_mig_log(&m, "an interrupted run stopped before changing anything: starting over");
			hm_pg_params sp = hm_mig_split_params(&m);
			if (!hm_pg_healthy(&sp, NULL, 0) &&
			    (hm_compose_split_start(&m.stack, &err) != 0 ||
			     hm_wait_healthy("the split stack", m.stack.api_port, &sp, m.health_timeout,
					     &err) != 0))
				goto out;
		}
		hm_mig_log(&m, "preflight of %s", m.stack.pgdata);
		if (preflight(&m, o, &err) != 0)
			goto out;
		if (o->dry_run) {
			if (j->cross_major)
				hm_major_print_plan(&m, o->archive_dir, o->jobs);
			else
				print_plan(&m, o);
			goto out;
		}
		if (!o->yes && isatty(0) && isatty(2)) {
			char line[16] = "";
			fprintf(stderr,
				"this stops the split stack %s (%s) and moves its data to %s. continue? "
				"[y/N] ",
				m.stack_dir, profile, j->unified_container);
			if (!fgets(line, sizeof line, stdin) || (line[0] != 'y' && line[0] != 'Y')) {
				hm_error_set(&err, HM_EXIT_USAGE, "cancelled; nothing was changed");
				goto out;
			}
		}
		if (hm_mig_save(&m, &err) != 0)
			goto out;

		/* step 2: fingerprint while the old server runs */
		hm_pg_params sp = hm_mig_split_params(&m);
		json_object *fp = NULL;
		hm_mig_log(&m, "fingerprinting every table (rows and content digest)");
		if (hm_fingerprint_take(&sp, &fp, &err) != 0) {
			hm_error_hint(
				&err,
				"the split stack must be running and reachable on 127.0.0.1:%d with the "
				"credentials of its .env",
				m.stack.pg_port);
			goto abandon;
		}
		snprintf(j->fingerprint_file, sizeof j->fingerprint_file, "%s/fingerprint-%s.json",
			 m.state_dir, profile);
		const char *fps = json_object_to_json_string_ext(fp, JSON_C_TO_STRING_PRETTY);
		int wrc = hm_write_file_atomic(j->fingerprint_file, fps, strlen(fps), 0600, &err);
		hm_mig_log(&m, "fingerprint: %lld rows", hm_fingerprint_total_rows(fp));
		json_object_put(fp);
		if (wrc != 0)
			goto abandon;
		j->step = HM_STEP_FINGERPRINTED;
		if (hm_mig_save(&m, &err) != 0)
			goto abandon;
		hm_fault_point("after:fingerprint");
	}

	if (j->cross_major ? hm_major_forward(&m, o->archive_dir, o->backup_password, o->jobs,
					      o->locale_map[0] ? o->locale_map : NULL, &err) == 0
			   : forward(&m, o, &ast, &times, &err) == 0)
		goto out;

	/* failure after the split stack was (maybe) stopped: roll back */
	failed_step = hm_step_name(j->step);
	{
		hm_error cause = err, rberr = {0};
		hm_error_print(&cause, stderr);
		snprintf(j->failure, sizeof j->failure, "step %s: %s", failed_step, cause.message);
		hm_mig_log(&m, "migration failed at step \"%s\": rolling back", failed_step);
		if ((j->cross_major ? hm_major_rollback(&m, &rberr) : hm_mig_rollback(&m, NULL, &rberr)) !=
		    0) {
			hm_error_set(&err, HM_EXIT_ROLLBACK_FAILED,
				     "migration failed at step \"%s\" (%s), and the rollback failed too: %s",
				     failed_step, cause.message, rberr.message);
			hm_error_hint(&err, "%s", rberr.hint[0] ? rberr.hint : "see docs/migration.md");
			goto out;
		}
		hm_error_set(&err, HM_EXIT_ROLLED_BACK,
			     "migration failed at step \"%s\": %s; rolled back: the split stack "
			     "is healthy with its data unchanged",
			     failed_step, cause.message);
		if (cause.hint[0])
			hm_error_hint(&err, "%s", cause.hint);
	}
	goto out;

abandon:
	/* nothing was changed: close the journal so the next run starts fresh */
	j->status = HM_JS_ROLLED_BACK;
	snprintf(j->failure, sizeof j->failure, "%s", err.message);
	{
		hm_error e2;
		hm_journal_save(m.journal_path, j, &e2);
	}
out:
	code = err.message[0] ? (int)err.code : HM_EXIT_OK;
	if (code != HM_EXIT_OK)
		hm_error_print(&err, stderr);
	if (!o->dry_run)
		summary(&m, o, code, &ast, &times, &err, failed_step, arr);
	hm_mig_unlock(&m);
	return code;
}

int hm_cmd_up(int argc, char **argv)
{
	up_opts o = {.profile = "agent",
		     .image = "localhost/hive-unified:17",
		     .health_timeout = 120,
		     .stop_timeout = 30,
		     .jobs = 2};
	static const struct option longopts[] = {{"stack", required_argument, NULL, 's'},
						 HM_STACK_LONGOPTS,
						 {"profile", required_argument, NULL, 'p'},
						 {"image", required_argument, NULL, 'i'},
						 {"templates", required_argument, NULL, 't'},
						 {"archive-dir", required_argument, NULL, 'a'},
						 {"snapshot-dir", required_argument, NULL, 'a'},
						 {"container-name", required_argument, NULL, 'c'},
						 {"name-prefix", required_argument, NULL, 'N'},
						 {"backup-password-file", required_argument, NULL, 'B'},
						 {"api-port", required_argument, NULL, 'A'},
						 {"pg-port", required_argument, NULL, 'P'},
						 {"health-timeout", required_argument, NULL, 'H'},
						 {"stop-timeout", required_argument, NULL, 'T'},
						 {"jobs", required_argument, NULL, 'J'},
						 {"locale-map", required_argument, NULL, 'L'},
						 {"dry-run", no_argument, NULL, 'n'},
						 {"json", no_argument, NULL, 'j'},
						 {"yes", no_argument, NULL, 'y'},
						 {"quiet", no_argument, NULL, 'q'},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "hyf:", longopts, NULL)) != -1) {
		int sc = hm_stack_options_parse(&o.split, c, optarg, "up");
		if (sc < 0)
			return HM_EXIT_USAGE;
		if (sc > 0)
			continue;
		switch (c) {
		case 's':
			o.stack = optarg;
			break;
		case 'p':
			o.profile = optarg;
			break;
		case 'i':
			o.image = optarg;
			break;
		case 't':
			o.templates = optarg;
			break;
		case 'a':
			o.archive_dir = optarg;
			break;
		case 'c':
			o.container_name = optarg;
			break;
		case 'N':
			if (strlen(optarg) > 64 ||
			    strspn(optarg, "abcdefghijklmnopqrstuvwxyz"
					   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != strlen(optarg)) {
				fprintf(stderr,
					"hive-migrate: error: up: --name-prefix takes up to 64 letters, "
					"digits, \"_\", \".\" or \"-\", not \"%s\"\n",
					optarg);
				return HM_EXIT_USAGE;
			}
			o.name_prefix = optarg;
			break;
		case 'B':
			o.backup_password_file = optarg;
			break;
		case 'A':
			if (parse_int(optarg, "--api-port", &o.api_port) != 0)
				return HM_EXIT_USAGE;
			break;
		case 'P':
			if (parse_int(optarg, "--pg-port", &o.pg_port) != 0)
				return HM_EXIT_USAGE;
			break;
		case 'H':
			if (parse_int(optarg, "--health-timeout", &o.health_timeout) != 0)
				return HM_EXIT_USAGE;
			break;
		case 'T':
			if (parse_int(optarg, "--stop-timeout", &o.stop_timeout) != 0)
				return HM_EXIT_USAGE;
			break;
		case 'L': {
			hm_error lerr = {0};
			if (hm_major_locale_map_add(o.locale_map, sizeof o.locale_map, optarg, &lerr) != 0) {
				hm_error_print(&lerr, stderr);
				return HM_EXIT_USAGE;
			}
			break;
		}
		case 'J':
			if (parse_int(optarg, "--jobs", &o.jobs) != 0)
				return HM_EXIT_USAGE;
			break;
		case 'n':
			o.dry_run = 1;
			break;
		case 'j':
			o.json = 1;
			break;
		case 'y':
			o.yes = 1;
			break;
		case 'q':
			o.quiet = 1;
			break;
		case 'h':
			usage(stdout);
			return HM_EXIT_OK;
		default:
			fprintf(stderr,
				"hive-migrate: error: up: unknown or incomplete option \"%s\" (hint: "
				"hive-migrate up --help)\n",
				argv[optind - 1]);
			return HM_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr,
			"hive-migrate: error: up: unexpected argument \"%s\" (hint: hive-migrate up "
			"--help)\n",
			argv[optind]);
		return HM_EXIT_USAGE;
	}
	const char *profiles[3] = {NULL, NULL, NULL};
	if (!strcmp(o.profile, "all")) {
		profiles[0] = "agent";
		profiles[1] = "genie";
	} else if (!strcmp(o.profile, "agent") || !strcmp(o.profile, "genie")) {
		profiles[0] = o.profile;
	} else {
		fprintf(stderr,
			"hive-migrate: error: up: --profile must be agent, genie or all, not \"%s\"\n",
			o.profile);
		return HM_EXIT_USAGE;
	}
	if (!o.stack)
		o.stack = o.split.project_dir ? o.split.project_dir : ".";
	if (profiles[1] && (o.split.db_service || o.split.api_service)) {
		fprintf(stderr,
			"hive-migrate: error: up: --db-service/--api-service need a single --profile\n");
		return HM_EXIT_USAGE;
	}
	if (profiles[1] && (o.container_name || o.api_port || o.pg_port)) {
		fprintf(stderr, "hive-migrate: error: up: --container-name/--api-port/--pg-port need a "
				"single --profile (hint: --name-prefix names the containers of --profile "
				"all)\n");
		return HM_EXIT_USAGE;
	}
	if (o.backup_password_file) {
		hm_error err = {0};
		/* refused unless 0600 or stricter, as backup --password-file is */
		if (hm_read_secret_file(o.backup_password_file, 4096, &o.backup_password, &err) != 0) {
			hm_error_print(&err, stderr);
			return err.code;
		}
		if (!o.backup_password[0]) {
			fprintf(stderr, "hive-migrate: error: up: \"%s\" holds no password\n",
				o.backup_password_file);
			free(o.backup_password);
			return HM_EXIT_USAGE;
		}
	}
	if (profiles[1] && hm_stack_options_distinct(&o.split, o.stack, profiles) != 0) {
		free(o.backup_password);
		return HM_EXIT_USAGE;
	}
	json_object *arr = o.json ? json_object_new_array() : NULL;
	int code = HM_EXIT_OK;
	for (int i = 0; profiles[i] && code == HM_EXIT_OK; i++)
		code = up_profile(&o, profiles[i], arr);
	if (arr) {
		json_object *root = json_object_new_object();
		json_object_object_add(root, "exit_code", json_object_new_int(code));
		json_object_object_add(root, "profiles", arr);
		printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
									    JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(root);
	}
	free(o.backup_password);
	return code;
}
