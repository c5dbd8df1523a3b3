/* Settings files across a live rollback: copies kept by `up`, and the three-way merge that
 * puts back what the unified container changed while keeping what the user changed. The
 * merge works on "keys": a postgresql.conf line's setting name (lower case), or a pg_hba.conf
 * rule's normalised content. For a key, b/a/n are its value in base/after/now (the last line
 * of the key; absent = NULL): when n equals a and a differs from b, the unified container
 * changed it and nobody touched it since, so b is put back; anything else is the user's and
 * stays as it is. The output starts from now's text, so the user's comments and order stay. */
#include "rollback_settings.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fsutil.h"

const char *const hm_settings_files[3] = {"pg_hba.conf", "postgresql.conf", "postgresql.auto.conf"};

/* One line of a file: raw text (without its newline), its key and normalised value. */
typedef struct sline {
	char *raw;
	char *key;  /* NULL: a comment or blank line */
	char *norm; /* name=value (conf) or collapsed rule (hba) */
	int drop;
} sline;

typedef struct sfile {
	sline *l;
	size_t n;
} sfile;

static void sfile_free(sfile *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->l[i].raw);
		free(f->l[i].key);
		free(f->l[i].norm);
	}
	free(f->l);
	f->l = NULL;
	f->n = 0;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* hba: the rule without its comment, whitespace runs as one space; NULL key if empty. */
static int key_hba(const char *raw, char **key, char **norm)
{
	size_t len = strlen(raw), o = 0;
	char *s = malloc(len + 1);
	int quoted = 0, space = 0;
	if (!s)
		return -1;
	for (const char *c = raw; *c; c++) {
		if (*c == '"')
			quoted = !quoted;
		if (*c == '#' && !quoted)
			break;
		if (is_space(*c) && !quoted) {
			space = o > 0;
			continue;
		}
		if (space)
			s[o++] = ' ';
		space = 0;
		s[o++] = *c;
	}
	s[o] = '\0';
	if (!o) {
		free(s);
		*key = *norm = NULL;
		return 0;
	}
	*norm = s;
	*key = strdup(s);
	return *key ? 0 : -1;
}

/* conf: "name [=] value [# comment]": key the lower-case name, norm "name=value". */
static int key_conf(const char *raw, char **key, char **norm)
{
	const char *c = raw, *name, *val, *end;
	int quoted = 0;
	*key = *norm = NULL;
	while (is_space(*c))
		c++;
	if (!*c || *c == '#')
		return 0;
	name = c;
	while (*c && !is_space(*c) && *c != '=' && *c != '#')
		c++;
	size_t nlen = (size_t)(c - name);
	while (is_space(*c))
		c++;
	if (*c == '=')
		c++;
	while (is_space(*c))
		c++;
	val = c;
	for (end = c; *end; end++) {
		if (*end == '\'')
			quoted = !quoted;
		if (*end == '#' && !quoted)
			break;
	}
	while (end > val && is_space(end[-1]))
		end--;
	size_t vlen = (size_t)(end - val);
	if (!nlen)
		return 0;
	char *k = malloc(nlen + 1), *nm = malloc(nlen + vlen + 2);
	if (!k || !nm) {
		free(k);
		free(nm);
		return -1;
	}
	for (size_t i = 0; i < nlen; i++)
		k[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
	k[nlen] = '\0';
	memcpy(nm, k, nlen);
	nm[nlen] = '=';
	memcpy(nm + nlen + 1, val, vlen);
	nm[nlen + 1 + vlen] = '\0';
	/* include directives may repeat: each is its own key */
	if (!strncmp(k, "include", 7)) {
		free(k);
		k = strdup(nm);
		if (!k) {
			free(nm);
			return -1;
		}
	}
	*key = k;
	*norm = nm;
	return 0;
}

/* Split text into lines with keys. */
static int parse(const char *text, int hba, sfile *f)
{
	size_t cap = 0;
	f->l = NULL;
	f->n = 0;
	if (!text)
		return 0;
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (f->n == cap) {
			size_t nc = cap ? cap * 2 : 32;
			sline *nlines = realloc(f->l, nc * sizeof *nlines);
			if (!nlines)
				return -1;
			f->l = nlines;
			cap = nc;
		}
		sline *l = &f->l[f->n];
		memset(l, 0, sizeof *l);
		if (!(l->raw = strndup(p, len)))
			return -1;
		f->n++;
		if ((hba ? key_hba(l->raw, &l->key, &l->norm) : key_conf(l->raw, &l->key, &l->norm)) != 0)
			return -1;
		p += len;
		if (*p == '\n')
			p++;
	}
	return 0;
}

/* Index of the last line with key (-1: none). */
static long last_of(const sfile *f, const char *key)
{
	for (size_t i = f->n; i-- > 0;)
		if (f->l[i].key && !strcmp(f->l[i].key, key))
			return (long)i;
	return -1;
}

static const char *norm_of(const sfile *f, long i)
{
	return i < 0 ? NULL : f->l[i].norm;
}

