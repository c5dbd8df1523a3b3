/* hive-migrate backups: list, show, verify, restore and prune the backups of a repository. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#include "../cli/commands.h"
#include "../common/fsutil.h"
#include "../common/progress.h"
#include "meta.h"
#include "copy.h"
#include "repo.h"
#include "repo_cli.h"
#include "repo_io.h"
#include "restore.h"
#include "retention.h"
#include "verify.h"

/* Options shared by the subcommands. */
typedef struct bk_args {
	const char *repo;
	const char *from; /* copy: the source repository (the destination is --to) */
	const char *to;
	const char *id;
	const char *image;
	int all, json, quiet, dry_run, replace, restore_test;
	int set_owner;
	uid_t uid;
	gid_t gid;
	hm_retention_policy policy;
	hm_repo_cli rc;		 /* s3 connection and key options */
	hm_crypt_secret *secret; /* from --encrypt-key-file / --encrypt-passphrase-file */
} bk_args;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hive-migrate backups list    --repo REPO [--json]\n"
		"       hive-migrate backups show    ID --repo REPO\n"
		"       hive-migrate backups verify  ID|--all --repo REPO [--restore-test [--image IMG]] "
		"[--json] [--quiet]\n"
		"       hive-migrate backups restore ID --repo REPO --to DIR [--replace] [--owner UID:GID]\n"
		"       hive-migrate backups prune   --repo REPO [--keep-last N] [--keep-daily N] "
		"[--keep-weekly N]\n"
		"                                    [--keep-monthly N] [--dry-run] [--json]\n"
		"       hive-migrate backups copy    ID --from REPO --to REPO [--encrypt-key-file FILE]\n\n"
		"ID is a backup id from `list`, a unique prefix of it, or \"latest\".\n"
		"verify checks every digest, PostgreSQL's backup_manifest (every file's size and checksum,\n"
		"Manifest-Checksum, the WAL range) and records the result; --restore-test also starts a\n"
		"throwaway PostgreSQL (container of IMG, default localhost/hive-unified:17) on a restored "
		"copy.\n"
		"restore extracts into a new or empty directory (0700); --replace moves an existing, "
		"stopped\n"
		"data directory aside to DIR.before-restore-<time> first.\n"
		"copy verifies the backup in --from (fully, or by its stored digests when it is encrypted\n"
		"and no key is given), copies it as it is stored (a plain backup is encrypted on the way\n"
		"with --encrypt-key-file), reads the copy back, and only then lists it in --to.\n"
		"prune keeps backups by wall-clock buckets (UTC), restic-like; the newest valid backup is\n"
		"always kept.\n\n"
		"REPO is a directory or s3://BUCKET/PREFIX. An encrypted backup needs its key to be "
		"verified\n"
		"or restored; without it, verify checks the stored object's size and SHA-256 "
		"only.\n\n" HM_REPO_CLI_HELP
		"\nexit codes: 0 ok, 40 verification failed, 41 no such backup, 33 locked, 25 object store; "
		"docs/exit-codes.md\n");
}

/* Print an error and return its code. */
static int fail(const hm_error *err)
{
	hm_error_print(err, stderr);
	return err->code ? (int)err->code : HM_EXIT_INTERNAL;
}

