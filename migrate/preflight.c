/* The preflight core: report bookkeeping, the built-in target tables and the pure rule
 * engine (hm_preflight_evaluate). Gathering facts from the disk lives in
 * preflight_gather.c, from the engine and the server in preflight_live.c, rendering in
 * preflight_render.c.
 *
 * Why a pure rule engine: every compatibility rule is a function of a few facts, so the
 * unit tests can drive it with a table of scenarios without disks or containers. */
#include "preflight.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../common/exitcode.h"
#include "major.h"
#include "preflight_int.h"

/* Defaults of the unified image: the target PostgreSQL is built with default sizes. */
#define TARGET_BLCKSZ 8192u
#define TARGET_XLOG_BLCKSZ 8192u
#define TARGET_XLOG_SEG_SIZE (16u * 1024u * 1024u)

/* Fill opts with the defaults (target 17, uid 1000, libpq's port, 3 s connect timeout). */
void hm_preflight_opts_init(hm_preflight_opts *opts)
{
	memset(opts, 0, sizeof *opts);
	opts->target_major = 17;
	opts->target_uid = 1000;
	opts->connect_timeout = 3;
}

/* Release what a report owns and zero it. */
void hm_preflight_report_free(hm_preflight_report *report)
{
	if (!report)
		return;
	free(report->problems);
	free(report->databases);
	free(report->extensions);
	free(report->stack);
	free(report->target_extensions);
	free(report->target_locales);
	memset(report, 0, sizeof *report);
}

/* Verdict implied by the worst severity so far. */
static void update_verdict(hm_preflight_report *r, hm_severity sev)
{
	hm_verdict v = sev == HM_SEV_ERROR	    ? HM_VERDICT_ERROR
		       : sev == HM_SEV_INCOMPATIBLE ? HM_VERDICT_INCOMPATIBLE
						    : HM_VERDICT_WARNINGS;
	if (v > r->verdict)
		r->verdict = v;
}

int hm_preflight_add(hm_preflight_report *report, hm_severity sev, const char *code, const char *hint,
		     const char *fmt, ...)
{
	hm_problem *p = realloc(report->problems, (report->n_problems + 1) * sizeof *p);
	if (!p)
		return -1;
	report->problems = p;
	p = &report->problems[report->n_problems++];
	memset(p, 0, sizeof *p);
	snprintf(p->code, sizeof p->code, "%s", code);
	p->severity = sev;
	snprintf(p->hint, sizeof p->hint, "%s", hint ? hint : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->message, sizeof p->message, fmt, ap);
	va_end(ap);
	update_verdict(report, sev);
	return 0;
}

const hm_problem *hm_preflight_find(const hm_preflight_report *report, const char *code)
{
	for (size_t i = 0; i < report->n_problems; i++)
		if (!strcmp(report->problems[i].code, code))
			return &report->problems[i];
	return NULL;
}

/* Catalog version per major: CATALOG_VERSION_NO of each release's catversion.h
 * (docs: /work/shared/notes/postgres-facts.md). */
uint32_t hm_preflight_catalog_for_major(int major)
{
	switch (major) {
	case 15:
		return 202209061u;
	case 16:
		return 202307071u;
	case 17:
		return 202406281u;
	case 18:
		return 202506291u;
	default:
		return 0;
	}
}

/* pgvector the unified image ships per major: Debian's postgresql-NN-pgvector in the base
 * suite of that image (17: trixie 0.8.0, 18: forky 0.8.7). */
const char *hm_preflight_pgvector_for_major(int major)
{
	switch (major) {
	case 17:
		return "0.8.0";
	case 18:
		return "0.8.7";
	default:
		return "";
	}
}

/* Numeric comparison of dotted versions; a missing component counts as 0 and trailing
 * text after a number (e.g. "0.8.0-dev") is ignored. */
int hm_preflight_version_cmp(const char *a, const char *b)
{
	while (*a || *b) {
		char *ea, *eb;
		unsigned long x = strtoul(a, &ea, 10), y = strtoul(b, &eb, 10);
		if (x != y)
			return x < y ? -1 : 1;
		a = ea;
		b = eb;
		while (*a && *a != '.')
			a++;
		while (*b && *b != '.')
			b++;
		if (*a == '.')
			a++;
		if (*b == '.')
			b++;
	}
	return 0;
}

const char *hm_verdict_name(hm_verdict v)
{
	switch (v) {
	case HM_VERDICT_COMPATIBLE:
		return "compatible";
	case HM_VERDICT_WARNINGS:
		return "warnings";
	case HM_VERDICT_INCOMPATIBLE:
		return "incompatible";
	case HM_VERDICT_ERROR:
		return "error";
	}
	return "error";
}

const char *hm_severity_name(hm_severity s)
{
	switch (s) {
	case HM_SEV_WARNING:
		return "warning";
	case HM_SEV_INCOMPATIBLE:
		return "incompatible";
	case HM_SEV_ERROR:
		return "error";
	}
	return "error";
}

