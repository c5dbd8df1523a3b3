/* Reading the split stack through compose itself (config --format json) rather than
 * parsing YAML: variables from .env, profiles and defaults are then resolved exactly as
 * compose will when we stop and start the stack. */
#include "stack.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compose.h"

int hm_stack_services(const char *profile, char *pg, size_t pgsz, char *api, size_t apisz)
{
	if (strcmp(profile, "agent") != 0 && strcmp(profile, "genie") != 0)
		return -1;
	snprintf(pg, pgsz, "postgres-%s", profile);
	snprintf(api, apisz, "%s-api", profile);
	return 0;
}

/* String member of an object or NULL. */
static const char *str_of(json_object *o, const char *k)
{
	json_object *v;
	if (!o || !json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Published host port for a container port (and its host_ip). 0 if none. */
static int published_port(json_object *svc, int target, char *host, size_t hostsz)
{
	json_object *ports, *p, *v;
	if (!json_object_object_get_ex(svc, "ports", &ports) || !json_object_is_type(ports, json_type_array))
		return 0;
	for (size_t i = 0; i < json_object_array_length(ports); i++) {
		p = json_object_array_get_idx(ports, i);
		if (!json_object_object_get_ex(p, "target", &v) || json_object_get_int(v) != target)
			continue;
		const char *pub = str_of(p, "published");
		int port = pub ? atoi(pub) : 0;
		if (!pub && json_object_object_get_ex(p, "published", &v))
			port = json_object_get_int(v);
		if (host) {
			const char *h = str_of(p, "host_ip");
			snprintf(host, hostsz, "%s",
				 h && h[0] && strcmp(h, "0.0.0.0") != 0 ? h : "127.0.0.1");
		}
		return port;
	}
	return 0;
}

/* Copy a value into a fixed buffer, failing on overflow. */
static int copy(char *dst, size_t dsz, const char *src)
{
	return snprintf(dst, dsz, "%s", src ? src : "") >= (int)dsz ? -1 : 0;
}

int hm_stack_parse(const char *json, const char *dir, const char *profile, hm_stack *out, hm_error *err)
{
	json_object *root = json_tokener_parse(json), *services, *pg, *api, *env, *vols;
	int rc = -1;
	memset(out, 0, sizeof *out);
	if (!root || !json_object_is_type(root, json_type_object)) {
		hm_error_set(err, HM_EXIT_INPUT, "compose config of \"%s\" is not JSON", dir);
		goto cleanup;
	}
	copy(out->dir, sizeof out->dir, dir);
	copy(out->profile, sizeof out->profile, profile);
	copy(out->project, sizeof out->project, str_of(root, "name"));
	if (hm_stack_services(profile, out->pg_service, sizeof out->pg_service, out->api_service,
			      sizeof out->api_service) != 0) {
		hm_error_set(err, HM_EXIT_USAGE, "unknown profile \"%s\" (agent or genie)", profile);
		goto cleanup;
	}
	if (!json_object_object_get_ex(root, "services", &services) ||
	    !json_object_object_get_ex(services, out->pg_service, &pg)) {
		hm_error_set(err, HM_EXIT_INPUT, "the stack in \"%s\" has no service \"%s\"", dir,
			     out->pg_service);
		hm_error_hint(err, "pass --stack DIR of the split stack and the right --profile");
		goto cleanup;
	}
	if (json_object_object_get_ex(services, out->api_service, &api)) {
		copy(out->api_container, sizeof out->api_container, str_of(api, "container_name"));
		/* the API listens on HIVE_API_PORT inside (the reference app); find its published port */
		json_object *aenv = NULL;
		json_object_object_get_ex(api, "environment", &aenv);
		const char *ap = str_of(aenv, "HIVE_API_PORT");
		out->api_port = published_port(
			api, ap ? atoi(ap) : (!strcmp(profile, "agent") ? 38886 : 48886), NULL, 0);
	}
	copy(out->pg_container, sizeof out->pg_container, str_of(pg, "container_name"));
	copy(out->pg_image, sizeof out->pg_image, str_of(pg, "image"));
	out->pg_port = published_port(pg, 5432, out->pg_host, sizeof out->pg_host);
	if (!json_object_object_get_ex(pg, "environment", &env)) {
		hm_error_set(err, HM_EXIT_INPUT, "service \"%s\" in \"%s\" has no environment",
			     out->pg_service, dir);
		goto cleanup;
	}
	const char *user = str_of(env, "POSTGRES_USER"), *db = str_of(env, "POSTGRES_DB");
	const char *pw = str_of(env, "POSTGRES_PASSWORD"), *pgdata = str_of(env, "PGDATA");
	if (!user)
		user = "postgres";
	if (!db)
		db = user;
	if (!pw) {
		hm_error_set(err, HM_EXIT_INPUT, "service \"%s\" in \"%s\" has no POSTGRES_PASSWORD",
			     out->pg_service, dir);
		goto cleanup;
	}
	if (copy(out->db_user, sizeof out->db_user, user) || copy(out->db_name, sizeof out->db_name, db) ||
	    copy(out->db_password, sizeof out->db_password, pw)) {
		hm_error_set(err, HM_EXIT_INPUT, "credentials of \"%s\" too long", out->pg_service);
		goto cleanup;
	}
	const char *mount = "/var/lib/postgresql/data";
	if (!pgdata)
		pgdata = mount;
	if (strncmp(pgdata, mount, strlen(mount)) != 0) {
		hm_error_set(err, HM_EXIT_INPUT, "PGDATA \"%s\" of \"%s\" is not below %s", pgdata,
			     out->pg_service, mount);
		goto cleanup;
	}
	const char *rel = pgdata + strlen(mount);
	while (*rel == '/')
		rel++;
	copy(out->pgdata_rel, sizeof out->pgdata_rel, rel);
	if (json_object_object_get_ex(pg, "volumes", &vols) && json_object_is_type(vols, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(vols); i++) {
			json_object *v = json_object_array_get_idx(vols, i);
			const char *t = str_of(v, "target"), *ty = str_of(v, "type"),
				   *src = str_of(v, "source");
			if (t && !strcmp(t, mount) && ty && !strcmp(ty, "bind") && src)
				copy(out->data_dir, sizeof out->data_dir, src);
		}
	}
	if (!out->data_dir[0]) {
		hm_error_set(err, HM_EXIT_INPUT, "service \"%s\" in \"%s\" has no bind mount of %s",
			     out->pg_service, dir, mount);
		hm_error_hint(err, "hive-migrate moves data kept in a host directory (./data/postgres-%s)",
			      profile);
		goto cleanup;
	}
	if (snprintf(out->pgdata, sizeof out->pgdata, "%s%s%s", out->data_dir, rel[0] ? "/" : "", rel) >=
	    (int)sizeof out->pgdata) {
		hm_error_set(err, HM_EXIT_INPUT, "data path too long");
		goto cleanup;
	}
	rc = 0;
cleanup:
	json_object_put(root);
	return rc;
}

int hm_stack_load(const char *dir, const char *profile, hm_stack *out, hm_error *err)
{
	char *json = NULL;
	char *argv[] = {"docker",    "compose",	  "--project-directory",
			(char *)dir, "--profile", (char *)profile,
			"config",    "--format",  "json",
			NULL};
	if (hm_proc_check(argv, "reading the split stack (docker compose config)", &json, err) != 0) {
		hm_error_prefix(err, "stack \"%s\"", dir);
		return hm_error_hint(
			err, "pass --stack DIR: the directory holding the split stack's docker-compose.yml");
	}
	int rc = hm_stack_parse(json, dir, profile, out, err);
	free(json);
	return rc;
}
