/* The split stack as compose resolves it: `docker compose --project-directory DIR
 * --profile P config --format json`, read for one profile (agent|genie): the database and
 * API services, their container names and published ports, the data directory's bind
 * mount, PGDATA, and the database credentials (POSTGRES_USER/DB/PASSWORD). The password
 * stays in memory: it is never printed, logged or put on a command line. */
#ifndef HM_STACK_H
#define HM_STACK_H

#include <limits.h>

#include "../common/error.h"

typedef struct hm_stack {
	char dir[PATH_MAX];	/* absolute project directory */
	char project[128];	/* compose project name */
	char profile[16];	/* agent | genie */
	char pg_service[64];	/* postgres-agent */
	char api_service[64];	/* agent-api */
	char pg_container[128]; /* container_name (or "" when compose names it) */
	char api_container[128];
	char pg_image[256];
	char data_dir[PATH_MAX]; /* host side of the bind mount of /var/lib/postgresql/data */
	char pgdata[PATH_MAX];	 /* host path of PGDATA (data_dir + "/pgdata") */
	char pgdata_rel[256];	 /* PGDATA relative to the mount ("pgdata") */
	char db_user[64];
	char db_name[64];
	char db_password[256]; /* secret */
	int pg_port;	       /* published host port of 5432 (0 if not published) */
	char pg_host[64];      /* host_ip of that port ("127.0.0.1" if unset) */
	int api_port;	       /* published host port of the API (0 if not published) */
} hm_stack;

/* Service names of a profile ("agent" -> postgres-agent / agent-api). -1 if unknown. */
int hm_stack_services(const char *profile, char *pg, size_t pgsz, char *api, size_t apisz);

/* Resolve the stack in dir for profile. Errors: HM_EXIT_INPUT (no compose project there,
 * or the profile's services/mount/env are missing), HM_EXIT_ENGINE (compose failed). */
int hm_stack_load(const char *dir, const char *profile, hm_stack *out, hm_error *err);

/* Parse the JSON of `compose config --format json` (pure; used by hm_stack_load and the
 * unit tests). dir is recorded as given. */
int hm_stack_parse(const char *json, const char *dir, const char *profile, hm_stack *out, hm_error *err);

#endif
