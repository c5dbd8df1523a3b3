/* An online base backup over PostgreSQL's replication protocol (libpq, replication=true,
 * BASE_BACKUP with server-side zstd, PostgreSQL 15 or later). The data is handed to the
 * caller's callbacks as it arrives; nothing is buffered here beyond one CopyData message. */
#ifndef HM_BASEBACKUP_H
#define HM_BASEBACKUP_H

#include <stdint.h>

#include "../common/error.h"

/* Where and how to connect. The password is never taken from argv: it is given here by the
 * caller (read from the environment or a 0600 file) or left NULL for libpq's PGPASSFILE. */
typedef struct hm_bb_conn {
	const char *host;
	const char *port;
	const char *user;
	const char *password; /* may be NULL */
} hm_bb_conn;

/* Options of the BASE_BACKUP command. */
typedef struct hm_bb_opts {
	const char *label;		/* "hive-migrate <uuid>" */
	const char *manifest_checksums; /* "CRC32C" or "SHA256" */
	int zstd_level;			/* server-side zstd level (1 by default) */
	int no_wait;			/* WAIT false: do not wait for WAL archiving to catch up */
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
} hm_bb_info;

/* Run one base backup. Errors: HM_EXIT_DATABASE (connection, authentication, server
 * refused or broke off), HM_EXIT_BACKUP_FAILED (protocol violation), or the code a
 * callback set. 0 or -1. */
int hm_basebackup_run(const hm_bb_conn *conn, const hm_bb_opts *opts, const hm_bb_sink *sink,
		      hm_bb_info *info, hm_error *err);

/* Parse "X/Y" into a 64-bit LSN. 0 or -1. */
int hm_lsn_parse(const char *text, uint64_t *lsn);

/* Parse a size setting like "16MB", "1GB", "16384kB" (SHOW output) into bytes; 0 on error. */
uint64_t hm_pg_size_parse(const char *text);

#endif
