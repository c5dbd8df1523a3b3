/* Parsers and encoders of the backup commands: backup.json metadata, PostgreSQL's
 * backup_manifest (Manifest-Checksum, Files, WAL-Ranges), CRC-32C as the manifest writes
 * it, the outer ustar writer (read back with libarchive) and WAL file names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../backup/basebackup.h"
#include "../../common/crc32c.h"
#include "../../backup/meta.h"
#include "../../backup/pgmanifest.h"
#include "../../backup/tarout.h"
#include "../../backup/verify.h"
#include "../../common/digest.h"

/* A filled-in metadata record. */
static void sample_meta(hm_backup_meta *m)
{
	hm_meta_init(m);
	snprintf(m->id, sizeof m->id, "20261127T001500Z-1a2b3c4d");
	snprintf(m->kind, sizeof m->kind, "online");
	snprintf(m->uuid, sizeof m->uuid, "1a2b3c4d-0000-4000-8000-000000000000");
	m->start_time = 1795738500;
	m->end_time = 1795738510;
	snprintf(m->start_lsn, sizeof m->start_lsn, "0/3000028");
	snprintf(m->end_lsn, sizeof m->end_lsn, "0/3000100");
	m->timeline = 1;
	snprintf(m->system_identifier, sizeof m->system_identifier, "7712637408763162037");
	m->pg_version = 170002;
	m->wal_segment_size = 16u << 20;
	snprintf(m->manifest_checksums, sizeof m->manifest_checksums, "CRC32C");
	snprintf(m->archive, sizeof m->archive, "backup.tar");
	m->archive_size = 4032512;
	m->database_size = 40278016;
	m->nmembers = 1;
	snprintf(m->members[0].name, sizeof m->members[0].name, "base.tar.zst");
	m->members[0].size = 3889768;
	memset(m->members[0].sha256, 'a', 64);
}

/* Encode -> decode gives the same record; the archive copy carries no status. */
static void meta_roundtrip(void **state)
{
	(void)state;
	hm_backup_meta m, d;
	hm_error err;
	sample_meta(&m);
	m.verified = 1;
	m.verified_time = 1795738600;
	char *j = hm_meta_encode(&m, 1);
	assert_non_null(j);
	assert_int_equal(hm_meta_decode(j, "test", &d, &err), 0);
	assert_string_equal(d.id, m.id);
	assert_int_equal(d.start_time, m.start_time);
	assert_int_equal(d.pg_version, 170002);
	assert_int_equal(d.verified, 1);
	assert_int_equal(d.verified_time, m.verified_time);
	assert_int_equal(d.nmembers, 1);
	assert_int_equal(d.members[0].size, 3889768);
	assert_non_null(hm_meta_member(&d, "base.tar.zst"));
	free(j);
	j = hm_meta_encode(&m, 0);
	assert_null(strstr(j, "verified"));
	assert_int_equal(hm_meta_decode(j, "test", &d, &err), 0);
	assert_int_equal(d.verified, -1);
	free(j);
}

