/* Reading a PostgreSQL data directory with no server running: PG_VERSION and
 * global/pg_control (CRC-32C validated), for PostgreSQL 15, 16, 17 and 18.
 * Layouts: src/include/catalog/pg_control.h of each major; see pg_control.c. */
#ifndef HM_PG_CONTROL_H
#define HM_PG_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define HM_PG_CONTROL_FILE_SIZE 8192

typedef enum hm_db_state {
	HM_DB_STARTUP = 0,
	HM_DB_SHUTDOWNED = 1,
	HM_DB_SHUTDOWNED_IN_RECOVERY = 2,
	HM_DB_SHUTDOWNING = 3,
	HM_DB_IN_CRASH_RECOVERY = 4,
	HM_DB_IN_ARCHIVE_RECOVERY = 5,
	HM_DB_IN_PRODUCTION = 6,
} hm_db_state;

typedef struct hm_pg_control {
	int major; /* from the layout matched (15..18) */
	uint64_t system_identifier;
	uint32_t pg_control_version;
	uint32_t catalog_version_no;
	uint32_t state; /* hm_db_state */
	int64_t time;	/* last update of pg_control (unix time) */
	uint64_t checkpoint_lsn;
	uint32_t checkpoint_tli; /* ThisTimeLineID of the latest checkpoint */
	uint64_t checkpoint_redo;
	int wal_level;
	int wal_log_hints;
	int max_connections;
	int max_worker_processes;
	int max_wal_senders;
	int max_prepared_xacts;
	int max_locks_per_xact;
	int track_commit_timestamp;
	uint32_t max_align;
	double float_format;
	uint32_t blcksz;
	uint32_t relseg_size;
	uint32_t xlog_blcksz;
	uint32_t xlog_seg_size;
	uint32_t name_data_len;
	uint32_t index_max_keys;
	uint32_t toast_max_chunk_size;
	uint32_t loblksize;
	int float8_by_val;
	uint32_t data_checksum_version;
	int default_char_signedness; /* 18 only; -1 before */
	uint32_t crc_stored;
	uint32_t crc_computed;
	/* checkPointCopy.nextXid: the next free transaction ID (FullTransactionId: epoch in the
	 * high 32 bits) as of the latest checkpoint; after a clean shutdown no transaction of
	 * the cluster has an XID at or above it. Same offset in every layout (see pg_control.c). */
	uint64_t next_full_xid;
} hm_pg_control;

/* Human name of a cluster state ("shut down", "in production", ...). */
const char *hm_db_state_name(uint32_t state);

/* Parse the bytes of a pg_control file (len of them). The layout is chosen by the control
 * version (and, for 1300, the catalog version); a CRC mismatch, a short file, an unknown
 * version are errors (HM_EXIT_CORRUPT / HM_EXIT_INPUT) naming `what` (usually the path). */
int hm_pg_control_parse(const unsigned char *buf, size_t len, const char *what, hm_pg_control *out,
			hm_error *err);

/* Read and parse DATADIR/global/pg_control. */
int hm_pg_control_read(const char *datadir, hm_pg_control *out, hm_error *err);

/* Read DATADIR/PG_VERSION into *major (e.g. 17). Errors name the path and the cause. */
int hm_pg_version_read(const char *datadir, int *major, hm_error *err);

/* Extensions (additive): why a read or parse failed, for stable problem codes. */
typedef enum hm_pg_control_fault {
	HM_PGC_OK = 0,
	HM_PGC_TRUNCATED,	    /* shorter than 8192 bytes */
	HM_PGC_BAD_SIZE,	    /* longer than 8192 bytes */
	HM_PGC_UNKNOWN_VERSION,	    /* pg_control_version not 1300/1700/1800 */
	HM_PGC_UNSUPPORTED_CATALOG, /* 1300 with a catalog version other than 15's or 16's */
	HM_PGC_CRC_MISMATCH,
	HM_PGC_MISSING,	   /* file absent: not a data directory */
	HM_PGC_UNREADABLE, /* open/read failed (permission, I/O) */
} hm_pg_control_fault;

/* hm_pg_control_parse, also reporting the fault kind (fault may be NULL). */
int hm_pg_control_check(const unsigned char *buf, size_t len, const char *what, hm_pg_control *out,
			hm_pg_control_fault *fault, hm_error *err);

/* hm_pg_control_read, also reporting the fault kind (fault may be NULL). */
int hm_pg_control_read_ex(const char *datadir, hm_pg_control *out, hm_pg_control_fault *fault, hm_error *err);

/* Stable short code of a fault ("crc-mismatch", "control-truncated", "unknown-version", ...). */
const char *hm_pg_control_fault_code(hm_pg_control_fault fault);

/* Major (15..18) of a known catalog version, 0 if unknown. */
int hm_pg_major_for_catalog(uint32_t catalog);

#endif
