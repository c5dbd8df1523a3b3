/* hive-migrate backup: an online physical backup over the replication protocol (or, with
 * --offline, an archive of a stopped cluster's data directory) into a repository. The
 * archive is written inside REPO/.tmp and renamed into place only when complete, so cron
 * runs that overlap, fail or get killed never leave a listed partial backup. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../cli/commands.h"
#include "../common/archive_dir.h"
#include "../common/fsutil.h"
#include "../common/pg_control.h"
#include "../common/progress.h"
#include "basebackup.h"
#include "meta.h"
#include "offline.h"
#include "repo.h"
#include "repo_cli.h"
#include "repo_io.h"
#include "tarout.h"

/* The parsed command line. */
typedef struct backup_args {
	const char *repo;
	hm_repo_cli rc;				       /* s3 connection and encryption options */
	const char *profile;			       /* --profile NAME, or NULL */
	const char *prof_host, *prof_port, *prof_user; /* what --profile selects */
	const char *conninfo;			       /* -d/--dbname */
	const char *host, *port, *user;		       /* -h/-p/-U; NULL: not given */
	const char *password_file;
	const char *data_dir;
	const char *checksums;
	int zstd_level, zstd_workers;
	int offline, quiet, json, no_wait;
} backup_args;

/* State of one online backup while it streams. */
typedef struct stream_ctx {
	hm_tarout tar;
	hm_backup_meta *meta;
	hm_progress progress;
	int member_open;     /* a server archive or the manifest is the current member */
	int member_is_zst;   /* current member is a .tar.zst that needs the tar terminator frame */
	uint64_t data_bytes; /* archive bytes received */
	int fault_mid_stream;
	hm_repo *repo; /* for the lease of an s3 repository's lock while the archive is staged */
} stream_ctx;

/* One zstd frame holding 1024 zero bytes (an RLE block): appended to each server archive
 * because the server omits the tar end-of-archive blocks (see the BASE_BACKUP docs). With
 * it each member is a complete .tar.zst that plain `tar --zstd -x` reads; zstd decoders
 * concatenate frames. Frame: magic, FHD 0x60 (single segment, 2-byte size = 1024 - 256),
 * one last RLE block of 1024 copies of 0x00. */
/* Member data per tar entry when streaming to an object store (stream mode of tarout.h):
 * the driver's first part size (5 MiB), so memory stays one chunk plus the parts in flight. */
#define STREAM_CHUNK HM_S3_DEFAULT_PART