/* Malformed metadata is refused with HM_EXIT_CORRUPT naming the field. */
static void meta_rejects(void **state)
{
	(void)state;
	hm_backup_meta d;
	hm_error err;
	assert_int_equal(hm_meta_decode("[]", "x", &d, &err), -1);
	assert_int_equal(err.code, HM_EXIT_CORRUPT);
	assert_int_equal(hm_meta_decode("{\"format\":\"other/1\"}", "x", &d, &err), -1);
	assert_non_null(strstr(err.message, "format"));
	static const char base[] = "{\"format\":\"hive-migrate-backup/1\",\"id\":\"a\",\"kind\":\"%s\","
				   "\"start_time\":\"%s\",\"archive\":\"%s\"%s}";
	char buf[512];
	snprintf(buf, sizeof buf, base, "online", "2026-11-27T00:15:00Z", "backup.tar", "");
	assert_int_equal(hm_meta_decode(buf, "x", &d, &err), 0);
	snprintf(buf, sizeof buf, base, "weird", "2026-11-27T00:15:00Z", "backup.tar", "");
	assert_int_equal(hm_meta_decode(buf, "x", &d, &err), -1);
	snprintf(buf, sizeof buf, base, "online", "yesterday", "backup.tar", "");
	assert_int_equal(hm_meta_decode(buf, "x", &d, &err), -1);
	snprintf(buf, sizeof buf, base, "online", "2026-11-27T00:15:00Z", "../etc/passwd", "");
	assert_int_equal(hm_meta_decode(buf, "x", &d, &err), -1);
	snprintf(buf, sizeof buf, base, "online", "2026-11-27T00:15:00Z", "backup.tar",
		 ",\"members\":[{\"name\":\"b\",\"size\":1,\"sha256\":\"xyz\"}]");
	assert_int_equal(hm_meta_decode(buf, "x", &d, &err), -1);
	assert_non_null(strstr(err.message, "sha256"));
	snprintf(buf, sizeof buf, base, "online", "2026-11-27T00:15:00Z", "backup.tar",
		 ",\"archive_size\":-5");
	assert_int_equal(hm_meta_decode(buf, "x", &d, &err), -1);
}

/* Build a manifest with a correct Manifest-Checksum (as PostgreSQL writes it). */
static char *make_manifest(const char *body)
{
	char hex[HM_SHA256_HEX_LEN + 1];
	hm_sha256 *c = hm_sha256_new();
	hm_sha256_update(c, body, strlen(body));
	hm_sha256_final_hex(c, hex);
	char *out = malloc(strlen(body) + 128);
	sprintf(out, "%s\"Manifest-Checksum\": \"%s\"}\n", body, hex);
	return out;
}

static const char manifest_body[] =
	"{ \"PostgreSQL-Backup-Manifest-Version\": 2,\n"
	"\"System-Identifier\": 7712637408763162037,\n"
	"\"Files\": [\n"
	"{ \"Path\": \"PG_VERSION\", \"Size\": 3, \"Last-Modified\": \"2026-11-27 00:12:12 GMT\", "
	"\"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"8a744722\" },\n"
	"{ \"Encoded-Path\": \"626173652f312f31323334\", \"Size\": 8192, \"Last-Modified\": \"2026-11-27 "
	"00:12:12 GMT\", "
	"\"Checksum-Algorithm\": \"SHA256\", \"Checksum\": \"ABCDEF\" }\n"
	"],\n"
	"\"WAL-Ranges\": [\n"
	"{ \"Timeline\": 1, \"Start-LSN\": \"0/3000028\", \"End-LSN\": \"0/3000100\" }\n"
	"],\n";

/* A correct manifest parses; Encoded-Path is decoded; checksums are lower-cased. */
static void manifest_parse(void **state)
{
	(void)state;
	char *text = make_manifest(manifest_body);
	hm_pgm m;
	hm_error err;
	assert_int_equal(hm_pgm_parse(text, strlen(text), "backup_manifest", &m, &err), 0);
	assert_int_equal(m.version, 2);
	assert_string_equal(m.system_identifier, "7712637408763162037");
	assert_int_equal(m.nfiles, 2);
	hm_pgm_file *f = hm_pgm_find(&m, "base/1/1234");
	assert_non_null(f);
	assert_int_equal(f->alg, HM_PGM_SHA256);
	assert_string_equal(f->checksum, "abcdef");
	f = hm_pgm_find(&m, "PG_VERSION");
	assert_non_null(f);
	assert_int_equal(f->size, 3);
	assert_int_equal(m.nranges, 1);
	assert_int_equal(m.ranges[0].start, 0x3000028);
	assert_int_equal(m.ranges[0].end, 0x3000100);
	hm_pgm_free(&m);
	free(text);
}

