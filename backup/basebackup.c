/* BASE_BACKUP client. The protocol (PostgreSQL 15+, src/backend/backup/basebackup_copy.c
 * and the "Streaming Replication Protocol" chapter of the docs): two result sets (start
 * LSN + timeline; the tablespace list with sizes in kB when PROGRESS is given), then one
 * COPY OUT stream whose CopyData messages start with a type byte: 'n' new archive
 * (name\0 location\0), 'd' data of the current archive or of the manifest, 'm' manifest
 * begins, 'p' progress (Int64, network order); then CopyDone and a result set with the
 * end LSN and timeline. */
#include "basebackup.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Server notices (e.g. "WAL archiving is not enabled", which does not apply: the WAL
 * needed is inside the backup) are not for the user of a cron job; drop them. */
static void quiet_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

int hm_lsn_parse(const char *text, uint64_t *lsn)
{
	unsigned int hi, lo;
	char tail;
	if (!text || sscanf(text, "%X/%X%c", &hi, &lo, &tail) != 2)
		return -1;
	*lsn = ((uint64_t)hi << 32) | lo;
	return 0;
}

uint64_t hm_pg_size_parse(const char *text)
{
	char *end;
	unsigned long long v = strtoull(text, &end, 10);
	if (end == text)
		return 0;
	if (!strcmp(end, "") || !strcmp(end, "B"))
		return v;
	if (!strcmp(end, "kB"))
		return v << 10;
	if (!strcmp(end, "MB"))
		return v << 20;
	if (!strcmp(end, "GB"))
		return v << 30;
	return 0;
}

/* A valid archive name from the server: non-empty, no leading '.', no path separators. */
static int archive_name_ok(const char *name)
{
	return name[0] != '\0' && name[0] != '.' && !strchr(name, '/') && !strchr(name, '\\') &&
	       strlen(name) < 90;
}

/* Read the single-row (recptr, tli) result set. */
static int read_lsn_result(PGresult *res, char *lsn, size_t lsnsz, uint32_t *tli, const char *what,
			   hm_error *err)
{
	uint64_t dummy;
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) < 2 ||
	    hm_lsn_parse(PQgetvalue(res, 0, 0), &dummy) != 0)
		return hm_error_set(err, HM_EXIT_BACKUP_FAILED,
				    "unexpected reply from the server for the %s position", what);
	snprintf(lsn, lsnsz, "%s", PQgetvalue(res, 0, 0));
	*tli = (uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
	return 0;
}

/* Run a simple replication command that returns one row; copy field col of row 0. */
static int simple_value(PGconn *c, const char *cmd, int col, char *out, size_t outsz, hm_error *err)
{
	char cause[512];
	PGresult *res = PQexec(c, cmd);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1 || PQnfields(res) <= col) {
		hm_error_set(err, HM_EXIT_DATABASE, "%s failed: %s", cmd,
			     hm_pgconn_cause(c, cause, sizeof cause));
		PQclear(res);
		return -1;
	}
	snprintf(out, outsz, "%s", PQgetvalue(res, 0, col));
	PQclear(res);
	return 0;
}

