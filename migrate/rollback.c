/* hive-migrate rollback: put the split stack back (or complete an interrupted rollback).
 * Which rollback runs is hm_journal_rollback_mode's decision: after a completed migration the
 * live one (migrate/rollback_live.c) keeps every write; --to-snapshot / --discard-new-writes
 * restore the pre-migration archive (migrate/rollback_snapshot.c around hm_mig_rollback);
 * after a failed or interrupted up, hm_mig_rollback (migrate/migration.c, shared with the
 * automatic rollback of a failed `up`) as before. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cli/commands.h"
#include "../common/archive_dir.h"
#include "../backup/repo_cli.h"
#include "../common/fsutil.h"
#include "compose.h"
#include "major.h"
#include "migration.h"
#include "rollback_live.h"
#include "rollback_snapshot.h"
#include "stack_options.h"
#include "up_snapshot_repo.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hive-migrate rollback [OPTIONS]\n\n"
		"Brings the split stack back after `hive-migrate up`.\n\n"
		"After a completed migration (same PostgreSQL major) the default keeps every write made\n"
		"since: the unified server is fingerprinted, stopped cleanly, a verified safety snapshot\n"
		"of its data directory is taken, the owners and the split stack's settings files are put\n"
		"back, and the split stack starts on the same directory; it must be healthy with pgvector\n"
		"and hold exactly what the unified server held. A directory left crashed (the unified\n"
		"container was killed or no longer starts) is recovered by the split stack's PostgreSQL.\n\n"
		"--to-snapshot restores the snapshot taken before the migration instead (writes since are\n"
		"left out: the tables that changed are listed first, and it asks; without a terminal it\n"
		"needs --yes). After a failed or interrupted up, rollback restores the state before it.\n"
		"An interrupted rollback continues when run again.\n\n"
		"options:\n"
		"  --stack DIR         the split stack's directory, where up kept its state in\n"
		"                      DIR/.hive-migrate (default: --project-directory, else .); the\n"
		"                      compose project up recorded there is used\n");
	fputs(HM_STACK_OPTIONS_HELP("                      "), f);
	fprintf(f,
		"  --profile P         agent, genie or all (default agent)\n"
		"  --to-snapshot       restore the pre-migration snapshot (leaves out writes made since)\n"
		"  --backup ID         restore this snapshot (backup id or archive path); implies\n"
		"                      --to-snapshot\n"
		"  --discard-new-writes  after a migration across PostgreSQL majors (whose directory\n"
		"                      cannot go back): put the untouched old directory back; writes\n"
		"                      made since stay only in the new cluster, kept as DATA.pgN-new\n"
		"  --no-safety-snapshot  do not archive the live data directory first\n"
		"  --archive-dir DIR   where snapshots are, and the safety snapshot goes (default: beside\n"
		"                      up's snapshot, STACK/.hive-migrate/archives)\n"
		"  --archive-dir s3://BUCKET/PREFIX  where --backup ID is looked up; the safety snapshot\n"
		"                      then stays local (STACK/.hive-migrate/archives): undoing a\n"
		"                      rollback must not depend on the network\n"
		"  --health-timeout S  seconds to wait for health (default 120)\n"
		"  --stop-timeout S    seconds given to containers to stop (default 30)\n"
		"  --dry-run           print what would be done\n"
		"  --json              print a JSON summary on stdout\n"
		"  --yes               do not ask for confirmation (needed without a terminal for\n"
		"                      --to-snapshot / --discard-new-writes when writes would be lost)\n"
		"  --quiet             no progress lines\n"
		"  -h, --help          this help\n"
		"snapshot in an object store (up --archive-dir s3://...): the journal gives where it is\n"
		"and its endpoint, region, addressing and CA file; these options override them. The\n"
		"credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials or\n"
		"--s3-credentials-file (never recorded in the journal):\n"
		"  --s3-endpoint URL, --s3-region REGION, --s3-uri-style path|host, --s3-ca-file FILE,\n"
		"  --s3-credentials-file FILE, --s3-lock-ttl SECONDS\n" HM_REPO_CLI_PART_HELP "\n"
		"exit codes: 0 rolled back, 36 rollback failed (run it again), 38 writes would be lost\n"
		"and it was not confirmed, 39 cross-major migration without --discard-new-writes, 40\n"
		"snapshot failed verification (nothing changed), 41 no migration to roll back, 33\n"
		"locked, 25 the object store holding the snapshot failed; docs/exit-codes.md\n");
}

typedef struct rb_opts {
	const char *stack, *profile, *backup, *archive_dir;
	hm_stack_options split;
	int health_timeout, stop_timeout, dry_run, json, yes, quiet;
	int to_snapshot, discard, no_safety;
} rb_opts;

/* Archive path for --backup: a path to an archive, or an id looked up in the archive dir. */
static int find_backup(const hm_mig *m, const rb_opts *o, char *out, size_t outsz, hm_error *err)
{
	char dir[PATH_MAX];
	int remote = hm_upsnap_find_backup(m, o->archive_dir, o->backup, out, outsz, err);
	if (remote <= 0) /* in an object store (up_snapshot_repo.c) */
		return remote;
	if (strchr(o->backup, '/')) {
		if (snprintf(out, outsz, "%s", o->backup) >= (int)outsz)
			return hm_error_set(err, HM_EXIT_INPUT, "path too long");
	} else {
		if (o->archive_dir)
			snprintf(dir, sizeof dir, "%s", o->archive_dir);
		else if (hm_path_join(dir, sizeof dir, m->state_dir, "archives", err) != 0)
			return -1;
		if (snprintf(out, outsz, "%s/%s.tar.zst", dir, o->backup) >= (int)outsz)
			return hm_error_set(err, HM_EXIT_INPUT, "path too long");
	}
	if (access(out, R_OK) != 0) {
		hm_error_set(err, HM_EXIT_NOT_FOUND, "no snapshot \"%s\" (looked for %s)", o->backup, out);
		return hm_error_hint(err, "list them with: ls %s",
				     o->archive_dir ? o->archive_dir : "STACK/.hive-migrate/archives");
	}
	return 0;
}

