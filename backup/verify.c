/* Single-pass verification: the outer tar is read once; each server archive is
 * decompressed from inside it through a read callback (so the member's SHA-256 and every
 * inner file's checksum are computed on the same bytes, with no temp files). The manifest
 * comes after the archives in the stream, so inner results are recorded and compared at
 * the end. */
#include "verify.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>

#include "../common/archive_dir.h"
#include "../common/digest.h"
#include "../common/fsutil.h"
#include "../common/crc32c.h"
#include "pgmanifest.h"

#define VBUFSZ (1u << 20)
#define MAX_ERRORS 200

/* A regular file found inside a server archive. */
typedef struct seen_file {
	char *path;
	uint64_t size;
	char checksum[HM_SHA256_HEX_LEN + 1];
} seen_file;

typedef struct vctx {
	const hm_backup_meta *meta;
	const hm_verify_opts *opts;
	hm_verify_report *rep;
	struct archive *outer;
	struct archive *disk;  /* extraction target writer, or NULL */
	hm_sha256 *member_sha; /* digest of the current outer member */
	uint64_t member_bytes;
	unsigned char *buf;
	int alg; /* hm_pgm_alg for inner files */
	seen_file *files;
	size_t nfiles, capfiles;
	char *manifest;
	size_t manifest_len;
	char *embedded; /* the archive's own backup.json */
	hm_backup_member got[HM_META_MAX_MEMBERS];
	int ngot;
} vctx;

void hm_verify_report_free(hm_verify_report *rep)
{
	for (size_t i = 0; i < rep->nerrors; i++)
		free(rep->errors[i]);
	free(rep->errors);
	memset(rep, 0, sizeof *rep);
}

/* Record one problem (bounded list; the count keeps going). */
__attribute__((format(printf, 2, 3))) static void problem(hm_verify_report *rep, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (rep->nerrors >= MAX_ERRORS) {
		rep->nerrors++;
		return;
	}
	if (rep->nerrors == rep->cap) {
		size_t nc = rep->cap ? rep->cap * 2 : 16;
		char **ne = realloc(rep->errors, nc * sizeof *ne);
		if (!ne)
			return;
		rep->errors = ne;
		rep->cap = nc;
	}
	rep->errors[rep->nerrors] = strdup(line);
	if (rep->errors[rep->nerrors])
		rep->nerrors++;
}

void hm_wal_file_name(char out[25], uint32_t tli, uint64_t segno, uint32_t seg_size)
{
	uint64_t per = 0x100000000ull / seg_size;
	snprintf(out, 25, "%08X%08X%08X", tli, (uint32_t)(segno / per), (uint32_t)(segno % per));
}

/* libarchive read callback for an inner archive: the next bytes of the current outer
 * member, hashed on the way. */
static la_ssize_t inner_read(struct archive *a, void *ud, const void **out)
{
	vctx *v = ud;
	la_ssize_t n = archive_read_data(v->outer, v->buf, VBUFSZ);
	if (n < 0) {
		archive_set_error(a, EIO, "%s", archive_error_string(v->outer));
		return -1;
	}
	hm_sha256_update(v->member_sha, v->buf, (size_t)n);
	v->member_bytes += (uint64_t)n;
	hm_progress_add(v->opts->progress, (uint64_t)n);
	*out = v->buf;
	return n;
}

/* Read the rest of the current outer member (hashing it). */
static void drain_member(vctx *v)
{
	la_ssize_t n;
	while ((n = archive_read_data(v->outer, v->buf, VBUFSZ)) > 0) {
		hm_sha256_update(v->member_sha, v->buf, (size_t)n);
		v->member_bytes += (uint64_t)n;
		hm_progress_add(v->opts->progress, (uint64_t)n);
	}
}