/* Dispatch one CopyData message of the backup stream. */
static int handle_message(const char *buf, int len, const hm_bb_sink *sink, hm_bb_info *info, int *state,
			  hm_error *err)
{
	/* state: 0 = before any archive, 1 = in an archive, 2 = in the manifest */
	if (len < 1)
		return hm_error_set(err, HM_EXIT_BACKUP_FAILED, "empty message in the backup stream");
	switch (buf[0]) {
	case 'n': {
		const char *name = buf + 1;
		const char *end = memchr(name, '\0', (size_t)(len - 1));
		if (!end)
			return hm_error_set(err, HM_EXIT_BACKUP_FAILED, "malformed archive announcement");
		const char *loc = end + 1;
		if (loc >= buf + len || !memchr(loc, '\0', (size_t)(buf + len - loc)))
			return hm_error_set(err, HM_EXIT_BACKUP_FAILED, "malformed archive announcement");
		if (!archive_name_ok(name))
			return hm_error_set(err, HM_EXIT_BACKUP_FAILED,
					    "server sent an unsafe archive name \"%s\"", name);
		if (*state == 2)
			return hm_error_set(err, HM_EXIT_BACKUP_FAILED, "archive after the manifest");
		*state = 1;
		info->tablespaces++;
		return sink->archive_begin(sink->ctx, name, loc, err);
	}
	case 'd':
		if (*state == 0)
			return hm_error_set(err, HM_EXIT_BACKUP_FAILED, "data before any archive");
		return sink->data(sink->ctx, buf + 1, (size_t)(len - 1), err);
	case 'm':
		if (*state == 2)
			return hm_error_set(err, HM_EXIT_BACKUP_FAILED, "two manifests in the stream");
		*state = 2;
		return sink->manifest_begin(sink->ctx, err);
	case 'p': {
		if (len < 9)
			return hm_error_set(err, HM_EXIT_BACKUP_FAILED, "malformed progress message");
		uint64_t v = 0;
		for (int i = 1; i <= 8; i++)
			v = (v << 8) | (unsigned char)buf[i];
		if (sink->progress)
			sink->progress(sink->ctx, v, info->total_bytes);
		return 0;
	}
	default:
		return hm_error_set(err, HM_EXIT_BACKUP_FAILED,
				    "unknown message type '%c' in the backup stream", buf[0]);
	}
}

int hm_bb_conn_params(const hm_bb_conn *conn, hm_pgconn *out, hm_error *err)
{
	int r = 0;
	r |= hm_pgconn_set(out, "dbname", "replication");
	r |= hm_pgconn_set(out, "host", conn->profile_host);
	r |= hm_pgconn_set(out, "port", conn->profile_port);
	r |= hm_pgconn_set(out, "user", conn->profile_user);
	if (r != 0)
		return hm_error_set(err, HM_EXIT_INTERNAL, "too many connection parameters");
	if (hm_pgconn_apply(out, "--dbname", conn->conninfo, err) != 0)
		return -1;
	r |= hm_pgconn_set(out, "host", conn->host);
	r |= hm_pgconn_set(out, "port", conn->port);
	r |= hm_pgconn_set(out, "user", conn->user);
	r |= hm_pgconn_set(out, "password", conn->password);
	/* pg_basebackup forces this too: a "replication=database" in --dbname would make a
	 * logical replication connection, on which BASE_BACKUP is refused */
	r |= hm_pgconn_set(out, "replication", "true");
	if (!hm_pgconn_get(out, "fallback_application_name"))
		r |= hm_pgconn_set(out, "fallback_application_name", "hive-migrate");
	/* cron must not hang on a black-holed address; a timeout the user chose wins */
	const char *env_timeout = getenv("PGCONNECT_TIMEOUT");
	const char *env_service = getenv("PGSERVICE");
	if (!hm_pgconn_get(out, "connect_timeout") && !hm_pgconn_get(out, "service") &&
	    !(env_timeout && env_timeout[0]) && !(env_service && env_service[0]))
		r |= hm_pgconn_set(out, "connect_timeout", "15");
	if (r != 0)
		return hm_error_set(err, HM_EXIT_INTERNAL, "too many connection parameters");
	return 0;
}