/* Issue #8, finding 6 and 7: ill-typed fields (a null Checksum-Algorithm crashed the
 * parser), empty or malformed WAL-Ranges are refused with a message, never a crash. */
static void manifest_hostile_fields(void **state)
{
	(void)state;
	static const struct {
		const char *files, *ranges, *expect;
	} cases[] = {
		{"{ \"Path\": \"a\", \"Size\": 1, \"Checksum-Algorithm\": null, \"Checksum\": \"00\" }", NULL,
		 "Checksum-Algorithm"},
		{"{ \"Path\": \"a\", \"Size\": 1, \"Checksum-Algorithm\": 7, \"Checksum\": \"00\" }", NULL,
		 "Checksum-Algorithm"},
		{"{ \"Path\": \"a\", \"Size\": 1, \"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": null }",
		 NULL, "Checksum"},
		{"{ \"Path\": null, \"Size\": 1 }", NULL, "Path"},
		{"{ \"Path\": \"a\", \"Size\": \"1\" }", NULL, "Size"},
		{"", "", "WAL-Ranges is empty"},
		{"", "{ \"Timeline\": \"1\", \"Start-LSN\": \"0/1\", \"End-LSN\": \"0/2\" }", "WAL-Ranges"},
		{"", "{ \"Timeline\": 0, \"Start-LSN\": \"0/1\", \"End-LSN\": \"0/2\" }", "WAL-Ranges"},
		{"", "{ \"Timeline\": 1, \"Start-LSN\": null, \"End-LSN\": \"0/2\" }", "WAL-Ranges"},
		{"", "{ \"Timeline\": 1, \"Start-LSN\": \"0/9\", \"End-LSN\": \"0/2\" }", "ends before"},
		{"", "{ \"Timeline\": 4294967296, \"Start-LSN\": \"0/1\", \"End-LSN\": \"0/2\" }",
		 "WAL-Ranges"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char body[2048];
		snprintf(body, sizeof body,
			 "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": "
			 "[\n%s\n],\n\"WAL-Ranges\": [\n%s\n],\n",
			 cases[i].files,
			 cases[i].ranges
				 ? cases[i].ranges
				 : "{ \"Timeline\": 1, \"Start-LSN\": \"0/1\", \"End-LSN\": \"0/2\" }");
		char *text = make_manifest(body);
		hm_pgm m;
		hm_error err = {0};
		assert_int_equal(hm_pgm_parse(text, strlen(text), "backup_manifest", &m, &err), -1);
		print_message("case %zu: %s\n", i, err.message);
		assert_int_equal(err.code, HM_EXIT_CORRUPT);
		assert_non_null(strstr(err.message, cases[i].expect));
		/* the body parser (the fuzz target's entry) says the same */
		assert_int_equal(hm_pgm_parse_body(text, strlen(text), "backup_manifest", &m, &err), -1);
		free(text);
	}
}

/* Any changed byte before the checksum line, or a changed checksum, is detected. */
static void manifest_checksum(void **state)
{
	(void)state;
	char *text = make_manifest(manifest_body);
	hm_error err;
	size_t len = strlen(text);
	assert_int_equal(hm_pgm_check_checksum(text, len, "m", &err), 0);
	char *p = strstr(text, "\"Size\": 3");
	p[8] = '4';
	assert_int_equal(hm_pgm_check_checksum(text, len, "m", &err), -1);
	assert_int_equal(err.code, HM_EXIT_VERIFY_FAILED);
	assert_non_null(strstr(err.message, "Manifest-Checksum mismatch"));
	p[8] = '3';
	char *h = strstr(text, "\"Manifest-Checksum\": \"") + 22;
	h[0] = h[0] == '0' ? '1' : '0';
	assert_int_equal(hm_pgm_check_checksum(text, len, "m", &err), -1);
	hm_pgm m;
	assert_int_equal(hm_pgm_parse(text, len, "m", &m, &err), -1);
	free(text);
	/* no checksum line at all */
	assert_int_equal(hm_pgm_check_checksum("{}", 2, "m", &err), -1);
	assert_int_equal(err.code, HM_EXIT_CORRUPT);
}