/* Remember a file seen inside a server archive. */
static int add_seen(vctx *v, const char *path, uint64_t size, const char *sum)
{
	if (v->nfiles == v->capfiles) {
		size_t nc = v->capfiles ? v->capfiles * 2 : 1024;
		seen_file *nf = realloc(v->files, nc * sizeof *nf);
		if (!nf)
			return -1;
		v->files = nf;
		v->capfiles = nc;
	}
	v->files[v->nfiles].path = strdup(path);
	if (!v->files[v->nfiles].path)
		return -1;
	v->files[v->nfiles].size = size;
	snprintf(v->files[v->nfiles].checksum, sizeof v->files[v->nfiles].checksum, "%s", sum);
	v->nfiles++;
	return 0;
}

/* A path from inside an archive that is safe to extract: relative, no ".." component. */
static int path_safe(const char *p)
{
	if (p[0] == '/' || p[0] == '\0')
		return 0;
	for (const char *s = p; (s = strstr(s, "..")) != NULL; s += 2)
		if ((s == p || s[-1] == '/') && (s[2] == '\0' || s[2] == '/'))
			return 0;
	return 1;
}

/* Check (and maybe extract) one server archive that is the current outer member. prefix
 * is "" for base.tar.zst and "pg_tblspc/<oid>/" for a tablespace. */
