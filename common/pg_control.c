/* pg_control and PG_VERSION reader.
 *
 * Why read the bytes ourselves: the check must work with no PostgreSQL of the right major
 * installed (the host may have none, or another one), and pg_controldata only warns on a
 * CRC mismatch while we must refuse. Values are read field by field at fixed offsets
 * (little-endian x86-64/arm64 layout, the only ones the images are built for), never by
 * casting the buffer to a struct.
 *
 * Layout tables. Source: ControlFileData in src/include/catalog/pg_control.h.
 *  - LAYOUT_1300 (PostgreSQL 15 and 16, PG_CONTROL_VERSION 1300) and LAYOUT_1700
 *    (PostgreSQL 17, PG_CONTROL_VERSION 1700) share every offset: 17 added wal_level to
 *    CheckPoint, inside former padding (sizeof(CheckPoint) stays 88). Offsets checked with
 *    offsetof() against Debian's postgresql-server-dev-15 headers (1300, catversion
 *    202209061; sizeof(ControlFileData) 296) and, for 17, against the 17 headers
 *    (docs: /work/shared/notes/postgres-facts.md). The 16 entries rest on the same
 *    structure (16 did not change pg_control.h's ControlFileData).
 *  - LAYOUT_1800 (PostgreSQL 18): `bool default_char_signedness` was added after
 *    data_checksum_version, so the nonce moves from 256 to 257 and the CRC from 288 to
 *    292 (alignment of the uint32 crc).
 *  - checkPointCopy.nextXid (FullTransactionId, 8 bytes) sits at CheckPoint+24 in all four:
 *    redo(8) ThisTimeLineID(4) PrevTimeLineID(4) fullPageWrites(bool, +16), then a hole that
 *    17 and 18 use for `int wal_level` (+20), then nextXid aligned to 8 (+24); file offset 64.
 *    Checked against pg_controldata ("Latest checkpoint's NextXID") of the seed files.
 * The CRC-32C (Castagnoli, reflected, init/final 0xFFFFFFFF: PostgreSQL's
 * INIT_CRC32C/COMP_CRC32C/FIN_CRC32C) covers every byte before the crc field. */
#include "pg_control.h"

#include "crc32c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"

/* Offsets of ControlFileData fields that differ between layouts; the rest are shared. */
typedef struct pgc_layout {
	uint32_t control_version;
	size_t signedness_off; /* 0 = absent */
	size_t crc_off;
} pgc_layout;

/* Offsets shared by 15..18 (table in the header comment above). */
enum {
	OFF_SYSID = 0,
	OFF_CONTROL_VERSION = 8,
	OFF_CATALOG_VERSION = 12,
	OFF_STATE = 16,
	OFF_TIME = 24,
	OFF_CHECKPOINT = 32,
	OFF_CHECKPOINT_COPY = 40, /* CheckPoint: redo at +0, ThisTimeLineID at +8 */
	OFF_NEXT_XID = 40 + 24,	  /* CheckPoint.nextXid (FullTransactionId) */
	OFF_WAL_LEVEL = 172,
	OFF_WAL_LOG_HINTS = 176,
	OFF_MAX_CONNECTIONS = 180,
	OFF_MAX_WORKER_PROCESSES = 184,
	OFF_MAX_WAL_SENDERS = 188,
	OFF_MAX_PREPARED_XACTS = 192,
	OFF_MAX_LOCKS_PER_XACT = 196,
	OFF_TRACK_COMMIT_TS = 200,
	OFF_MAX_ALIGN = 204,
	OFF_FLOAT_FORMAT = 208,
	OFF_BLCKSZ = 216,
	OFF_RELSEG_SIZE = 220,
	OFF_XLOG_BLCKSZ = 224,
	OFF_XLOG_SEG_SIZE = 228,
	OFF_NAME_DATA_LEN = 232,
	OFF_INDEX_MAX_KEYS = 236,
	OFF_TOAST_MAX_CHUNK = 240,
	OFF_LOBLKSIZE = 244,
	OFF_FLOAT8_BYVAL = 248,
	OFF_DATA_CHECKSUM_VERSION = 252,
};

static const pgc_layout LAYOUT_1300 = {1300, 0, 288};
static const pgc_layout LAYOUT_1700 = {1700, 0, 288};
static const pgc_layout LAYOUT_1800 = {1800, 256, 292};