static const unsigned char tar_terminator_zst[] = {0x28, 0xb5, 0x2f, 0xfd, 0x60, 0x00,
						   0x03, 0x03, 0x20, 0x00, 0x00};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hive-migrate backup --repo DIR|s3://BUCKET/PREFIX [-d CONNINFO] [-h HOST] [-p PORT]\n"
		"                           [-U USER] [--encrypt-key-file FILE] [--s3-... options]\n"
		"                           [--profile agent|genie] [--password-file FILE]\n"
		"                           [--checksums crc32c|sha256] [--zstd-level N] "
		"[--zstd-workers N]\n"
		"                           [--no-wait-archive] [--quiet] [--json]\n"
		"       hive-migrate backup --offline --data-dir DIR --repo DIR|s3://BUCKET/PREFIX [--quiet] "
		"[--json]\n\n"
		"Online: a physical backup over PostgreSQL's replication protocol (BASE_BACKUP, WAL\n"
		"included, server-side zstd, backup_manifest), streamed into one archive in the repository.\n"
		"Offline: an archive of a stopped cluster's data directory (pg_control must say shut "
		"down).\n\n"
		"  --repo DIR            backup repository (created 0700 if missing), or s3://BUCKET/PREFIX\n"
		"                        (the bucket must exist; backups stream by multipart upload, no\n"
		"                        local copy; backup.json is written last)\n"
		"  -d, --dbname CONNINFO a libpq connection string (\"host=/run/pg port=5433\") or URI\n"
		"                        (postgresql://user@host:port/), as pg_basebackup -d\n"
		"  -h, --host HOST       host name, address or Unix socket directory\n"
		"  -p, --port PORT       port\n"
		"  -U, --user USER       role (needs LOGIN REPLICATION)\n"
		"  --profile agent|genie the unified container: 127.0.0.1 port 35532 (agent) or 48532\n"
		"                        (genie), user hive_backup\n"
		"  --password-file FILE  a 0600 file holding the password; else HIVE_BACKUP_PASSWORD,\n"
		"                        else libpq's PGPASSWORD, PGPASSFILE or ~/.pgpass (never on the\n"
		"                        command line: a password inside --dbname is refused)\n"
		"  --checksums ALG       backup_manifest file checksums: crc32c (default) or sha256\n"
		"  --zstd-level N        server-side zstd level, 1..22 (default 1), or one of zstd's fast\n"
		"                        levels -1..-131072: less CPU on the server, a larger archive\n"
		"                        (the server must accept them; PostgreSQL 17 does)\n"
		"  --zstd-workers N      server-side zstd threads (default 2; 0: none, for a server whose\n"
		"                        libzstd has no threads)\n"
		"  --no-wait-archive     BASE_BACKUP WAIT false: do not wait until the server's WAL archive\n"
		"                        (archive_command) has the backup's last segment; the backup holds\n"
		"                        its WAL either way (pg_basebackup -X fetch also does not wait)\n"
		"  --quiet               print nothing on success\n"
		"  --json                print the new backup's metadata as JSON, with the server used\n\n"
		"Which server: each setting comes from the first of -h/-p/-U, then --dbname, then\n"
		"--profile, then libpq's environment and defaults (PGSERVICE with pg_service.conf,\n"
		"PGHOST, PGPORT, PGUSER, PGSSLMODE, ...; socket /var/run/postgresql, port 5432, the\n"
		"login name). Without any of them, that is where pg_basebackup would "
		"connect.\n\n" HM_REPO_CLI_HELP
		"\nexit codes: 0 ok, 2 usage, 33 locked (another run), 32 database, 43 backup failed, 25 "
		"object store; "
		"docs/exit-codes.md\n");
}

/* Read the password: --password-file (must not be readable by group/others), else the
 * environment, else NULL (libpq then uses PGPASSFILE / ~/.pgpass). *out is malloc'd. */
static int read_password(const char *file, char **out, hm_error *err)
{
	*out = NULL;
	if (file) {
		struct stat st;
		size_t len;
		if (stat(file, &st) != 0)
			return hm_error_errno(err, errno, "read password file", file);
		if (st.st_mode & 077) {
			hm_error_set(err, HM_EXIT_PERMISSION,
				     "password file \"%s\" is readable by others (mode %03o)", file,
				     (unsigned)(st.st_mode & 0777));
			return hm_error_hint(err, "chmod 600 %s", file);
		}
		if (hm_read_file(file, 4096, out, &len, err) != 0)
			return -1;
		while (len > 0 && ((*out)[len - 1] == '\n' || (*out)[len - 1] == '\r'))
			(*out)[--len] = '\0';
		return 0;
	}
	const char *env = getenv("HIVE_BACKUP_PASSWORD");
	if (env && env[0]) {
		*out = strdup(env);
		if (!*out)
			return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	}
	return 0;
}

/* Close the current member (server archive or manifest) and record it in the metadata. */
static int end_member(stream_ctx *s, hm_error *err)
{
	if (!s->member_open)
		return 0;
	if (s->member_is_zst &&
	    hm_tarout_write(&s->tar, tar_terminator_zst, sizeof tar_terminator_zst, err) != 0)
		return -1;
	if (s->meta->nmembers >= HM_META_MAX_MEMBERS - 1)
		return hm_error_set(err, HM_EXIT_BACKUP_FAILED, "too many archives in the backup");
	hm_backup_member *m = &s->meta->members[s->meta->nmembers];
	snprintf(m->name, sizeof m->name, "%s", s->tar.name);
	if (hm_tarout_end(&s->tar, &m->size, m->sha256, err) != 0)
		return -1;
	s->meta->nmembers++;
	s->member_open = 0;
	return 0;
}