/* The plan of a dry run. */
static void print_plan(const hm_mig *m, const rb_opts *o, hm_rb_mode mode, const char *archive)
{
	const hm_journal *j = &m->j;
	printf("rollback plan for profile %s (dry run: nothing was changed)\n", m->profile);
	printf("  migration status \"%s\" at step \"%s\"; rollback mode \"%s\", step \"%s\" / \"%s\"\n",
	       hm_jstatus_name(j->status), hm_step_name(j->step), hm_rb_mode_name(mode),
	       hm_rb_step_name(j->rb_step), hm_live_step_name(j->live_step));
	if (mode == HM_RBM_LIVE) {
		printf("  live rollback: every write made on %s is kept\n", j->unified_container);
		printf("  fingerprint the unified server, stop it (-t %d), require \"shut down\" (else the\n"
		       "  split stack's PostgreSQL recovers the directory)\n",
		       m->stop_timeout);
		if (!o->no_safety)
			printf("  safety snapshot of %s (verified)\n", j->data_dir);
		printf("  restore the owners (%s) and the settings files of the split stack\n",
		       j->chown_file[0] ? j->chown_file : "no record");
		printf("  start the split stack on %s; health, pgvector, fingerprint equal to the unified "
		       "one\n",
		       j->data_dir);
		return;
	}
	if (j->cross_major && j->old_data_dir[0] && !o->backup) {
		printf("  across majors: stop %s (-t %d), remove the dump, put the untouched PostgreSQL %d\n"
		       "  directory %s back in %s (a rename, no archive restore)\n",
		       j->unified_container, m->stop_timeout, j->old_major, j->old_data_dir, j->data_dir);
		if (j->step == HM_STEP_DONE)
			printf("  the new cluster must say \"shut down\"; it is kept, with every write made "
			       "since,\n"
			       "  as %s (the split stack does not see those writes)\n",
			       j->new_data_dir);
		else
			printf("  the failed new cluster %s is removed\n", j->new_data_dir);
		printf("  start the split stack; health and the fingerprint taken before the migration\n");
		return;
	}
	int restore = mode == HM_RBM_SNAPSHOT || o->backup || hm_journal_needs_restore(j);
	if (mode == HM_RBM_SNAPSHOT && !o->no_safety)
		printf("  verify %s, stop %s, safety snapshot of %s\n", archive, j->unified_container,
		       j->data_dir);
	if (restore)
		printf("  verify and extract %s next to %s, stop %s, swap the directories (writes made on\n"
		       "  the unified container since the migration are left out; its directory is kept)\n",
		       archive, j->data_dir, j->unified_container);
	else
		printf("  stop %s if running; restore the original owners\n", j->unified_container);
	printf("  start the split stack in %s and wait for it to be healthy\n", m->stack_dir);
}

