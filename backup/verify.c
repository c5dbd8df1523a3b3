/* Single-pass verification: the outer tar is read once; each server archive is
 * decompressed from inside it through a read callback (so the member's SHA-256 and every
 * inner file's checksum are computed on the same bytes, with no temp files) and walked by
 * server_archive.c, which applies the archive rule and, when restoring, writes each member.
 * The manifest comes after the archives in the stream, so inner results are recorded and
 * compared at the end. */
#include "verify.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/archive_dir.h"
#include "../common/digest.h"
#include "../common/fsutil.h"
#include "../common/tree_writer.h"
#include "pgmanifest.h"
#include "repo_io.h"
#include "server_archive.h"

#define VBUFSZ (1u << 20)
#define MAX_ERRORS HM_VERIFY_MAX_ERRORS
/* backup_manifest is parsed in memory (json-c: several times its size): PostgreSQL writes
 * ~150 bytes per file, so 256 MiB is a cluster of well over a million files */
#define MAX_PG_MANIFEST ((uint64_t)256 << 20)

typedef struct vctx {
	const hm_backup_meta *meta;
	const hm_verify_opts *opts;
	hm_verify_report *rep;
	struct archive *outer;
	hm_tree_writer *writer; /* extraction target, or NULL */
	hm_sha256 *member_sha;	/* digest of the current outer member */
	uint64_t member_bytes;
	unsigned char *buf;
	int alg; /* hm_pgm_alg for inner files */
	hm_sa_files files;
	char *manifest;
	size_t manifest_len;
	char *embedded; /* the archive's own backup.json */
	hm_backup_member got[HM_META_MAX_MEMBERS];
	int ngot;
	char member_name[4096];	      /* the current outer member */
	int have_next;		      /* member_read reached the next entry's header: */
	int next_r;		      /* its result */
	struct archive_entry *next_e; /* and the entry */
} vctx;

void hm_verify_report_free(hm_verify_report *rep)
{
	for (size_t i = 0; i < hm_verify_stored(rep); i++)
		free(rep->errors[i]);
	free(rep->errors);
	memset(rep, 0, sizeof *rep);
}

static void add_problem(hm_verify_report *rep, const char *line)
{
	rep->nerrors++; /* counted even when not stored: a problem never goes unnoticed */
	if (rep->nstored >= MAX_ERRORS)
		return;
	if (rep->nstored == rep->cap) {
		size_t nc = rep->cap ? rep->cap * 2 : 16;
		char **ne = realloc(rep->errors, nc * sizeof *ne);
		if (!ne)
			return;
		rep->errors = ne;
		rep->cap = nc;
	}
	if ((rep->errors[rep->nstored] = strdup(line)) != NULL)
		rep->nstored++;
}

size_t hm_verify_stored(const hm_verify_report *rep)
{
	return rep->nstored;
}

void hm_verify_problem(hm_verify_report *rep, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	add_problem(rep, line);
}

/* server_archive.c's problem callback. */
static void sa_problem(void *ctx, const char *line)
{
	add_problem(ctx, line);
}

void hm_wal_file_name(char out[25], uint32_t tli, uint64_t segno, uint32_t seg_size)
{
	uint64_t per = 0x100000000ull / seg_size;
	snprintf(out, 25, "%08X%08X%08X", tli, (uint32_t)(segno / per), (uint32_t)(segno % per));
}

/* The next bytes of the current outer member. A member streamed to an object store comes
 * as consecutive entries of the same name (tarout.h, stream mode): they are read as one.
 * At the end of the member, the header that follows is kept for next_entry. */
static la_ssize_t member_read(vctx *v)
{
	for (;;) {
		if (v->have_next)
			return 0;
		la_ssize_t n = archive_read_data(v->outer, v->buf, VBUFSZ);
		if (n != 0)
			return n;
		struct archive_entry *e;
		int r = archive_read_next_header(v->outer, &e);
		if (r == ARCHIVE_OK && archive_entry_pathname(e) &&
		    !strcmp(archive_entry_pathname(e), v->member_name) &&
		    archive_entry_filetype(e) == AE_IFREG && !archive_entry_hardlink(e))
			continue; /* the next chunk of the same member */
		v->have_next = 1;
		v->next_r = r;
		v->next_e = e;
		return 0;
	}
}

