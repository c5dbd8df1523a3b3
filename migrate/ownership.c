/* Ownership changes through an undo record. lchown (never chown) so a symlink's target
 * outside the directory is never touched. */
#include "ownership.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
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

/* Append a formatted line. */
static int sb_add(sbuf *b, unsigned uid, unsigned gid, const char *rel)
{
	size_t need = strlen(rel) + 48;
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
	b->len += (size_t)snprintf(b->s + b->len, b->cap - b->len, "%u %u %s\n", uid, gid, rel);
	return 0;
}

/* Recursive walk collecting entries to change. */
static int walk(const char *abs, const char *rel, uid_t uid, gid_t gid, sbuf *b, long *count, hm_error *err)
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
		rc = walk(cabs, !strcmp(rel, ".") ? de->d_name : crel, uid, gid, b, count, err);
		free(cabs);
		free(crel);
	}
	closedir(d);
	return rc;
}

int hm_owner_plan(const char *dir, uid_t uid, gid_t gid, const char *record, long *count, hm_error *err)
{
	sbuf b = {0};
	*count = 0;
	int rc = walk(dir, ".", uid, gid, &b, count, err);
	if (rc == 0)
		rc = hm_write_file_atomic(record, b.s ? b.s : "", b.len, 0600, err);
	free(b.s);
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
		if (sscanf(line, "%u %u %n", &u, &g, &off) < 2 || off == 0) {
			rc = hm_error_set(err, HM_EXIT_CORRUPT, "ownership record \"%s\" is damaged", record);
			break;
		}
		const char *rel = line + off;
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

int hm_owner_apply(const char *dir, const char *record, uid_t uid, gid_t gid, hm_error *err)
{
	uid_t t[2] = {uid, (uid_t)gid};
	return each(dir, record, to_target, t, err);
}

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

/* Walk below abs: every entry owned by from -> to (lchown). */
static int reown(const char *abs, uid_t fu, gid_t fg, uid_t tu, gid_t tg, long *n, hm_error *err)
{
	struct stat st;
	if (lstat(abs, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		return hm_error_errno(err, errno, "stat", abs);
	}
	if (st.st_uid == fu && st.st_gid == fg) {
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
		rc = reown(c, fu, fg, tu, tg, n, err);
		free(c);
	}
	closedir(d);
	return rc;
}

int hm_owner_undo_live(const char *dir, const char *record, const char *pgdata, uid_t uid, gid_t gid,
		       long *n_new, hm_error *err)
{
	find_arg f = {.abs = pgdata};
	*n_new = 0;
	if (hm_owner_undo(dir, record, err) != 0)
		return -1;
	if (each(dir, record, find_entry, &f, err) != 0)
		return -1;
	if (!f.found || (f.uid == uid && f.gid == gid))
		return 0; /* the split stack ran as uid:gid too: new entries already have its owner */
	return reown(dir, uid, gid, f.uid, f.gid, n_new, err);
}