/* Connect for replication; on failure one line naming the server libpq tried. */
static PGconn *bb_connect(const hm_bb_conn *conn, hm_bb_info *info, hm_error *err)
{
	hm_pgconn params;
	char where[400], cause[512];
	hm_pgconn_init(&params);
	if (hm_bb_conn_params(conn, &params, err) != 0) {
		hm_pgconn_free(&params);
		return NULL;
	}
	PGconn *c = hm_pgconn_connect(&params, NULL);
	hm_pgconn_free(&params);
	if (c) {
		snprintf(info->host, sizeof info->host, "%s", PQhost(c) ? PQhost(c) : "");
		snprintf(info->port, sizeof info->port, "%s", PQport(c) ? PQport(c) : "");
		snprintf(info->user, sizeof info->user, "%s", PQuser(c) ? PQuser(c) : "");
	}
	if (c && PQstatus(c) == CONNECTION_OK)
		return c;
	hm_pgconn_where(c, where, sizeof where);
	hm_error_set(err, HM_EXIT_DATABASE, "cannot connect for replication to %s as user \"%s\": %s", where,
		     info->user[0] ? info->user : "?", hm_pgconn_cause(c, cause, sizeof cause));
	if (c && PQconnectionNeedsPassword(c))
		hm_error_hint(err, "the server wants a password: --password-file FILE (0600), "
				   "HIVE_BACKUP_PASSWORD, PGPASSWORD, or a PGPASSFILE/~/.pgpass line for "
				   "database \"replication\"");
	else if (c && PQconnectionUsedPassword(c))
		hm_error_hint(err,
			      "the password given (--password-file, HIVE_BACKUP_PASSWORD, PGPASSWORD or "
			      "PGPASSFILE/~/.pgpass) is not this role's; the role needs LOGIN REPLICATION");
	else
		hm_error_hint(err, "start the server or point at it: -h/-p/-U override --dbname, which "
				   "overrides --profile; otherwise PGSERVICE/PGHOST/PGPORT/PGUSER apply "
				   "(docs/backup.md); the role needs LOGIN REPLICATION and pg_hba.conf a "
				   "\"replication\" line");
	PQfinish(c);
	return NULL;
}

