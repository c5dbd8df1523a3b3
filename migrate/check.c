/* hive-migrate check: the preflight as a command. Reads, never writes: prints the
 * report (or JSON) and exits with the verdict's code (0 compatible, 10 warnings,
 * 11 incompatible, 12 error; 2 for a bad command line). */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli/commands.h"
#include "../common/exitcode.h"
#include "../common/pgconn.h"
#include "major.h"
#include "preflight.h"
#include "stack_options.h"

/* Usage text (stdout for --help, stderr never: bad options get one line). */
static void usage(FILE *f)
{
	fprintf(f, "usage: hive-migrate check --data-dir DIR [--target-major N | --image IMG] [OPTIONS]\n"
		   "       hive-migrate check --compose-file FILE... [--profile agent|genie] [OPTIONS]\n"
		   "       hive-migrate check --stack DIR --profile agent|genie [OPTIONS]\n\n"
		   "Can the unified container run on this data directory? Reads PG_VERSION and\n"
		   "global/pg_control (no server needed) and changes nothing. An older PostgreSQL\n"
		   "major (13 up to the target's) is reported as major-upgrade (verdict warnings) with\n"
		   "the plan of up's copy across majors; with --image, its extensions and locales are\n"
		   "checked against the old server's.\n\n"
		   "options:\n"
		   "  --data-dir DIR      the PostgreSQL data directory (PGDATA, holds PG_VERSION)\n"
		   "  --stack DIR         the split stack's directory, with its compose file (finds the\n"
		   "                      data dir, the live server and the settings of its database)\n");
	fputs(HM_STACK_OPTIONS_HELP("                      "), f);
	fprintf(f, "  --profile NAME      agent (default) or genie, with a stack\n"
		   "  --target-major N    PostgreSQL major of the target (default 17)\n"
		   "  --image IMG         read the target major and pgvector version from this image\n"
		   "  --target-uid UID    uid the unified container runs as (default 1000)\n"
		   "  --snapshot-dir DIR  where the snapshot will go (free-space check; default the\n"
		   "                      data directory's file system)\n"
		   "  --host H --port P --user U --dbname D\n"
		   "                      check the running old server too; D is a database name or a\n"
		   "                      libpq connection string or URI; the options win over D, D\n"
		   "                      over --stack, and unset values come from libpq's environment\n"
		   "                      (PGHOST, PGPORT, PGUSER, PGSERVICE, ...). Password from\n"
		   "                      PGPASSWORD or PGPASSFILE, never the command line. With\n"
		   "                      --data-dir alone, check connects through that environment\n"
		   "                      when a server runs on the directory or PGHOST/PGPORT/\n"
		   "                      PGSERVICE is set\n"
		   "  --no-live           never connect to a server (also with --stack)\n"
		   "  --locale-map OLD=NEW  across majors: a database locale OLD the image lacks is\n"
		   "                      fine when mapped to NEW, as up --locale-map does (repeatable)\n"
		   "  --json              machine-readable report\n"
		   "  -h, --help          this text\n\n"
		   "exit codes: 0 compatible, 10 warnings, 11 incompatible, 12 error, 2 usage\n"
		   "details: docs/check.md\n");
}

/* Parse a non-negative integer option; -1 if invalid. */
static long parse_num(const char *s, long max)
{
	char *end;
	if (!s || !*s)
		return -1;
	long v = strtol(s, &end, 10);
	if (*end || v < 0 || v > max)
		return -1;
	return v;
}

