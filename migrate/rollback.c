/* hive-migrate rollback: put the split stack back from the migration snapshot (or complete
 * an interrupted rollback). The work is hm_mig_rollback (migrate/migration.c), shared with
 * the automatic rollback of a failed `up`. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cli/commands.h"
#include "../common/archive_dir.h"
#include "../common/fsutil.h"
#include "compose.h"
#include "migration.h"
#include "stack_options.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: hive-migrate rollback [OPTIONS]\n\n"
		   "Restores the snapshot taken by `hive-migrate up` and brings the split stack back:\n"
		   "verifies the archive (a damaged one is refused and nothing changes), extracts it next\n"
		   "to the data directory, stops the unified container, swaps the directories, starts the\n"
		   "split stack and confirms it is healthy with the data it had before. Completes an\n"
		   "interrupted rollback when run again.\n\n"
		   "options:\n"
		   "  --stack DIR         the split stack's directory, where up kept its state in\n"
		   "                      DIR/.hive-migrate (default: --project-directory, else .); the\n"
		   "                      compose project up recorded there is used\n");
	fputs(HM_STACK_OPTIONS_HELP("                      "), f);
	fprintf(f, "  --profile P         agent, genie or all (default agent)\n"
		   "  --backup ID         restore this snapshot (backup id or archive path) instead of the\n"
		   "                      migration's own\n"
		   "  --archive-dir DIR   where snapshots are (default STACK/.hive-migrate/archives)\n"
		   "  --health-timeout S  seconds to wait for health (default 120)\n"
		   "  --stop-timeout S    seconds given to containers to stop (default 30)\n"
		   "  --dry-run           print what would be done\n"
		   "  --json              print a JSON summary on stdout\n"
		   "  --yes               do not ask for confirmation on a terminal\n"
		   "  --quiet             no progress lines\n"
		   "  -h, --help          this help\n\n"
		   "exit codes: 0 rolled back, 40 snapshot failed verification (nothing changed), 41 no\n"
		   "migration to roll back, 36 rollback failed, 33 locked; docs/exit-codes.md\n");
}

typedef struct rb_opts {
	const char *stack, *profile, *backup, *archive_dir;
	hm_stack_options split;
	int health_timeout, stop_timeout, dry_run, json, yes, quiet;
} rb_opts;

/* Archive path for --backup: a path to an archive, or an id looked up in the archive dir. */
static int find_backup(const hm_mig *m, const rb_opts *o, char *out, size_t outsz, hm_error *err)
{
	char dir[PATH_MAX];
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

/* One profile. Returns the exit code. */
static int rollback_profile(const rb_opts *o, const char *profile, json_object *arr)
{
	hm_mig m;
	hm_error err = {0};
	char archive[4096] = "";
	int loaded;
	hm_compose_project proj;
	hm_stack_select sel;
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
	if (o->dry_run) {
		int restore = o->backup || hm_journal_needs_restore(&m.j);
		printf("rollback plan for profile %s (dry run: nothing was changed)\n", profile);
		printf("  migration status \"%s\" at step \"%s\"; rollback step \"%s\"\n",
		       hm_jstatus_name(m.j.status), hm_step_name(m.j.step), hm_rb_step_name(m.j.rb_step));
		if (restore)
			printf("  verify and extract %s next to %s, stop %s, swap the directories\n",
			       o->backup ? archive : m.j.archive, m.j.data_dir, m.j.unified_container);
		else
			printf("  stop %s if running; restore the original owners\n", m.j.unified_container);
		printf("  start the split stack in %s and wait for it to be healthy\n", m.stack_dir);
		goto out;
	}
	if (!o->yes && isatty(0) && isatty(2) && m.j.status == HM_JS_DONE) {
		char line[16] = "";
		fprintf(stderr,
			"this stops %s and restores the snapshot taken before the migration: writes made on "
			"the\n"
			"unified container since then are not in it (its data directory is kept aside). "
			"continue? [y/N] ",
			m.j.unified_container);
		if (!fgets(line, sizeof line, stdin) || (line[0] != 'y' && line[0] != 'Y')) {
			hm_error_set(&err, HM_EXIT_USAGE, "cancelled; nothing was changed");
			goto out;
		}
	}
	hm_mig_rollback(&m, o->backup ? archive : NULL, &err);
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
		json_object_object_add(s, "archive",
				       json_object_new_string(archive[0] ? archive : m.j.archive));
		json_object_object_add(s, "displaced_dir", json_object_new_string(m.j.displaced_dir));
		if (code)
			json_object_object_add(s, "error", json_object_new_string(err.message));
		json_object_array_add(arr, s);
	}
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
						 {"archive-dir", required_argument, NULL, 'a'},
						 {"health-timeout", required_argument, NULL, 'H'},
						 {"stop-timeout", required_argument, NULL, 'T'},
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