/* backups list */
static int cmd_list(const bk_args *a)
{
	hm_repo repo;
	hm_backup_meta *v;
	size_t n;
	hm_error err = {0};
	if (hm_repo_open(&repo, a->repo, &a->rc.conn, 0, HM_REPO_NO_LOCK, &err) != 0)
		return fail(&err);
	if (hm_repo_list(&repo, &v, &n, &err) != 0) {
		hm_repo_close(&repo);
		return fail(&err);
	}
	if (a->json) {
		json_object *arr = json_object_new_array();
		for (size_t i = 0; i < n; i++) {
			char *t = hm_meta_encode(&v[i], 1), ts[32];
			json_object *o = t ? json_tokener_parse(t) : NULL;
			free(t);
			if (!o)
				continue;
			json_object_object_add(
				o, "time",
				json_object_new_string(hm_time_iso(v[i].start_time, ts, sizeof ts)));
			json_object_object_add(o, "size", json_object_new_int64((int64_t)v[i].archive_size));
			if (!json_object_object_get_ex(o, "verified", NULL))
				json_object_object_add(o, "verified", NULL);
			json_object_object_add(o, "broken", json_object_new_boolean(v[i].broken));
			json_object_array_add(arr, o);
		}
		printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
									   JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(arr);
	} else {
		printf("%-29s %-20s %-8s %10s  %s\n", "ID", "TIME (UTC)", "KIND", "SIZE", "VERIFIED");
		for (size_t i = 0; i < n; i++) {
			char ts[32], sz[32];
			printf("%-29s %-20s %-8s %10s  %s\n", v[i].id,
			       hm_time_iso(v[i].start_time, ts, sizeof ts), v[i].kind,
			       hm_progress_bytes(v[i].archive_size, sz, sizeof sz),
			       v[i].broken	    ? "BROKEN"
			       : v[i].verified == 1 ? "yes"
			       : v[i].verified == 0 ? "FAILED"
						    : "-");
			if (v[i].broken)
				printf("    %s\n", v[i].verify_error);
		}
	}
	free(v);
	hm_repo_close(&repo);
	return HM_EXIT_OK;
}

/* backups show ID */
static int cmd_show(const bk_args *a)
{
	hm_repo repo;
	hm_backup_meta m;
	hm_error err = {0};
	if (hm_repo_open(&repo, a->repo, &a->rc.conn, 0, HM_REPO_NO_LOCK, &err) != 0)
		return fail(&err);
	if (hm_repo_find(&repo, a->id, &m, &err) != 0) {
		hm_repo_close(&repo);
		return fail(&err);
	}
	hm_repo_close(&repo);
	char *t = hm_meta_encode(&m, 1);
	printf("%s\n", t ? t : "{}");
	free(t);
	return HM_EXIT_OK;
}

/* An encrypted backup without its key: the stored object's size and SHA-256 only. Nothing
 * is recorded (the contents were not checked). Returns an exit code. */
static int verify_outer(const bk_args *a, const hm_repo *repo, const hm_backup_meta *m, json_object *out)
{
	hm_error err = {0};
	int rc = hm_repo_check_stored(repo, m, &err);
	if (rc != 0 && err.code != HM_EXIT_VERIFY_FAILED)
		return fail(&err);
	if (out) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_string(m->id));
		json_object_object_add(o, "ok", json_object_new_boolean(rc == 0));
		json_object_object_add(o, "contents_checked", json_object_new_boolean(0));
		json_object *errs = json_object_new_array();
		if (rc != 0)
			json_object_array_add(errs, json_object_new_string(err.message));
		json_object_object_add(o, "errors", errs);
		json_object_array_add(out, o);
	} else if (rc == 0) {
		if (!a->quiet)
			printf("backup %s: stored object intact (%llu bytes, SHA-256 matches); contents not "
			       "checked: it is encrypted and no key was given\n",
			       m->id, (unsigned long long)m->stored_size);
	} else {
		fprintf(stderr, "hive-migrate: error: backup %s failed verification: %s\n", m->id,
			err.message);
	}
	return rc == 0 ? HM_EXIT_OK : HM_EXIT_VERIFY_FAILED;
}