/* Catalog versions (CATALOG_VERSION_NO in catversion.h) of the releases we know. */
#define CATVER_15 202209061u
#define CATVER_16 202307071u
#define CATVER_17 202406281u
#define CATVER_18 202506291u

/* Little-endian readers at an offset (the buffer is checked long enough beforehand). */
static uint32_t rd32(const unsigned char *b, size_t off)
{
	return (uint32_t)b[off] | (uint32_t)b[off + 1] << 8 | (uint32_t)b[off + 2] << 16 |
	       (uint32_t)b[off + 3] << 24;
}

static uint64_t rd64(const unsigned char *b, size_t off)
{
	return (uint64_t)rd32(b, off) | (uint64_t)rd32(b, off + 4) << 32;
}

/* Human name of a cluster state, as pg_controldata prints it. */
const char *hm_db_state_name(uint32_t state)
{
	switch (state) {
	case HM_DB_STARTUP:
		return "starting up";
	case HM_DB_SHUTDOWNED:
		return "shut down";
	case HM_DB_SHUTDOWNED_IN_RECOVERY:
		return "shut down in recovery";
	case HM_DB_SHUTDOWNING:
		return "shutting down";
	case HM_DB_IN_CRASH_RECOVERY:
		return "in crash recovery";
	case HM_DB_IN_ARCHIVE_RECOVERY:
		return "in archive recovery";
	case HM_DB_IN_PRODUCTION:
		return "in production";
	default:
		return "unknown";
	}
}

/* Short name of a fault, for messages and problem codes. */
const char *hm_pg_control_fault_code(hm_pg_control_fault fault)
{
	switch (fault) {
	case HM_PGC_OK:
		return "ok";
	case HM_PGC_TRUNCATED:
		return "control-truncated";
	case HM_PGC_BAD_SIZE:
		return "control-bad-size";
	case HM_PGC_UNKNOWN_VERSION:
		return "unknown-version";
	case HM_PGC_UNSUPPORTED_CATALOG:
		return "unknown-version";
	case HM_PGC_CRC_MISMATCH:
		return "crc-mismatch";
	case HM_PGC_MISSING:
		return "not-a-data-directory";
	case HM_PGC_UNREADABLE:
		return "unreadable";
	}
	return "unknown";
}

/* Major of a catalog version we know (0 if unknown). */
int hm_pg_major_for_catalog(uint32_t catalog)
{
	switch (catalog) {
	case CATVER_15:
		return 15;
	case CATVER_16:
		return 16;
	case CATVER_17:
		return 17;
	case CATVER_18:
		return 18;
	default:
		return 0;
	}
}

/* Pick the layout and the major from the version fields; fills *fault on failure. */
static const pgc_layout *choose_layout(uint32_t control_version, uint32_t catalog, int *major,
				       hm_pg_control_fault *fault)
{
	switch (control_version) {
	case 1300:
		/* 13, 14, 15 and 16 share 1300: the catalog version tells them apart. */
		if (catalog == CATVER_15 || catalog == CATVER_16) {
			*major = catalog == CATVER_15 ? 15 : 16;
			return &LAYOUT_1300;
		}
		*fault = HM_PGC_UNSUPPORTED_CATALOG;
		return NULL;
	case 1700:
		*major = 17;
		return &LAYOUT_1700;
	case 1800:
		*major = 18;
		return &LAYOUT_1800;
	default:
		*fault = HM_PGC_UNKNOWN_VERSION;
		return NULL;
	}
}