/* One profile. Returns the exit code. */
static int rollback_profile(const rb_opts *o, const char *profile, json_object *arr)
{
	hm_mig m;
	hm_error err = {0};
	char archive[4096] = "";
	int loaded;
	hm_compose_project proj;
	hm_stack_select sel;
	hm_rb_mode mode = HM_RBM_NONE;
	hm_rb_live_result live = {0};
	json_object *left_out = NULL;
	if (hm_mig_init(&m, o->stack, profile, &err) != 0)
		goto out;
	m.stop_timeout = o->stop_timeout;
	m.health_timeout = o->health_timeout;
	m.quiet = o->quiet;
	if (!o->dry_run && hm_mig_lock(&m, &err) != 0)
		goto out;
	loaded = hm_journal_load(m.journal_path, &m.j, &err);
	if (loaded < 0)
		goto out;
	if (loaded == 1) {
		hm_error_set(&err, HM_EXIT_NOT_FOUND,
			     "no migration of profile %s to roll back in %s (no journal %s)", profile,
			     m.stack_dir, m.journal_path);
		hm_error_hint(&err, "pass --stack DIR of the migrated stack");
		goto out;
	}
	/* the split stack is the project the migration recorded */
	if (hm_stack_options_project(&o->split, m.stack_dir, profile, &m.j, m.journal_path, &proj, &sel,
				     &err) != 0 ||
	    hm_stack_load_project(&proj, &sel, &m.stack, &err) != 0)
		goto out;
	if (!m.j.project_name[0])
		hm_mig_record_stack(&m);
	if (o->backup && find_backup(&m, o, archive, sizeof archive, &err) != 0)
		goto out;
	if (m.j.status == HM_JS_ROLLED_BACK && !o->backup) {
		if (!o->json)
			fprintf(stderr,
				"hive-migrate: [%s] already rolled back (journal %s); nothing to do\n",
				profile, m.journal_path);
		goto out;
	}
	mode = hm_journal_rollback_mode(&m.j, o->to_snapshot || o->discard || o->backup);
	const char *restore_from = o->backup ? archive : m.j.archive;
	int fresh = m.j.status == HM_JS_DONE; /* nothing of a rollback happened yet */

	/* cross-major: the directory cannot go back; only with --discard-new-writes */
	if (fresh && m.j.cross_major && !o->discard) {
		if (!o->dry_run)
			hm_rb_report_left_out(&m, "a rollback", &left_out, &err);
		hm_error_set(&err, HM_EXIT_WRITES_WOULD_BE_LOST,
			     "profile %s was migrated across PostgreSQL majors: its data directory cannot be "
			     "carried back to the split stack, and a rollback loses every write made since; "
			     "nothing was changed",
			     profile);
		hm_error_hint(&err, "pass --discard-new-writes to restore the pre-migration data anyway (the "
				    "unified container's directory is kept aside)");
		goto out;
	}
	if (o->dry_run) {
		print_plan(&m, o, mode, restore_from);
		goto out;
	}
	if (fresh && mode == HM_RBM_SNAPSHOT) {
		const char *verb = o->discard ? "rollback --discard-new-writes" : "rollback --to-snapshot";
		int lost = hm_rb_report_left_out(&m, verb, &left_out, &err);
		if (lost < 0)
			goto out;
		if (lost && hm_rb_confirm(verb, o->yes, &err) != 0)
			goto out;
	} else if (fresh && mode == HM_RBM_LIVE && !o->yes && isatty(0) && isatty(2)) {
		char q[512];
		snprintf(q, sizeof q,
			 "this stops %s and starts the split stack on its data directory (every write is "
			 "kept)",
			 m.j.unified_container);
		if (hm_rb_confirm(q, 0, &err) != 0)
			goto out;
	}
	if (m.j.cross_major && m.j.old_data_dir[0] && !o->backup) {
		/* the old directory was kept untouched: it goes back by a rename (a journal
		 * without one, from an older version, gets the snapshot rollback) */
		if (m.j.step == HM_STEP_DONE)
			hm_major_rollback_completed(&m, &err);
		else
			hm_major_rollback(&m, &err);
	} else if (mode == HM_RBM_LIVE) {
		hm_rb_live_opts lo = {.archive_dir = o->archive_dir, .no_safety_snapshot = o->no_safety};
		hm_rb_live(&m, &lo, &live, &err);
	} else if (mode == HM_RBM_SNAPSHOT) {
		hm_rb_snapshot_opts so = {.archive = o->backup ? archive : NULL,
					  .archive_dir = o->archive_dir,
					  .no_safety_snapshot = o->no_safety,
					  .yes = o->yes,
					  .quiet = o->quiet};
		hm_rb_to_snapshot(&m, &so, &err);
	} else {
		hm_mig_rollback(&m, o->backup ? archive : NULL, &err);
	}
out:;
	int code = err.message[0] ? (int)err.code : HM_EXIT_OK;
	if (code != HM_EXIT_OK)
		hm_error_print(&err, stderr);
	if (arr && !o->dry_run) {
		json_object *s = json_object_new_object();
		json_object_object_add(s, "profile", json_object_new_string(profile));
		json_object_object_add(s, "result",
				       json_object_new_string(code == 0 ? "rolled-back" : "failed"));
		json_object_object_add(s, "exit_code", json_object_new_int(code));
		json_object_object_add(s, "mode", json_object_new_string(hm_rb_mode_name(mode)));
		json_object_object_add(s, "archive",
				       json_object_new_string(archive[0] ? archive : m.j.archive));
		json_object_object_add(s, "displaced_dir", json_object_new_string(m.j.displaced_dir));
		json_object_object_add(s, "safety_archive",
				       json_object_new_string(m.j.safety_done ? m.j.safety_archive : ""));
		if (mode == HM_RBM_LIVE) {
			json_object_object_add(s, "fingerprint_match",
					       json_object_new_boolean(live.fingerprint_compared));
			json_object_object_add(s, "fingerprint_stale",
					       json_object_new_boolean(live.fingerprint_stale));
			json_object_object_add(s, "recovered", json_object_new_boolean(live.recovered));
			json_object_object_add(s, "unified_stop_state",
					       json_object_new_string(m.j.unified_stop_state));
			json_object_object_add(s, "rows", json_object_new_int64(live.rows));
			json_object_object_add(s, "owners_new", json_object_new_int64(live.owners_new));
			json_object_object_add(s, "settings_rewritten",
					       json_object_new_int(live.settings_rewritten));
			json_object_object_add(s, "downtime_seconds", json_object_new_double(live.downtime));
			json_object *st = json_object_new_object();
			const struct {
				const char *name;
				double v;
			} steps[] = {{"fingerprint", live.step_seconds.fingerprint},
				     {"stop", live.step_seconds.stop},
				     {"safety_snapshot", live.step_seconds.safety_snapshot},
				     {"owners", live.step_seconds.owners},
				     {"settings", live.step_seconds.settings},
				     {"start", live.step_seconds.start},
				     {"health", live.step_seconds.health},
				     {"verify", live.step_seconds.verify}};
			for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
				json_object_object_add(st, steps[i].name, json_object_new_double(steps[i].v));
			json_object_object_add(s, "step_seconds", st);
		}
		json_object_object_add(s, "left_out", left_out ? json_object_get(left_out) : NULL);
		if (code)
			json_object_object_add(s, "error", json_object_new_string(err.message));
		json_object_array_add(arr, s);
	}
	json_object_put(left_out);
	hm_mig_unlock(&m);
	return code;
}

