/* Unit tests of the pg_control / PG_VERSION reader: real control files from PostgreSQL 15,
 * 17 and 18 (tests/fuzz/fuzz_pg_control.seeds/, made with each major's initdb; and
 * fixtures/pgdata/ when the fixture samples exist), a 16 file derived from the 15 one
 * (same layout, 16's catalog version, CRC recomputed), and every kind of corruption. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../common/crc32c.h"
#include "../../common/pg_control.h"

#define SZ HM_PG_CONTROL_FILE_SIZE

/* Repo root from HM_SRCDIR (the Makefile sets it), else the current directory. */
static const char *srcdir(void)
{
	const char *s = getenv("HM_SRCDIR");
	return s && *s ? s : ".";
}

/* Load a seed control file into buf (SZ bytes). */
static void load_seed(const char *name, unsigned char *buf)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/tests/fuzz/fuzz_pg_control.seeds/%s", srcdir(), name);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	size_t n = fread(buf, 1, SZ, f);
	fclose(f);
	assert_int_equal(n, SZ);
}

static void put32(unsigned char *b, size_t off, uint32_t v)
{
	b[off] = v & 0xFF;
	b[off + 1] = (v >> 8) & 0xFF;
	b[off + 2] = (v >> 16) & 0xFF;
	b[off + 3] = (v >> 24) & 0xFF;
}

/* Recompute the CRC of a buffer whose CRC field sits at crc_off. */
static void fix_crc(unsigned char *b, size_t crc_off)
{
	put32(b, crc_off, hm_crc32c(b, crc_off));
}

static void test_crc32c_known_vector(void **state)
{
	(void)state;
	/* The CRC-32C check value of "123456789" (RFC 3720 / the Castagnoli catalogue). */
	assert_int_equal(hm_crc32c("123456789", 9), 0xE3069283u);
	assert_int_equal(hm_crc32c("", 0), 0);
}

/* Values below come from pg_controldata of the same clusters. */
static void test_parse_pg15(void **state)
{
	(void)state;
	unsigned char b[SZ];
	hm_pg_control c;
	hm_error err;
	load_seed("pg15", b);
	assert_int_equal(hm_pg_control_parse(b, SZ, "pg15", &c, &err), 0);
	assert_int_equal(c.major, 15);
	assert_int_equal(c.pg_control_version, 1300);
	assert_int_equal(c.catalog_version_no, 202209061u);
	assert_true(c.system_identifier == 7712637507463120427ull);
	assert_int_equal(c.state, HM_DB_SHUTDOWNED);
	assert_true(c.checkpoint_redo == 0x1511A88ull);
	assert_true(c.next_full_xid == 724); /* pg_controldata: NextXID 0:724 */
	assert_int_equal(c.checkpoint_tli, 1);
	assert_int_equal(c.max_connections, 100);
	assert_int_equal(c.max_worker_processes, 8);
	assert_int_equal(c.max_wal_senders, 10);
	assert_int_equal(c.max_locks_per_xact, 64);
	assert_int_equal(c.max_align, 8);
	assert_true(c.float_format == 1234567.0);
	assert_int_equal(c.blcksz, 8192);
	assert_int_equal(c.relseg_size, 131072);
	assert_int_equal(c.xlog_blcksz, 8192);
	assert_int_equal(c.xlog_seg_size, 16777216);
	assert_int_equal(c.name_data_len, 64);
	assert_int_equal(c.index_max_keys, 32);
	assert_int_equal(c.toast_max_chunk_size, 1996);
	assert_int_equal(c.loblksize, 2048);
	assert_int_equal(c.float8_by_val, 1);
	assert_int_equal(c.data_checksum_version, 0);
	assert_int_equal(c.default_char_signedness, -1);
	assert_int_equal(c.crc_stored, c.crc_computed);
}

static void test_parse_pg16_derived(void **state)
{
	(void)state;
	unsigned char b[SZ];
	hm_pg_control c;
	hm_error err;
	load_seed("pg15", b);
	put32(b, 12, 202307071u);
	fix_crc(b, 288);
	assert_int_equal(hm_pg_control_parse(b, SZ, "pg16", &c, &err), 0);
	assert_int_equal(c.major, 16);
	assert_int_equal(c.pg_control_version, 1300);
	assert_int_equal(c.blcksz, 8192);
}