int hm_pg_control_check(const unsigned char *buf, size_t len, const char *what, hm_pg_control *out,
			hm_pg_control_fault *fault_out, hm_error *err)
{
	hm_pg_control_fault fault_local = HM_PGC_OK;
	hm_pg_control_fault *fault = fault_out ? fault_out : &fault_local;
	*fault = HM_PGC_OK;
	memset(out, 0, sizeof *out);

	if (len < HM_PG_CONTROL_FILE_SIZE) {
		*fault = HM_PGC_TRUNCATED;
		hm_error_set(err, HM_EXIT_CORRUPT, "pg_control \"%s\" is truncated: %zu bytes, expected %d",
			     what, len, HM_PG_CONTROL_FILE_SIZE);
		return hm_error_hint(err, "the data directory is damaged or incompletely copied; "
					  "restore it from a backup");
	}
	if (len > HM_PG_CONTROL_FILE_SIZE) {
		*fault = HM_PGC_BAD_SIZE;
		hm_error_set(err, HM_EXIT_CORRUPT, "pg_control \"%s\" has %zu bytes, expected %d", what, len,
			     HM_PG_CONTROL_FILE_SIZE);
		return hm_error_hint(err, "this is not a PostgreSQL control file, or it is damaged");
	}

	uint32_t control_version = rd32(buf, OFF_CONTROL_VERSION);
	uint32_t catalog = rd32(buf, OFF_CATALOG_VERSION);
	int major = 0;
	const pgc_layout *l = choose_layout(control_version, catalog, &major, fault);
	if (!l) {
		if (*fault == HM_PGC_UNSUPPORTED_CATALOG) {
			hm_error_set(err, HM_EXIT_INPUT,
				     "pg_control \"%s\" has control version 1300 with catalog version "
				     "%u: not PostgreSQL 15 or 16 (supported: 15, 16, 17, 18)",
				     what, catalog);
			return hm_error_hint(err, "upgrade the cluster to PostgreSQL 15 or later first "
						  "(pg_upgrade or dump/restore)");
		}
		hm_error_set(err, HM_EXIT_INPUT,
			     "pg_control \"%s\" has unknown control version %u (known: 1300 for "
			     "PostgreSQL 15/16, 1700 for 17, 1800 for 18)",
			     what, control_version);
		return hm_error_hint(err, "the file is damaged, or from a PostgreSQL release this "
					  "hive-migrate does not know");
	}

	uint32_t stored = rd32(buf, l->crc_off);
	uint32_t computed = hm_crc32c(buf, l->crc_off);
	out->crc_stored = stored;
	out->crc_computed = computed;
	if (stored != computed) {
		*fault = HM_PGC_CRC_MISMATCH;
		hm_error_set(err, HM_EXIT_CORRUPT,
			     "pg_control \"%s\" is corrupted: CRC-32C mismatch (stored %08x, computed "
			     "%08x)",
			     what, stored, computed);
		return hm_error_hint(err, "do not start a server on it; restore the data directory "
					  "from a backup");
	}

	out->major = major;
	out->system_identifier = rd64(buf, OFF_SYSID);
	out->pg_control_version = control_version;
	out->catalog_version_no = catalog;
	out->state = rd32(buf, OFF_STATE);
	out->time = (int64_t)rd64(buf, OFF_TIME);
	out->checkpoint_lsn = rd64(buf, OFF_CHECKPOINT);
	out->checkpoint_redo = rd64(buf, OFF_CHECKPOINT_COPY);
	out->checkpoint_tli = rd32(buf, OFF_CHECKPOINT_COPY + 8);
	out->next_full_xid = rd64(buf, OFF_NEXT_XID);
	out->wal_level = (int)rd32(buf, OFF_WAL_LEVEL);
	out->wal_log_hints = buf[OFF_WAL_LOG_HINTS] != 0;
	out->max_connections = (int)rd32(buf, OFF_MAX_CONNECTIONS);
	out->max_worker_processes = (int)rd32(buf, OFF_MAX_WORKER_PROCESSES);
	out->max_wal_senders = (int)rd32(buf, OFF_MAX_WAL_SENDERS);
	out->max_prepared_xacts = (int)rd32(buf, OFF_MAX_PREPARED_XACTS);
	out->max_locks_per_xact = (int)rd32(buf, OFF_MAX_LOCKS_PER_XACT);
	out->track_commit_timestamp = buf[OFF_TRACK_COMMIT_TS] != 0;
	out->max_align = rd32(buf, OFF_MAX_ALIGN);
	uint64_t ff = rd64(buf, OFF_FLOAT_FORMAT);
	memcpy(&out->float_format, &ff, sizeof ff);
	out->blcksz = rd32(buf, OFF_BLCKSZ);
	out->relseg_size = rd32(buf, OFF_RELSEG_SIZE);
	out->xlog_blcksz = rd32(buf, OFF_XLOG_BLCKSZ);
	out->xlog_seg_size = rd32(buf, OFF_XLOG_SEG_SIZE);
	out->name_data_len = rd32(buf, OFF_NAME_DATA_LEN);
	out->index_max_keys = rd32(buf, OFF_INDEX_MAX_KEYS);
	out->toast_max_chunk_size = rd32(buf, OFF_TOAST_MAX_CHUNK);
	out->loblksize = rd32(buf, OFF_LOBLKSIZE);
	out->float8_by_val = buf[OFF_FLOAT8_BYVAL] != 0;
	out->data_checksum_version = rd32(buf, OFF_DATA_CHECKSUM_VERSION);
	out->default_char_signedness = l->signedness_off ? (buf[l->signedness_off] != 0) : -1;
	return 0;
}