/* The next outer entry: the one member_read already reached, or the next header. */
static int next_entry(vctx *v, struct archive_entry **e)
{
	if (v->have_next) {
		v->have_next = 0;
		*e = v->next_e;
		return v->next_r;
	}
	return archive_read_next_header(v->outer, e);
}

/* libarchive read callback for an inner archive: the next bytes of the current outer
 * member, hashed on the way. */
static la_ssize_t inner_read(struct archive *a, void *ud, const void **out)
{
	vctx *v = ud;
	la_ssize_t n = member_read(v);
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
	while ((n = member_read(v)) > 0) {
		hm_sha256_update(v->member_sha, v->buf, (size_t)n);
		v->member_bytes += (uint64_t)n;
		hm_progress_add(v->opts->progress, (uint64_t)n);
	}
}

/* Check (and maybe extract) one server archive that is the current outer member. prefix
 * is "" for base.tar.zst and "pg_tblspc/<oid>/" for a tablespace. */
static int walk_server_archive(vctx *v, const char *member, const char *prefix, hm_error *err)
{
	struct archive *in = archive_read_new();
	int rc = 0;
	if (!in)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	archive_read_support_filter_zstd(in);
	archive_read_support_format_tar(in);
	if (archive_read_open(in, v, NULL, inner_read, NULL) != ARCHIVE_OK) {
		hm_verify_problem(v->rep, "%s: cannot read: %s", member, archive_error_string(in));
	} else {
		hm_sa_walk w = {member, prefix, v->alg, v->writer, &v->files, sa_problem, v->rep};
		rc = hm_sa_walk_archive(in, &w, err);
	}
	archive_read_free(in);
	return rc;
}