/* Sink: a new server archive begins. */
static int on_archive(void *ctx, const char *name, const char *location, hm_error *err)
{
	stream_ctx *s = ctx;
	(void)location;
	size_t n = strlen(name);
	if (end_member(s, err) != 0 || hm_tarout_begin(&s->tar, name, err) != 0)
		return -1;
	s->member_open = 1;
	s->member_is_zst = n > 8 && !strcmp(name + n - 8, ".tar.zst");
	return 0;
}

/* Sink: bytes of the current archive or of the manifest. */
static int on_data(void *ctx, const void *buf, size_t len, hm_error *err)
{
	stream_ctx *s = ctx;
	s->data_bytes += len;
	if (s->fault_mid_stream && s->data_bytes > (256u << 10)) {
		/* test hook (HIVE_BACKUP_FAULT=mid-stream): die like kill -9 in the middle */
		raise(SIGKILL);
	}
	if (hm_repo_keepalive(s->repo, err) != 0)
		return -1;
	return hm_tarout_write(&s->tar, buf, len, err);
}

/* Sink: the manifest begins; it becomes the member "backup_manifest". */
static int on_manifest(void *ctx, hm_error *err)
{
	stream_ctx *s = ctx;
	if (end_member(s, err) != 0 || hm_tarout_begin(&s->tar, "backup_manifest", err) != 0)
		return -1;
	s->member_open = 1;
	s->member_is_zst = 0;
	return 0;
}

/* Sink: progress from the server ('p' messages: bytes of the data directory sent). */
static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	stream_ctx *s = ctx;
	s->progress.total = total;
	if (done > s->progress.done)
		hm_progress_add(&s->progress, done - s->progress.done);
}

/* Test hook: HIVE_BACKUP_FAULT=NAME dies like kill -9 at the point NAME. */
static void fault_point(const char *name)
{
	const char *f = getenv("HIVE_BACKUP_FAULT");
	if (f && !strcmp(f, name))
		raise(SIGKILL);
}

/* The metadata as JSON, plus (online) "connection": the host (or socket directory), port
 * and user libpq resolved, so that scripts need not parse "source". */