/* Verify one backup, print the outcome, record it in its metadata. Returns an exit code. */
static int verify_one(const bk_args *a, const hm_repo *repo, hm_backup_meta *m, json_object *out)
{
	hm_verify_report rep;
	hm_error err = {0};
	hm_progress prog;
	int quiet_progress = a->quiet || a->json;
	if (hm_repo_encrypted(m) && !a->secret)
		return verify_outer(a, repo, m, out);
	hm_progress_init(&prog, stderr, "verify",
			 strcmp(m->kind, "offline") ? m->archive_size : m->database_size, quiet_progress);
	hm_verify_opts opts = {.progress = &prog, .secret = a->secret};
	int rc = hm_verify_backup(repo, m, &opts, &rep, &err);
	if (rc != 0 && err.code != HM_EXIT_VERIFY_FAILED) {
		hm_verify_report_free(&rep);
		return fail(&err);
	}
	hm_progress_finish(&prog);
	char rt_summary[512] = "";
	if (rc == 0 && a->restore_test) {
		if (hm_restore_test(repo, m, a->secret, a->image, rt_summary, sizeof rt_summary,
				    a->quiet || a->json, &err) != 0) {
			if (err.code != HM_EXIT_VERIFY_FAILED) {
				hm_verify_report_free(&rep);
				return fail(&err);
			}
			rc = -1;
			hm_verify_problem(&rep, "%s", err.message);
		}
	}
	m->verified = rc == 0 ? 1 : 0;
	m->verified_time = time(NULL);
	snprintf(m->verify_error, sizeof m->verify_error, "%s",
		 rc == 0 ? "" : (rep.nstored ? rep.errors[0] : err.message));
	hm_error serr = {0};
	if (hm_repo_save_meta(repo, m, &serr) != 0) {
		hm_verify_report_free(&rep);
		return fail(&serr);
	}
	if (out) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_string(m->id));
		json_object_object_add(o, "ok", json_object_new_boolean(rc == 0));
		json_object_object_add(o, "files", json_object_new_int64((int64_t)rep.files));
		json_object *errs = json_object_new_array();
		for (size_t i = 0; i < hm_verify_stored(&rep); i++)
			if (rep.errors[i])
				json_object_array_add(errs, json_object_new_string(rep.errors[i]));
		json_object_object_add(o, "errors", errs);
		if (rt_summary[0])
			json_object_object_add(o, "restore_test", json_object_new_string(rt_summary));
		json_object_array_add(out, o);
	} else if (rc == 0) {
		if (!a->quiet)
			printf("backup %s: ok (%llu files checked%s%s)\n", m->id,
			       (unsigned long long)rep.files, rt_summary[0] ? "; restore test: " : "",
			       rt_summary);
	} else {
		for (size_t i = 0; i < hm_verify_stored(&rep); i++)
			if (rep.errors[i])
				fprintf(stderr, "hive-migrate: backup %s: %s\n", m->id, rep.errors[i]);
		if (rep.nerrors > HM_VERIFY_MAX_ERRORS)
			fprintf(stderr, "hive-migrate: backup %s: ... %zu problems in all\n", m->id,
				rep.nerrors);
		fprintf(stderr, "hive-migrate: error: backup %s failed verification (%zu problem%s)\n", m->id,
			rep.nerrors, rep.nerrors == 1 ? "" : "s");
	}
	hm_verify_report_free(&rep);
	return rc == 0 ? HM_EXIT_OK : HM_EXIT_VERIFY_FAILED;
}