static int walk_server_archive(vctx *v, const char *member, const char *prefix, hm_error *err)
{
	struct archive *in = archive_read_new();
	struct archive_entry *e;
	char full[8192];
	int r, rc = 0;
	if (!in)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	archive_read_support_filter_zstd(in);
	archive_read_support_format_tar(in);
	if (archive_read_open(in, v, NULL, inner_read, NULL) != ARCHIVE_OK) {
		problem(v->rep, "%s: cannot read: %s", member, archive_error_string(in));
		goto done;
	}
	while ((r = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
		const char *p = archive_entry_pathname(e);
		while (p[0] == '.' && p[1] == '/')
			p += 2;
		if (!p[0] || !strcmp(p, "."))
			continue;
		snprintf(full, sizeof full, "%s%s", prefix, p);
		size_t fl = strlen(full);
		if (fl > 0 && full[fl - 1] == '/')
			full[fl - 1] = '\0';
		if (!path_safe(full)) {
			problem(v->rep, "%s: unsafe path \"%s\"", member, full);
			rc = -1;
			break;
		}
		int regular = archive_entry_filetype(e) == AE_IFREG;
		if (v->disk) {
			char dest[8400];
			snprintf(dest, sizeof dest, "%s/%s", v->opts->extract_to, full);
			archive_entry_set_pathname(e, dest);
			if (v->opts->set_owner) {
				archive_entry_set_uid(e, v->opts->uid);
				archive_entry_set_gid(e, v->opts->gid);
			}
			if (archive_write_header(v->disk, e) != ARCHIVE_OK) {
				hm_error_set(err, HM_EXIT_IO, "cannot restore \"%s\": %s", dest,
					     archive_error_string(v->disk));
				rc = -2;
				break;
			}
		}
		if (regular) {
			uint32_t crc = HM_CRC32C_INIT;
			hm_sha256 *sha = v->alg == HM_PGM_SHA256 ? hm_sha256_new() : NULL;
			uint64_t size = 0;
			const void *blk;
			size_t len;
			la_int64_t off;
			char sum[HM_SHA256_HEX_LEN + 1] = "";
			while ((r = archive_read_data_block(in, &blk, &len, &off)) == ARCHIVE_OK) {
				if (v->alg == HM_PGM_CRC32C)
					crc = hm_crc32c_update(crc, blk, len);
				else if (sha)
					hm_sha256_update(sha, blk, len);
				size += len;
				if (v->disk &&
				    archive_write_data_block(v->disk, blk, len, off) != ARCHIVE_OK) {
					hm_error_set(err, HM_EXIT_IO,
						     "cannot write \"%s\" while restoring: %s", full,
						     archive_error_string(v->disk));
					hm_sha256_free(sha);
					rc = -2;
					goto done;
				}
			}
			if (r != ARCHIVE_EOF) {
				problem(v->rep, "%s: \"%s\" cannot be read: %s", member, full,
					archive_error_string(in));
				hm_sha256_free(sha);
				rc = -1;
				break;
			}
			if (v->alg == HM_PGM_CRC32C)
				hm_crc32c_hex(hm_crc32c_final(crc), sum);
			else if (sha)
				hm_sha256_final_hex(sha, sum);
			if (add_seen(v, full, size, sum) != 0) {
				hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
				rc = -2;
				break;
			}
			v->rep->files++;
		}
		if (v->disk && archive_write_finish_entry(v->disk) != ARCHIVE_OK) {
			hm_error_set(err, HM_EXIT_IO, "cannot finish \"%s\" while restoring: %s", full,
				     archive_error_string(v->disk));
			rc = -2;
			break;
		}
	}
	if (rc == 0 && r != ARCHIVE_EOF) {
		problem(v->rep, "%s: damaged (cannot decompress or read the tar): %s", member,
			archive_error_string(in));
		rc = -1;
	}
done:
	archive_read_free(in);
	return rc;
}

/* Read the current outer member wholly into memory (manifest, metadata). */
static int slurp_member(vctx *v, uint64_t max, char **out, size_t *outlen)
{
	size_t len = 0, cap = 65536;
	char *b = malloc(cap + 1);
	la_ssize_t n;
	if (!b)
		return -1;
	while ((n = archive_read_data(v->outer, v->buf, VBUFSZ)) > 0) {
		hm_sha256_update(v->member_sha, v->buf, (size_t)n);
		v->member_bytes += (uint64_t)n;
		if (len + (size_t)n > max) {
			free(b);
			return -1;
		}
		while (len + (size_t)n > cap) {
			cap *= 2;
			char *nb = realloc(b, cap + 1);
			if (!nb) {
				free(b);
				return -1;
			}
			b = nb;
		}
		memcpy(b + len, v->buf, (size_t)n);
		len += (size_t)n;
	}
	b[len] = '\0';
	*out = b;
	*outlen = len;
	return n < 0 ? -1 : 0;
}

/* Compare everything recorded during the pass with the manifest and the metadata. */
static void final_checks(vctx *v)
{
	const hm_backup_meta *m = v->meta;
	hm_verify_report *rep = v->rep;
	/* members against the repository's metadata */
	for (int i = 0; i < m->nmembers; i++) {
		const hm_backup_member *want = &m->members[i];
		const hm_backup_member *got = NULL;
		for (int k = 0; k < v->ngot; k++)
			if (!strcmp(v->got[k].name, want->name))
				got = &v->got[k];
		if (!got)
			problem(rep, "%s: missing from the archive", want->name);
		else if (got->size != want->size)
			problem(rep, "%s: size %llu, expected %llu (truncated or damaged)", want->name,
				(unsigned long long)got->size, (unsigned long long)want->size);
		else if (strcmp(got->sha256, want->sha256) != 0)
			problem(rep, "%s: SHA-256 mismatch (damaged)", want->name);
	}
	for (int k = 0; k < v->ngot; k++)
		if (strcmp(v->got[k].name, HM_REPO_META) != 0 && !hm_meta_member(m, v->got[k].name))
			problem(rep, "%s: unexpected member in the archive", v->got[k].name);
	/* the archive's own metadata must agree with the repository's copy */
	if (!v->embedded) {
		problem(rep, "%s: missing from the archive", HM_REPO_META);
	} else {
		hm_backup_meta em;
		hm_error e2;
		if (hm_meta_decode(v->embedded, "backup.json in the archive", &em, &e2) != 0)
			problem(rep, "%s", e2.message);
		else {
			int same = !strcmp(em.id, m->id) && em.nmembers == m->nmembers;
			for (int i = 0; same && i < m->nmembers; i++)
				same = !strcmp(em.members[i].sha256, m->members[i].sha256) &&
				       em.members[i].size == m->members[i].size;
			if (!same)
				problem(rep, "%s: the archive's copy disagrees with the repository's",
					HM_REPO_META);
		}
	}
	/* PostgreSQL's manifest */
	if (!v->manifest) {
		if (!hm_meta_member(m, "backup_manifest")) /* else already reported as a member */
			problem(rep, "backup_manifest: missing from the archive");
		return;
	}
	hm_pgm pgm;
	hm_error e;
	if (hm_pgm_parse(v->manifest, v->manifest_len, "backup_manifest", &pgm, &e) != 0) {
		problem(rep, "%s", e.message);
		return;
	}
	if (pgm.system_identifier[0] && m->system_identifier[0] &&
	    strcmp(pgm.system_identifier, m->system_identifier) != 0)
		problem(rep, "backup_manifest: System-Identifier %s differs from the backup's %s",
			pgm.system_identifier, m->system_identifier);
	uint32_t segsz = m->wal_segment_size ? m->wal_segment_size : 16u << 20;
	for (size_t i = 0; i < v->nfiles; i++) {
		seen_file *f = &v->files[i];
		if (!strncmp(f->path, "pg_wal/", 7))
			continue;
		hm_pgm_file *w = hm_pgm_find(&pgm, f->path);
		if (!w) {
			problem(rep, "%s: extra file not in backup_manifest", f->path);
			continue;
		}
		w->seen = 1;
		if (w->size != f->size)
			problem(rep, "%s: size %llu, backup_manifest says %llu", f->path,
				(unsigned long long)f->size, (unsigned long long)w->size);
		else if (w->alg != (hm_pgm_alg)v->alg && w->alg != HM_PGM_NONE)
			problem(rep, "%s: checksum algorithm %s, expected %s", f->path,
				hm_pgm_alg_name(w->alg), hm_pgm_alg_name((hm_pgm_alg)v->alg));
		else if (w->alg != HM_PGM_NONE && strcmp(w->checksum, f->checksum) != 0)
			problem(rep, "%s: checksum mismatch (%s %s, backup_manifest says %s)", f->path,
				hm_pgm_alg_name(w->alg), f->checksum, w->checksum);
	}
	for (size_t i = 0; i < pgm.nfiles; i++)
		if (!pgm.files[i].seen && strncmp(pgm.files[i].path, "pg_wal/", 7) != 0)
			problem(rep, "%s: listed in backup_manifest but missing from the archive",
				pgm.files[i].path);
	/* the WAL needed to make the backup consistent */
	for (size_t i = 0; i < pgm.nranges; i++) {
		hm_pgm_range *rg = &pgm.ranges[i];
		uint64_t first = rg->start / segsz;
		uint64_t last = rg->end > rg->start ? (rg->end - 1) / segsz : first;
		for (uint64_t s = first; s <= last; s++) {
			char name[25], path[40];
			hm_wal_file_name(name, rg->tli, s, segsz);
			snprintf(path, sizeof path, "pg_wal/%s", name);
			int found = 0;
			for (size_t k = 0; k < v->nfiles && !found; k++)
				if (!strcmp(v->files[k].path, path)) {
					found = 1;
					if (v->files[k].size != segsz)
						problem(rep, "%s: WAL segment has %llu bytes, expected %u",
							path, (unsigned long long)v->files[k].size, segsz);
				}
			if (!found)
				problem(rep,
					"%s: WAL segment needed for the WAL range %X/%X-%X/%X is missing",
					path, (unsigned)(rg->start >> 32), (unsigned)rg->start,
					(unsigned)(rg->end >> 32), (unsigned)rg->end);
		}
	}
	hm_pgm_free(&pgm);
}

/* The online archive: one pass over the outer tar. */
static int verify_online(vctx *v, const char *path, hm_error *err)
{
	struct archive_entry *e;
	int r, rc = 0;
	v->outer = archive_read_new();
	if (!v->outer)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	archive_read_support_format_tar(v->outer);
	if (archive_read_open_filename(v->outer, path, VBUFSZ) != ARCHIVE_OK) {
		problem(v->rep, "%s: cannot open: %s", path, archive_error_string(v->outer));
		goto done;
	}
	while ((r = archive_read_next_header(v->outer, &e)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		size_t nl = strlen(name);
		if (v->ngot >= HM_META_MAX_MEMBERS) {
			problem(v->rep, "%s: too many members", path);
			break;
		}
		v->member_sha = hm_sha256_new();
		v->member_bytes = 0;
		if (!v->member_sha) {
			rc = hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
			goto done;
		}
		if (!strcmp(name, "backup_manifest")) {
			free(v->manifest);
			v->manifest = NULL;
			if (slurp_member(v, 1u << 30, &v->manifest, &v->manifest_len) != 0)
				problem(v->rep, "backup_manifest: cannot read: %s",
					archive_error_string(v->outer));
		} else if (!strcmp(name, HM_REPO_META)) {
			size_t l;
			free(v->embedded);
			v->embedded = NULL;
			if (slurp_member(v, 1u << 20, &v->embedded, &l) != 0)
				problem(v->rep, "%s: cannot read: %s", name, archive_error_string(v->outer));
		} else if (nl > 8 && !strcmp(name + nl - 8, ".tar.zst")) {
			char prefix[128] = "";
			if (strcmp(name, "base.tar.zst") != 0) {
				if (v->disk) {
					hm_sha256_free(v->member_sha);
					v->member_sha = NULL;
					rc = hm_error_set(err, HM_EXIT_INPUT,
							  "backup holds tablespace archive \"%s\": restoring "
							  "tablespaces is not supported",
							  name);
					goto done;
				}
				snprintf(prefix, sizeof prefix, "pg_tblspc/%.*s/", (int)(nl - 8), name);
			}
			int w = walk_server_archive(v, name, prefix, err);
			if (w == -2) {
				hm_sha256_free(v->member_sha);
				v->member_sha = NULL;
				rc = -1;
				goto done;
			}
			drain_member(v);
		} else {
			drain_member(v);
		}
		hm_backup_member *g = &v->got[v->ngot++];
		snprintf(g->name, sizeof g->name, "%s", name);
		g->size = v->member_bytes;
		hm_sha256_final_hex(v->member_sha, g->sha256);
		v->member_sha = NULL;
		v->rep->bytes += v->member_bytes;
	}
	if (r != ARCHIVE_EOF)
		problem(v->rep, "%s: archive truncated or damaged: %s", path, archive_error_string(v->outer));
	final_checks(v);
done:
	archive_read_free(v->outer);
	v->outer = NULL;
	return rc;
}

/* The offline archive: its digest, then common/archive_dir's verification (and extraction). */
static int verify_offline(vctx *v, const char *path, hm_error *err)
{
	const hm_backup_member *want = hm_meta_member(v->meta, v->meta->archive);
	char hex[HM_SHA256_HEX_LEN + 1];
	hm_error e;
	if (!want)
		problem(v->rep, "%s: no digest recorded in backup.json", v->meta->archive);
	else if (hm_sha256_file(path, hex, &e) != 0)
		problem(v->rep, "%s", e.message);
	else if (strcmp(hex, want->sha256) != 0)
		problem(v->rep, "%s: SHA-256 mismatch (damaged)", v->meta->archive);
	if (v->rep->nerrors)
		return 0;
	hm_archive_stats st;
	memset(&st, 0, sizeof st);
	if (v->opts->extract_to) {
		if (hm_archive_extract(path, v->opts->extract_to, v->opts->progress, &st, &e) != 0) {
			if (e.code == HM_EXIT_VERIFY_FAILED || e.code == HM_EXIT_CORRUPT)
				problem(v->rep, "%s", e.message);
			else {
				*err = e;
				return -1;
			}
		}
	} else if (hm_archive_verify(path, v->opts->progress, &st, &e) != 0) {
		if (e.code == HM_EXIT_VERIFY_FAILED || e.code == HM_EXIT_CORRUPT)
			problem(v->rep, "%s", e.message);
		else {
			*err = e;
			return -1;
		}
	}
	v->rep->files = st.files;
	v->rep->bytes = st.archive_bytes;
	return 0;
}

int hm_verify_backup(const hm_repo *r, const hm_backup_meta *m, const hm_verify_opts *opts,
		     hm_verify_report *rep, hm_error *err)
{
	vctx v;
	char path[4600];
	struct stat st;
	int rc = -1, created = 0;
	memset(&v, 0, sizeof v);
	memset(rep, 0, sizeof *rep);
	v.meta = m;
	v.opts = opts;
	v.rep = rep;
	v.alg = !strcmp(m->manifest_checksums, "SHA256") ? HM_PGM_SHA256 : HM_PGM_CRC32C;
	if (hm_repo_file(r, m->id, m->archive, path, sizeof path, err) != 0)
		return -1;
	if (stat(path, &st) != 0) {
		problem(rep, "%s: cannot open: %s", m->archive, strerror(errno));
		goto check;
	}
	if (m->archive_size && (uint64_t)st.st_size != m->archive_size) {
		problem(rep, "%s: %lld bytes, backup.json says %llu (truncated or damaged)", m->archive,
			(long long)st.st_size, (unsigned long long)m->archive_size);
		if (opts->extract_to)
			goto check; /* never restore from an archive known to be wrong */
	}
	v.buf = malloc(VBUFSZ);
	if (!v.buf) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	if (!strcmp(m->kind, "offline")) {
		if (verify_offline(&v, path, err) != 0)
			goto cleanup;
		goto check;
	}
	if (opts->extract_to) {
		if (mkdir(opts->extract_to, 0700) != 0) {
			hm_error_errno(err, errno, "create directory", opts->extract_to);
			goto cleanup;
		}
		created = 1;
		v.disk = archive_write_disk_new();
		if (!v.disk) {
			hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
			goto cleanup;
		}
		int flags = ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
			    ARCHIVE_EXTRACT_SECURE_SYMLINKS;
		if (geteuid() == 0 || opts->set_owner)
			flags |= ARCHIVE_EXTRACT_OWNER;
		archive_write_disk_set_options(v.disk, flags);
		/* numeric owners, as in the server: names would map to this host's users */
	}
	if (verify_online(&v, path, err) != 0)
		goto cleanup;
	if (v.disk && archive_write_close(v.disk) != ARCHIVE_OK) {
		hm_error_set(err, HM_EXIT_IO, "cannot finish restoring into \"%s\": %s", opts->extract_to,
			     archive_error_string(v.disk));
		goto cleanup;
	}
	if (v.disk && rep->nerrors == 0) {
		/* PostgreSQL's own copy of the manifest, as pg_basebackup leaves it */
		char mp[4700];
		snprintf(mp, sizeof mp, "%s/backup_manifest", opts->extract_to);
		if (hm_write_file_atomic(mp, v.manifest, v.manifest_len, 0600, err) != 0)
			goto cleanup;
		/* the top directory and the manifest belong to whoever owns the cluster's files */
		char pv[4700];
		struct stat pst;
		snprintf(pv, sizeof pv, "%s/PG_VERSION", opts->extract_to);
		if ((opts->set_owner || geteuid() == 0) && stat(pv, &pst) == 0 &&
		    (chown(mp, pst.st_uid, pst.st_gid) != 0 ||
		     chown(opts->extract_to, pst.st_uid, pst.st_gid) != 0)) {
			hm_error_errno(err, errno, "chown", opts->extract_to);
			goto cleanup;
		}
		if (chmod(opts->extract_to, 0700) != 0) {
			hm_error_errno(err, errno, "chmod", opts->extract_to);
			goto cleanup;
		}
		int fd = open(opts->extract_to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || syncfs(fd) != 0) {
			hm_error_errno(err, errno, "sync", opts->extract_to);
			if (fd >= 0)
				close(fd);
			goto cleanup;
		}
		close(fd);
	}
check:
	if (rep->nerrors) {
		hm_error_set(err, HM_EXIT_VERIFY_FAILED,
			     "backup %s failed verification: %zu problem%s, first: %s", m->id, rep->nerrors,
			     rep->nerrors == 1 ? "" : "s", rep->errors ? rep->errors[0] : "?");
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (v.disk)
		archive_write_free(v.disk);
	if (rc != 0 && created) {
		hm_error ignored;
		hm_rmtree(opts->extract_to, &ignored);
	}
	for (size_t i = 0; i < v.nfiles; i++)
		free(v.files[i].path);
	free(v.files);
	free(v.manifest);
	free(v.embedded);
	free(v.buf);
	return rc;
}