/* CRC-32C check value and the manifest's byte order; the hardware and portable paths agree
 * on every length (odd tails included). */
static void crc32c(void **state)
{
	(void)state;
	char hex[9];
	uint32_t c = hm_crc32c_final(hm_crc32c_update(HM_CRC32C_INIT, "123456789", 9));
	assert_int_equal(c, 0xE3069283u);
	hm_crc32c_hex(c, hex);
	assert_string_equal(hex, "839206e3");
	hm_crc32c_hex(hm_crc32c_final(hm_crc32c_update(HM_CRC32C_INIT, "", 0)), hex);
	assert_string_equal(hex, "00000000"); /* as in real manifests for empty files */
	/* "17\n" (PG_VERSION of 17) computed in pieces equals one pass */
	uint32_t a = hm_crc32c_update(HM_CRC32C_INIT, "1", 1);
	a = hm_crc32c_update(a, "7\n", 2);
	assert_int_equal(a, hm_crc32c_update(HM_CRC32C_INIT, "17\n", 3));
	hm_crc32c_hex(hm_crc32c_final(hm_crc32c_update(HM_CRC32C_INIT, "15\n", 3)), hex);
	assert_string_equal(hex, "8a744722"); /* PG_VERSION's checksum in a real 15 manifest */
}

/* The ustar writer's output is read back by libarchive: names, sizes, contents; a member
 * larger than the buffer; the header of a >8 GiB member uses base-256. */
static void tarout_roundtrip(void **state)
{
	(void)state;
	char path[] = "/tmp/hm-test-tarout-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	hm_tarout t;
	hm_error err;
	char sha[HM_SHA256_HEX_LEN + 1];
	uint64_t size = 0, total = 0;
	assert_int_equal(hm_tarout_open(&t, path, &err), 0);
	assert_int_equal(hm_tarout_add(&t, "small", "hello", 5, sha, &err), 0);
	size_t big = (3u << 20) + 17;
	unsigned char *buf = malloc(big);
	for (size_t i = 0; i < big; i++)
		buf[i] = (unsigned char)(i * 7);
	assert_int_equal(hm_tarout_begin(&t, "big.tar.zst", &err), 0);
	assert_int_equal(hm_tarout_write(&t, buf, 1000, &err), 0);
	assert_int_equal(hm_tarout_write(&t, buf + 1000, big - 1000, &err), 0);
	assert_int_equal(hm_tarout_end(&t, &size, sha, &err), 0);
	assert_int_equal(size, big);
	assert_int_equal(hm_tarout_close(&t, &total, &err), 0);
	assert_int_equal(total % 512, 0);
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_filename(a, path, 65536), ARCHIVE_OK);
	assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
	assert_string_equal(archive_entry_pathname(e), "small");
	assert_int_equal(archive_entry_size(e), 5);
	assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
	assert_string_equal(archive_entry_pathname(e), "big.tar.zst");
	assert_int_equal(archive_entry_size(e), (la_int64_t)big);
	unsigned char *back = malloc(big);
	size_t got = 0;
	la_ssize_t n;
	while ((n = archive_read_data(a, back + got, big - got)) > 0)
		got += (size_t)n;
	assert_int_equal(got, big);
	assert_memory_equal(back, buf, big);
	assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_EOF);
	archive_read_free(a);
	unlink(path);
	free(buf);
	free(back);
	/* base-256 size for a 10 GiB member */
	unsigned char hdr[512];
	assert_int_equal(hm_tar_header(hdr, "huge", 10ull << 30, 0600, 0), 0);
	assert_int_equal(hdr[124], 0x80);
	uint64_t v = 0;
	for (int i = 128; i < 136; i++)
		v = (v << 8) | hdr[i];
	assert_int_equal(v, 10ull << 30);
	assert_int_equal(hm_tar_header(hdr, "", 1, 0600, 0), -1);
}

