/* Walking a server archive. archive_read_data (not _data_block) is used for file data: it
 * fills the holes of a sparse member with zeros, so the checksum and the restored file
 * are of the same bytes whatever the header claims. */
#include "server_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/crc32c.h"
#include "../common/tree_rule.h"
#include "pgmanifest.h"

#define SA_BUFSZ (256u << 10)

static int add_file(hm_sa_files *f, const char *path, uint64_t size, const char *sum)
{
	if (f->n == f->cap) {
		size_t nc = f->cap ? f->cap * 2 : 1024;
		hm_sa_file *nv = realloc(f->v, nc * sizeof *nv);
		if (!nv)
			return -1;
		f->v = nv;
		f->cap = nc;
	}
	if (!(f->v[f->n].path = strdup(path)))
		return -1;
	f->v[f->n].size = size;
	snprintf(f->v[f->n].checksum, sizeof f->v[f->n].checksum, "%s", sum);
	f->n++;
	return 0;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const hm_sa_file *)a)->path, ((const hm_sa_file *)b)->path);
}

void hm_sa_files_sort(hm_sa_files *f)
{
	if (f->n > 1)
		qsort(f->v, f->n, sizeof *f->v, cmp_file);
}

const hm_sa_file *hm_sa_find(const hm_sa_files *f, const char *path)
{
	hm_sa_file key = {.path = (char *)path};
	return f->n ? bsearch(&key, f->v, f->n, sizeof key, cmp_file) : NULL;
}

void hm_sa_files_free(hm_sa_files *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->v[i].path);
	free(f->v);
	memset(f, 0, sizeof *f);
}

__attribute__((format(printf, 2, 3))) static void problem(const hm_sa_walk *w, const char *fmt, ...)
{
	char line[PATH_MAX + 512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	w->problem(w->ctx, line);
}

/* Read (and maybe write) the data of the current regular file; its checksum into sum.
 * 1: read; 0: a problem was reported; -1: writing failed (err set). */
static int file_data(struct archive *in, const hm_sa_walk *w, const char *full, unsigned char *buf,
		     uint64_t *size, char *sum, hm_error *err)
{
	uint32_t crc = HM_CRC32C_INIT;
	hm_sha256 *sha = w->alg == HM_PGM_SHA256 ? hm_sha256_new() : NULL;
	la_ssize_t n;
	if (w->alg == HM_PGM_SHA256 && !sha)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	*size = 0;
	while ((n = archive_read_data(in, buf, SA_BUFSZ)) > 0) {
		if (w->alg == HM_PGM_CRC32C)
			crc = hm_crc32c_update(crc, buf, (size_t)n);
		else if (sha)
			hm_sha256_update(sha, buf, (size_t)n);
		*size += (uint64_t)n;
		if (w->writer && hm_tree_writer_data(w->writer, buf, (size_t)n, err) != 0) {
			hm_sha256_free(sha);
			return -1;
		}
	}
	if (n < 0) {
		problem(w, "%s: \"%s\" cannot be read: %s", w->member, full, archive_error_string(in));
		hm_sha256_free(sha);
		return 0;
	}
	if (w->alg == HM_PGM_CRC32C)
		hm_crc32c_hex(hm_crc32c_final(crc), sum);
	else if (sha)
		hm_sha256_final_hex(sha, sum);
	else
		sum[0] = '\0';
	return 1;
}

int hm_sa_walk_archive(struct archive *in, const hm_sa_walk *w, hm_error *err)
{
	struct archive_entry *e;
	hm_tree_rule rule;
	char rel[PATH_MAX], full[PATH_MAX + 64], why[PATH_MAX + 256];
	unsigned char *buf = malloc(SA_BUFSZ);
	int r, rc = 0;
	if (!buf)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	hm_tree_rule_init(&rule);
	/* ARCHIVE_WARN: a name that could not be converted is kept as its raw bytes */
	while ((r = archive_read_next_header(in, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		const char *name = archive_entry_pathname(e);
		hm_tree_item item;
		if (!name) {
			problem(w, "%s: a member has no name", w->member);
			goto done;
		}
		if (hm_tree_normalize(name, rel, sizeof rel, why, sizeof why) != 0 ||
		    hm_tree_rule_check(&rule, rel, e, &item, why, sizeof why) != 0) {
			problem(w, "%s: %s", w->member, why);
			goto done;
		}
		snprintf(full, sizeof full, "%s%s", w->prefix, item.path);
		if (w->writer && hm_tree_writer_add(w->writer, &item, err) != 0) {
			rc = -1;
			goto done;
		}
		if (item.type != 'f')
			continue;
		uint64_t size = 0;
		char sum[HM_SHA256_HEX_LEN + 1] = "";
		int fr = file_data(in, w, full, buf, &size, sum, err);
		if (w->writer && hm_tree_writer_end_file(w->writer, err) != 0)
			fr = -1;
		if (fr <= 0) {
			rc = fr;
			goto done;
		}
		if (add_file(w->files, full, size, sum) != 0) {
			rc = hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
			goto done;
		}
	}
	if (r != ARCHIVE_EOF)
		problem(w, "%s: damaged (cannot decompress or read the tar): %s", w->member,
			archive_error_string(in) ? archive_error_string(in) : "read error");
done:
	hm_tree_rule_free(&rule);
	free(buf);
	return rc;
}