/* backups verify ID|--all */
static int cmd_verify(const bk_args *a)
{
	hm_repo repo;
	hm_error err = {0};
	hm_backup_meta *v = NULL;
	size_t n = 0;
	int worst = HM_EXIT_OK;
	if (hm_repo_open(&repo, a->repo, &a->rc.conn, 0, HM_REPO_EXCLUSIVE, &err) != 0)
		return fail(&err);
	json_object *out = a->json ? json_object_new_array() : NULL;
	if (a->all) {
		if (hm_repo_list(&repo, &v, &n, &err) != 0) {
			hm_repo_close(&repo);
			return fail(&err);
		}
	} else {
		v = malloc(sizeof *v);
		if (!v || hm_repo_find(&repo, a->id, v, &err) != 0) {
			free(v);
			hm_repo_close(&repo);
			json_object_put(out);
			return fail(&err);
		}
		n = 1;
	}
	for (size_t i = 0; i < n; i++) {
		int rc;
		if (v[i].broken) { /* reported, never rewritten: there is no readable backup.json */
			fprintf(stderr, "hive-migrate: backup %s: broken: %s\n", v[i].id, v[i].verify_error);
			if (out) {
				json_object *o = json_object_new_object();
				json_object_object_add(o, "id", json_object_new_string(v[i].id));
				json_object_object_add(o, "ok", json_object_new_boolean(0));
				json_object_object_add(o, "broken", json_object_new_boolean(1));
				json_object *errs = json_object_new_array();
				json_object_array_add(errs, json_object_new_string(v[i].verify_error));
				json_object_object_add(o, "errors", errs);
				json_object_array_add(out, o);
			}
			rc = HM_EXIT_VERIFY_FAILED;
		} else {
			rc = verify_one(a, &repo, &v[i], out);
		}
		if (rc != HM_EXIT_OK && (worst == HM_EXIT_OK || rc != HM_EXIT_VERIFY_FAILED))
			worst = rc;
	}
	if (out) {
		printf("%s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PRETTY |
									   JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(out);
	}
	free(v);
	hm_repo_close(&repo);
	return worst;
}

/* Test hook (HIVE_RESTORE_FAULT=after-lock): stop right after taking the lock, so that a
 * test can see what a concurrent prune does; SIGCONT resumes. */
static void restore_fault_point(void)
{
	const char *f = getenv("HIVE_RESTORE_FAULT");
	if (f && !strcmp(f, "after-lock"))
		raise(SIGSTOP);
}

/* backups restore ID --to DIR */
static int cmd_restore(const bk_args *a)
{
	hm_repo repo;
	hm_backup_meta m;
	hm_error err = {0};
	char aside[4200] = "";
	/* shared with other restores, exclusive with prune: the backup cannot be deleted
	 * while it is read */
	if (hm_repo_open(&repo, a->repo, &a->rc.conn, 0, HM_REPO_RESTORE, &err) != 0)
		return fail(&err);
	restore_fault_point();
	if (hm_repo_find(&repo, a->id, &m, &err) != 0) {
		hm_repo_close(&repo);
		return fail(&err);
	}
	hm_restore_opts o = {.to = a->to,
			     .replace = a->replace,
			     .set_owner = a->set_owner,
			     .uid = a->uid,
			     .gid = a->gid,
			     .quiet = a->quiet,
			     .secret = a->secret};
	int rc = hm_restore(&repo, &m, &o, aside, sizeof aside, &err);
	hm_repo_close(&repo);
	if (rc != 0)
		return fail(&err);
	if (!a->quiet)
		printf("restored backup %s into %s%s%s\n", m.id, a->to,
		       aside[0] ? " (previous data kept in " : "", aside[0] ? aside : "");
	if (!a->quiet && aside[0])
		printf(")\n");
	return HM_EXIT_OK;
}

/* backups prune */
static int cmd_prune(const bk_args *a)
{
	hm_repo repo;
	hm_error err = {0};
	hm_backup_meta *v;
	size_t n;
	int rc = HM_EXIT_OK;
	if (hm_retention_empty(&a->policy)) {
		fprintf(stderr, "hive-migrate: error: prune needs at least one --keep-* option (hint: e.g. "
				"--keep-daily 7)\n");
		return HM_EXIT_USAGE;
	}
	if (hm_repo_open(&repo, a->repo, &a->rc.conn, 0, HM_REPO_PRUNE, &err) != 0)
		return fail(&err);
	if (hm_repo_list(&repo, &v, &n, &err) != 0) {
		hm_repo_close(&repo);
		return fail(&err);
	}
	/* broken entries take no part: what cannot be parsed as a backup is never deleted */
	hm_retention_item *items = calloc(n ? n : 1, sizeof *items);
	size_t *idx = calloc(n ? n : 1, sizeof *idx), ni = 0;
	if (!items || !idx) {
		free(items);
		free(idx);
		free(v);
		hm_repo_close(&repo);
		return HM_EXIT_INTERNAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i].broken)
			continue;
		items[ni].time = v[i].start_time;
		items[ni].valid = v[i].verified != 0;
		idx[ni++] = i;
	}
	hm_retention_apply(&a->policy, items, ni);
	json_object *out = a->json ? json_object_new_array() : NULL;
	for (size_t i = 0, k = 0; i < n; i++) {
		hm_retention_item *it = k < ni && idx[k] == i ? &items[k++] : NULL;
		int removed = 0, keep = !it || it->keep;
		const char *reason = it ? it->reason : "not a readable backup: left alone";
		if (!it)
			fprintf(stderr,
				"hive-migrate: skipping %s: %s (remove it by hand if it is not needed)\n",
				v[i].id, v[i].verify_error);
		if (!keep && !a->dry_run) {
			if (hm_repo_remove(&repo, v[i].id, &err) != 0) {
				hm_error_print(&err, stderr);
				rc = err.code;
			} else {
				removed = 1;
			}
		}
		if (out) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "id", json_object_new_string(v[i].id));
			json_object_object_add(o, "keep", json_object_new_boolean(keep));
			json_object_object_add(o, "reason", json_object_new_string(reason));
			json_object_object_add(o, "removed", json_object_new_boolean(removed));
			if (!it)
				json_object_object_add(o, "broken", json_object_new_boolean(1));
			json_object_array_add(out, o);
		} else if (!a->quiet) {
			printf("%s %s%s%s%s\n",
			       keep ? (it ? "keep  " : "skip  ") : (a->dry_run ? "would remove" : "remove"),
			       v[i].id, keep ? " (" : "", keep ? reason : "", keep ? ")" : "");
		}
	}
	if (out) {
		printf("%s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PRETTY |
									   JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(out);
	}
	free(items);
	free(idx);
	free(v);
	hm_repo_close(&repo);
	return rc;
}