int hm_preflight_verdict_exit(hm_verdict v)
{
	switch (v) {
	case HM_VERDICT_COMPATIBLE:
		return HM_EXIT_OK;
	case HM_VERDICT_WARNINGS:
		return HM_EXIT_CHECK_WARNINGS;
	case HM_VERDICT_INCOMPATIBLE:
		return HM_EXIT_CHECK_INCOMPATIBLE;
	case HM_VERDICT_ERROR:
		return HM_EXIT_CHECK_ERROR;
	}
	return HM_EXIT_CHECK_ERROR;
}

/* Rules on the version and catalog: same major, same catalog as the target. */
static int eval_versions(const hm_preflight_facts *f, hm_preflight_report *r)
{
	const hm_pg_control *c = &f->control;
	if (f->pg_version && f->pg_version != c->major)
		return hm_preflight_add(
			r, HM_SEV_ERROR, "pg-version-mismatch",
			"the data directory is inconsistent (files from different clusters?); "
			"restore it from a backup",
			"PG_VERSION says %d but global/pg_control is a PostgreSQL %d control file "
			"(control version %u, catalog %u)",
			f->pg_version, c->major, c->pg_control_version, c->catalog_version_no);
	if (c->major != f->target_major && hm_major_supported((int)c->major, f->target_major, NULL, 0))
		return hm_pf_major_rules(f, r);
	if (c->major > f->target_major) {
		char hint[256];
		snprintf(hint, sizeof hint,
			 "use a unified image of PostgreSQL %d or later (--image, e.g. "
			 "localhost/hive-unified:%d)",
			 c->major, c->major);
		return hm_preflight_add(r, HM_SEV_INCOMPATIBLE, "major-mismatch", hint,
					"the data directory is PostgreSQL %d (catalog %u), newer than the "
					"target's PostgreSQL %d: a cluster cannot go back to an older major",
					c->major, c->catalog_version_no, f->target_major);
	}
	if (c->major != f->target_major) {
		char hint[768], why[300];
		hm_major_supported((int)c->major, f->target_major, why, sizeof why);
		snprintf(hint, sizeof hint,
			 "ways forward: upgrade the data to %d with pg_upgrade (needs both the %d "
			 "and the %d binaries), or dump with pg_dumpall and restore into a fresh %d "
			 "cluster, or keep a unified image on PostgreSQL %d (--image / --target-major %d)",
			 f->target_major, c->major, f->target_major, f->target_major, c->major, c->major);
		return hm_preflight_add(r, HM_SEV_INCOMPATIBLE, "major-mismatch", hint,
					"major upgrade needed: the data directory is PostgreSQL %d "
					"(catalog %u), the target runs PostgreSQL %d%s%s",
					c->major, c->catalog_version_no, f->target_major, why[0] ? "; " : "",
					why);
	}
	if (f->target_catalog && c->catalog_version_no != f->target_catalog)
		return hm_preflight_add(
			r, HM_SEV_INCOMPATIBLE, "catalog-mismatch",
			"the cluster comes from a pre-release or patched build; dump and restore it "
			"into the target",
			"catalog version %u of the data directory differs from %u of the target's "
			"PostgreSQL %d",
			c->catalog_version_no, f->target_catalog, f->target_major);
	return 0;
}

/* Rules on compiled-in sizes: the target image uses PostgreSQL's defaults. */
static int eval_sizes(const hm_preflight_facts *f, hm_preflight_report *r)
{
	const hm_pg_control *c = &f->control;
	struct {
		const char *code, *what;
		uint32_t have, want;
	} rules[] = {
		{"block-size", "block size", c->blcksz, TARGET_BLCKSZ},
		{"wal-block-size", "WAL block size", c->xlog_blcksz, TARGET_XLOG_BLCKSZ},
		{"wal-segment-size", "WAL segment size", c->xlog_seg_size, TARGET_XLOG_SEG_SIZE},
		{"build-option", "maximum data alignment", c->max_align, 8},
		{"build-option", "identifier length (nameDataLen)", c->name_data_len, 64},
		{"build-option", "index max keys", c->index_max_keys, 32},
		{"build-option", "TOAST chunk size", c->toast_max_chunk_size, 1996},
		{"build-option", "large-object chunk size", c->loblksize, 2048},
		{"build-option", "blocks per relation segment", c->relseg_size, 131072},
		{"build-option", "float8 pass-by-value", (uint32_t)c->float8_by_val, 1},
	};
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
		if (rules[i].have == rules[i].want)
			continue;
		if (hm_preflight_add(r, HM_SEV_INCOMPATIBLE, rules[i].code,
				     "the target image is built with PostgreSQL's defaults; dump and "
				     "restore the data into it (initdb with default sizes)",
				     "%s of the data directory is %u, the target uses %u", rules[i].what,
				     rules[i].have, rules[i].want))
			return -1;
	}
	return 0;
}