static void test_parse_pg17(void **state)
{
	(void)state;
	unsigned char b[SZ];
	hm_pg_control c;
	hm_error err;
	load_seed("pg17", b);
	assert_int_equal(hm_pg_control_parse(b, SZ, "pg17", &c, &err), 0);
	assert_int_equal(c.major, 17);
	assert_int_equal(c.pg_control_version, 1700);
	assert_int_equal(c.catalog_version_no, 202406281u);
	assert_true(c.system_identifier == 7712637528026718222ull);
	assert_int_equal(c.state, HM_DB_SHUTDOWNED);
	assert_true(c.checkpoint_redo == 0x15008C8ull);
	assert_true(c.next_full_xid == 738); /* pg_controldata: NextXID 0:738 */
	assert_int_equal(c.blcksz, 8192);
	assert_int_equal(c.xlog_seg_size, 16777216);
	assert_int_equal(c.toast_max_chunk_size, 1996);
	assert_int_equal(c.data_checksum_version, 0);
	assert_int_equal(c.default_char_signedness, -1);
}

static void test_parse_pg18(void **state)
{
	(void)state;
	unsigned char b[SZ];
	hm_pg_control c;
	hm_error err;
	load_seed("pg18", b);
	assert_int_equal(hm_pg_control_parse(b, SZ, "pg18", &c, &err), 0);
	assert_int_equal(c.major, 18);
	assert_int_equal(c.pg_control_version, 1800);
	assert_int_equal(c.catalog_version_no, 202506291u);
	assert_true(c.system_identifier == 7712637533511929870ull);
	assert_int_equal(c.state, HM_DB_SHUTDOWNED);
	assert_true(c.checkpoint_redo == 0x1765D28ull);
	assert_true(c.next_full_xid == 752); /* pg_controldata: NextXID 0:752 */
	assert_int_equal(c.blcksz, 8192);
	assert_int_equal(c.loblksize, 2048);
	assert_int_equal(c.float8_by_val, 1);
	/* 18's initdb enables data checksums by default; signedness exists only from 18 */
	assert_int_equal(c.data_checksum_version, 1);
	assert_int_equal(c.default_char_signedness, 1);
	/* the CRC sits at 292 in 18, not 288 */
	assert_int_equal(c.crc_stored, hm_crc32c(b, 292));
}

/* The fixture samples (fixtures/pgdata/pgNN/, made by another part of the project): when
 * present, read them through the directory API; PG_VERSION must agree with the layout. */
static void test_fixture_samples(void **state)
{
	(void)state;
	const char *names[] = {"pg15", "pg16", "pg17", "pg18", "pg17-crashed"};
	int seen = 0;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char dir[4096], path[4200];
		struct stat st;
		snprintf(dir, sizeof dir, "%s/fixtures/pgdata/%s", srcdir(), names[i]);
		snprintf(path, sizeof path, "%s/global/pg_control", dir);
		if (stat(path, &st))
			continue;
		hm_pg_control c;
		hm_error err;
		int major = 0;
		if (hm_pg_control_read(dir, &c, &err))
			fail_msg("%s: %s", dir, err.message);
		assert_int_equal(hm_pg_version_read(dir, &major, &err), 0);
		assert_int_equal(major, c.major);
		if (strstr(names[i], "crashed"))
			assert_int_equal(c.state, HM_DB_IN_PRODUCTION);
		else
			assert_int_equal(c.state, HM_DB_SHUTDOWNED);
		/* agree with pg_controldata's own reading of the same file, when recorded */
		char txt[4200], line[512];
		snprintf(txt, sizeof txt, "%s/pg_controldata.txt", dir);
		FILE *f = fopen(txt, "r");
		while (f && fgets(line, sizeof line, f)) {
			char *v = strchr(line, ':');
			if (!v)
				continue;
			*v++ = '\0';
			while (*v == ' ')
				v++;
			v[strcspn(v, "\n")] = '\0';
			char mine[64];
			if (!strcmp(line, "Database system identifier")) {
				snprintf(mine, sizeof mine, "%llu", (unsigned long long)c.system_identifier);
				assert_string_equal(mine, v);
			} else if (!strcmp(line, "Database cluster state")) {
				assert_string_equal(hm_db_state_name(c.state), v);
			} else if (!strcmp(line, "Catalog version number")) {
				assert_int_equal(c.catalog_version_no, strtoul(v, NULL, 10));
			} else if (!strcmp(line, "Bytes per WAL segment")) {
				assert_int_equal(c.xlog_seg_size, strtoul(v, NULL, 10));
			} else if (!strcmp(line, "Data page checksum version")) {
				assert_int_equal(c.data_checksum_version, strtoul(v, NULL, 10));
			} else if (!strcmp(line, "Maximum size of a TOAST chunk")) {
				assert_int_equal(c.toast_max_chunk_size, strtoul(v, NULL, 10));
			}
		}
		if (f)
			fclose(f);
		seen++;
	}
	if (!seen)
		print_message("fixtures/pgdata samples not present: covered by the seed files\n");
}