/* backups copy ID --from REPO --to REPO */
static int cmd_copy(const bk_args *a)
{
	hm_repo src, dst;
	hm_backup_meta m, copied;
	hm_error err = {0};
	if (hm_repo_open(&src, a->from, &a->rc.conn, 0, HM_REPO_RESTORE, &err) != 0)
		return fail(&err);
	if (hm_repo_find(&src, a->id, &m, &err) != 0) {
		hm_repo_close(&src);
		return fail(&err);
	}
	if (hm_repo_open(&dst, a->to, &a->rc.conn, 1, HM_REPO_EXCLUSIVE, &err) != 0) {
		hm_repo_close(&src);
		return fail(&err);
	}
	int rc = hm_backup_copy(&src, &dst, &m, a->secret, &copied, &err);
	hm_repo_close(&dst);
	hm_repo_close(&src);
	if (rc != 0)
		return fail(&err);
	if (a->json) {
		char *t = hm_meta_encode(&copied, 1);
		printf("%s\n", t ? t : "{}");
		free(t);
	} else if (!a->quiet) {
		printf("copied backup %s from %s to %s (%s, read back and compared)\n", copied.id, a->from,
		       a->to, hm_repo_encrypted(&copied) ? "encrypted" : "plain");
	}
	return HM_EXIT_OK;
}

/* Parse a non-negative count for a --keep-* option. */
static int parse_count(const char *s, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (end == s || *end || v < 0 || v > 100000)
		return -1;
	*out = (int)v;
	return 0;
}

