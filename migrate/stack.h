/* The split stack as compose resolves it: `docker compose [-f FILE]... [--project-directory
 * DIR] [-p NAME] --profile P config --format json`, read for one profile (agent|genie).
 *
 * The services are found by role, not by name: the database is the service that runs
 * PostgreSQL (its image or its command says so) with PGDATA on a bind mount or a named
 * volume; the API services are those that depend on it (depends_on) or name it as a host
 * in their environment (HIVE_DATABASE_URL=...@postgres-agent:5432/...). --db-service and
 * --api-service override; an ambiguous stack is an error listing the candidates.
 *
 * Also read: container names, published ports (with or without a host IP), PGDATA, the
 * credentials (POSTGRES_USER/DB/PASSWORD, defaults as the official image), the user the
 * database runs as, and the settings given to postgres on its command line (`command:
 * postgres -c shared_buffers=128MB ...`), sorted into those the unified container can carry
 * and those it cannot (with the reason). The password stays in memory: it is never
 * printed, logged or put on a command line. */
#ifndef HM_STACK_H
#define HM_STACK_H

#include <limits.h>

#include "../common/error.h"
#include "compose.h"

#define HM_STACK_MAX_APIS 8
#define HM_STACK_MAX_SETTINGS 32
#define HM_STACK_MAX_SKIPPED 16

/* Explicit choices that override the search by role (NULL or "" = search). */
typedef struct hm_stack_select {
	const char *db_service;
	const char *api_service;
} hm_stack_select;

/* A setting carried into the unified container (postgresql.conf name and value). */
typedef struct hm_pg_setting {
	char name[64];
	char value[256];
} hm_pg_setting;

/* A part of the database's command line that is not carried, and why. lost = 1 when the
 * split server's behaviour depended on it (check warns), 0 when the unified container sets
 * it itself (listen_addresses, port, socket directory, data directory). */
typedef struct hm_pg_skipped {
	char what[160];
	char reason[200];
	int lost;
} hm_pg_skipped;

typedef struct hm_stack {
	char dir[PATH_MAX];	/* absolute compose project directory */
	char project[128];	/* compose project name (as compose resolved it) */
	char profile[16];	/* agent | genie */
	char pg_service[64];	/* the database service, e.g. postgres-agent */
	char api_service[64];	/* the API service whose port the unified API takes ("" if none) */
	char pg_container[128]; /* container_name (or "" when compose names it) */
	char api_container[128];
	char pg_image[256];
	char data_dir[PATH_MAX]; /* host side of the mount holding PGDATA (bind source or volume path) */
	char pgdata[PATH_MAX];	 /* host path of PGDATA (data_dir + "/" + pgdata_rel) */
	char pgdata_rel[256];	 /* PGDATA relative to the mount ("pgdata") */
	char db_user[64];
	char db_name[64];
	char db_password[256]; /* secret */
	int pg_port;	       /* published host port of the server's port (0 if not published) */
	char pg_host[64];      /* host_ip of that port ("127.0.0.1" if unset or 0.0.0.0): to connect */
	int api_port;	       /* published host port of the API (0 if not published) */

	/* added for stacks as users have them */
	hm_compose_project compose;		  /* replay: files, project directory, name, profile */
	char api_services[HM_STACK_MAX_APIS][64]; /* every service using the database */
	int n_api_services;			  /* (stopped and started with it) */
	char pg_bind[64];			  /* host_ip of the published port as written ("" = all) */
	char api_bind[64];			  /* same for the API */
	char pg_run_as[64];			  /* user: of the database service ("" = image default) */
	char data_target[PATH_MAX];		  /* container path of that mount */
	char data_volume[256];			  /* named volume ("" = bind mount) */
	int pg_internal_port;			  /* port inside the container (5432) */
	hm_pg_setting settings[HM_STACK_MAX_SETTINGS]; /* carried (from command:) */
	int n_settings;
	hm_pg_skipped skipped[HM_STACK_MAX_SKIPPED]; /* not carried */
	int n_skipped;
} hm_stack;

/* Legacy service names of fixtures/split ("agent" -> postgres-agent / agent-api). -1 if the
 * profile is unknown. */
int hm_stack_services(const char *profile, char *pg, size_t pgsz, char *api, size_t apisz);

/* Resolve the stack of project p (its profile) through `docker compose config`; named
 * volumes are located with `docker volume inspect`. sel may be NULL. Errors: HM_EXIT_INPUT
 * (no database service, ambiguous services, no data mount, missing credentials, an unusable
 * volume), HM_EXIT_ENGINE (compose failed). */
int hm_stack_load_project(const hm_compose_project *p, const hm_stack_select *sel, hm_stack *out,
			  hm_error *err);

/* Legacy: the stack in dir (its compose file found there), services by their fixtures/split
 * names when present, else by role. */
int hm_stack_load(const char *dir, const char *profile, hm_stack *out, hm_error *err);

/* Parse the JSON of `compose config --format json` for project p (pure: used by
 * hm_stack_load_project and the unit tests). A named volume is recorded in data_volume and
 * its path is left empty (hm_stack_load_project fills it in). */
int hm_stack_parse_project(const char *json, const hm_compose_project *p, const hm_stack_select *sel,
			   hm_stack *out, hm_error *err);

/* Legacy pure parse: project directory dir, services postgres-PROFILE / PROFILE-api. */
int hm_stack_parse(const char *json, const char *dir, const char *profile, hm_stack *out, hm_error *err);

/* Set the data path of a named volume (its Mountpoint, or the device of a local bind
 * volume) and recompute pgdata. */
int hm_stack_set_volume_path(hm_stack *s, const char *path, hm_error *err);

/* The carried settings as the unified image's HIVE_PG_SETTINGS: `-c "name=value" ...`
 * (double quotes, backslash before \ and "). "" when there are none. -1 if it does not fit. */
int hm_stack_settings_arg(const hm_stack *s, char *out, size_t outsz);

/* The folder the unified container mounts at /var/lib/postgresql/data: the parent of PGDATA
 * when it is named pgdata (the unified image's PGDATA is /var/lib/postgresql/data/pgdata;
 * the preflight refuses any other layout: pgdata-layout), else data_dir. */
void hm_stack_unified_data_dir(const hm_stack *s, char *out, size_t outsz);

/* Parse a postgres command line (argv of `command:`) into carried settings and skipped
 * parts (pure; used by the parser and the unit tests). Appends to s->settings/skipped. */
void hm_stack_parse_command(hm_stack *s, const char *const argv[], int argc);

#endif