static int same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Growing output text. */
typedef struct obuf {
	char *s;
	size_t len, cap;
} obuf;

static int out_add(obuf *o, const char *line)
{
	size_t n = strlen(line);
	if (o->len + n + 2 > o->cap) {
		size_t nc = o->cap ? o->cap * 2 : 4096;
		while (nc < o->len + n + 2)
			nc *= 2;
		char *s = realloc(o->s, nc);
		if (!s)
			return -1;
		o->s = s;
		o->cap = nc;
	}
	memcpy(o->s + o->len, line, n);
	o->len += n;
	o->s[o->len++] = '\n';
	o->s[o->len] = '\0';
	return 0;
}

/* Should key be put back as in base? (the unified container changed it, the user did not) */
static int revert_key(const sfile *b, const sfile *a, const sfile *n, const char *key, long *bi, long *ni)
{
	long ai = last_of(a, key);
	*bi = last_of(b, key);
	*ni = last_of(n, key);
	return same(norm_of(n, *ni), norm_of(a, ai)) && !same(norm_of(a, ai), norm_of(b, *bi));
}

int hm_settings_merge(const char *base, const char *after, const char *now, int hba, char **out,
		      int *reverted)
{
	sfile b = {0}, a = {0}, n = {0};
	obuf o = {0};
	int rc = -1;
	char **replace = NULL;	      /* per now-line: base's raw line to write instead */
	unsigned char *append = NULL; /* per base-line: append it at the end */
	*out = NULL;
	*reverted = 0;
	if (parse(base, hba, &b) != 0 || parse(after, hba, &a) != 0 || parse(now, hba, &n) != 0)
		goto cleanup;
	replace = calloc(n.n + 1, sizeof *replace);
	append = calloc(b.n + 1, 1);
	if (!replace || !append)
		goto cleanup;
	/* keys of now and after: changed or added by the unified container */
	for (int pass = 0; pass < 2; pass++) {
		const sfile *f = pass ? &a : &n;
		for (size_t i = 0; i < f->n; i++) {
			const char *key = f->l[i].key;
			long bi, ni;
			if (!key || last_of(f, key) != (long)i || (pass && last_of(&n, key) >= 0))
				continue; /* once per key */
			if (!revert_key(&b, &a, &n, key, &bi, &ni))
				continue;
			if (ni < 0) {
				/* unified removed it and nobody put it back: add base's line again */
				if (bi >= 0 && !append[bi]) {
					append[bi] = 1;
					(*reverted)++;
				}
				continue;
			}
			for (size_t k = 0; k < n.n; k++)
				if (n.l[k].key && !strcmp(n.l[k].key, key))
					n.l[k].drop = 1;
			if (bi >= 0) {
				n.l[ni].drop = 0;
				replace[ni] = b.l[bi].raw;
			}
			(*reverted)++;
		}
	}
	/* keys only base has: removed by the unified container, user did not re-add */
	for (size_t i = 0; i < b.n; i++) {
		const char *key = b.l[i].key;
		long bi, ni;
		if (!key || last_of(&b, key) != (long)i || last_of(&a, key) >= 0 || last_of(&n, key) >= 0)
			continue;
		/* absent from after and now: after == now (both absent) and differs from base */
		if (revert_key(&b, &a, &n, key, &bi, &ni) && !append[bi]) {
			append[bi] = 1;
			(*reverted)++;
		}
	}
	if (!*reverted) {
		if (!(o.s = strdup(now ? now : "")))
			goto cleanup;
		*out = o.s;
		o.s = NULL;
		rc = 0;
		goto cleanup;
	}
	if (out_add(&o, "") != 0) /* make sure o.s exists */
		goto cleanup;
	o.len = 0;
	o.s[0] = '\0';
	for (size_t i = 0; i < n.n; i++)
		if (!n.l[i].drop && out_add(&o, replace[i] ? replace[i] : n.l[i].raw) != 0)
			goto cleanup;
	for (size_t i = 0; i < b.n; i++)
		if (append[i] && out_add(&o, b.l[i].raw) != 0)
			goto cleanup;
	*out = o.s;
	o.s = NULL;
	rc = 0;
cleanup:
	free(o.s);
	free(replace);
	free(append);
	sfile_free(&b);
	sfile_free(&a);
	sfile_free(&n);
	return rc;
}

/* Read dir/name into *out (NULL when the file does not exist). 0 or -1. */
static int read_opt(const char *dir, const char *name, char **out, hm_error *err)
{
	char p[PATH_MAX];
	size_t len;
	*out = NULL;
	if (hm_path_join(p, sizeof p, dir, name, err) != 0)
		return -1;
	if (access(p, F_OK) != 0 && errno == ENOENT)
		return 0;
	if (hm_read_file(p, (size_t)1 << 20, out, &len, err) != 0)
		return -1;
	if (memchr(*out, '\0', len)) {
		free(*out);
		*out = NULL;
		return hm_error_set(err, HM_EXIT_CORRUPT, "\"%s\" holds a NUL byte: not a settings file", p);
	}
	return 0;
}

