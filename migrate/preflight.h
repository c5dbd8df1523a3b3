/* The preflight: can the unified container run on this split data directory? It reads
 * PG_VERSION and global/pg_control (no server needed), looks at ownership, mode,
 * tablespaces and free disk, optionally talks to the running old server, and returns a
 * verdict with a list of problems. It changes nothing. `hive-migrate check` prints the
 * report; `hive-migrate up` calls it as its step 1.
 *
 * Use:
 *     hm_preflight_opts o;
 *     hm_preflight_opts_init(&o);            // defaults: target 17, uid 1000, no live checks
 *     o.data_dir = "/srv/hive/data/postgres-agent/pgdata";   // or o.stack_dir + o.profile
 *     o.target_major = 17;                   // or o.image = "localhost/hive-unified:17"
 *     hm_preflight_report r;
 *     hm_error err;
 *     int rc = hm_preflight_run(&o, &r, &err);
 *     // rc == 0: r.verdict is COMPATIBLE / WARNINGS / INCOMPATIBLE (see r.problems).
 *     // rc == -1: r.verdict == HM_VERDICT_ERROR, err holds the first error (print it
 *     //           with hm_error_print); r is still filled (problems, whatever was read).
 *     if (rc == 0 && r.verdict == HM_VERDICT_INCOMPATIBLE) refuse (HM_EXIT_PREFLIGHT);
 *     hm_preflight_report_free(&r);          // always, whatever rc was
 *
 * hm_preflight_verdict_exit() maps a verdict to check's exit code (0/10/11/12).
 * hm_preflight_report_json() / hm_preflight_report_print() render a report.
 * hm_preflight_evaluate() is the pure rule engine (facts in, problems out) the unit
 * tests drive with a table of scenarios. */
#ifndef HM_PREFLIGHT_H
#define HM_PREFLIGHT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "../common/error.h"
#include "../common/pg_control.h"

struct hm_stack;
struct hm_compose_project;

typedef enum hm_verdict {
	HM_VERDICT_COMPATIBLE = 0,
	HM_VERDICT_WARNINGS = 1,
	HM_VERDICT_INCOMPATIBLE = 2,
	HM_VERDICT_ERROR = 3,
} hm_verdict;

typedef enum hm_severity {
	HM_SEV_WARNING = 1,
	HM_SEV_INCOMPATIBLE = 2,
	HM_SEV_ERROR = 3,
} hm_severity;

/* One finding. code is stable (docs/check.md lists them): "major-mismatch",
 * "catalog-mismatch", "crashed", "server-running", "owner-uid", "mode", ... */
typedef struct hm_problem {
	char code[40];
	hm_severity severity;
	char message[1024];
	char hint[768];
} hm_problem;

typedef struct hm_preflight_opts {
	/* Where the data is: data_dir (the PGDATA directory, holding PG_VERSION), or
	 * stack_dir + profile ("agent"|"genie"): the split compose project; the data dir is
	 * the bind mount of /var/lib/postgresql/data of service postgres-<profile> + /pgdata,
	 * and the live-server DSN comes from its published port and environment. */
	const char *data_dir;
	const char *stack_dir;
	const char *profile;
	/* Target: image (its PostgreSQL major and pgvector version are read from it), else
	 * target_major (default 17) with the built-in table. */
	const char *image;
	int target_major;
	uid_t target_uid;	  /* uid the unified container runs as (default 1000) */
	const char *snapshot_dir; /* where the snapshot will go (free-space check); NULL = data dir */
	/* Live server (optional): host/port (0: libpq's default)/user/dbname; conninfo is
	 * check's --dbname (a libpq connection string, URI or database name); password from
	 * `password` (never from argv: check takes it from PGPASSWORD or PGPASSFILE, libpq's
	 * own rules). Unset values come from libpq's environment (hm_pf_conn_build). */
	const char *host;
	int port;
	const char *user;
	const char *dbname;
	const char *conninfo;
	const char *password;
	int no_live;	     /* 1: never connect, even when --stack gives a DSN */
	int connect_timeout; /* seconds (default 3) */
	/* The split stack instead of stack_dir: already loaded (up does), or to be loaded from
	 * compose options (check: compose + db_service/api_service, see migrate/stack.h). Its
	 * data directory and server are checked, and its services, its data layout and the
	 * settings of its command line are reported. */
	const struct hm_stack *stack;
	const struct hm_compose_project *compose;
	const char *db_service;
	const char *api_service;
	/* --locale-map: "OLD=NEW\n" lines (hm_major_locale_map_add); NULL none */
	const char *locale_map;
} hm_preflight_opts;

typedef struct hm_db_info {
	char name[128];
	int64_t size_bytes;
} hm_db_info;

typedef struct hm_ext_info {
	char database[128];
	char name[64];
	char version[32];
} hm_ext_info;

/* Facts gathered from the data directory, the target and the server: the input of the
 * pure rule engine. */