int hm_pg_control_parse(const unsigned char *buf, size_t len, const char *what, hm_pg_control *out,
			hm_error *err)
{
	return hm_pg_control_check(buf, len, what, out, NULL, err);
}

/* Read up to max bytes of path into buf; *got gets the count. Sets fault on failure. */
static int read_small(const char *path, unsigned char *buf, size_t max, size_t *got,
		      hm_pg_control_fault *fault, hm_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		*fault = (e == ENOENT || e == ENOTDIR) ? HM_PGC_MISSING : HM_PGC_UNREADABLE;
		hm_error_errno(err, e, "open", path);
		if (e == EACCES || e == EPERM)
			hm_error_hint(err, "run hive-migrate as root or as the owner of the data "
					   "directory");
		return -1;
	}
	size_t n = 0;
	while (n < max) {
		ssize_t r = read(fd, buf + n, max - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			*fault = HM_PGC_UNREADABLE;
			return hm_error_errno(err, e, "read", path);
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*got = n;
	return 0;
}

int hm_pg_control_read_ex(const char *datadir, hm_pg_control *out, hm_pg_control_fault *fault_out,
			  hm_error *err)
{
	hm_pg_control_fault fault_local = HM_PGC_OK;
	hm_pg_control_fault *fault = fault_out ? fault_out : &fault_local;
	char path[4096];
	/* one byte more than a valid file so that an oversized file is recognised */
	unsigned char buf[HM_PG_CONTROL_FILE_SIZE + 1];
	size_t got = 0;
	*fault = HM_PGC_OK;
	memset(out, 0, sizeof *out);
	if (hm_path_join(path, sizeof path, datadir, "global/pg_control", err))
		return -1;
	if (read_small(path, buf, sizeof buf, &got, fault, err)) {
		if (*fault == HM_PGC_MISSING) {
			hm_error_set(err, HM_EXIT_INPUT,
				     "\"%s\" is not a PostgreSQL data directory: global/pg_control is "
				     "missing",
				     datadir);
			hm_error_hint(err, "point --data-dir at the directory that holds PG_VERSION "
					   "and global/ (for the split stack: data/postgres-PROFILE/pgdata)");
		}
		return -1;
	}
	return hm_pg_control_check(buf, got, path, out, fault, err);
}

int hm_pg_control_read(const char *datadir, hm_pg_control *out, hm_error *err)
{
	return hm_pg_control_read_ex(datadir, out, NULL, err);
}

int hm_pg_version_read(const char *datadir, int *major, hm_error *err)
{
	char path[4096];
	unsigned char buf[64];
	size_t got = 0;
	hm_pg_control_fault fault = HM_PGC_OK;
	*major = 0;
	if (hm_path_join(path, sizeof path, datadir, "PG_VERSION", err))
		return -1;
	if (read_small(path, buf, sizeof buf - 1, &got, &fault, err)) {
		if (fault == HM_PGC_MISSING) {
			hm_error_set(err, HM_EXIT_INPUT,
				     "\"%s\" is not a PostgreSQL data directory: PG_VERSION is missing",
				     datadir);
			hm_error_hint(err, "point --data-dir at the directory that holds PG_VERSION "
					   "and global/ (for the split stack: data/postgres-PROFILE/pgdata)");
		}
		return -1;
	}
	buf[got] = '\0';
	/* "17\n": digits, optional newline, nothing else. */
	size_t i = 0;
	long v = 0;
	while (i < got && buf[i] >= '0' && buf[i] <= '9' && i < 6)
		v = v * 10 + (buf[i++] - '0');
	if (i == 0 || (i < got && !(buf[i] == '\n' && i + 1 == got))) {
		hm_error_set(err, HM_EXIT_CORRUPT, "\"%s\" does not hold a PostgreSQL major version", path);
		return hm_error_hint(err, "PG_VERSION should hold a single number such as 17");
	}
	*major = (int)v;
	return 0;
}
