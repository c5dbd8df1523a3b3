/* An online base backup over PostgreSQL's replication protocol (libpq, replication=true,
 * BASE_BACKUP with server-side zstd, PostgreSQL 15 or later). The data is handed to the
 * caller's callbacks as it arrives; nothing is buffered here beyond one CopyData message. */
#ifndef HM_BASEBACKUP_H
#define HM_BASEBACKUP_H

#include <stdint.h>

#include "../common/error.h"
#include "../common/pgconn.h"

/* Where and how to connect, by source. Precedence, lowest first (hm_bb_conn_params):
 * libpq's defaults and environment (PGHOST, PGPORT, PGUSER, PGSERVICE + pg_service.conf,
 * PGSSLMODE, ...) < --profile < -d/--dbname < -h/-p/-U < the password given here. Each
 * source sets only what it names. The password is never taken from argv: it is given
 * here by the caller (read from the environment or a 0600 file) or left NULL for libpq
 * (PGPASSWORD, PGPASSFILE, ~/.pgpass). NULL or "" means "not given". */
typedef struct hm_bb_conn {
	const char *profile_host, *profile_port, *profile_user; /* --profile agent|genie */
	const char *conninfo;		/* -d/--dbname: connection string, URI (or a database name) */
	const char *host, *port, *user; /* -h/--host, -p/--port, -U/--user */
	const char *password;		/* may be NULL */
} hm_bb_conn;

/* Build the keywords of the replication connection from conn, in the order above, on
 * top of dbname=replication (as pg_basebackup: .pgpass lines for database "replication"
 * match; --dbname may override it), then replication=true (always: BASE_BACKUP needs a
 * physical replication connection), fallback_application_name=hive-migrate (PGAPPNAME
 * wins), and connect_timeout=15 unless --dbname, PGCONNECT_TIMEOUT or a service gives
 * one. Refuses a password inside --dbname (HM_EXIT_USAGE). out must be hm_pgconn_init'd
 * and hm_pgconn_free'd by the caller; it points into conn's strings. 0 or -1. */
int hm_bb_conn_params(const hm_bb_conn *conn, hm_pgconn *out, hm_error *err);

/* zstd's lowest fast level (ZSTD_minCLevel(): -ZSTD_TARGETLENGTH_MAX, 1 << 17). */
#define HM_BB_ZSTD_MIN_LEVEL (-131072)

/* Options of the BASE_BACKUP command. */
typedef struct hm_bb_opts {
	const char *label;		/* "hive-migrate <uuid>" */
	const char *manifest_checksums; /* "CRC32C" or "SHA256" */
	int zstd_level;			/* server-side zstd level (1 by default; negative: zstd's
					   fast levels, down to HM_BB_ZSTD_MIN_LEVEL) */
	int no_wait;			/* WAIT false: do not wait for WAL archiving to catch up */
	int zstd_workers;		/* server-side zstd worker threads (0: none, the server's
					   one process compresses) */
} hm_bb_opts;

/* Callbacks fed while the backup streams. Each returns 0 to go on, -1 (err set) to stop. */
typedef struct hm_bb_sink {
	void *ctx;
	/* A new archive begins: its file name (e.g. "base.tar.zst") and tablespace location
	 * ("" for the main data directory). */
	int (*archive_begin)(void *ctx, const char *name, const char *location, hm_error *err);
	/* Bytes of the current archive, or of the manifest after manifest_begin. */
	int (*data)(void *ctx, const void *buf, size_t len, hm_error *err);
	/* The backup_manifest begins (the current archive, if any, has ended). */
	int (*manifest_begin)(void *ctx, hm_error *err);
	/* Progress: bytes of the data directory sent so far, of total (0 if unknown). */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
} hm_bb_sink;

/* What the server reported. */
typedef struct hm_bb_info {
	int server_version;	    /* e.g. 170002 */
	char system_identifier[32]; /* decimal text */
	uint32_t wal_segment_size;  /* bytes */
	char start_lsn[32];
	uint32_t start_tli;
	char end_lsn[32];
	uint32_t end_tli;
	uint64_t total_bytes; /* estimated data directory size from PROGRESS (0 if none) */
	int tablespaces;      /* archives announced */
	/* the server libpq connected to, as it resolved them (PQhost, PQport, PQuser) */
	char host[256]; /* host name or address, or the Unix socket directory */
	char port[32];
	char user[128];
} hm_bb_info;

/* Run one base backup. Errors: HM_EXIT_USAGE (a bad --dbname), HM_EXIT_DATABASE
 * (connection, authentication, server refused or broke off), HM_EXIT_BACKUP_FAILED
 * (protocol violation), or the code a callback set. info->host/port/user are filled
 * once libpq has resolved them, also when the connection failed. 0 or -1. */
int hm_basebackup_run(const hm_bb_conn *conn, const hm_bb_opts *opts, const hm_bb_sink *sink,
		      hm_bb_info *info, hm_error *err);

/* Parse "X/Y" into a 64-bit LSN. 0 or -1. */
int hm_lsn_parse(const char *text, uint64_t *lsn);

/* Parse a size setting like "16MB", "1GB", "16384kB" (SHOW output) into bytes; 0 on error. */
uint64_t hm_pg_size_parse(const char *text);

#endif