/* WAL names, LSN and size parsing. */
static void wal_and_lsn(void **state)
{
	(void)state;
	char name[25];
	hm_wal_file_name(name, 1, 3, 16u << 20);
	assert_string_equal(name, "000000010000000000000003");
	hm_wal_file_name(name, 2, 0x1FF, 16u << 20);
	assert_string_equal(name, "0000000200000001000000FF");
	hm_wal_file_name(name, 1, 5, 1u << 30);
	assert_string_equal(name, "000000010000000100000001");
	uint64_t lsn;
	assert_int_equal(hm_lsn_parse("16/B374D848", &lsn), 0);
	assert_int_equal(lsn, 0x16B374D848ull);
	assert_int_equal(hm_lsn_parse("16-B3", &lsn), -1);
	assert_int_equal(hm_pg_size_parse("16MB"), 16u << 20);
	assert_int_equal(hm_pg_size_parse("1GB"), 1u << 30);
	assert_int_equal(hm_pg_size_parse("16 parsecs"), 0);
}

/* How the archive is stored and encrypted: round trip, and what is refused. */
static void meta_storage_fields(void **state)
{
	(void)state;
	hm_backup_meta m, d;
	hm_error err;
	sample_meta(&m);
	snprintf(m.stored_name, sizeof m.stored_name, "backup.tar.hmenc");
	m.stored_size = 4032629;
	memset(m.stored_sha256, 'b', 64);
	snprintf(m.encryption, sizeof m.encryption, "%s", HM_META_CIPHER);
	snprintf(m.kdf, sizeof m.kdf, "key");
	snprintf(m.key_id, sizeof m.key_id, "0123456789abcdef0123456789abcdef");
	char *j = hm_meta_encode(&m, 1);
	assert_non_null(j);
	assert_int_equal(hm_meta_decode(j, "t", &d, &err), 0);
	assert_string_equal(d.stored_name, "backup.tar.hmenc");
	assert_int_equal(d.stored_size, 4032629);
	assert_string_equal(d.stored_sha256, m.stored_sha256);
	assert_string_equal(d.encryption, HM_META_CIPHER);
	assert_string_equal(d.kdf, "key");
	assert_string_equal(d.key_id, m.key_id);
	static const struct {
		const char *from, *to;
	} bad[] = {
		{"\"backup.tar.hmenc\"", "\"../x\""},
		{"\"backup.tar.hmenc\"", "\".hidden\""},
		{"\"xchacha20poly1305-secretstream\"", "\"rot13\""},
		{"\"kdf\":\"key\"", "\"kdf\":\"md5\""},
		{"\"bbbbbbbb", "\"Bbbbbbbb"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *t = strdup(j), *p = strstr(t, bad[i].from);
		assert_non_null(p);
		char *out = malloc(strlen(t) + 64);
		snprintf(out, strlen(t) + 64, "%.*s%s%s", (int)(p - t), t, bad[i].to,
			 p + strlen(bad[i].from));
		assert_int_equal(hm_meta_decode(out, "t", &d, &err), -1);
		assert_int_equal(err.code, HM_EXIT_CORRUPT);
		free(out);
		free(t);
	}
	/* encrypted without a stored object: refused */
	m.stored_name[0] = '\0';
	char *k = hm_meta_encode(&m, 1);
	assert_int_equal(hm_meta_decode(k, "t", &d, &err), -1);
	free(k);
	free(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(meta_roundtrip),
		cmocka_unit_test(meta_rejects),
		cmocka_unit_test(meta_storage_fields),
		cmocka_unit_test(manifest_parse),
		cmocka_unit_test(manifest_checksum),
		cmocka_unit_test(manifest_hostile_fields),
		cmocka_unit_test(crc32c),
		cmocka_unit_test(tarout_roundtrip),
		cmocka_unit_test(wal_and_lsn),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