int hm_cmd_check(int argc, char **argv)
{
	static const struct option longopts[] = {
		HM_STACK_LONGOPTS,
		{"data-dir", required_argument, NULL, 'd'},
		{"stack", required_argument, NULL, 's'},
		{"profile", required_argument, NULL, 'P'},
		{"target-major", required_argument, NULL, 'm'},
		{"image", required_argument, NULL, 'i'},
		{"target-uid", required_argument, NULL, 'u'},
		{"snapshot-dir", required_argument, NULL, 'S'},
		{"host", required_argument, NULL, 'H'},
		{"port", required_argument, NULL, 'p'},
		{"user", required_argument, NULL, 'U'},
		{"dbname", required_argument, NULL, 'D'},
		{"no-live", no_argument, NULL, 'n'},
		{"locale-map", required_argument, NULL, 'L'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	hm_preflight_opts o;
	hm_stack_options so = {0};
	hm_compose_project proj;
	int json = 0, c, major_given = 0;
	static char locale_map[1024];
	locale_map[0] = '\0';
	long v;
	hm_preflight_opts_init(&o);
	optind = 0; /* getopt state is per process: reset for this argv */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hf:", longopts, NULL)) != -1) {
		int sc = c == ':' ? 0 : hm_stack_options_parse(&so, c, optarg, "check");
		if (sc < 0)
			return HM_EXIT_USAGE;
		if (sc > 0)
			continue;
		switch (c) {
		case 'd':
			o.data_dir = optarg;
			break;
		case 's':
			o.stack_dir = optarg;
			break;
		case 'P':
			if (strcmp(optarg, "agent") && strcmp(optarg, "genie")) {
				fprintf(stderr,
					"hive-migrate: error: --profile must be agent or genie, "
					"not \"%s\"\n",
					optarg);
				return HM_EXIT_USAGE;
			}
			o.profile = optarg;
			break;
		case 'm':
			if ((v = parse_num(optarg, 99)) < 10) {
				fprintf(stderr,
					"hive-migrate: error: --target-major needs a PostgreSQL "
					"major such as 17, not \"%s\"\n",
					optarg);
				return HM_EXIT_USAGE;
			}
			o.target_major = (int)v;
			major_given = 1;
			break;
		case 'i':
			o.image = optarg;
			break;
		case 'L': {
			hm_error lerr = {0};
			if (hm_major_locale_map_add(locale_map, sizeof locale_map, optarg, &lerr) != 0) {
				hm_error_print(&lerr, stderr);
				return HM_EXIT_USAGE;
			}
			o.locale_map = locale_map;
			break;
		}
		case 'u':
			if ((v = parse_num(optarg, INT_MAX)) < 0) {
				fprintf(stderr,
					"hive-migrate: error: --target-uid needs a number, not "
					"\"%s\"\n",
					optarg);
				return HM_EXIT_USAGE;
			}
			o.target_uid = (uid_t)v;
			break;
		case 'S':
			o.snapshot_dir = optarg;
			break;
		case 'H':
			o.host = optarg;
			break;
		case 'p':
			if ((v = parse_num(optarg, 65535)) < 1) {
				fprintf(stderr,
					"hive-migrate: error: --port needs a number 1-65535, not "
					"\"%s\"\n",
					optarg);
				return HM_EXIT_USAGE;
			}
			o.port = (int)v;
			break;
		case 'U':
			o.user = optarg;
			break;
		case 'D':
			o.conninfo = optarg;
			break;
		case 'n':
			o.no_live = 1;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			usage(stdout);
			return HM_EXIT_OK;
		case ':':
			fprintf(stderr,
				"hive-migrate: error: option %s needs a value (hint: hive-migrate "
				"check --help)\n",
				argv[optind - 1]);
			return HM_EXIT_USAGE;
		default:
			fprintf(stderr,
				"hive-migrate: error: unknown option \"%s\" (hint: hive-migrate "
				"check --help)\n",
				argv[optind - 1]);
			return HM_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr,
			"hive-migrate: error: unexpected argument \"%s\" (hint: hive-migrate "
			"check --help)\n",
			argv[optind]);
		return HM_EXIT_USAGE;
	}
	int with_stack = o.stack_dir || hm_stack_options_given(&so);
	if (!o.data_dir && !with_stack) {
		fprintf(stderr,
			"hive-migrate: error: check needs --data-dir DIR, --compose-file FILE or --stack DIR "
			"(hint: hive-migrate check --help)\n");
		return HM_EXIT_USAGE;
	}
	if ((so.db_service || so.api_service) && !with_stack) {
		fprintf(stderr, "hive-migrate: error: --db-service/--api-service go with a stack "
				"(--compose-file or --stack)\n");
		return HM_EXIT_USAGE;
	}
	if (o.image && major_given) {
		fprintf(stderr, "hive-migrate: error: give --image or --target-major, not both\n");
		return HM_EXIT_USAGE;
	}
	if (o.profile && !with_stack) {
		fprintf(stderr, "hive-migrate: error: --profile goes with --stack or --compose-file\n");
		return HM_EXIT_USAGE;
	}

	hm_error err = {0};
	if (o.conninfo) { /* a bad --dbname is a usage error, found before anything runs */
		hm_pgconn p;
		hm_pgconn_init(&p);
		int bad = hm_pgconn_apply(&p, "--dbname", o.conninfo, &err);
		hm_pgconn_free(&p);
		if (bad) {
			hm_error_print(&err, stderr);
			return HM_EXIT_USAGE;
		}
	}

	hm_preflight_report r;
	int rc;
	if (with_stack && hm_compose_project_init(&proj, o.stack_dir ? o.stack_dir : ".", so.files,
						  so.n_files, so.project_dir, so.project_name,
						  o.profile ? o.profile : "agent", &err) != 0) {
		/* a report with this one problem, so that --json carries it too */
		memset(&r, 0, sizeof r);
		hm_preflight_add(&r, HM_SEV_ERROR, "stack-config", err.hint, "%s", err.message);
		rc = -1;
	} else {
		if (with_stack) {
			o.compose = &proj;
			o.db_service = so.db_service;
			o.api_service = so.api_service;
		}
		rc = hm_preflight_run(&o, &r, &err);
	}
	if (json) {
		json_object *j = hm_preflight_report_json(&r);
		puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(j);
	} else if (rc) {
		hm_error_print(&err, stderr);
	} else {
		hm_preflight_report_print(&r, stdout);
	}
	int code = hm_preflight_verdict_exit(r.verdict);
	hm_preflight_report_free(&r);
	return code;
}
