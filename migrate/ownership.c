/* Ownership changes through an undo record. lchown (never chown) so a symlink's target
 * outside the directory is never touched. */
#include "ownership.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fsutil.h"

/* Growing text buffer. */
typedef struct sbuf {
	char *s;
	size_t len, cap;
} sbuf;

/* Make room for need more bytes. 0 or -1 (out of memory). */
static int sb_grow(sbuf *b, size_t need)
{
	if (b->len + need > b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 65536;
		while (nc < b->len + need)
			nc *= 2;
		char *n = realloc(b->s, nc);
		if (!n)
			return -1;
		b->s = n;
		b->cap = nc;
	}
	return 0;
}

/* Append a record line "UID GID RELPATH". */
static int sb_add(sbuf *b, unsigned uid, unsigned gid, const char *rel)
{
	if (sb_grow(b, strlen(rel) + 48) != 0)
		return -1;
	b->len += (size_t)snprintf(b->s + b->len, b->cap - b->len, "%u %u %s\n", uid, gid, rel);
	return 0;
}

/* Append a line of the same-owner list: "INODE RELPATH". */
static int sb_add_same(sbuf *b, ino_t ino, const char *rel)
{
	if (sb_grow(b, strlen(rel) + 48) != 0)
		return -1;
	b->len += (size_t)snprintf(b->s + b->len, b->cap - b->len, "%ju %s\n", (uintmax_t)ino, rel);
	return 0;
}

/* Recursive walk collecting entries to change (into b) and entries already owned by
 * uid:gid (into same). */
static int walk(const char *abs, const char *rel, uid_t uid, gid_t gid, sbuf *b, sbuf *same, long *count,
		hm_error *err)
{
	struct stat st;
	if (lstat(abs, &st) != 0)
		return hm_error_errno(err, errno, "stat", abs);
	if (strchr(rel, '\n'))
		return hm_error_set(err, HM_EXIT_INPUT, "\"%s\": a file name holds a newline", abs);
	if (st.st_uid != uid || st.st_gid != gid) {
		if (sb_add(b, st.st_uid, st.st_gid, rel) != 0)
			return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		(*count)++;
	} else if (sb_add_same(same, st.st_ino, rel) != 0) {
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	}
	if (!S_ISDIR(st.st_mode))
		return 0;
	DIR *d = opendir(abs);
	if (!d)
		return hm_error_errno(err, errno, "list directory", abs);
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *cabs = NULL, *crel = NULL;
		if (asprintf(&cabs, "%s/%s", abs, de->d_name) < 0 ||
		    asprintf(&crel, "%s/%s", rel, de->d_name) < 0) {
			free(cabs);
			closedir(d);
			return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		}
		rc = walk(cabs, !strcmp(rel, ".") ? de->d_name : crel, uid, gid, b, same, count, err);
		free(cabs);
		free(crel);
	}
	closedir(d);
	return rc;
}

/* The path of record's same-owner list (record + HM_OWNER_SAME_SUFFIX) into out. 0 or -1. */
static int same_path(const char *record, char *out, size_t outsz, hm_error *err)
{
	if (snprintf(out, outsz, "%s%s", record, HM_OWNER_SAME_SUFFIX) >= (int)outsz)
		return hm_error_set(err, HM_EXIT_INPUT, "path too long: \"%s\"", record);
	return 0;
}

/* Walk dir, then write the same-owner list and the record, each atomically (0600). Both are
 * rewritten on every plan, so neither is left from an earlier run; a run killed in between
 * has not reached the chowning step (up saves it after the plan), and the next run plans
 * again. */
int hm_owner_plan(const char *dir, uid_t uid, gid_t gid, const char *record, long *count, hm_error *err)
{
	sbuf b = {0}, same = {0};
	char sp[PATH_MAX];
	int rc = -1;
	*count = 0;
	if (same_path(record, sp, sizeof sp, err) != 0)
		goto cleanup;
	if (walk(dir, ".", uid, gid, &b, &same, count, err) != 0)
		goto cleanup;
	if (hm_write_file_atomic(sp, same.s ? same.s : "", same.len, 0600, err) != 0)
		goto cleanup;
	if (hm_write_file_atomic(record, b.s ? b.s : "", b.len, 0600, err) != 0)
		goto cleanup;
	rc = 0;
cleanup:
	free(b.s);
	free(same.s);
	return rc;
}