/* Read the current outer member wholly into memory (manifest, metadata); at most max bytes. */
static int slurp_member(vctx *v, uint64_t max, char **out, size_t *outlen)
{
	size_t len = 0, cap = 65536;
	char *b = malloc(cap + 1);
	la_ssize_t n;
	if (!b)
		return -1;
	while ((n = member_read(v)) > 0) {
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

/* The backup's members against backup.json, and the archive's own copy of it. */
static void check_members(vctx *v)
{
	const hm_backup_meta *m = v->meta;
	hm_verify_report *rep = v->rep;
	for (int i = 0; i < m->nmembers; i++) {
		const hm_backup_member *want = &m->members[i];
		const hm_backup_member *got = NULL;
		for (int k = 0; k < v->ngot; k++)
			if (!strcmp(v->got[k].name, want->name))
				got = &v->got[k];
		if (!got)
			hm_verify_problem(rep, "%s: missing from the archive", want->name);
		else if (got->size != want->size)
			hm_verify_problem(rep, "%s: size %llu, expected %llu (truncated or damaged)",
					  want->name, (unsigned long long)got->size,
					  (unsigned long long)want->size);
		else if (strcmp(got->sha256, want->sha256) != 0)
			hm_verify_problem(rep, "%s: SHA-256 mismatch (damaged)", want->name);
	}
	for (int k = 0; k < v->ngot; k++)
		if (strcmp(v->got[k].name, HM_REPO_META) != 0 && !hm_meta_member(m, v->got[k].name))
			hm_verify_problem(rep, "%s: unexpected member in the archive", v->got[k].name);
	if (!v->embedded) {
		hm_verify_problem(rep, "%s: missing from the archive", HM_REPO_META);
		return;
	}
	hm_backup_meta em;
	hm_error e2;
	if (hm_meta_decode(v->embedded, "backup.json in the archive", &em, &e2) != 0) {
		hm_verify_problem(rep, "%s", e2.message);
		return;
	}
	int same = !strcmp(em.id, m->id) && em.nmembers == m->nmembers;
	for (int i = 0; same && i < m->nmembers; i++)
		same = !strcmp(em.members[i].sha256, m->members[i].sha256) &&
		       em.members[i].size == m->members[i].size;
	if (!same)
		hm_verify_problem(rep, "%s: the archive's copy disagrees with the repository's",
				  HM_REPO_META);
}

/* The WAL needed to make the backup consistent. A range is first weighed against the WAL
 * segments the archive holds: a forged 0/0-FFFFFFFF/FFFFFFFF costs one line, not hours. */
static void check_wal(vctx *v, const hm_pgm *pgm)
{
	hm_verify_report *rep = v->rep;
	uint32_t segsz = v->meta->wal_segment_size ? v->meta->wal_segment_size : 16u << 20;
	if (segsz < (1u << 20) || segsz > (1u << 30) || (segsz & (segsz - 1))) {
		hm_verify_problem(rep,
				  "backup.json: wal_segment_size %u is not a power of two from 1 MB to 1 GB",
				  segsz);
		return;
	}
	uint64_t have = 0, need = 0;
	for (size_t k = 0; k < v->files.n; k++)
		have += !strncmp(v->files.v[k].path, "pg_wal/", 7);
	for (size_t i = 0; i < pgm->nranges; i++) {
		uint64_t first = pgm->ranges[i].start / segsz;
		uint64_t last =
			pgm->ranges[i].end > pgm->ranges[i].start ? (pgm->ranges[i].end - 1) / segsz : first;
		need += last - first + 1;
		if (need > have)
			break;
	}
	if (need > have) {
		hm_verify_problem(
			rep,
			"backup_manifest: its WAL-Ranges need more WAL segments than the %llu the archive "
			"holds in pg_wal/ (range %X/%X-%X/%X and on)",
			(unsigned long long)have, (unsigned)(pgm->ranges[0].start >> 32),
			(unsigned)pgm->ranges[0].start, (unsigned)(pgm->ranges[0].end >> 32),
			(unsigned)pgm->ranges[0].end);
		return;
	}
	for (size_t i = 0; i < pgm->nranges; i++) {
		const hm_pgm_range *rg = &pgm->ranges[i];
		uint64_t first = rg->start / segsz;
		uint64_t last = rg->end > rg->start ? (rg->end - 1) / segsz : first;
		for (uint64_t s = first; s <= last; s++) {
			char name[25], path[40];
			hm_wal_file_name(name, rg->tli, s, segsz);
			snprintf(path, sizeof path, "pg_wal/%s", name);
			const hm_sa_file *f = hm_sa_find(&v->files, path);
			if (!f)
				hm_verify_problem(
					rep,
					"%s: WAL segment needed for the WAL range %X/%X-%X/%X is missing",
					path, (unsigned)(rg->start >> 32), (unsigned)rg->start,
					(unsigned)(rg->end >> 32), (unsigned)rg->end);
			else if (f->size != segsz)
				hm_verify_problem(rep, "%s: WAL segment has %llu bytes, expected %u", path,
						  (unsigned long long)f->size, segsz);
		}
	}
}

/* Compare everything recorded during the pass with the manifest and the metadata. */
static void final_checks(vctx *v)
{
	const hm_backup_meta *m = v->meta;
	hm_verify_report *rep = v->rep;
	check_members(v);
	if (!v->manifest) {
		if (!hm_meta_member(m, "backup_manifest")) /* else already reported as a member */
			hm_verify_problem(rep, "backup_manifest: missing from the archive");
		return;
	}
	hm_pgm pgm;
	hm_error e;
	if (hm_pgm_parse(v->manifest, v->manifest_len, "backup_manifest", &pgm, &e) != 0) {
		hm_verify_problem(rep, "%s", e.message);
		return;
	}
	if (pgm.system_identifier[0] && m->system_identifier[0] &&
	    strcmp(pgm.system_identifier, m->system_identifier) != 0)
		hm_verify_problem(rep, "backup_manifest: System-Identifier %s differs from the backup's %s",
				  pgm.system_identifier, m->system_identifier);
	hm_sa_files_sort(&v->files);
	for (size_t i = 0; i < v->files.n; i++) {
		hm_sa_file *f = &v->files.v[i];
		if (!strncmp(f->path, "pg_wal/", 7))
			continue;
		hm_pgm_file *w = hm_pgm_find(&pgm, f->path);
		if (!w) {
			hm_verify_problem(rep, "%s: extra file not in backup_manifest", f->path);
			continue;
		}
		w->seen = 1;
		if (w->size != f->size)
			hm_verify_problem(rep, "%s: size %llu, backup_manifest says %llu", f->path,
					  (unsigned long long)f->size, (unsigned long long)w->size);
		else if (w->alg != (hm_pgm_alg)v->alg && w->alg != HM_PGM_NONE)
			hm_verify_problem(rep, "%s: checksum algorithm %s, expected %s", f->path,
					  hm_pgm_alg_name(w->alg), hm_pgm_alg_name((hm_pgm_alg)v->alg));
		else if (w->alg != HM_PGM_NONE && strcmp(w->checksum, f->checksum) != 0)
			hm_verify_problem(rep, "%s: checksum mismatch (%s %s, backup_manifest says %s)",
					  f->path, hm_pgm_alg_name(w->alg), f->checksum, w->checksum);
	}
	for (size_t i = 0; i < pgm.nfiles; i++)
		if (!pgm.files[i].seen && strncmp(pgm.files[i].path, "pg_wal/", 7) != 0)
			hm_verify_problem(rep, "%s: listed in backup_manifest but missing from the archive",
					  pgm.files[i].path);
	check_wal(v, &pgm);
	hm_pgm_free(&pgm);
}

/* The cap for backup_manifest (HIVE_TEST_MAX_MANIFEST may lower it, for tests). */
static uint64_t pg_manifest_cap(void)
{
	const char *t = getenv("HIVE_TEST_MAX_MANIFEST");
	uint64_t cap = MAX_PG_MANIFEST;
	if (t && strtoull(t, NULL, 10) > 0 && strtoull(t, NULL, 10) < cap)
		cap = strtoull(t, NULL, 10);
	return cap;
}

/* One member of the outer archive. 0, or -1 (err set) to stop. */
static int outer_member(vctx *v, struct archive_entry *e, hm_error *err)
{
	const char *name = v->member_name;
	size_t nl = strlen(name);
	if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e)) {
		hm_verify_problem(v->rep, "%s: not a regular file in the archive", name);
		drain_member(v);
	} else if (!strcmp(name, "backup_manifest")) {
		uint64_t cap = pg_manifest_cap();
		free(v->manifest);
		v->manifest = NULL;
		if (archive_entry_size(e) > (la_int64_t)cap) {
			hm_verify_problem(v->rep,
					  "backup_manifest: too large (%lld bytes; at most %llu are read)",
					  (long long)archive_entry_size(e), (unsigned long long)cap);
			drain_member(v);
		} else if (slurp_member(v, cap, &v->manifest, &v->manifest_len) != 0) {
			hm_verify_problem(v->rep, "backup_manifest: cannot read: %s",
					  archive_error_string(v->outer));
		}
	} else if (!strcmp(name, HM_REPO_META)) {
		size_t l;
		free(v->embedded);
		v->embedded = NULL;
		if (slurp_member(v, HM_REPO_META_MAX, &v->embedded, &l) != 0)
			hm_verify_problem(v->rep, "%s: cannot read (or larger than %u bytes)", name,
					  HM_REPO_META_MAX);
	} else if (nl > 8 && !strcmp(name + nl - 8, ".tar.zst")) {
		char prefix[128] = "";
		if (strcmp(name, "base.tar.zst") != 0) {
			if (v->writer)
				return hm_error_set(
					err, HM_EXIT_INPUT,
					"backup holds tablespace archive \"%s\": restoring tablespaces is "
					"not supported",
					name);
			snprintf(prefix, sizeof prefix, "pg_tblspc/%.*s/", (int)(nl - 8), name);
		}
		if (walk_server_archive(v, name, prefix, err) != 0)
			return -1;
		drain_member(v);
	} else {
		drain_member(v);
	}
	return 0;
}