int hm_cmd_rollback(int argc, char **argv)
{
	rb_opts o = {.profile = "agent", .health_timeout = 120, .stop_timeout = 30};
	static const struct option longopts[] = {{"stack", required_argument, NULL, 's'},
						 HM_STACK_LONGOPTS,
						 {"profile", required_argument, NULL, 'p'},
						 {"backup", required_argument, NULL, 'b'},
						 {"to-snapshot", no_argument, NULL, 'S'},
						 {"discard-new-writes", no_argument, NULL, 'D'},
						 {"no-safety-snapshot", no_argument, NULL, 'X'},
						 {"archive-dir", required_argument, NULL, 'a'},
						 {"health-timeout", required_argument, NULL, 'H'},
						 {"stop-timeout", required_argument, NULL, 'T'},
						 {"dry-run", no_argument, NULL, 'n'},
						 {"json", no_argument, NULL, 'j'},
						 {"yes", no_argument, NULL, 'y'},
						 {"quiet", no_argument, NULL, 'q'},
						 {"help", no_argument, NULL, 'h'},
						 HM_REPO_S3_LONGOPTS,
						 {NULL, 0, NULL, 0}};
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "hyf:", longopts, NULL)) != -1) {
		char *end = NULL;
		int sc = hm_stack_options_parse(&o.split, c, optarg, "rollback");
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
		case 'b':
			o.backup = optarg;
			break;
		case 'a':
			o.archive_dir = optarg;
			break;
		case 'S':
			o.to_snapshot = 1;
			break;
		case 'D':
			o.discard = 1;
			break;
		case 'X':
			o.no_safety = 1;
			break;
		case 'H':
		case 'T': {
			long v = strtol(optarg, &end, 10);
			if (!*optarg || *end || v <= 0 || v > 86400) {
				fprintf(stderr,
					"hive-migrate: error: rollback: %s needs a positive number of "
					"seconds\n",
					c == 'H' ? "--health-timeout" : "--stop-timeout");
				return HM_EXIT_USAGE;
			}
			*(c == 'H' ? &o.health_timeout : &o.stop_timeout) = (int)v;
			break;
		}
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
			sc = hm_upsnap_cli_option(c, optarg);
			if (sc < 0)
				return HM_EXIT_USAGE;
			if (sc > 0)
				break;
			fprintf(stderr,
				"hive-migrate: error: rollback: unknown or incomplete option \"%s\" (hint: "
				"hive-migrate rollback --help)\n",
				argv[optind - 1]);
			return HM_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "hive-migrate: error: rollback: unexpected argument \"%s\"\n", argv[optind]);
		return HM_EXIT_USAGE;
	}
	const char *profiles[3] = {NULL, NULL, NULL};
	if (!strcmp(o.profile, "all")) {
		profiles[0] = "agent";
		profiles[1] = "genie";
	} else if (!strcmp(o.profile, "agent") || !strcmp(o.profile, "genie")) {
		profiles[0] = o.profile;
	} else {
		fprintf(stderr, "hive-migrate: error: rollback: --profile must be agent, genie or all\n");
		return HM_EXIT_USAGE;
	}
	if (!o.stack)
		o.stack = o.split.project_dir ? o.split.project_dir : ".";
	json_object *arr = o.json ? json_object_new_array() : NULL;
	int code = HM_EXIT_OK;
	for (int i = 0; profiles[i]; i++) {
		int rc = rollback_profile(&o, profiles[i], arr);
		if (code == HM_EXIT_OK)
			code = rc;
	}
	if (arr) {
		json_object *root = json_object_new_object();
		json_object_object_add(root, "exit_code", json_object_new_int(code));
		json_object_object_add(root, "profiles", arr);
		printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
									    JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(root);
	}
	return code;
}