static void print_json(const hm_backup_meta *m, const hm_bb_info *where)
{
	/* An encrypted backup: only what its readable backup.json holds (what `backups list`
	 * shows without the key, docs/security.md), neither the source nor the server. */
	int sealed = m->encryption[0] != '\0';
	char *j = sealed ? hm_meta_encode_public(m, 1) : hm_meta_encode(m, 1);
	json_object *o = j ? json_tokener_parse(j) : NULL;
	free(j);
	if (!o)
		return;
	if (where && !sealed) {
		json_object *c = json_object_new_object();
		json_object_object_add(c, "host", json_object_new_string(where->host));
		json_object_object_add(c, "port", json_object_new_string(where->port));
		json_object_object_add(c, "user", json_object_new_string(where->user));
		json_object_object_add(o, "connection", c);
	}
	printf("%s\n",
	       json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* Print the result line or JSON. */
static void report(const backup_args *a, const hm_backup_meta *m, const hm_bb_info *where, double secs)
{
	if (a->json) {
		print_json(m, a->offline ? NULL : where);
	} else if (!a->quiet) {
		char sz[32], db[32];
		hm_progress_bytes(m->archive_size, sz, sizeof sz);
		hm_progress_bytes(m->database_size, db, sizeof db);
		if (m->encryption[0]) /* the database size is sealed (docs/security.md) */
			printf("backup %s (%s): %s archive, encrypted, in %.1f s\n", m->id, m->kind, sz,
			       secs);
		else
			printf("backup %s (%s): %s archive of %s in %.1f s\n", m->id, m->kind, sz, db, secs);
	}
}

/* The online backup. */
static int run_online(const backup_args *a, hm_repo *repo, hm_backup_meta *meta, hm_bb_info *info,
		      hm_crypt_secret *secret, hm_error *err)
{
	hm_repo_stream *stream = NULL;
	stream_ctx s;
	char partial[4500], tarpath[4600], label[96];
	char *password = NULL;
	int rc = -1;
	memset(&s, 0, sizeof s);
	s.tar.fd = -1;
	s.meta = meta;
	s.repo = repo;
	const char *fault = getenv("HIVE_BACKUP_FAULT");
	s.fault_mid_stream = fault && !strcmp(fault, "mid-stream");
	if (read_password(a->password_file, &password, err) != 0)
		return -1;
	snprintf(meta->kind, sizeof meta->kind, "online");
	snprintf(meta->archive, sizeof meta->archive, "backup.tar");
	snprintf(label, sizeof label, "hive-migrate %s", meta->uuid);
	snprintf(meta->label, sizeof meta->label, "%s", label);
	snprintf(meta->manifest_checksums, sizeof meta->manifest_checksums, "%s", a->checksums);
	snprintf(meta->compression, sizeof meta->compression, "zstd:%d", a->zstd_level);
	if (hm_repo_partial(repo, meta->id, partial, sizeof partial, err) != 0)
		goto cleanup;
	snprintf(tarpath, sizeof tarpath, "%s/%s", partial, meta->archive);
	/* an object store: straight into a multipart upload (chunked tar entries, memory
	 * bounded); a directory: into the partial file, headers written in place */
	if (hm_repo_streams(repo)) {
		if (hm_repo_stream_open(repo, meta, secret, &stream, err) != 0 ||
		    hm_tarout_open_stream(&s.tar, hm_repo_stream_write, stream, STREAM_CHUNK, err) != 0)
			goto cleanup;
	} else if (hm_tarout_open(&s.tar, tarpath, err) != 0) {
		goto cleanup;
	}
	hm_progress_init(&s.progress, stderr, "backup", 0, a->quiet || a->json);
	hm_bb_conn conn = {a->prof_host, a->prof_port, a->prof_user, a->conninfo,
			   a->host,	 a->port,      a->user,	     password};
	hm_bb_opts opts = {label, a->checksums, a->zstd_level, a->no_wait, a->zstd_workers};
	hm_bb_sink sink = {&s, on_archive, on_data, on_manifest, on_progress};
	if (hm_basebackup_run(&conn, &opts, &sink, info, err) != 0)
		goto cleanup;
	snprintf(meta->source, sizeof meta->source, "%s:%s user %s", info->host, info->port, info->user);
	if (end_member(&s, err) != 0)
		goto cleanup;
	if (!hm_meta_member(meta, "base.tar.zst") || !hm_meta_member(meta, "backup_manifest")) {
		hm_error_set(err, HM_EXIT_BACKUP_FAILED,
			     "the server sent no base.tar.zst or no backup_manifest");
		goto cleanup;
	}
	meta->end_time = time(NULL);
	snprintf(meta->start_lsn, sizeof meta->start_lsn, "%s", info->start_lsn);
	snprintf(meta->end_lsn, sizeof meta->end_lsn, "%s", info->end_lsn);
	meta->timeline = info->start_tli;
	snprintf(meta->system_identifier, sizeof meta->system_identifier, "%s", info->system_identifier);
	meta->pg_version = info->server_version;
	meta->wal_segment_size = info->wal_segment_size;
	meta->database_size = info->total_bytes;
	/* The archive's own copy of the metadata (no verification status), written last. */
	char *j = hm_meta_encode(meta, 0);
	if (!j) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	int r = hm_tarout_add(&s.tar, HM_REPO_META, j, strlen(j), NULL, err);
	free(j);
	if (r != 0 || hm_tarout_close(&s.tar, &meta->archive_size, err) != 0)
		goto cleanup;
	if (stream) {
		hm_repo_stream *done = stream;
		stream = NULL;
		if (hm_repo_stream_commit(done, meta, err) != 0)
			goto cleanup;
	}
	hm_progress_finish(&s.progress);
	rc = 0;
cleanup:
	hm_tarout_abort(&s.tar);
	hm_repo_stream_abort(stream);
	if (password) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	return rc;
}

/* The offline backup of a stopped data directory (backup/offline.c). */
static int run_offline(const backup_args *a, hm_repo *repo, hm_backup_meta *meta, hm_crypt_secret *secret,
		       hm_error *err)
{
	hm_progress prog;
	hm_progress_init(&prog, stderr, "backup", 0, a->quiet || a->json);
	return hm_offline_backup(repo, a->data_dir, a->data_dir, meta, secret, &prog, NULL, err);
}

int hm_cmd_backup(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"repo", required_argument, NULL, 'r'},
		{"dbname", required_argument, NULL, 'd'},
		{"profile", required_argument, NULL, 'P'},
		{"host", required_argument, NULL, 'h'},
		{"port", required_argument, NULL, 'p'},
		{"user", required_argument, NULL, 'U'},
		{"password-file", required_argument, NULL, 'W'},
		{"offline", no_argument, NULL, 'o'},
		{"data-dir", required_argument, NULL, 'D'},
		{"checksums", required_argument, NULL, 'c'},
		{"zstd-level", required_argument, NULL, 'z'},
		{"zstd-workers", required_argument, NULL, 'Z'},
		{"quiet", no_argument, NULL, 'q'},
		{"json", no_argument, NULL, 'j'},
		{"no-wait-archive", no_argument, NULL, 'w'},
		{"help", no_argument, NULL, 'H'},
		HM_REPO_LONGOPTS,
		{NULL, 0, NULL, 0},
	};
	backup_args a = {.checksums = "CRC32C", .zstd_level = 1, .zstd_workers = 2};
	hm_crypt_secret *secret = NULL;
	hm_bb_info info;
	hm_error err = {0};
	hm_repo repo;
	hm_backup_meta meta;
	char partial[4500];
	int opt, rc;
	memset(&repo, 0, sizeof repo);
	repo.lock.fd = repo.fd = repo.tmpfd = repo.stagefd = repo.restore_lock.fd = -1;
	optind = 1;
	opterr = 0;
	memset(&info, 0, sizeof info);
	while ((opt = getopt_long(argc, argv, "d:h:p:U:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			a.repo = optarg;
			break;
		case 'd':
			a.conninfo = optarg;
			break;
		case 'P':
			/* the unified container's published PostgreSQL and its backup role */
			if (!strcmp(optarg, "agent"))
				a.prof_port = "35532";
			else if (!strcmp(optarg, "genie"))
				a.prof_port = "48532";
			else {
				fprintf(stderr,
					"hive-migrate: error: unknown profile \"%s\" (hint: agent or "
					"genie)\n",
					optarg);
				return HM_EXIT_USAGE;
			}
			a.profile = optarg;
			a.prof_host = "127.0.0.1";
			a.prof_user = "hive_backup";
			break;
		case 'h':
			a.host = optarg;
			break;
		case 'p':
			a.port = optarg;
			break;
		case 'U':
			a.user = optarg;
			break;
		case 'W':
			a.password_file = optarg;
			break;
		case 'o':
			a.offline = 1;
			break;
		case 'D':
			a.data_dir = optarg;
			break;
		case 'c':
			if (!strcasecmp(optarg, "crc32c"))
				a.checksums = "CRC32C";
			else if (!strcasecmp(optarg, "sha256"))
				a.checksums = "SHA256";
			else {
				fprintf(stderr,
					"hive-migrate: error: --checksums must be crc32c or sha256\n");
				return HM_EXIT_USAGE;
			}
			break;
		case 'z': {
			/* 0 is refused: zstd reads it as "the default" (3), not as a level */
			char *end;
			long n = strtol(optarg, &end, 10);
			if (!*optarg || *end || n == 0 || n < HM_BB_ZSTD_MIN_LEVEL || n > 22) {
				fprintf(stderr,
					"hive-migrate: error: --zstd-level must be 1..22 or a fast "
					"level -1..-131072, not \"%s\"\n",
					optarg);
				return HM_EXIT_USAGE;
			}
			a.zstd_level = (int)n;
			break;
		}
		case 'Z': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (!*optarg || *end || n < 0 || n > 64) {
				fprintf(stderr, "hive-migrate: error: --zstd-workers must be 0..64\n");
				return HM_EXIT_USAGE;
			}
			a.zstd_workers = (int)n;
			break;
		}
		case 'q':
			a.quiet = 1;
			break;
		case 'j':
			a.json = 1;
			break;
		case 'w':
			a.no_wait = 1;
			break;
		case 'H':
			usage(stdout);
			return HM_EXIT_OK;
		default:
			rc = hm_repo_cli_option(&a.rc, opt, optarg);
			if (rc > 0)
				break;
			if (rc < 0)
				return HM_EXIT_USAGE;
			fprintf(stderr,
				"hive-migrate: error: bad option \"%s\" for backup (hint: hive-migrate "
				"backup --help)\n",
				argv[optind - 1]);
			return HM_EXIT_USAGE;
		}
	}
	if (optind < argc || !a.repo || (a.offline && !a.data_dir) || (!a.offline && a.data_dir)) {
		fprintf(stderr,
			"hive-migrate: error: backup needs --repo DIR%s (hint: hive-migrate backup --help)\n",
			a.offline ? " and --data-dir DIR"
				  : (a.data_dir ? " and --offline with --data-dir" : ""));
		return HM_EXIT_USAGE;
	}
	if (a.offline && (a.profile || a.conninfo || a.host || a.port || a.user || a.password_file)) {
		fprintf(stderr, "hive-migrate: error: --offline reads --data-dir and connects to no server "
				"(hint: leave out --profile, --dbname, --host, --port, --user and "
				"--password-file)\n");
		return HM_EXIT_USAGE;
	}
	if (!a.offline) {
		/* a bad --dbname is a usage error: refuse it before the repository is touched */
		hm_bb_conn probe = {.conninfo = a.conninfo};
		hm_pgconn params;
		hm_pgconn_init(&params);
		rc = hm_bb_conn_params(&probe, &params, &err);
		hm_pgconn_free(&params);
		if (rc != 0) {
			hm_error_print(&err, stderr);
			return err.code;
		}
	}
	/* the key first: a key file others can read is refused before any work */
	if (hm_repo_cli_secret(&a.rc, &secret, &err) != 0)
		goto fail;
	double t0 = hm_progress_now();
	if (hm_repo_open(&repo, a.repo, &a.rc.conn, 1, HM_REPO_EXCLUSIVE, &err) != 0)
		goto fail;
	hm_meta_init(&meta);
	meta.start_time = time(NULL);
	hm_repo_new_id(meta.start_time, meta.id, meta.uuid);
	rc = a.offline ? run_offline(&a, &repo, &meta, secret, &err)
		       : run_online(&a, &repo, &meta, &info, secret, &err);
	char tp[4200];
	snprintf(partial, sizeof partial, "%s/%s", hm_repo_tmp_path(&repo, tp, sizeof tp), meta.id);
	/* the archive as stored (encrypted, uploaded), then backup.json: the commit point */
	if (rc == 0)
		rc = hm_repo_store_archive(&repo, partial, &meta, secret, &err);
	if (rc == 0 && secret)
		rc = hm_repo_seal_meta(&repo, partial, &meta, secret, &err);
	if (rc == 0)
		fault_point("before-commit");
	if (rc == 0)
		rc = hm_repo_commit(&repo, partial, &meta, &err);
	if (rc != 0) {
		hm_error ignored;
		hm_rmtree(partial, &ignored); /* nothing partial stays behind */
		hm_repo_discard(&repo, meta.id);
		goto fail;
	}
	hm_repo_close(&repo);
	hm_crypt_secret_free(secret);
	report(&a, &meta, &info, hm_progress_now() - t0);
	return HM_EXIT_OK;
fail:
	hm_repo_close(&repo);
	hm_crypt_secret_free(secret);
	if (err.code == HM_EXIT_OK)
		err.code = HM_EXIT_BACKUP_FAILED;
	hm_error_print(&err, stderr);
	return err.code;
}