/* The online archive: one pass over the outer tar. */
static int verify_online(vctx *v, int fd, const char *path, hm_error *err)
{
	struct archive_entry *e;
	int r, rc = 0;
	v->outer = archive_read_new();
	if (!v->outer)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	archive_read_support_format_tar(v->outer);
	if (archive_read_open_fd(v->outer, fd, VBUFSZ) != ARCHIVE_OK) {
		hm_verify_problem(v->rep, "%s: cannot open: %s", path, archive_error_string(v->outer));
		goto done;
	}
	while ((r = next_entry(v, &e)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		if (!name) {
			hm_verify_problem(v->rep, "%s: a member has no name", path);
			break;
		}
		if (v->ngot >= HM_META_MAX_MEMBERS) {
			hm_verify_problem(v->rep, "%s: too many members", path);
			break;
		}
		if (!(v->member_sha = hm_sha256_new())) {
			rc = hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
			goto done;
		}
		v->member_bytes = 0;
		/* copied: reading a streamed member moves the entry on to the next header */
		snprintf(v->member_name, sizeof v->member_name, "%s", name);
		name = v->member_name;
		if (outer_member(v, e, err) != 0) {
			hm_sha256_free(v->member_sha);
			v->member_sha = NULL;
			rc = -1;
			goto done;
		}
		hm_backup_member *g = &v->got[v->ngot++];
		snprintf(g->name, sizeof g->name, "%s", name);
		g->size = v->member_bytes;
		hm_sha256_final_hex(v->member_sha, g->sha256);
		v->member_sha = NULL;
		v->rep->bytes += v->member_bytes;
	}
	if (r != ARCHIVE_EOF && r != ARCHIVE_OK)
		hm_verify_problem(v->rep, "%s: archive truncated or damaged: %s", path,
				  archive_error_string(v->outer));
	final_checks(v);
done:
	archive_read_free(v->outer);
	v->outer = NULL;
	return rc;
}

/* The offline archive: its digest, then common/archive_dir's verification (and extraction). */
static int verify_offline(vctx *v, int fd, const char *path, hm_error *err)
{
	const hm_backup_member *want = hm_meta_member(v->meta, v->meta->archive);
	const hm_verify_opts *o = v->opts;
	char hex[HM_SHA256_HEX_LEN + 1];
	hm_error e;
	if (!want)
		hm_verify_problem(v->rep, "%s: no digest recorded in backup.json", v->meta->archive);
	else if (hm_sha256_fd(fd, path, hex, &e) != 0)
		hm_verify_problem(v->rep, "%s", e.message);
	else if (strcmp(hex, want->sha256) != 0)
		hm_verify_problem(v->rep, "%s: SHA-256 mismatch (damaged)", v->meta->archive);
	if (v->rep->nerrors)
		return 0;
	hm_archive_stats st;
	struct stat created;
	int r;
	memset(&st, 0, sizeof st);
	if (o->extract_name) {
		hm_extract_opts eo = {o->set_owner, o->uid, o->gid};
		r = hm_archive_extract_at(fd, path, o->extract_parent_fd, o->extract_name, o->extract_display,
					  &eo, o->progress, &st, &created, &e);
		if (r == 0) {
			v->rep->extract_dev = created.st_dev;
			v->rep->extract_ino = created.st_ino;
		}
	} else {
		r = hm_archive_verify_fd(fd, path, o->progress, &st, &e);
	}
	if (r != 0) {
		if (e.code != HM_EXIT_VERIFY_FAILED && e.code != HM_EXIT_CORRUPT) {
			*err = e;
			return -1;
		}
		hm_verify_problem(v->rep, "%s", e.message);
	}
	v->rep->files = st.files;
	v->rep->bytes = st.archive_bytes;
	return 0;
}

/* After a clean online extraction: PostgreSQL's own copy of the manifest (as pg_basebackup
 * leaves it), owners and modes of the top, then everything synced. The top directory and
 * the manifest belong to whoever owns the cluster's files (PG_VERSION, never followed). */
static int finish_online_restore(vctx *v, hm_error *err)
{
	const hm_verify_opts *o = v->opts;
	int rootfd = hm_tree_writer_rootfd(v->writer);
	struct stat pst;
	hm_tree_item mi = {.path = "backup_manifest", .type = 'f', .mode = 0600, .mtime = time(NULL)};
	int have_owner =
		fstatat(rootfd, "PG_VERSION", &pst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(pst.st_mode);
	uid_t uid = o->set_owner ? o->uid : have_owner ? pst.st_uid : geteuid();
	gid_t gid = o->set_owner ? o->gid : have_owner ? pst.st_gid : getegid();
	mi.uid = (uint32_t)uid;
	mi.gid = (uint32_t)gid;
	if (hm_tree_writer_add(v->writer, &mi, err) != 0)
		return -1;
	int rc = hm_tree_writer_data(v->writer, v->manifest, v->manifest_len, err);
	if (hm_tree_writer_end_file(v->writer, err) != 0 || rc != 0)
		return -1;
	if (hm_tree_writer_finish(v->writer, err) != 0)
		return -1;
	if ((geteuid() == 0 || o->set_owner) && fchown(rootfd, uid, gid) != 0)
		return hm_error_errno(err, errno, "chown", o->extract_display);
	if (fchmod(rootfd, 0700) != 0)
		return hm_error_errno(err, errno, "chmod", o->extract_display);
	if (fsync(rootfd) != 0)
		return hm_error_errno(err, errno, "sync", o->extract_display);
	const struct stat *rs = hm_tree_writer_root_stat(v->writer);
	v->rep->extract_dev = rs->st_dev;
	v->rep->extract_ino = rs->st_ino;
	return 0;
}

int hm_verify_backup(const hm_repo *r, const hm_backup_meta *m, const hm_verify_opts *opts,
		     hm_verify_report *rep, hm_error *err)
{
	vctx v;
	char path[4600];
	struct stat st;
	int rc = -1, fd = -1;
	memset(&v, 0, sizeof v);
	memset(rep, 0, sizeof *rep);
	/* an encrypted backup: its full metadata (members, digests) from the sealed copy */
	hm_backup_meta *full = NULL;
	if (!m->broken && hm_repo_encrypted(m)) {
		if (hm_repo_check_key(m, opts->secret, err) != 0)
			return -1;
		if (!(full = malloc(sizeof *full)))
			return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		hm_error ue = {0};
		if (hm_repo_unseal_meta(r, m, opts->secret, full, &ue) != 0) {
			free(full);
			if (ue.code != HM_EXIT_CORRUPT && ue.code != HM_EXIT_VERIFY_FAILED) {
				*err = ue;
				return -1;
			}
			hm_verify_problem(rep, "%s", ue.message);
			return hm_error_set(err, HM_EXIT_VERIFY_FAILED, "backup %s failed verification: %s",
					    m->id, ue.message);
		}
		m = full;
	}
	v.meta = m;
	v.opts = opts;
	v.rep = rep;
	v.alg = !strcmp(m->manifest_checksums, "SHA256") ? HM_PGM_SHA256 : HM_PGM_CRC32C;
	if (m->broken) {
		hm_verify_problem(rep, "%s", m->verify_error);
		goto check;
	}
	if (hm_repo_file(r, m->id, m->archive, path, sizeof path, err) != 0)
		return -1;
	hm_error oe = {0};
	/* a missing or wrong key means the check cannot run: not a finding about the backup */
	if (hm_repo_encrypted(m) && hm_repo_check_key(m, opts->secret, err) != 0)
		return -1;
	if ((fd = hm_repo_open_archive(r, m, opts->secret, &oe)) < 0 || fstat(fd, &st) != 0) {
		/* a damaged, tampered or missing archive is a finding; the network or the disk
		 * failing, or a wrong passphrase (INPUT), means the check could not run */
		if (fd < 0 &&
		    (oe.code == HM_EXIT_STORAGE || oe.code == HM_EXIT_IO || oe.code == HM_EXIT_INTERNAL ||
		     oe.code == HM_EXIT_NO_SPACE || oe.code == HM_EXIT_INPUT) &&
		    m->stored_name[0]) {
			*err = oe;
			return -1;
		}
		hm_verify_problem(rep, "%s", fd < 0 ? oe.message : strerror(errno));
		goto check;
	}
	if (!S_ISREG(st.st_mode)) {
		hm_verify_problem(rep, "%s: not a regular file", m->archive);
		goto check;
	}
	if (m->archive_size && (uint64_t)st.st_size != m->archive_size) {
		hm_verify_problem(rep, "%s: %lld bytes, backup.json says %llu (truncated or damaged)",
				  m->archive, (long long)st.st_size, (unsigned long long)m->archive_size);
		if (opts->extract_name)
			goto check; /* never restore from an archive known to be wrong */
	}
	v.buf = malloc(VBUFSZ);
	if (!v.buf) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	if (!strcmp(m->kind, "offline")) {
		if (verify_offline(&v, fd, path, err) != 0)
			goto cleanup;
		goto check;
	}
	if (opts->extract_name) {
		hm_tree_owner owner = {opts->set_owner, opts->uid, opts->gid};
		if (hm_tree_writer_new(&v.writer, opts->extract_parent_fd, opts->extract_name,
				       opts->extract_display, &owner, err) != 0)
			goto cleanup;
	}
	if (verify_online(&v, fd, path, err) != 0)
		goto cleanup;
	if (v.writer && rep->nerrors == 0 && finish_online_restore(&v, err) != 0)
		goto cleanup;
check:
	if (rep->nerrors) {
		hm_error_set(err, HM_EXIT_VERIFY_FAILED,
			     "backup %s failed verification: %zu problem%s, first: %s", m->id, rep->nerrors,
			     rep->nerrors == 1 ? "" : "s", rep->nstored ? rep->errors[0] : "(out of memory)");
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (v.writer) {
		if (rc != 0)
			hm_tree_writer_abort(v.writer);
		else
			hm_tree_writer_free(v.writer);
	}
	if (fd >= 0)
		close(fd);
	hm_sa_files_free(&v.files);
	free(v.manifest);
	free(v.embedded);
	free(v.buf);
	free(full);
	return rc;
}