/* Rules on the cluster state: only a clean shutdown can be adopted. */
static int eval_state(const hm_preflight_facts *f, hm_preflight_report *r)
{
	uint32_t st = f->control.state;
	const char *name = hm_db_state_name(st);
	if (st == HM_DB_SHUTDOWNED)
		return 0;
	if (f->server_running) {
		char pid[48] = "";
		if (f->postmaster_pid > 0)
			snprintf(pid, sizeof pid, " (postmaster pid %ld)", (long)f->postmaster_pid);
		return hm_preflight_add(
			r, HM_SEV_WARNING, "server-running",
			"stop the split stack before migrating: docker compose stop -t 30 "
			"(hive-migrate up stops it itself)",
			"a server is running on the data directory%s; cluster state \"%s\" is expected "
			"while it runs, but the stack must be stopped before migration",
			pid, name);
	}
	if (st == HM_DB_SHUTDOWNED_IN_RECOVERY)
		return hm_preflight_add(r, HM_SEV_WARNING, "standby",
					"the cluster was a standby; promote it (or remove "
					"standby.signal) before migrating",
					"cluster state is \"%s\": the data directory belongs to a standby",
					name);
	return hm_preflight_add(r, HM_SEV_INCOMPATIBLE, "crashed",
				"start the old stack so PostgreSQL recovers, then stop it cleanly with "
				"docker compose stop -t 30, and run check again",
				"cluster state is \"%s\" but no server is running: the server crashed or was "
				"killed",
				name);
}

int hm_preflight_evaluate(const hm_preflight_facts *f, hm_preflight_report *r)
{
	if (f->have_control)
		if (eval_versions(f, r) || eval_sizes(f, r) || eval_state(f, r))
			return -1;
	/* across majors the old directory is never chowned: the new cluster is made as uid 1000 */
	if (f->have_stat && f->data_uid != f->target_uid &&
	    !(f->have_control && f->control.major != f->target_major))
		if (hm_preflight_add(r, HM_SEV_WARNING, "owner-uid",
				     "nothing to do: up changes the owner (chown -R); rollback "
				     "changes it back",
				     "the data directory belongs to uid %u, the unified container runs "
				     "as uid %u: ownership will be changed %u -> %u by up",
				     (unsigned)f->data_uid, (unsigned)f->target_uid, (unsigned)f->data_uid,
				     (unsigned)f->target_uid))
			return -1;
	if (f->have_stat) {
		unsigned m = (unsigned)(f->data_mode & 07777);
		if (m != 0700 && m != 0750)
			if (hm_preflight_add(r, HM_SEV_WARNING, "mode",
					     "chmod 0700 the data directory (PostgreSQL refuses to "
					     "start unless it is 0700 or 0750)",
					     "the data directory has mode %04o, PostgreSQL wants 0700 "
					     "(or 0750)",
					     m))
				return -1;
	}
	if (f->n_tablespaces_outside > 0)
		if (hm_preflight_add(r, HM_SEV_INCOMPATIBLE, "tablespace-outside",
				     "move the tablespaces into the default one (ALTER TABLE/INDEX "
				     "... SET TABLESPACE pg_default, then DROP TABLESPACE) before "
				     "migrating",
				     "%d tablespace(s) live outside the data directory (first: %s); "
				     "the unified container would not see them",
				     f->n_tablespaces_outside, f->tablespace_outside))
			return -1;
	if (f->have_disk) {
		double need = (double)f->data_bytes;
		if ((double)f->free_bytes < need / 4.0) {
			if (hm_preflight_add(r, HM_SEV_INCOMPATIBLE, "low-disk",
					     "free space or choose another place with --snapshot-dir",
					     "only %.1f MiB free at %s for the snapshot of %.1f MiB of data "
					     "(less than a quarter of it)",
					     (double)f->free_bytes / 1048576.0, f->disk_path,
					     need / 1048576.0))
				return -1;
		} else if ((double)f->free_bytes < need) {
			if (hm_preflight_add(
				    r, HM_SEV_WARNING, "low-disk",
				    "the compressed snapshot is usually smaller than the data; free "
				    "space or use --snapshot-dir to be safe",
				    "%.1f MiB free at %s, less than the %.1f MiB of data to snapshot",
				    (double)f->free_bytes / 1048576.0, f->disk_path, need / 1048576.0))
				return -1;
		}
	}
	for (size_t i = 0; i < f->n_extensions; i++) {
		const hm_ext_info *e = &f->extensions[i];
		if (strcmp(e->name, "vector") || !f->target_pgvector[0])
			continue;
		int c = hm_preflight_version_cmp(e->version, f->target_pgvector);
		if (c > 0) {
			if (hm_preflight_add(r, HM_SEV_INCOMPATIBLE, "extension-newer",
					     "use a unified image that ships pgvector at least this "
					     "version",
					     "database \"%s\" has pgvector %s installed, newer than the "
					     "%s the target ships",
					     e->database, e->version, f->target_pgvector))
				return -1;
		} else if (c < 0 && f->control.major == f->target_major) {
			char hint[256];
			snprintf(hint, sizeof hint,
				 "after the migration run in database \"%s\": ALTER EXTENSION vector "
				 "UPDATE",
				 e->database);
			if (hm_preflight_add(r, HM_SEV_WARNING, "extension-older", hint,
					     "database \"%s\" has pgvector %s, older than the %s the "
					     "target ships",
					     e->database, e->version, f->target_pgvector))
				return -1;
		}
	}
	return 0;
}