int hm_settings_save(const char *pgdata, const char *dir, hm_error *err)
{
	if (hm_mkdir_p(dir, 0700, err) != 0)
		return -1;
	for (size_t i = 0; i < 3; i++) {
		char *text = NULL, dst[PATH_MAX];
		if (read_opt(pgdata, hm_settings_files[i], &text, err) != 0 ||
		    hm_path_join(dst, sizeof dst, dir, hm_settings_files[i], err) != 0) {
			free(text);
			return -1;
		}
		int rc = 0;
		if (text)
			rc = hm_write_file_atomic(dst, text, strlen(text), 0600, err);
		else if (unlink(dst) != 0 && errno != ENOENT)
			rc = hm_error_errno(err, errno, "remove", dst);
		free(text);
		if (rc != 0)
			return -1;
	}
	return hm_fsync_dir(dir, err);
}

int hm_settings_save_stage(const char *pgdata, const char *settings_dir, const char *stage, hm_error *err)
{
	char d[PATH_MAX];
	if (hm_private_dir(settings_dir, "settings copies directory", err) != 0 ||
	    hm_path_join(d, sizeof d, settings_dir, stage, err) != 0)
		return -1;
	return hm_settings_save(pgdata, d, err);
}

/* Write text as pgdata/name with the owner and mode of the file there (or of pgdata). */
static int rewrite(const char *pgdata, const char *name, const char *text, hm_error *err)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	struct stat st;
	int fd = -1, rc = -1;
	if (hm_path_join(path, sizeof path, pgdata, name, err) != 0)
		return -1;
	if (lstat(path, &st) != 0) {
		if (stat(pgdata, &st) != 0)
			return hm_error_errno(err, errno, "stat", pgdata);
		st.st_mode = 0600;
	} else if (!S_ISREG(st.st_mode)) {
		return hm_error_set(err, HM_EXIT_INPUT, "\"%s\" is not a regular file", path);
	}
	if (snprintf(tmp, sizeof tmp, "%s.hive-rollback.tmp", path) >= (int)sizeof tmp)
		return hm_error_set(err, HM_EXIT_INPUT, "path too long: \"%s\"", path);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return hm_error_errno(err, errno, "create", tmp);
	size_t len = strlen(text), off = 0;
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			hm_error_errno(err, errno, "write", tmp);
			goto cleanup;
		}
		off += (size_t)w;
	}
	if (fchown(fd, st.st_uid, st.st_gid) != 0 || fchmod(fd, st.st_mode & 07777) != 0 || fsync(fd) != 0) {
		hm_error_errno(err, errno, "set owner, mode or sync of", tmp);
		goto cleanup;
	}
	if (close(fd) != 0) {
		fd = -1;
		hm_error_errno(err, errno, "close", tmp);
		goto cleanup;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		hm_error_errno(err, errno, "rename into place", path);
		goto cleanup;
	}
	rc = hm_fsync_dir(pgdata, err);
cleanup:
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		unlink(tmp);
	return rc;
}

int hm_settings_restore(const char *pgdata, const char *dir, int *n_rewritten, char *report, size_t reportsz,
			hm_error *err)
{
	char before_dir[PATH_MAX], after_dir[PATH_MAX];
	struct stat st;
	size_t rlen = 0;
	*n_rewritten = 0;
	if (report && reportsz)
		report[0] = '\0';
	if (!dir || !dir[0])
		return 0;
	if (hm_path_join(before_dir, sizeof before_dir, dir, "before", err) != 0 ||
	    hm_path_join(after_dir, sizeof after_dir, dir, "after", err) != 0)
		return -1;
	if (stat(before_dir, &st) != 0 || stat(after_dir, &st) != 0)
		return 0; /* no copies: nothing known to put back */
	for (size_t i = 0; i < 3; i++) {
		char *b = NULL, *a = NULL, *n = NULL, *merged = NULL;
		int reverted = 0, rc = -1;
		const char *name = hm_settings_files[i];
		if (read_opt(before_dir, name, &b, err) != 0 || read_opt(after_dir, name, &a, err) != 0 ||
		    read_opt(pgdata, name, &n, err) != 0)
			goto next;
		if (hm_settings_merge(b, a, n, i == 0, &merged, &reverted) != 0) {
			hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
			goto next;
		}
		rc = 0;
		if (reverted && strcmp(merged, n ? n : "") != 0) {
			if ((rc = rewrite(pgdata, name, merged, err)) == 0) {
				(*n_rewritten)++;
				if (report && rlen < reportsz)
					rlen += (size_t)snprintf(
						report + rlen, reportsz - rlen,
						"%s%s: put back %d setting%s the unified container changed%s",
						rlen ? "; " : "", name, reverted, reverted == 1 ? "" : "s",
						i == 0 ? " (re-added rules go at the end)" : "");
			}
		}
	next:
		free(b);
		free(a);
		free(n);
		free(merged);
		if (rc != 0)
			return -1;
	}
	return 0;
}