/* Call fn for every line of the record: (uid, gid, absolute path). */
static int each(const char *dir, const char *record, int (*fn)(const char *, uid_t, gid_t, void *), void *arg,
		hm_error *err)
{
	char *buf = NULL;
	size_t len;
	if (hm_read_file(record, (size_t)1 << 30, &buf, &len, err) != 0)
		return -1;
	int rc = 0;
	for (char *line = buf, *next; rc == 0 && line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		unsigned u, g;
		int off = 0;
		/* exactly one space before the name: a name may itself start with blanks */
		if (sscanf(line, "%u %u%n", &u, &g, &off) < 2 || off == 0 || line[off] != ' ' ||
		    !line[off + 1]) {
			rc = hm_error_set(err, HM_EXIT_CORRUPT, "ownership record \"%s\" is damaged", record);
			break;
		}
		const char *rel = line + off + 1;
		char abs[PATH_MAX];
		if (snprintf(abs, sizeof abs, "%s%s%s", dir, strcmp(rel, ".") ? "/" : "",
			     strcmp(rel, ".") ? rel : "") >= (int)sizeof abs) {
			rc = hm_error_set(err, HM_EXIT_INPUT, "path too long below \"%s\"", dir);
			break;
		}
		rc = fn(abs, (uid_t)u, (gid_t)g, arg);
		if (rc != 0)
			hm_error_errno(err, errno, "change owner of", abs);
	}
	free(buf);
	return rc;
}

/* lchown to the fixed owner in arg. */
static int to_target(const char *abs, uid_t u, gid_t g, void *arg)
{
	(void)u;
	(void)g;
	const uid_t *t = arg;
	if (lchown(abs, t[0], (gid_t)t[1]) != 0 && errno != ENOENT)
		return -1;
	return 0;
}

/* lchown back to the recorded owner. */
static int to_recorded(const char *abs, uid_t u, gid_t g, void *arg)
{
	(void)arg;
	if (lchown(abs, u, g) != 0 && errno != ENOENT)
		return -1;
	return 0;
}

/* lchown every recorded entry to uid:gid. */
int hm_owner_apply(const char *dir, const char *record, uid_t uid, gid_t gid, hm_error *err)
{
	uid_t t[2] = {uid, (uid_t)gid};
	return each(dir, record, to_target, t, err);
}

/* lchown every recorded entry back to its recorded owner. */
int hm_owner_undo(const char *dir, const char *record, hm_error *err)
{
	return each(dir, record, to_recorded, NULL, err);
}

/* What the record says about one entry (found by each()). */
typedef struct find_arg {
	const char *abs;
	int found;
	uid_t uid;
	gid_t gid;
} find_arg;

/* each() callback: note the recorded owner of f->abs when this line is about it. */
static int find_entry(const char *abs, uid_t u, gid_t g, void *arg)
{
	find_arg *f = arg;
	if (!strcmp(abs, f->abs)) {
		f->found = 1;
		f->uid = u;
		f->gid = g;
	}
	return 0;
}

/* One entry of the same-owner list: its absolute path and the inode it had. */
typedef struct same_entry {
	char *abs;
	ino_t ino;
} same_entry;

/* The same-owner list as loaded by same_load: sorted by path for same_has. */
typedef struct same_set {
	same_entry *e;
	size_t n;
} same_set;

/* Order of same_entry by path (qsort, bsearch). */
static int same_cmp(const void *a, const void *b)
{
	return strcmp(((const same_entry *)a)->abs, ((const same_entry *)b)->abs);
}

/* Free what same_load allocated. */
static void same_free(same_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		free(set->e[i].abs);
	free(set->e);
	set->e = NULL;
	set->n = 0;
}

/* Load record's same-owner list (absolute paths below dir) into set. *present gets 0 when
 * there is none (a record written by an older hive-migrate), 1 otherwise. 0 or -1. */
