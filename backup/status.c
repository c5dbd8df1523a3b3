/* hive-migrate status: the newest valid backup and whether it is fresh enough. For cron
 * and monitoring: exit HM_EXIT_STALE when there is none, or it is older than --max-age. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../cli/commands.h"
#include "../common/progress.h"
#include "meta.h"
#include "repo.h"
#include "repo_cli.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hive-migrate status --repo DIR|s3://BUCKET/PREFIX [--max-age AGE] [--json]\n"
		"                           [--s3-endpoint URL] [--s3-region R] [--s3-uri-style path|host]\n"
		"                           [--s3-ca-file FILE] [--s3-credentials-file FILE]\n\n"
		"Shows the newest valid backup (complete, and not failed verification) and exits\n"
		"42 (stale) when there is none or it is older than AGE (default 26h; units s, m, h, d).\n");
}

/* Parse "26h", "90m", "2d", "3600" (seconds) into seconds; -1 if malformed. */
static long parse_age(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (end == s || v < 0)
		return -1;
	if (!*end || !strcmp(end, "s"))
		return v;
	if (!strcmp(end, "m"))
		return v * 60;
	if (!strcmp(end, "h"))
		return v * 3600;
	if (!strcmp(end, "d"))
		return v * 86400;
	return -1;
}

int hm_cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"repo", required_argument, NULL, 'r'},
		{"max-age", required_argument, NULL, 'a'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'H'},
		HM_REPO_LONGOPTS,
		{NULL, 0, NULL, 0},
	};
	hm_repo_cli cli;
	memset(&cli, 0, sizeof cli);
	const char *repo_path = NULL;
	long max_age = 26 * 3600;
	int json = 0, opt;
	hm_error err = {0};
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			repo_path = optarg;
			break;
		case 'a':
			max_age = parse_age(optarg);
			if (max_age < 0) {
				fprintf(stderr,
					"hive-migrate: error: bad --max-age \"%s\" (hint: e.g. 26h, 90m, "
					"2d)\n",
					optarg);
				return HM_EXIT_USAGE;
			}
			break;
		case 'j':
			json = 1;
			break;
		case 'H':
			usage(stdout);
			return HM_EXIT_OK;
		default:
			if (opt == HM_REPO_OPT_KEY_FILE || opt == HM_REPO_OPT_PASSPHRASE_FILE)
				opt = '?'; /* status reads no contents: no key */
			else if (hm_repo_cli_option(&cli, opt, optarg) > 0)
				break;
			else if (opt != '?' && opt >= HM_REPO_OPT_S3_ENDPOINT)
				return HM_EXIT_USAGE;
			fprintf(stderr,
				"hive-migrate: error: bad option \"%s\" for status (hint: hive-migrate "
				"status --help)\n",
				argv[optind - 1]);
			return HM_EXIT_USAGE;
		}
	}
	if (!repo_path || optind < argc) {
		fprintf(stderr,
			"hive-migrate: error: status needs --repo DIR (hint: hive-migrate status --help)\n");
		return HM_EXIT_USAGE;
	}
	hm_repo repo;
	hm_backup_meta *v = NULL;
	size_t n = 0;
	if (hm_repo_open(&repo, repo_path, &cli.conn, 0, HM_REPO_NO_LOCK, &err) != 0) {
		hm_error_print(&err, stderr);
		return err.code;
	}
	int lr = hm_repo_list(&repo, &v, &n, &err);
	hm_repo_close(&repo);
	if (lr != 0) {
		hm_error_print(&err, stderr);
		return err.code;
	}
	const hm_backup_meta *newest = NULL;
	for (size_t i = n; i-- > 0;)
		if (v[i].verified != 0 && !v[i].broken) {
			newest = &v[i];
			break;
		}
	time_t now = time(NULL);
	long age = newest ? (long)(now - newest->start_time) : -1;
	int stale = !newest || age > max_age;
	if (json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "repo", json_object_new_string(repo_path));
		json_object_object_add(o, "backups", json_object_new_int64((int64_t)n));
		json_object_object_add(o, "max_age_seconds", json_object_new_int64(max_age));
		json_object_object_add(o, "stale", json_object_new_boolean(stale));
		if (newest) {
			char *t = hm_meta_encode(newest, 1);
			json_object_object_add(o, "newest", t ? json_tokener_parse(t) : NULL);
			free(t);
			json_object_object_add(o, "age_seconds", json_object_new_int64(age));
		} else {
			json_object_object_add(o, "newest", NULL);
		}
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
									 JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else if (!newest) {
		printf("no valid backup in %s: STALE\n", repo_path);
	} else {
		char ts[32], sz[32];
		printf("newest valid backup %s (%s) taken %s, %ldh%02ldm ago, %s, %s: %s\n", newest->id,
		       newest->kind, hm_time_iso(newest->start_time, ts, sizeof ts), age / 3600,
		       (age % 3600) / 60, hm_progress_bytes(newest->archive_size, sz, sizeof sz),
		       newest->verified == 1 ? "verified" : "not verified yet", stale ? "STALE" : "ok");
	}
	free(v);
	return stale ? HM_EXIT_STALE : HM_EXIT_OK;
}