int hm_cmd_backups(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"repo", required_argument, NULL, 'r'},
		{"from", required_argument, NULL, 'F'},
		{"to", required_argument, NULL, 't'},
		{"all", no_argument, NULL, 'a'},
		{"json", no_argument, NULL, 'j'},
		{"quiet", no_argument, NULL, 'q'},
		{"dry-run", no_argument, NULL, 'n'},
		{"replace", no_argument, NULL, 'R'},
		{"restore-test", no_argument, NULL, 'T'},
		{"image", required_argument, NULL, 'i'},
		{"owner", required_argument, NULL, 'o'},
		{"keep-last", required_argument, NULL, 'L'},
		{"keep-daily", required_argument, NULL, 'D'},
		{"keep-weekly", required_argument, NULL, 'W'},
		{"keep-monthly", required_argument, NULL, 'M'},
		{"help", no_argument, NULL, 'H'},
		HM_REPO_LONGOPTS,
		{NULL, 0, NULL, 0},
	};
	bk_args a;
	int opt;
	memset(&a, 0, sizeof a);
	a.image = "localhost/hive-unified:17";
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? HM_EXIT_USAGE : HM_EXIT_OK;
	}
	const char *sub = argv[1];
	if (strcmp(sub, "list") && strcmp(sub, "show") && strcmp(sub, "verify") && strcmp(sub, "restore") &&
	    strcmp(sub, "prune") && strcmp(sub, "copy")) {
		fprintf(stderr,
			"hive-migrate: error: unknown subcommand \"backups %s\" (hint: hive-migrate backups "
			"--help)\n",
			sub);
		return HM_EXIT_USAGE;
	}
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc - 1, argv + 1, "", longopts, NULL)) != -1) {
		int bad = 0;
		switch (opt) {
		case 'r':
			a.repo = optarg;
			break;
		case 'F':
			a.from = optarg;
			break;
		case 't':
			a.to = optarg;
			break;
		case 'a':
			a.all = 1;
			break;
		case 'j':
			a.json = 1;
			break;
		case 'q':
			a.quiet = 1;
			break;
		case 'n':
			a.dry_run = 1;
			break;
		case 'R':
			a.replace = 1;
			break;
		case 'T':
			a.restore_test = 1;
			break;
		case 'i':
			a.image = optarg;
			break;
		case 'o': {
			unsigned long u, g;
			char tail;
			if (sscanf(optarg, "%lu:%lu%c", &u, &g, &tail) != 2)
				bad = 1;
			a.set_owner = 1;
			a.uid = (uid_t)u;
			a.gid = (gid_t)g;
			break;
		}
		case 'L':
			bad = parse_count(optarg, &a.policy.keep_last);
			break;
		case 'D':
			bad = parse_count(optarg, &a.policy.keep_daily);
			break;
		case 'W':
			bad = parse_count(optarg, &a.policy.keep_weekly);
			break;
		case 'M':
			bad = parse_count(optarg, &a.policy.keep_monthly);
			break;
		case 'H':
			usage(stdout);
			return HM_EXIT_OK;
		default: {
			int r = hm_repo_cli_option(&a.rc, opt, optarg);
			if (r < 0)
				return HM_EXIT_USAGE;
			bad = r == 0;
		}
		}
		if (bad) {
			fprintf(stderr,
				"hive-migrate: error: bad option \"%s\" for backups %s (hint: hive-migrate "
				"backups --help)\n",
				(argv + 1)[optind - 1], sub);
			return HM_EXIT_USAGE;
		}
	}
	int rest = argc - 1 - optind;
	char **pos = argv + 1 + optind;
	int copy = !strcmp(sub, "copy");
	int needs_id =
		copy || !strcmp(sub, "show") || !strcmp(sub, "restore") || (!strcmp(sub, "verify") && !a.all);
	if (copy && (!a.from || !a.to || a.repo || rest != 1)) {
		fprintf(stderr, "hive-migrate: error: backups copy needs one backup ID, --from REPO and --to "
				"REPO (hint: hive-migrate backups --help)\n");
		return HM_EXIT_USAGE;
	}
	if (!copy && a.from) {
		fprintf(stderr, "hive-migrate: error: --from is for backups copy only\n");
		return HM_EXIT_USAGE;
	}
	if ((!a.repo && !copy) || rest > (needs_id ? 1 : 0) || (needs_id && rest != 1) ||
	    (!strcmp(sub, "restore") && !a.to)) {
		fprintf(stderr,
			"hive-migrate: error: backups %s needs %s--repo REPO%s (hint: hive-migrate backups "
			"--help)\n",
			sub, needs_id ? "one backup ID, " : "",
			!strcmp(sub, "restore") ? " and --to DIR" : "");
		return HM_EXIT_USAGE;
	}
	if (needs_id)
		a.id = pos[0];
	hm_error err = {0};
	if (hm_repo_cli_secret(&a.rc, &a.secret, &err) != 0)
		return fail(&err);
	int rc;
	if (!strcmp(sub, "list"))
		rc = cmd_list(&a);
	else if (!strcmp(sub, "show"))
		rc = cmd_show(&a);
	else if (!strcmp(sub, "verify"))
		rc = cmd_verify(&a);
	else if (!strcmp(sub, "restore"))
		rc = cmd_restore(&a);
	else if (copy)
		rc = cmd_copy(&a);
	else
		rc = cmd_prune(&a);
	hm_crypt_secret_free(a.secret);
	return rc;
}
