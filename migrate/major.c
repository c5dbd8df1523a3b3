/* The pure parts of the cross-major path: step names, the support rule, directory names,
 * the estimate and the failure hook. */
#include "major.h"

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ms_names[HM_MS__COUNT] = {
	"",	    "api-stopped",  "dumped",	"old-stopped", "snapshotted",
	"restored", "cutting-over", "cut-over", "unified",     "verified"};

const char *hm_major_step_name(hm_major_step s)
{
	return s >= 0 && s < HM_MS__COUNT ? ms_names[s] : "unknown";
}

int hm_major_step_from_name(const char *name)
{
	for (int i = 0; name && i < HM_MS__COUNT; i++)
		if (!strcmp(ms_names[i], name))
			return i;
	return -1;
}

int hm_major_supported(int old_major, int target_major, char *why, size_t whysz)
{
	char dummy[8];
	if (!why) {
		why = dummy;
		whysz = sizeof dummy;
	}
	why[0] = '\0';
	if (old_major == target_major)
		return 0;
	if (target_major != 17 && target_major != 18) {
		snprintf(why, whysz,
			 "the target PostgreSQL %d is not one the cross-major path supports (17, 18)",
			 target_major);
		return 0;
	}
	if (old_major > target_major) {
		snprintf(why, whysz,
			 "the data directory is PostgreSQL %d, newer than the target's %d: a cluster cannot "
			 "go back to an older major",
			 old_major, target_major);
		return 0;
	}
	if (old_major < HM_MAJOR_OLDEST) {
		snprintf(why, whysz,
			 "PostgreSQL %d is older than %d, the oldest major the cross-major path supports",
			 old_major, HM_MAJOR_OLDEST);
		return 0;
	}
	return 1;
}

int hm_major_dir_names(const char *data_dir, int old_major, int new_major, char *new_dir, size_t new_sz,
		       char *old_dir, size_t old_sz)
{
	size_t n = strlen(data_dir);
	while (n > 1 && data_dir[n - 1] == '/')
		n--;
	if (n == 0 || (n == 1 && data_dir[0] == '/'))
		return -1;
	if (snprintf(new_dir, new_sz, "%.*s.pg%d-new", (int)n, data_dir, new_major) >= (int)new_sz ||
	    snprintf(old_dir, old_sz, "%.*s.pg%d-old", (int)n, data_dir, old_major) >= (int)old_sz)
		return -1;
	return 0;
}

double hm_major_estimate_seconds(double bytes)
{
	if (bytes < 0)
		bytes = 0;
	double mb = bytes / 1e6;
	/* dump + restore at ~40 MB/s each, index builds and analyze about as long again as the
	 * restore, and ~20 s of fixed cost (containers, cluster initialisation, health) */
	return 20.0 + mb / 40.0 * 3.0;
}

/* Locale names as glibc compares them: the codeset part case-insensitive without '-'. */
static void norm_locale(const char *in, char *out, size_t outsz)
{
	size_t n = 0;
	int codeset = 0;
	for (const char *p = in; *p && n + 1 < outsz; p++) {
		if (*p == '.')
			codeset = 1;
		if (codeset && *p == '-')
			continue;
		out[n++] = codeset ? (char)tolower((unsigned char)*p) : *p;
	}
	out[n] = '\0';
}

int hm_major_locale_same(const char *a, const char *b)
{
	char x[256], y[256];
	norm_locale(a, x, sizeof x);
	norm_locale(b, y, sizeof y);
	return !strcmp(x, y);
}

/* Is point one of the comma-separated points of list? */
static int point_listed(const char *list, const char *point)
{
	size_t pl = strlen(point);
	for (const char *q = list; q; q = strchr(q, ','), q = q ? q + 1 : NULL)
		if (!strncmp(q, point, pl) && (q[pl] == ',' || !q[pl]))
			return 1;
	return 0;
}

int hm_major_fail_point(const char *point, hm_error *err)
{
	const char *pause = getenv("HIVE_MIGRATE_PAUSE");
	if (pause && point_listed(pause, point)) {
		/* the test sees the process stopped (state T), changes the world, sends SIGCONT */
		fprintf(stderr, "hive-migrate: test pause: SIGSTOP at %s\n", point);
		fflush(stderr);
		raise(SIGSTOP);
	}
	const char *f = getenv("HIVE_MIGRATE_FAIL");
	if (f && !strcmp(f, point))
		return hm_error_set(err, HM_EXIT_IO, "injected failure at %s (HIVE_MIGRATE_FAIL)", point);
	return 0;
}

size_t hm_major_filter_globals(const char *in, size_t len, const char *superuser, char *out)
{
	char plain[200], quoted[260];
	size_t o = 0;
	int np = snprintf(plain, sizeof plain, "CREATE ROLE %s;", superuser);
	int nq = snprintf(quoted, sizeof quoted, "CREATE ROLE \"%s\";", superuser);
	for (const char *line = in; line < in + len;) {
		const char *nl = memchr(line, '\n', (size_t)(in + len - line));
		size_t l = nl ? (size_t)(nl - line) : (size_t)(in + len - line);
		int skip = (np > 0 && np < (int)sizeof plain && l == (size_t)np && !memcmp(line, plain, l)) ||
			   (nq > 0 && nq < (int)sizeof quoted && l == (size_t)nq && !memcmp(line, quoted, l));
		if (!skip) {
			memcpy(out + o, line, l);
			o += l;
			if (nl)
				out[o++] = '\n';
		}
		line += l + (nl ? 1 : 0);
	}
	out[o] = '\0';
	return o;
}