static void test_state_names(void **state)
{
	(void)state;
	assert_string_equal(hm_db_state_name(0), "starting up");
	assert_string_equal(hm_db_state_name(1), "shut down");
	assert_string_equal(hm_db_state_name(2), "shut down in recovery");
	assert_string_equal(hm_db_state_name(3), "shutting down");
	assert_string_equal(hm_db_state_name(4), "in crash recovery");
	assert_string_equal(hm_db_state_name(5), "in archive recovery");
	assert_string_equal(hm_db_state_name(6), "in production");
	assert_string_equal(hm_db_state_name(7), "unknown");
	assert_string_equal(hm_db_state_name(0xFFFFFFFFu), "unknown");
}

/* A flipped byte anywhere under the CRC is caught, for each layout. */
static void test_flip_byte_crc_mismatch(void **state)
{
	(void)state;
	const char *seeds[] = {"pg15", "pg17", "pg18"};
	const size_t offs[] = {0, 16, 40, 216, 252, 256, 287};
	for (size_t s = 0; s < 3; s++)
		for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
			unsigned char b[SZ];
			hm_pg_control c;
			hm_error err;
			hm_pg_control_fault fault;
			load_seed(seeds[s], b);
			b[offs[i]] ^= 0x01;
			assert_int_equal(hm_pg_control_check(b, SZ, "x", &c, &fault, &err), -1);
			assert_int_equal(fault, HM_PGC_CRC_MISMATCH);
			assert_int_equal(err.code, HM_EXIT_CORRUPT);
			assert_non_null(strstr(err.message, "CRC-32C mismatch"));
			assert_non_null(strstr(err.message, "\"x\""));
			assert_string_equal(hm_pg_control_fault_code(fault), "crc-mismatch");
		}
	/* the byte at 289..291 is padding in 18 but under the CRC (the CRC is at 292) */
	unsigned char b[SZ];
	hm_pg_control c;
	hm_error err;
	load_seed("pg18", b);
	b[290] ^= 0x80;
	assert_int_equal(hm_pg_control_parse(b, SZ, "x", &c, &err), -1);
	/* damaged stored CRC */
	load_seed("pg17", b);
	b[289] ^= 0xFF;
	assert_int_equal(hm_pg_control_parse(b, SZ, "x", &c, &err), -1);
	assert_int_equal(err.code, HM_EXIT_CORRUPT);
}

static void test_truncated(void **state)
{
	(void)state;
	unsigned char b[SZ + 1];
	hm_pg_control c;
	hm_error err;
	hm_pg_control_fault fault;
	load_seed("pg17", b);
	const size_t lens[] = {0, 1, 12, 100, 291, 296, 4096, SZ - 1};
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		assert_int_equal(hm_pg_control_check(b, lens[i], "t", &c, &fault, &err), -1);
		assert_int_equal(fault, HM_PGC_TRUNCATED);
		assert_non_null(strstr(err.message, "truncated"));
	}
	b[SZ] = 0;
	assert_int_equal(hm_pg_control_check(b, SZ + 1, "t", &c, &fault, &err), -1);
	assert_int_equal(fault, HM_PGC_BAD_SIZE);
}

