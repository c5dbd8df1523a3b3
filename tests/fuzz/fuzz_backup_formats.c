/* libFuzzer target: the parsers that read what a backup archive holds (backup.json and
 * PostgreSQL's backup_manifest, with and without its Manifest-Checksum) must reject any
 * input cleanly, never crash or leak. Seeds: fuzz_backup_formats.seeds/ (also manifests
 * with ill-typed fields, huge and empty WAL ranges). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../backup/basebackup.h"
#include "../../backup/meta.h"
#include "../../backup/pgmanifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	hm_error err;
	hm_backup_meta m;
	if (hm_meta_decode(text, "fuzz", &m, &err) == 0) {
		char *again = hm_meta_encode(&m, 1);
		free(again);
	}
	hm_pgm pgm;
	if (hm_pgm_parse(text, size, "fuzz", &pgm, &err) == 0)
		hm_pgm_free(&pgm);
	/* the parser behind the checksum, which a fuzzer cannot forge */
	if (hm_pgm_parse_body(text, size, "fuzz", &pgm, &err) == 0) {
		for (size_t i = 0; i < pgm.nfiles; i++)
			if (hm_pgm_find(&pgm, pgm.files[i].path) == NULL)
				abort();
		for (size_t i = 0; i < pgm.nranges; i++)
			if (pgm.ranges[i].tli == 0 || pgm.ranges[i].end < pgm.ranges[i].start)
				abort();
		hm_pgm_free(&pgm);
	}
	uint64_t lsn;
	hm_lsn_parse(text, &lsn);
	hm_pg_size_parse(text);
	free(text);
	return 0;
}