int hm_basebackup_run(const hm_bb_conn *conn, const hm_bb_opts *opts, const hm_bb_sink *sink,
		      hm_bb_info *info, hm_error *err)
{
	int rc = -1, state = 0;
	char cause[512], cmd[1024], tmp[64], where[400];
	PGresult *res = NULL;
	memset(info, 0, sizeof *info);
	PGconn *c = bb_connect(conn, info, err);
	if (!c)
		return -1;
	hm_pgconn_where(c, where, sizeof where);
	PQsetNoticeProcessor(c, quiet_notice, NULL);
	info->server_version = PQserverVersion(c);
	if (info->server_version < 150000) {
		hm_error_set(err, HM_EXIT_DATABASE,
			     "server at %s runs PostgreSQL %d; online backups need 15 or later", where,
			     info->server_version / 10000);
		goto cleanup;
	}
	if (simple_value(c, "IDENTIFY_SYSTEM", 0, info->system_identifier, sizeof info->system_identifier,
			 err) != 0)
		goto cleanup;
	if (simple_value(c, "SHOW wal_segment_size", 0, tmp, sizeof tmp, err) != 0)
		goto cleanup;
	info->wal_segment_size = (uint32_t)hm_pg_size_parse(tmp);
	if (info->wal_segment_size == 0) {
		hm_error_set(err, HM_EXIT_BACKUP_FAILED, "cannot parse wal_segment_size \"%s\"", tmp);
		goto cleanup;
	}
	/* The label is generated by us (hex and spaces only), so plain quoting is safe.
	 * workers=N: the server's zstd compresses in N threads beside the sending process
	 * (PostgreSQL's compression detail, src/common/compression.c; refused with "could not
	 * set compression worker count" by a libzstd built without threads). */
	char workers[32] = "";
	if (opts->zstd_workers > 0)
		snprintf(workers, sizeof workers, ",workers=%d", opts->zstd_workers);
	snprintf(cmd, sizeof cmd,
		 "BASE_BACKUP ( LABEL '%s', PROGRESS, CHECKPOINT 'fast', WAL true, WAIT %s, "
		 "TABLESPACE_MAP, MANIFEST 'yes', MANIFEST_CHECKSUMS '%s', COMPRESSION 'zstd', "
		 "COMPRESSION_DETAIL 'level=%d%s' )",
		 opts->label, opts->no_wait ? "false" : "true", opts->manifest_checksums,
		 opts->zstd_level != 0 ? opts->zstd_level : 1, workers);
	if (!PQsendQuery(c, cmd)) {
		hm_error_set(err, HM_EXIT_DATABASE, "cannot start BASE_BACKUP: %s",
			     hm_pgconn_cause(c, cause, sizeof cause));
		goto cleanup;
	}
	/* Result 1: start position. */
	res = PQgetResult(c);
	if (PQresultStatus(res) == PGRES_FATAL_ERROR || !res) {
		hm_error_set(err, HM_EXIT_DATABASE, "BASE_BACKUP refused: %s",
			     hm_pgconn_cause(c, cause, sizeof cause));
		goto cleanup;
	}
	if (read_lsn_result(res, info->start_lsn, sizeof info->start_lsn, &info->start_tli, "start", err) !=
	    0)
		goto cleanup;
	PQclear(res);
	/* Result 2: tablespaces (oid, location, size in kB). */
	res = PQgetResult(c);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) < 3) {
		hm_error_set(err, HM_EXIT_DATABASE, "BASE_BACKUP failed reading tablespaces: %s",
			     hm_pgconn_cause(c, cause, sizeof cause));
		goto cleanup;
	}
	for (int i = 0; i < PQntuples(res); i++)
		if (!PQgetisnull(res, i, 2))
			info->total_bytes += strtoull(PQgetvalue(res, i, 2), NULL, 10) * 1024;
	PQclear(res);
	/* Result 3: the COPY OUT stream. */
	res = PQgetResult(c);
	if (PQresultStatus(res) != PGRES_COPY_OUT) {
		hm_error_set(err, HM_EXIT_DATABASE, "BASE_BACKUP did not start streaming: %s",
			     hm_pgconn_cause(c, cause, sizeof cause));
		goto cleanup;
	}
	PQclear(res);
	res = NULL;
	for (;;) {
		char *buf = NULL;
		int len = PQgetCopyData(c, &buf, 0);
		if (len == -1)
			break;
		if (len == -2) {
			hm_error_set(err, HM_EXIT_DATABASE, "backup stream broken: %s",
				     hm_pgconn_cause(c, cause, sizeof cause));
			goto cleanup;
		}
		int r = handle_message(buf, len, sink, info, &state, err);
		PQfreemem(buf);
		if (r != 0)
			goto cleanup;
	}
	if (state != 2) {
		/* a server-side failure (a file it cannot read, say) ends the COPY early: its
		 * message is in the result that follows, and it is the cause the user needs */
		res = PQgetResult(c);
		if (res && PQresultStatus(res) == PGRES_FATAL_ERROR) {
			hm_error_set(err, HM_EXIT_DATABASE, "the server failed the backup: %s",
				     hm_pgconn_cause(c, cause, sizeof cause));
			hm_error_hint(err, "see the server's log; a file PostgreSQL cannot read in "
					   "its data directory is a common cause");
		} else {
			hm_error_set(err, HM_EXIT_BACKUP_FAILED,
				     "the server ended the backup without a manifest");
		}
		goto cleanup;
	}
	/* After CopyDone: the COPY's own status, then the end position, then NULL. */
	int got_end = 0;
	while ((res = PQgetResult(c)) != NULL) {
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_FATAL_ERROR) {
			hm_error_set(err, HM_EXIT_DATABASE, "backup failed at the end: %s",
				     hm_pgconn_cause(c, cause, sizeof cause));
			goto cleanup;
		}
		if (st == PGRES_TUPLES_OK && !got_end) {
			if (read_lsn_result(res, info->end_lsn, sizeof info->end_lsn, &info->end_tli, "end",
					    err) != 0)
				goto cleanup;
			got_end = 1;
		}
		PQclear(res);
	}
	if (!got_end) {
		hm_error_set(err, HM_EXIT_BACKUP_FAILED, "the server did not report the backup end position");
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (rc != 0 && opts->zstd_workers > 0 && strstr(err->message, "compression worker count"))
		hm_error_hint(err, "this server's zstd has no threads: use --zstd-workers 0");
	else if (rc != 0 && opts->zstd_level < 0 && strstr(err->message, "compression level"))
		hm_error_hint(err, "this server does not take zstd's fast (negative) levels: use "
				   "--zstd-level 1..22");
	PQclear(res);
	PQfinish(c);
	return rc;
}
