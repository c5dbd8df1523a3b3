/* hive-migrate up: move a running split stack onto the unified container, or put the split
 * stack back as it was. The steps and the journal are described in docs/migration.md and
 * migrate/journal.h; the rollback lives in migrate/migration.c (shared with `rollback`).
 * This file parses the options and runs each profile; the steps within one major are in
 * up_steps.c, the preflight, the dry-run plan and the summary in up_plan.c, and the path
 * across majors in major_up.c. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cli/commands.h"
#include "../backup/repo_cli.h"
#include "../common/fsutil.h"
#include "compose.h"
#include "fingerprint.h"
#include "health.h"
#include "major.h"
#include "migration.h"
#include "stack_options.h"
#include "up_int.h"
#include "up_snapshot_repo.h"
#include "up_precopy.h"

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
		"  --archive-dir s3://BUCKET/PREFIX  the snapshot goes to an object store instead, as an\n"
		"                         offline backup of that repository (backups list/verify/restore\n"
		"                         --repo s3://... see it), verified in full from there before\n"
		"                         anything changes; a rollback then needs the network and the\n"
		"                         credentials (docs/migration.md, \"Snapshot to an object store\")\n"
		"  --s3-endpoint URL      the S3 server (https://host[:port]); default AWS for the region\n"
		"  --s3-region REGION     default AWS_REGION, AWS_DEFAULT_REGION, then us-east-1\n"
		"  --s3-uri-style path|host  addressing (default: host, or path for an IP endpoint)\n"
		"  --s3-ca-file FILE      CA bundle for a private endpoint (TLS is always verified)\n"
		"  --s3-credentials-file FILE  a 0600 credentials file, after AWS_ACCESS_KEY_ID/\n"
		"                         AWS_SECRET_ACCESS_KEY and ~/.aws/credentials; never recorded\n"
		"  --s3-lock-ttl SECONDS  the lease of the repository's lock (default "
		"600)\n" HM_REPO_CLI_PART_HELP
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
		"  --no-precopy           take the whole snapshot after the stop (the default archives\n"
		"                         the data while the split stack runs, and only what changed\n"
		"                         after the stop: docs/migration.md, \"The pre-copy\")\n"
		"  --dry-run              print the plan and change nothing\n"
		"  --json                 print the final summary as JSON on stdout\n"
		"  --yes                  do not ask for confirmation on a terminal\n"
		"  --quiet                no progress lines\n"
		"  -h, --help             this help\n\n"
		"exit codes: 0 migrated, 35 failed and rolled back, 36 rollback failed, 37 refused by\n"
		"preflight (also: the object store of --archive-dir s3:// unusable), 33 locked, 34\n"
		"interrupted rollback pending; docs/exit-codes.md\n");
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

/* A fresh journal (or one restarted before anything changed): what the migration will use. */
static void fresh_journal(hm_mig *m, const hm_up_opts *o, const char *profile)
{
	hm_journal *j = &m->j;
	hm_journal_init(j, profile, m->stack_dir);
	hm_mig_record_stack(m);
	snprintf(j->image, sizeof j->image, "%s", o->image);
	hm_stack_unified_data_dir(&m->stack, j->data_dir, sizeof j->data_dir);
	snprintf(j->pgdata, sizeof j->pgdata, "%s", m->stack.pgdata);
	j->api_port = o->api_port ? o->api_port
				  : (m->stack.api_port ? m->stack.api_port
						       : (!strcmp(profile, "agent") ? 38886 : 48886));
	j->pg_port = o->pg_port ? o->pg_port
				: (m->stack.pg_port ? m->stack.pg_port
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
}

/* Step 2: fingerprint every table while the old server runs. -1 with err: nothing was
 * changed yet (the caller abandons the journal). */
static int fingerprint_split(hm_mig *m, const char *profile, hm_error *err)
{
	hm_journal *j = &m->j;
	hm_pg_params sp = hm_mig_split_params(m);
	json_object *fp = NULL;
	hm_mig_log(m, "fingerprinting every table (rows and content digest)");
	/* the guard first: after the stop it tells whether anything was written since */
	if (hm_fingerprint_guard(&sp, &j->fp_next_xid, err) != 0 || hm_fingerprint_take(&sp, &fp, err) != 0) {
		hm_error_hint(err,
			      "the split stack must be running and reachable on 127.0.0.1:%d with the "
			      "credentials of its .env",
			      m->stack.pg_port);
		return -1;
	}
	snprintf(j->fingerprint_file, sizeof j->fingerprint_file, "%s/fingerprint-%s.json", m->state_dir,
		 profile);
	const char *fps = json_object_to_json_string_ext(fp, JSON_C_TO_STRING_PRETTY);
	int wrc = hm_write_file_atomic(j->fingerprint_file, fps, strlen(fps), 0600, err);
	hm_mig_log(m, "fingerprint: %lld rows", hm_fingerprint_total_rows(fp));
	json_object_put(fp);
	if (wrc != 0)
		return -1;
	j->step = HM_STEP_FINGERPRINTED;
	if (hm_mig_save(m, err) != 0)
		return -1;
	hm_fault_point("after:fingerprint");
	return 0;
}

/* A failure after the split stack was (maybe) stopped: roll back; err becomes the outcome
 * (HM_EXIT_ROLLED_BACK, or HM_EXIT_ROLLBACK_FAILED). */
static void roll_back(hm_mig *m, const char *failed_step, hm_error *err)
{
	hm_journal *j = &m->j;
	hm_error cause = *err, rberr = {0};
	hm_error_print(&cause, stderr);
	snprintf(j->failure, sizeof j->failure, "step %s: %s", failed_step, cause.message);
	hm_mig_log(m, "migration failed at step \"%s\": rolling back", failed_step);
	if ((j->cross_major ? hm_major_rollback(m, &rberr) : hm_mig_rollback(m, NULL, &rberr)) != 0) {
		hm_error_set(err, HM_EXIT_ROLLBACK_FAILED,
			     "migration failed at step \"%s\" (%s), and the rollback failed too: %s",
			     failed_step, cause.message, rberr.message);
		hm_error_hint(err, "%s", rberr.hint[0] ? rberr.hint : "see docs/migration.md");
		return;
	}
	hm_error_set(err, HM_EXIT_ROLLED_BACK,
		     "migration failed at step \"%s\": %s; rolled back: the split stack "
		     "is healthy with its data unchanged",
		     failed_step, cause.message);
	if (cause.hint[0])
		hm_error_hint(err, "%s", cause.hint);
}

/* One profile, start to end. Returns the exit code. */
static int up_profile(const hm_up_opts *o, const char *profile, json_object *arr)
{
	hm_mig m;
	hm_error err = {0};
	hm_archive_stats ast = {0};
	hm_up_times times = {0};
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
		fresh_journal(&m, o, profile);
		if (resolve_templates(o->templates, profile, j->template_file, sizeof j->template_file,
				      &err) != 0)
			goto out;
		if (action == HM_RESUME_RESTART) {
			hm_mig_log(&m, "an interrupted run stopped before changing anything: starting over");
			hm_up_precopy_discard(&old);
			hm_pg_params sp = hm_mig_split_params(&m);
			if (!hm_pg_healthy(&sp, NULL, 0) &&
			    (hm_compose_split_start(&m.stack, &err) != 0 ||
			     hm_wait_healthy("the split stack", m.stack.api_port, &sp, m.health_timeout,
					     &err) != 0))
				goto out;
		}
		hm_mig_log(&m, "preflight of %s", m.stack.pgdata);
		if (hm_up_preflight(&m, o, &err) != 0)
			goto out;
		if (o->dry_run) {
			if (j->cross_major)
				hm_major_print_plan(&m, o->archive_dir, o->jobs);
			else
				hm_up_print_plan(&m, o);
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
		/* the base of the snapshot while the split stack still serves, before the
		 * fingerprint so that the writes it overlaps are in the fingerprint too */
		if (!j->cross_major && hm_up_precopy_base(&m, o, &times, &err) != 0)
			goto abandon;

		if (fingerprint_split(&m, profile, &err) != 0)
			goto abandon;
	}

	if (j->cross_major
		    ? hm_major_forward(&m, o->archive_dir, o->backup_password, o->jobs,
				       o->locale_map[0] ? o->locale_map : NULL, &times.major, &err) == 0
		    : hm_up_forward(&m, o, &ast, &times, &err) == 0)
		goto out;

	/* failure after the split stack was (maybe) stopped: roll back */
	failed_step = hm_step_name(j->step);
	roll_back(&m, failed_step, &err);
	goto out;

abandon:
	/* nothing was changed: close the journal so the next run starts fresh */
	hm_up_precopy_discard(j);
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
		hm_up_summary(&m, o, code, &ast, &times, &err, failed_step, arr);
	hm_mig_unlock(&m);
	return code;
}

/* Parse up's options into o. -1 to go on, else the exit code to return (--help, a bad
 * option). */
static int parse_args(int argc, char **argv, hm_up_opts *o)
{
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
						 {"no-precopy", no_argument, NULL, 'X'},
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
		int sc = hm_stack_options_parse(&o->split, c, optarg, "up");
		if (sc < 0)
			return HM_EXIT_USAGE;
		if (sc > 0)
			continue;
		switch (c) {
		case 's':
			o->stack = optarg;
			break;
		case 'p':
			o->profile = optarg;
			break;
		case 'i':
			o->image = optarg;
			break;
		case 't':
			o->templates = optarg;
			break;
		case 'a':
			o->archive_dir = optarg;
			break;
		case 'c':
			o->container_name = optarg;
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
			o->name_prefix = optarg;
			break;
		case 'B':
			o->backup_password_file = optarg;
			break;
		case 'A':
			if (parse_int(optarg, "--api-port", &o->api_port) != 0)
				return HM_EXIT_USAGE;
			break;
		case 'P':
			if (parse_int(optarg, "--pg-port", &o->pg_port) != 0)
				return HM_EXIT_USAGE;
			break;
		case 'H':
			if (parse_int(optarg, "--health-timeout", &o->health_timeout) != 0)
				return HM_EXIT_USAGE;
			break;
		case 'T':
			if (parse_int(optarg, "--stop-timeout", &o->stop_timeout) != 0)
				return HM_EXIT_USAGE;
			break;
		case 'L': {
			hm_error lerr = {0};
			if (hm_major_locale_map_add(o->locale_map, sizeof o->locale_map, optarg, &lerr) !=
			    0) {
				hm_error_print(&lerr, stderr);
				return HM_EXIT_USAGE;
			}
			break;
		}
		case 'J':
			if (parse_int(optarg, "--jobs", &o->jobs) != 0)
				return HM_EXIT_USAGE;
			break;
		case 'X':
			o->no_precopy = 1;
			break;
		case 'n':
			o->dry_run = 1;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'y':
			o->yes = 1;
			break;
		case 'q':
			o->quiet = 1;
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
	return -1;
}

int hm_cmd_up(int argc, char **argv)
{
	hm_up_opts o = {.profile = "agent",
			.image = "localhost/hive-unified:17",
			.health_timeout = 120,
			.stop_timeout = 30,
			.jobs = 2};
	int pc = parse_args(argc, argv, &o);
	if (pc >= 0)
		return pc;
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