/* Does [s, s+n) start with the NUL-terminated prefix? */
static int starts(const char *s, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);
	return n >= k && !memcmp(s, prefix, k);
}

/* Is the option [s, s+n) exactly pg_attver=DIGITS? */
static int is_attver(const char *s, size_t n)
{
	static const char key[] = "pg_attver=";
	size_t k = sizeof key - 1;
	if (n <= k || memcmp(s, key, k))
		return 0;
	for (size_t i = k; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* One ALTER ... ALTER COLUMN ... SET (...); line [line, line+l) into out without its
 * pg_attver options; returns the bytes written (0: nothing left, the line is dropped), or
 * (size_t)-1 when the line is not of that form (then the caller keeps it as it is). */
static size_t strip_attver(const char *line, size_t l, char *out, long *dropped)
{
	static const char set[] = " SET (";
	const char *p = NULL;
	if (!starts(line, l, "ALTER ") || l < 2 || memcmp(line + l - 2, ");", 2))
		return (size_t)-1;
	for (const char *q = line; q + (sizeof set - 1) <= line + l; q++)
		if (!memcmp(q, set, sizeof set - 1))
			p = q; /* the last one: a quoted column name may hold " SET (" */
	if (!p || !memmem(line, (size_t)(p - line), " ALTER COLUMN ", 14))
		return (size_t)-1;
	const char *opts = p + sizeof set - 1, *end = line + l - 2;
	size_t o = (size_t)(opts - line), kept = 0;
	long n = 0;
	memcpy(out, line, o);
	for (const char *t = opts; t < end;) {
		const char *sep = memmem(t, (size_t)(end - t), ", ", 2);
		const char *te = sep ? sep : end;
		if (is_attver(t, (size_t)(te - t))) {
			n++;
		} else {
			if (kept++) {
				memcpy(out + o, ", ", 2);
				o += 2;
			}
			memcpy(out + o, t, (size_t)(te - t));
			o += (size_t)(te - t);
		}
		t = sep ? sep + 2 : end;
	}
	if (!n)
		return (size_t)-1;
	*dropped += n;
	if (!kept)
		return 0;
	memcpy(out + o, ");", 2);
	return o + 2;
}

size_t hm_major_filter_predata(const char *in, size_t len, int drop_create, char *out, long *dropped)
{
	size_t o = 0;
	int connected = 0, created = 0;
	*dropped = 0;
	for (const char *line = in; line < in + len;) {
		const char *nl = memchr(line, '\n', (size_t)(in + len - line));
		size_t l = nl ? (size_t)(nl - line) : (size_t)(in + len - line);
		size_t w = (size_t)-1;
		if (starts(line, l, "\\connect"))
			connected = 1;
		if (drop_create && !connected && !created && starts(line, l, "CREATE DATABASE ")) {
			created = 1;
			w = 0;
		} else {
			w = strip_attver(line, l, out + o, dropped);
		}
		/* w == 0: the line goes, newline included; an empty line is kept as it is */
		int keep = w != 0;
		if (w == (size_t)-1) {
			memcpy(out + o, line, l);
			w = l;
		}
		o += w;
		if (keep && nl)
			out[o++] = '\n';
		line += l + (nl ? 1 : 0);
	}
	out[o] = '\0';
	return o;
}

int hm_major_index_memory_mb(uint64_t mem_available_bytes)
{
	uint64_t mb = mem_available_bytes / 4 / 1048576;
	return mb < 256 ? 256 : mb > 2048 ? 2048 : (int)mb;
}

int hm_major_locale_map_add(char *map, size_t sz, const char *arg, hm_error *err)
{
	const char *eq = strchr(arg, '=');
	size_t have = strlen(map), n = strlen(arg);
	if (!eq || eq == arg || !eq[1] || strchr(eq + 1, '='))
		return hm_error_set(err, HM_EXIT_USAGE,
				    "--locale-map needs OLD=NEW (e.g. en_US.UTF-8=C.UTF-8), not \"%s\"", arg);
	for (const char *p = arg; *p; p++)
		if ((unsigned char)*p < 0x21 || *p == 0x7f || *p == '\'' || *p == '"' || *p == '\\')
			return hm_error_set(
				err, HM_EXIT_USAGE,
				"--locale-map: \"%s\" holds a space, a quote or a control character", arg);
	if (n > 120 || have + n + 2 > sz)
		return hm_error_set(err, HM_EXIT_USAGE, "--locale-map: too many or too long mappings");
	memcpy(map + have, arg, n);
	map[have + n] = '\n';
	map[have + n + 1] = '\0';
	return 0;
}

int hm_major_locale_map_lookup(const char *map, const char *old, char *out, size_t outsz)
{
	if (!map || !old)
		return 0;
	for (const char *p = map; *p;) {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		const char *eq = memchr(p, '=', l);
		if (eq) {
			char key[128];
			snprintf(key, sizeof key, "%.*s", (int)(eq - p < 127 ? eq - p : 127), p);
			if (hm_major_locale_same(key, old)) {
				snprintf(out, outsz, "%.*s", (int)(l - (size_t)(eq + 1 - p)), eq + 1);
				return 1;
			}
		}
		p += l + (nl ? 1 : 0);
	}
	return 0;
}