typedef struct hm_preflight_facts {
	int pg_version;	  /* PG_VERSION major, 0 if unread */
	int have_control; /* control holds a valid (CRC-checked) pg_control */
	hm_pg_control control;
	int target_major;
	uint32_t target_catalog;  /* 0 if unknown (major not in the table) */
	char target_pgvector[32]; /* "" if unknown */
	uid_t target_uid;
	int have_stat; /* data_uid / data_mode valid */
	uid_t data_uid;
	mode_t data_mode;   /* permission bits of the data directory */
	int server_running; /* postmaster.pid with a live pid, or a connection succeeded */
	pid_t postmaster_pid;
	int connected;		      /* the live checks ran */
	char tablespace_outside[512]; /* first pg_tblspc link pointing outside, "" if none */
	int n_tablespaces_outside;
	int have_disk;
	uint64_t data_bytes; /* total size of the data directory */
	uint64_t free_bytes; /* free space where the snapshot goes */
	char disk_path[512]; /* where free_bytes was measured */
	const hm_ext_info *extensions;
	size_t n_extensions;
	/* For a change of major (preflight_major.c): the extensions the target can install
	 * (newline-separated names, NULL when unknown: no --image), the databases' locales
	 * against the target's, roles whose password is an md5 hash, the sum of the database
	 * sizes. Filled only when connected / when the image could be read. */
	const char *target_extensions;
	const char *target_locales; /* `locale -a` of the target, NULL when unknown */
	char locale_problem[256];   /* first database whose locale the target lacks ("" none) */
	char locale_mapped[256];    /* first database whose locale --locale-map replaces ("" none) */
	int n_md5_roles;
	char md5_role[64]; /* the first of them */
	uint64_t db_bytes;
} hm_preflight_facts;

typedef struct hm_preflight_report {
	hm_verdict verdict;
	hm_problem *problems;
	size_t n_problems;
	char data_dir[4096];	  /* the PGDATA directory checked */
	hm_preflight_facts facts; /* includes control, pg_version, target, disk ... */
	hm_db_info *databases;	  /* when connected */
	size_t n_databases;
	hm_ext_info *extensions; /* when connected (facts.extensions points here) */
	size_t n_extensions;
	char server[256];	 /* "host:port user@dbname" when connected, "" otherwise */
	char *target_extensions; /* owned copies behind facts.target_extensions/_locales */
	char *target_locales;
	struct hm_stack *stack; /* the split stack checked (password cleared), NULL without one */
} hm_preflight_report;

/* Defaults: target_major 17, target_uid 1000, port 0 (libpq's), connect_timeout 3. */
void hm_preflight_opts_init(hm_preflight_opts *opts);

/* Run every check. 0 with verdict compatible/warnings/incompatible; -1 with verdict
 * error (err holds the first error). The report is filled either way; free it. */
int hm_preflight_run(const hm_preflight_opts *opts, hm_preflight_report *report, hm_error *err);

void hm_preflight_report_free(hm_preflight_report *report);

/* The pure rule engine: append the problems the facts imply to report and recompute
 * the verdict. Does no I/O. 0, or -1 on allocation failure. */
int hm_preflight_evaluate(const hm_preflight_facts *facts, hm_preflight_report *report);

/* Append a problem (the verdict is updated). 0, or -1 on allocation failure. */
int hm_preflight_add(hm_preflight_report *report, hm_severity sev, const char *code, const char *hint,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Find a problem by code (NULL if absent). */
const hm_problem *hm_preflight_find(const hm_preflight_report *report, const char *code);

/* Built-in table: catalog version of a PostgreSQL major (0 if unknown) and the pgvector
 * version the unified image ships for it ("" if unknown). */
uint32_t hm_preflight_catalog_for_major(int major);
const char *hm_preflight_pgvector_for_major(int major);

/* Compare dotted versions ("0.8.0" < "0.8.7" < "0.10.0"): <0, 0, >0. */
int hm_preflight_version_cmp(const char *a, const char *b);

const char *hm_verdict_name(hm_verdict v);   /* "compatible", "warnings", ... */
const char *hm_severity_name(hm_severity s); /* "warning", "incompatible", "error" */
int hm_preflight_verdict_exit(hm_verdict v); /* 0 / 10 / 11 / 12 */

/* The report as JSON (verdict, problems, control, pg_version, target, databases,
 * extensions, data_dir, ...). Caller owns the object (json_object_put). */
json_object *hm_preflight_report_json(const hm_preflight_report *report);

/* The report for humans. */
void hm_preflight_report_print(const hm_preflight_report *report, FILE *f);

/* Rules on the split stack itself (pure): the data layout the unified container needs
 * (PGDATA in a folder named pgdata: "pgdata-layout", incompatible) and the settings of the
 * database's command line that cannot be carried ("settings-not-carried", warning).
 * 0, or -1 on allocation failure. */
int hm_preflight_stack_rules(const struct hm_stack *stack, hm_preflight_report *report);

#endif