static void test_random_bytes(void **state)
{
	(void)state;
	unsigned char b[SZ];
	hm_pg_control c;
	hm_error err;
	hm_pg_control_fault fault;
	uint32_t x = 0x12345678u;
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < SZ; i++) {
			x ^= x << 13, x ^= x >> 17, x ^= x << 5; /* xorshift32 */
			b[i] = (unsigned char)x;
		}
		if (round % 3 == 1)
			put32(b, 8, 1700); /* a plausible version: the CRC must still catch it */
		if (round % 3 == 2)
			put32(b, 8, 1800);
		assert_int_equal(hm_pg_control_check(b, SZ, "r", &c, &fault, &err), -1);
		assert_true(fault == HM_PGC_UNKNOWN_VERSION || fault == HM_PGC_CRC_MISMATCH ||
			    fault == HM_PGC_UNSUPPORTED_CATALOG);
	}
	memset(b, 0, SZ);
	assert_int_equal(hm_pg_control_check(b, SZ, "zeros", &c, &fault, &err), -1);
	assert_int_equal(fault, HM_PGC_UNKNOWN_VERSION);
}

/* A well-formed file (correct CRC) of a version we do not know names the version. */
static void test_unknown_version(void **state)
{
	(void)state;
	unsigned char b[SZ];
	hm_pg_control c;
	hm_error err;
	hm_pg_control_fault fault;
	load_seed("pg17", b);
	put32(b, 8, 1900);
	fix_crc(b, 288);
	assert_int_equal(hm_pg_control_check(b, SZ, "u", &c, &fault, &err), -1);
	assert_int_equal(fault, HM_PGC_UNKNOWN_VERSION);
	assert_int_equal(err.code, HM_EXIT_INPUT);
	assert_non_null(strstr(err.message, "1900"));
	assert_string_equal(hm_pg_control_fault_code(fault), "unknown-version");

	/* PostgreSQL 14 also used 1300: told apart by its catalog version */
	load_seed("pg15", b);
	put32(b, 12, 202107181u);
	fix_crc(b, 288);
	assert_int_equal(hm_pg_control_check(b, SZ, "u14", &c, &fault, &err), -1);
	assert_int_equal(fault, HM_PGC_UNSUPPORTED_CATALOG);
	assert_non_null(strstr(err.message, "202107181"));

	/* 1700 files are checked at 288; a 1700 file with its CRC at 292 is not accepted */
	load_seed("pg18", b);
	put32(b, 8, 1700);
	fix_crc(b, 292);
	assert_int_equal(hm_pg_control_check(b, SZ, "mix", &c, &fault, &err), -1);
	assert_int_equal(fault, HM_PGC_CRC_MISMATCH);
}

static void test_major_for_catalog(void **state)
{
	(void)state;
	assert_int_equal(hm_pg_major_for_catalog(202209061u), 15);
	assert_int_equal(hm_pg_major_for_catalog(202307071u), 16);
	assert_int_equal(hm_pg_major_for_catalog(202406281u), 17);
	assert_int_equal(hm_pg_major_for_catalog(202506291u), 18);
	assert_int_equal(hm_pg_major_for_catalog(1), 0);
}