static int same_load(const char *dir, const char *record, same_set *set, int *present, hm_error *err)
{
	char sp[PATH_MAX], *buf = NULL;
	size_t len, cap = 0;
	struct stat st;
	int rc = -1;
	*present = 0;
	set->e = NULL;
	set->n = 0;
	if (same_path(record, sp, sizeof sp, err) != 0)
		return -1;
	if (lstat(sp, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		return hm_error_errno(err, errno, "stat", sp);
	}
	if (hm_read_file(sp, (size_t)1 << 30, &buf, &len, err) != 0)
		return -1;
	for (char *line = buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		/* exactly one space after the inode: a name may start with a blank */
		char *end = NULL;
		errno = 0;
		uintmax_t ino = strtoumax(line, &end, 10);
		if (errno || end == line || *line < '0' || *line > '9' || *end != ' ' || !end[1]) {
			hm_error_set(err, HM_EXIT_CORRUPT, "ownership record \"%s\" is damaged", sp);
			goto cleanup;
		}
		const char *rel = end + 1;
		if (set->n == cap) {
			size_t nc = cap ? cap * 2 : 256;
			same_entry *ne = realloc(set->e, nc * sizeof *ne);
			if (!ne) {
				hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
				goto cleanup;
			}
			set->e = ne;
			cap = nc;
		}
		same_entry *e = &set->e[set->n];
		int dot = !strcmp(rel, ".");
		if (asprintf(&e->abs, "%s%s%s", dir, dot ? "" : "/", dot ? "" : rel) < 0) {
			hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
			goto cleanup;
		}
		e->ino = (ino_t)ino;
		set->n++;
	}
	if (set->n)
		qsort(set->e, set->n, sizeof *set->e, same_cmp);
	*present = 1;
	rc = 0;
cleanup:
	free(buf);
	if (rc != 0)
		same_free(set);
	return rc;
}

/* Whether abs with inode ino is in the same-owner list: the same path AND the same inode,
 * so that an entry the unified container replaced (a new file at that path) is not. */
static int same_has(const same_set *set, const char *abs, ino_t ino)
{
	if (!set || !set->n)
		return 0;
	same_entry key = {.abs = (char *)abs};
	const same_entry *e = bsearch(&key, set->e, set->n, sizeof *set->e, same_cmp);
	return e && e->ino == ino;
}

/* Walk below abs: every entry owned by from -> to (lchown), except those in keep. */
static int reown(const char *abs, uid_t fu, gid_t fg, uid_t tu, gid_t tg, const same_set *keep, long *n,
		 hm_error *err)
{
	struct stat st;
	if (lstat(abs, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		return hm_error_errno(err, errno, "stat", abs);
	}
	if (st.st_uid == fu && st.st_gid == fg && !same_has(keep, abs, st.st_ino)) {
		if (lchown(abs, tu, tg) != 0 && errno != ENOENT)
			return hm_error_errno(err, errno, "change owner of", abs);
		(*n)++;
	}
	if (!S_ISDIR(st.st_mode))
		return 0;
	DIR *d = opendir(abs);
	if (!d)
		return hm_error_errno(err, errno, "list directory", abs);
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *c = NULL;
		if (asprintf(&c, "%s/%s", abs, de->d_name) < 0) {
			closedir(d);
			return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		}
		rc = reown(c, fu, fg, tu, tg, keep, n, err);
		free(c);
	}
	closedir(d);
	return rc;
}

/* Undo the record, then give the entries created since (owned by uid:gid, not in the
 * same-owner list) the owner the record gives pgdata. */
int hm_owner_undo_live(const char *dir, const char *record, const char *pgdata, uid_t uid, gid_t gid,
		       long *n_new, hm_error *err)
{
	find_arg f = {.abs = pgdata};
	same_set keep = {0};
	int present = 0, rc = -1;
	*n_new = 0;
	if (hm_owner_undo(dir, record, err) != 0)
		return -1;
	if (each(dir, record, find_entry, &f, err) != 0)
		return -1;
	if (!f.found || (f.uid == uid && f.gid == gid))
		return 0; /* the split stack ran as uid:gid too: new entries already have its owner */
	/* No same-owner list: a record from an older hive-migrate. Every entry owned by uid:gid
	 * is taken for a new one and gets the split stack's owner, as those versions did. */
	if (same_load(dir, record, &keep, &present, err) != 0)
		goto cleanup;
	rc = reown(dir, uid, gid, f.uid, f.gid, present ? &keep : NULL, n_new, err);
cleanup:
	same_free(&keep);
	return rc;
}