/* Make a temp dir; caller removes it. */
static void mk_tmp(char *dir, size_t sz)
{
	snprintf(dir, sz, "/tmp/hc-unit-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static void rm_tree(const char *dir)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_pg_version_file(void **state)
{
	(void)state;
	char dir[64];
	int major = 0;
	hm_error err;
	mk_tmp(dir, sizeof dir);
	assert_int_equal(hm_pg_version_read(dir, &major, &err), -1);
	assert_int_equal(err.code, HM_EXIT_INPUT);
	assert_non_null(strstr(err.message, "not a PostgreSQL data directory"));
	write_file(dir, "PG_VERSION", "17\n", 3);
	assert_int_equal(hm_pg_version_read(dir, &major, &err), 0);
	assert_int_equal(major, 17);
	write_file(dir, "PG_VERSION", "18", 2);
	assert_int_equal(hm_pg_version_read(dir, &major, &err), 0);
	assert_int_equal(major, 18);
	const char *bad[] = {"", "abc\n", "17\n\n", "17 \n", "1234567\n", "\n17"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		write_file(dir, "PG_VERSION", bad[i], strlen(bad[i]));
		assert_int_equal(hm_pg_version_read(dir, &major, &err), -1);
		assert_int_equal(err.code, HM_EXIT_CORRUPT);
	}
	rm_tree(dir);
}

static void test_read_from_directory(void **state)
{
	(void)state;
	char dir[64], g[128];
	unsigned char b[SZ];
	hm_pg_control c;
	hm_error err;
	hm_pg_control_fault fault;
	mk_tmp(dir, sizeof dir);
	assert_int_equal(hm_pg_control_read_ex(dir, &c, &fault, &err), -1);
	assert_int_equal(fault, HM_PGC_MISSING);
	assert_non_null(strstr(err.message, "global/pg_control is missing"));
	assert_non_null(strstr(err.message, dir));
	snprintf(g, sizeof g, "%s/global", dir);
	assert_int_equal(mkdir(g, 0700), 0);
	load_seed("pg18", b);
	write_file(dir, "global/pg_control", b, SZ);
	assert_int_equal(hm_pg_control_read(dir, &c, &err), 0);
	assert_int_equal(c.major, 18);
	write_file(dir, "global/pg_control", b, 1000);
	assert_int_equal(hm_pg_control_read_ex(dir, &c, &fault, &err), -1);
	assert_int_equal(fault, HM_PGC_TRUNCATED);
	assert_non_null(strstr(err.message, "global/pg_control"));
	/* pg_control is a directory: read fails with EISDIR */
	char gp[200];
	snprintf(gp, sizeof gp, "%s/global/pg_control", dir);
	assert_int_equal(unlink(gp), 0);
	assert_int_equal(mkdir(gp, 0700), 0);
	assert_int_equal(hm_pg_control_read_ex(dir, &c, &fault, &err), -1);
	assert_int_equal(fault, HM_PGC_UNREADABLE);
	rm_tree(dir);
}

/* Unreadable files: as root, permissions are bypassed, so the check runs in a child that
 * drops to user nobody (the file stays root-owned 0600). */
static void test_unreadable(void **state)
{
	(void)state;
	char dir[64], g[128];
	unsigned char b[SZ];
	mk_tmp(dir, sizeof dir);
	snprintf(g, sizeof g, "%s/global", dir);
	assert_int_equal(mkdir(g, 0755), 0);
	assert_int_equal(chmod(dir, 0755), 0);
	load_seed("pg17", b);
	write_file(dir, "global/pg_control", b, SZ);
	write_file(dir, "PG_VERSION", "17\n", 3);
	char p1[200], p2[200];
	snprintf(p1, sizeof p1, "%s/global/pg_control", dir);
	snprintf(p2, sizeof p2, "%s/PG_VERSION", dir);
	assert_int_equal(chmod(p1, 0000), 0);
	assert_int_equal(chmod(p2, 0000), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (getuid() == 0) {
			struct passwd *pw = getpwnam("nobody");
			if (!pw || setgid(pw->pw_gid) || setuid(pw->pw_uid))
				_exit(77);
		}
		hm_pg_control c;
		hm_error err;
		hm_pg_control_fault fault;
		int major;
		if (hm_pg_control_read_ex(dir, &c, &fault, &err) != -1 || fault != HM_PGC_UNREADABLE ||
		    err.code != HM_EXIT_PERMISSION || !strstr(err.message, "Permission denied"))
			_exit(1);
		if (hm_pg_version_read(dir, &major, &err) != -1 || err.code != HM_EXIT_PERMISSION)
			_exit(2);
		_exit(0);
	}
	int ws = 0;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	rm_tree(dir);
	assert_true(WIFEXITED(ws));
	if (WEXITSTATUS(ws) == 77)
		skip(); /* cannot drop privileges here */
	assert_int_equal(WEXITSTATUS(ws), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_known_vector), cmocka_unit_test(test_parse_pg15),
		cmocka_unit_test(test_parse_pg16_derived),  cmocka_unit_test(test_parse_pg17),
		cmocka_unit_test(test_parse_pg18),	    cmocka_unit_test(test_fixture_samples),
		cmocka_unit_test(test_state_names),	    cmocka_unit_test(test_flip_byte_crc_mismatch),
		cmocka_unit_test(test_truncated),	    cmocka_unit_test(test_random_bytes),
		cmocka_unit_test(test_unknown_version),	    cmocka_unit_test(test_major_for_catalog),
		cmocka_unit_test(test_pg_version_file),	    cmocka_unit_test(test_read_from_directory),
		cmocka_unit_test(test_unreadable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
