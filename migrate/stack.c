/* Reading the split stack through compose itself (config --format json) rather than
 * parsing YAML: variables from .env, `${VAR:-default}`, list or map environments, profiles,
 * relative paths and project names are then resolved exactly as compose will when we stop
 * and start the stack. What is left to us is finding the services by what they do. */
#include "stack.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compose.h"

#define DEFAULT_PGDATA "/var/lib/postgresql/data"

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

/* Copy a value into a fixed buffer, failing on overflow. */
static int copy(char *dst, size_t dsz, const char *src)
{
	return snprintf(dst, dsz, "%s", src ? src : "") >= (int)dsz ? -1 : 0;
}

/* A variable of a service's environment (a map in compose's output; a "K=V" list is read
 * too). NULL when absent or without a value. */
static const char *env_get(json_object *svc, const char *key)
{
	json_object *env;
	if (!json_object_object_get_ex(svc, "environment", &env))
		return NULL;
	if (json_object_is_type(env, json_type_object))
		return str_of(env, key);
	if (!json_object_is_type(env, json_type_array))
		return NULL;
	size_t kl = strlen(key);
	for (size_t i = 0; i < json_object_array_length(env); i++) {
		const char *e = json_object_get_string(json_object_array_get_idx(env, i));
		if (e && !strncmp(e, key, kl) && e[kl] == '=')
			return e + kl + 1;
	}
	return NULL;
}

/* Does text name host as a whole word (not part of a longer host name)? */
static int names_host(const char *text, const char *host)
{
	size_t hl = strlen(host);
	if (!text || !hl)
		return 0;
	for (const char *p = strstr(text, host); p; p = strstr(p + 1, host)) {
		char before = p == text ? ' ' : p[-1], after = p[hl];
		int word_b = !(before == '-' || before == '_' || before == '.' ||
			       (before >= 'a' && before <= 'z') || (before >= 'A' && before <= 'Z') ||
			       (before >= '0' && before <= '9'));
		int word_a =
			!(after == '-' || after == '_' || after == '.' || (after >= 'a' && after <= 'z') ||
			  (after >= 'A' && after <= 'Z') || (after >= '0' && after <= '9'));
		if (word_b && word_a)
			return 1;
	}
	return 0;
}

/* Is token (e.g. the profile) one of the "-"/"_"/"." separated words of name? */
static int has_token(const char *name, const char *token)
{
	size_t tl = strlen(token);
	for (const char *p = name; *p;) {
		size_t n = strcspn(p, "-_.");
		if (n == tl && !strncmp(p, token, tl))
			return 1;
		p += n;
		if (*p)
			p++;
	}
	return 0;
}

/* One service of the configuration, with what the search by role found out about it. */
typedef struct svc_info {
	const char *name;
	json_object *o;
	int postgres;		/* runs PostgreSQL (image or command) */
	int has_data;		/* PGDATA is on a bind mount or a named volume */
	char why_no_data[200];	/* when postgres && !has_data */
	const char *mount_type; /* "bind" | "volume" */
	const char *mount_src;	/* bind: host path; volume: the key in volumes: */
	const char *mount_tgt;	/* container path */
	const char *pgdata;	/* PGDATA inside the container */
	int api;		/* depends on / points at the chosen database */
	int ports;		/* number of published ports */
} svc_info;

/* Last path component of an image name without tag or digest, lower case. */
static void image_base(const char *image, char *out, size_t outsz)
{
	const char *slash = strrchr(image, '/');
	snprintf(out, outsz, "%s", slash ? slash + 1 : image);
	out[strcspn(out, ":@")] = '\0';
	for (char *c = out; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
}

/* First element of a command/entrypoint array (or of a string, up to a blank). */
static void first_word(json_object *svc, const char *key, char *out, size_t outsz)
{
	json_object *v;
	out[0] = '\0';
	if (!json_object_object_get_ex(svc, key, &v) || !v)
		return;
	const char *s = json_object_is_type(v, json_type_array)
				? json_object_get_string(json_object_array_get_idx(v, 0))
				: json_object_get_string(v);
	if (!s)
		return;
	const char *slash = strrchr(s, '/');
	snprintf(out, outsz, "%s", slash ? slash + 1 : s);
	out[strcspn(out, " \t")] = '\0';
}

/* Fill the role facts of one service (the database part). */
static void classify(svc_info *si)
{
	char img[128], cmd[64];
	image_base(str_of(si->o, "image") ? str_of(si->o, "image") : "", img, sizeof img);
	first_word(si->o, "command", cmd, sizeof cmd);
	si->postgres = strstr(img, "postgres") || strstr(img, "pgvector") || strstr(img, "postgis") ||
		       strstr(img, "timescale") || !strcmp(cmd, "postgres") || !strcmp(cmd, "postmaster");
	si->pgdata = env_get(si->o, "PGDATA");
	if (!si->pgdata || si->pgdata[0] != '/')
		si->pgdata = DEFAULT_PGDATA;
	json_object *vols, *p;
	if (json_object_object_get_ex(si->o, "ports", &p) && json_object_is_type(p, json_type_array))
		si->ports = (int)json_object_array_length(p);
	if (!json_object_object_get_ex(si->o, "volumes", &vols) ||
	    !json_object_is_type(vols, json_type_array)) {
		snprintf(si->why_no_data, sizeof si->why_no_data,
			 "no volume at all: PGDATA %s is inside the container", si->pgdata);
		return;
	}
	size_t best = 0;
	for (size_t i = 0; i < json_object_array_length(vols); i++) {
		json_object *v = json_object_array_get_idx(vols, i);
		const char *t = str_of(v, "target"), *ty = str_of(v, "type"), *src = str_of(v, "source");
		size_t tl = t ? strlen(t) : 0;
		while (tl > 1 && t[tl - 1] == '/')
			tl--;
		if (!t || !ty || strncmp(si->pgdata, t, tl) != 0 || (si->pgdata[tl] != '/' && si->pgdata[tl]))
			continue;
		if (tl <= best)
			continue;
		best = tl;
		if (!strcmp(ty, "tmpfs")) {
			si->has_data = 0;
			snprintf(si->why_no_data, sizeof si->why_no_data, "PGDATA %s is on a tmpfs",
				 si->pgdata);
		} else if ((!strcmp(ty, "bind") || !strcmp(ty, "volume")) && src && src[0]) {
			si->has_data = 1;
			si->mount_type = ty;
			si->mount_src = src;
			si->mount_tgt = t;
		} else {
			si->has_data = 0;
			snprintf(si->why_no_data, sizeof si->why_no_data,
				 "PGDATA %s is on an anonymous volume", si->pgdata);
		}
	}
	if (!best)
		snprintf(si->why_no_data, sizeof si->why_no_data,
			 "no bind mount or volume holds PGDATA %s: it is inside the container", si->pgdata);
}

/* Does service si use the database db (depends_on it, or names it as a host)? */
static int uses_db(const svc_info *si, const svc_info *db)
{
	json_object *dep, *env, *nets, *container;
	const char *hosts[16];
	int nh = 0;
	if (json_object_object_get_ex(si->o, "depends_on", &dep)) {
		if (json_object_is_type(dep, json_type_object) &&
		    json_object_object_get_ex(dep, db->name, NULL))
			return 1;
		if (json_object_is_type(dep, json_type_array))
			for (size_t i = 0; i < json_object_array_length(dep); i++) {
				const char *d = json_object_get_string(json_object_array_get_idx(dep, i));
				if (d && !strcmp(d, db->name))
					return 1;
			}
	}
	hosts[nh++] = db->name;
	if (json_object_object_get_ex(db->o, "container_name", &container))
		hosts[nh++] = json_object_get_string(container);
	if (str_of(db->o, "hostname"))
		hosts[nh++] = str_of(db->o, "hostname");
	if (json_object_object_get_ex(db->o, "networks", &nets) &&
	    json_object_is_type(nets, json_type_object)) {
		json_object_object_foreach(nets, net, cfg)
		{
			json_object *al;
			(void)net;
			if (!cfg || !json_object_object_get_ex(cfg, "aliases", &al) ||
			    !json_object_is_type(al, json_type_array))
				continue;
			for (size_t i = 0; i < json_object_array_length(al) && nh < 16; i++)
				hosts[nh++] = json_object_get_string(json_object_array_get_idx(al, i));
		}
	}
	if (!json_object_object_get_ex(si->o, "environment", &env))
		return 0;
	for (int h = 0; h < nh; h++) {
		if (json_object_is_type(env, json_type_object)) {
			json_object_object_foreach(env, k, v)
			{
				(void)k;
				if (v && json_object_is_type(v, json_type_string) &&
				    names_host(json_object_get_string(v), hosts[h]))
					return 1;
			}
		} else if (json_object_is_type(env, json_type_array)) {
			for (size_t i = 0; i < json_object_array_length(env); i++) {
				const char *e = json_object_get_string(json_object_array_get_idx(env, i));
				const char *eq = e ? strchr(e, '=') : NULL;
				if (eq && names_host(eq + 1, hosts[h]))
					return 1;
			}
		}
	}
	return 0;
}

/* Published port of a service for container port target (or, with target 0, its only
 * port / the best guess); host_raw gets the host_ip as written ("" = all interfaces). */
static int published(json_object *svc, int target, char *host_raw, size_t hsz, int *target_out)
{
	json_object *ports, *v;
	host_raw[0] = '\0';
	if (!json_object_object_get_ex(svc, "ports", &ports) || !json_object_is_type(ports, json_type_array))
		return 0;
	for (size_t i = 0; i < json_object_array_length(ports); i++) {
		json_object *p = json_object_array_get_idx(ports, i);
		if (!json_object_object_get_ex(p, "target", &v))
			continue;
		int t = json_object_get_int(v);
		if (target && t != target)
			continue;
		const char *pub = str_of(p, "published");
		int port = pub ? atoi(pub) : 0;
		if (!pub && json_object_object_get_ex(p, "published", &v))
			port = json_object_get_int(v);
		if (port <= 0)
			continue;
		const char *h = str_of(p, "host_ip");
		snprintf(host_raw, hsz, "%s", h ? h : "");
		if (target_out)
			*target_out = t;
		return port;
	}
	return 0;
}

/* "a, b, c": the names of the services matching a predicate, for error messages. */
static void list_names(const svc_info *s, size_t n, int (*pred)(const svc_info *), char *out, size_t outsz)
{
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (pred && !pred(&s[i]))
			continue;
		size_t l = strlen(out);
		snprintf(out + l, outsz - l, "%s%s", l ? ", " : "", s[i].name);
	}
	if (!out[0])
		snprintf(out, outsz, "none");
}

static int is_db_candidate(const svc_info *s)
{
	return s->postgres && s->has_data;
}

static int is_pg_without_data(const svc_info *s)
{
	return s->postgres && !s->has_data;
}

/* Candidate list with where each keeps its data: "a (bind /x), b (volume v)". */
static void list_db_candidates(const svc_info *s, size_t n, char *out, size_t outsz)
{
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (!is_db_candidate(&s[i]))
			continue;
		size_t l = strlen(out);
		snprintf(out + l, outsz - l, "%s%s (%s %s)", l ? ", " : "", s[i].name, s[i].mount_type,
			 s[i].mount_src);
	}
}

static svc_info *find_svc(svc_info *s, size_t n, const char *name)
{
	for (size_t i = 0; name && i < n; i++)
		if (!strcmp(s[i].name, name))
			return &s[i];
	return NULL;
}

/* The database service: the choice, else the one PostgreSQL service with its data on the
 * host (the profile's name breaks a tie: postgres-agent for agent). */
static svc_info *choose_db(svc_info *s, size_t n, const char *want, const char *profile, const char *where,
			   hm_error *err)
{
	char names[1024];
	svc_info *db = NULL;
	if (want && want[0]) {
		if (!(db = find_svc(s, n, want))) {
			list_names(s, n, NULL, names, sizeof names);
			hm_error_set(err, HM_EXIT_INPUT, "the stack %s has no service \"%s\" (services: %s)",
				     where, want, names);
			hm_error_hint(err, "pass --db-service with the service that runs PostgreSQL, and the "
					   "right --profile");
			return NULL;
		}
		if (!db->has_data) {
			hm_error_set(err, HM_EXIT_INPUT,
				     "service \"%s\" of the stack %s keeps no data on the host: %s", want,
				     where, db->why_no_data);
			hm_error_hint(err,
				      "hive-migrate moves a data directory kept on the host: mount one at "
				      "PGDATA's directory (docs/migration.md)");
			return NULL;
		}
		return db;
	}
	size_t nc = 0, nt = 0;
	svc_info *cand = NULL, *tok = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!is_db_candidate(&s[i]))
			continue;
		nc++;
		cand = &s[i];
		if (has_token(s[i].name, profile))
			nt++, tok = &s[i];
	}
	if (nc == 1)
		return cand;
	if (nc > 1 && nt == 1)
		return tok;
	if (nc > 1) {
		list_db_candidates(s, n, names, sizeof names);
		hm_error_set(err, HM_EXIT_INPUT,
			     "the stack %s has %zu PostgreSQL services with their data on the host: %s",
			     where, nc, names);
		hm_error_hint(err, "pick the one to migrate with --db-service NAME");
		return NULL;
	}
	svc_info *bare = NULL;
	for (size_t i = 0; i < n && !bare; i++)
		if (is_pg_without_data(&s[i]))
			bare = &s[i];
	if (bare) {
		hm_error_set(
			err, HM_EXIT_INPUT,
			"service \"%s\" of the stack %s runs PostgreSQL but keeps no data on the host (%s): "
			"there is nothing to migrate",
			bare->name, where, bare->why_no_data);
		hm_error_hint(err,
			      "its data is lost with the container; to keep it, mount a host directory at "
			      "PGDATA's directory first (docs/migration.md)");
		return NULL;
	}
	list_names(s, n, NULL, names, sizeof names);
	hm_error_set(err, HM_EXIT_INPUT, "no service of the stack %s runs PostgreSQL (services: %s)", where,
		     names);
	hm_error_hint(err,
		      "pass --db-service NAME, or the compose file of the split stack with --compose-file "
		      "and the right --profile");
	return NULL;
}

/* The API services (every user of db) and the main one, whose published port the unified
 * API takes: the choice, else the one that publishes a port. */
static int choose_apis(svc_info *s, size_t n, svc_info *db, const char *want, const char *profile,
		       const char *where, hm_stack *out, hm_error *err)
{
	char names[1024];
	svc_info *main_api = NULL;
	if (want && want[0]) {
		if (!(main_api = find_svc(s, n, want)) || main_api == db) {
			list_names(s, n, NULL, names, sizeof names);
			hm_error_set(err, HM_EXIT_INPUT,
				     "the stack %s has no API service \"%s\" (services: %s)", where, want,
				     names);
			return hm_error_hint(err, "pass --api-service with the service of the hive API");
		}
		main_api->api = 1;
	}
	size_t n_api = 0, n_pub = 0, n_tok = 0;
	svc_info *pub = NULL, *tok = NULL, *first = NULL;
	for (size_t i = 0; i < n; i++) {
		if (&s[i] == db)
			continue;
		if (!s[i].api)
			s[i].api = uses_db(&s[i], db);
		if (!s[i].api)
			continue;
		if (n_api >= HM_STACK_MAX_APIS)
			return hm_error_set(err, HM_EXIT_INPUT,
					    "more than %d services of the stack %s use \"%s\"",
					    HM_STACK_MAX_APIS, where, db->name);
		copy(out->api_services[n_api], sizeof out->api_services[n_api], s[i].name);
		n_api++;
		if (!first)
			first = &s[i];
		if (s[i].ports > 0) {
			n_pub++, pub = &s[i];
			if (has_token(s[i].name, profile))
				n_tok++, tok = &s[i];
		}
	}
	out->n_api_services = (int)n_api;
	if (!main_api)
		main_api = n_pub == 1 ? pub : n_pub > 1 && n_tok == 1 ? tok : n_pub == 0 ? first : NULL;
	if (n_pub > 1 && !main_api) {
		names[0] = '\0';
		for (size_t i = 0; i < n; i++)
			if (s[i].api && s[i].ports > 0) {
				size_t l = strlen(names);
				snprintf(names + l, sizeof names - l, "%s%s", l ? ", " : "", s[i].name);
			}
		hm_error_set(err, HM_EXIT_INPUT,
			     "the stack %s has %zu services using \"%s\" that publish ports: %s", where,
			     n_pub, db->name, names);
		return hm_error_hint(err,
				     "name the hive API with --api-service NAME: the unified container takes "
				     "its port");
	}
	if (!main_api)
		return 0;
	copy(out->api_service, sizeof out->api_service, main_api->name);
	copy(out->api_container, sizeof out->api_container, str_of(main_api->o, "container_name"));
	/* its port: the only one, else the one of HIVE_API_PORT, else the profile's default */
	const char *ap = env_get(main_api->o, "HIVE_API_PORT");
	int def = !strcmp(profile, "genie") ? 48886 : 38886;
	if (main_api->ports == 1)
		out->api_port = published(main_api->o, 0, out->api_bind, sizeof out->api_bind, NULL);
	if (!out->api_port && ap)
		out->api_port = published(main_api->o, atoi(ap), out->api_bind, sizeof out->api_bind, NULL);
	if (!out->api_port)
		out->api_port = published(main_api->o, def, out->api_bind, sizeof out->api_bind, NULL);
	if (!out->api_port)
		out->api_port = published(main_api->o, 0, out->api_bind, sizeof out->api_bind, NULL);
	return 0;
}

/* Credentials, user and port of the database service (the official image's defaults). */
static int read_db(svc_info *db, const char *where, hm_stack *out, hm_error *err)
{
	const char *user = env_get(db->o, "POSTGRES_USER"), *name = env_get(db->o, "POSTGRES_DB");
	const char *pw = env_get(db->o, "POSTGRES_PASSWORD");
	if (!user || !user[0])
		user = "postgres";
	if (!name || !name[0])
		name = user;
	if (!pw || !pw[0]) {
		int file = env_get(db->o, "POSTGRES_PASSWORD_FILE") != NULL;
		hm_error_set(err, HM_EXIT_INPUT, "service \"%s\" of the stack %s has no POSTGRES_PASSWORD%s",
			     db->name, where,
			     file ? " (only POSTGRES_PASSWORD_FILE, which hive-migrate does not read)" : "");
		return hm_error_hint(err,
				     "set POSTGRES_PASSWORD where compose reads it (the environment, or the "
				     ".env of the project directory)");
	}
	if (copy(out->db_user, sizeof out->db_user, user) || copy(out->db_name, sizeof out->db_name, name) ||
	    copy(out->db_password, sizeof out->db_password, pw))
		return hm_error_set(err, HM_EXIT_INPUT, "credentials of \"%s\" too long", db->name);
	copy(out->pg_run_as, sizeof out->pg_run_as, str_of(db->o, "user"));
	copy(out->pg_container, sizeof out->pg_container, str_of(db->o, "container_name"));
	copy(out->pg_image, sizeof out->pg_image, str_of(db->o, "image"));
	const char *pgport = env_get(db->o, "PGPORT");
	out->pg_internal_port = pgport && atoi(pgport) > 0 ? atoi(pgport) : 5432;
	return 0;
}

/* The command line of the database service, into settings (stack_settings.c). */
static void read_command(svc_info *db, hm_stack *out)
{
	json_object *cmd, *ep;
	const char *argv[128];
	int argc = 0;
	if (json_object_object_get_ex(db->o, "entrypoint", &ep) && ep &&
	    json_object_is_type(ep, json_type_array) && json_object_array_length(ep) > 0) {
		hm_pg_skipped *k = &out->skipped[out->n_skipped++];
		snprintf(k->what, sizeof k->what, "entrypoint: %s",
			 json_object_get_string(json_object_array_get_idx(ep, 0)));
		snprintf(k->reason, sizeof k->reason,
			 "the entrypoint is replaced: settings it may give postgres are not read");
		k->lost = 1;
	}
	if (!json_object_object_get_ex(db->o, "command", &cmd) || !cmd)
		return;
	if (json_object_is_type(cmd, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(cmd) && argc < 128; i++)
			argv[argc++] = json_object_get_string(json_object_array_get_idx(cmd, i));
		hm_stack_parse_command(out, argv, argc);
	} else if (json_object_is_type(cmd, json_type_string)) {
		/* compose prints commands as arrays; a plain string is split on blanks */
		char buf[4096], *save = NULL;
		snprintf(buf, sizeof buf, "%s", json_object_get_string(cmd));
		for (char *t = strtok_r(buf, " \t\n", &save); t && argc < 128;
		     t = strtok_r(NULL, " \t\n", &save))
			argv[argc++] = t;
		hm_stack_parse_command(out, argv, argc);
	}
}

/* The data mount: a bind mount's host path now; a named volume's name (its path comes from
 * the engine: hm_stack_set_volume_path). */
static int read_mount(svc_info *db, json_object *root, hm_stack *out, hm_error *err)
{
	/* The mount matched PGDATA on its target without trailing slashes (a target "/d//"
	 * covers PGDATA "/d"): skip the same length, never past PGDATA's end. */
	size_t tl = strlen(db->mount_tgt);
	while (tl > 1 && db->mount_tgt[tl - 1] == '/')
		tl--;
	const char *rel = db->pgdata + (tl < strlen(db->pgdata) ? tl : strlen(db->pgdata));
	while (*rel == '/')
		rel++;
	if (copy(out->pgdata_rel, sizeof out->pgdata_rel, rel) ||
	    copy(out->data_target, sizeof out->data_target, db->mount_tgt))
		return hm_error_set(err, HM_EXIT_INPUT, "PGDATA of \"%s\" too long", db->name);
	if (!strcmp(db->mount_type, "bind")) {
		if (copy(out->data_dir, sizeof out->data_dir, db->mount_src))
			return hm_error_set(err, HM_EXIT_INPUT, "data path too long");
		return hm_stack_set_volume_path(out, out->data_dir, err);
	}
	json_object *vols, *v;
	const char *name = NULL;
	if (json_object_object_get_ex(root, "volumes", &vols) &&
	    json_object_object_get_ex(vols, db->mount_src, &v))
		name = str_of(v, "name");
	if (!name) {
		/* compose names a project's volume PROJECT_KEY */
		if (snprintf(out->data_volume, sizeof out->data_volume, "%s_%s", out->project,
			     db->mount_src) >= (int)sizeof out->data_volume)
			return hm_error_set(err, HM_EXIT_INPUT, "volume name too long");
	} else if (copy(out->data_volume, sizeof out->data_volume, name)) {
		return hm_error_set(err, HM_EXIT_INPUT, "volume name too long");
	}
	return 0;
}

int hm_stack_set_volume_path(hm_stack *s, const char *path, hm_error *err)
{
	if (path != s->data_dir && copy(s->data_dir, sizeof s->data_dir, path))
		return hm_error_set(err, HM_EXIT_INPUT, "data path too long");
	if (snprintf(s->pgdata, sizeof s->pgdata, "%s%s%s", s->data_dir, s->pgdata_rel[0] ? "/" : "",
		     s->pgdata_rel) >= (int)sizeof s->pgdata)
		return hm_error_set(err, HM_EXIT_INPUT, "data path too long");
	return 0;
}

void hm_stack_unified_data_dir(const hm_stack *s, char *out, size_t outsz)
{
	const char *slash = strrchr(s->pgdata, '/');
	if (slash && slash > s->pgdata && !strcmp(slash + 1, "pgdata"))
		snprintf(out, outsz, "%.*s", (int)(slash - s->pgdata), s->pgdata);
	else
		snprintf(out, outsz, "%s", s->data_dir);
}

/* The parser proper. legacy: services named postgres-PROFILE / PROFILE-api (fixtures/split)
 * when present. */
static int parse(const char *json, const hm_compose_project *p, const hm_stack_select *sel, int legacy,
		 hm_stack *out, hm_error *err)
{
	json_object *root = json_tokener_parse(json), *services;
	svc_info *s = NULL;
	char where[PATH_MAX + 8], legacy_db[64], legacy_api[64];
	const char *want_db = sel ? sel->db_service : NULL, *want_api = sel ? sel->api_service : NULL;
	int rc = -1;
	memset(out, 0, sizeof *out);
	out->compose = *p;
	hm_compose_project_workdir(p, out->dir, sizeof out->dir);
	snprintf(where, sizeof where, "in \"%s\"", out->dir);
	copy(out->profile, sizeof out->profile, p->profile);
	if (!root || !json_object_is_type(root, json_type_object)) {
		hm_error_set(err, HM_EXIT_INPUT, "compose config of the stack %s is not JSON", where);
		goto cleanup;
	}
	copy(out->project, sizeof out->project, str_of(root, "name"));
	if (legacy) {
		if (hm_stack_services(p->profile, legacy_db, sizeof legacy_db, legacy_api,
				      sizeof legacy_api) != 0) {
			hm_error_set(err, HM_EXIT_USAGE, "unknown profile \"%s\" (agent or genie)",
				     p->profile);
			goto cleanup;
		}
		want_db = legacy_db;
	}
	if (!json_object_object_get_ex(root, "services", &services) ||
	    !json_object_is_type(services, json_type_object) || json_object_object_length(services) == 0) {
		hm_error_set(err, HM_EXIT_INPUT, "the stack %s has no services for profile %s", where,
			     p->profile);
		hm_error_hint(err,
			      "pass the split stack's compose file (--compose-file) and the right --profile");
		goto cleanup;
	}
	size_t n = (size_t)json_object_object_length(services), i = 0;
	if (!(s = calloc(n, sizeof *s))) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	json_object_object_foreach(services, name, svc)
	{
		s[i].name = name;
		s[i].o = svc;
		classify(&s[i]);
		i++;
	}
	if (legacy && find_svc(s, n, legacy_api))
		want_api = legacy_api;
	svc_info *db = choose_db(s, n, want_db, p->profile, where, err);
	if (!db)
		goto cleanup;
	copy(out->pg_service, sizeof out->pg_service, db->name);
	if (read_db(db, where, out, err) != 0)
		goto cleanup;
	read_command(db, out);
	out->pg_port = published(db->o, out->pg_internal_port, out->pg_bind, sizeof out->pg_bind, NULL);
	snprintf(out->pg_host, sizeof out->pg_host, "%s",
		 out->pg_bind[0] && strcmp(out->pg_bind, "0.0.0.0") && strcmp(out->pg_bind, "::")
			 ? out->pg_bind
			 : "127.0.0.1");
	if (read_mount(db, root, out, err) != 0)
		goto cleanup;
	if (choose_apis(s, n, db, want_api, p->profile, where, out, err) != 0)
		goto cleanup;
	rc = 0;
cleanup:
	free(s);
	json_object_put(root);
	if (rc != 0)
		memset(out->db_password, 0, sizeof out->db_password);
	return rc;
}

int hm_stack_parse_project(const char *json, const hm_compose_project *p, const hm_stack_select *sel,
			   hm_stack *out, hm_error *err)
{
	return parse(json, p, sel, 0, out, err);
}

int hm_stack_parse(const char *json, const char *dir, const char *profile, hm_stack *out, hm_error *err)
{
	hm_compose_project p;
	memset(&p, 0, sizeof p);
	snprintf(p.dir, sizeof p.dir, "%s", dir);
	snprintf(p.profile, sizeof p.profile, "%s", profile);
	return parse(json, &p, NULL, 1, out, err);
}

int hm_stack_load_project(const hm_compose_project *p, const hm_stack_select *sel, hm_stack *out,
			  hm_error *err)
{
	char *argv[2 + 2 * HM_STACK_MAX_FILES + 6 + 4], desc[2048];
	hm_proc_result r;
	int n = hm_compose_argv(p, argv, (int)(sizeof argv / sizeof argv[0]) - 4), rc = -1;
	argv[n++] = "config";
	argv[n++] = "--format";
	argv[n++] = "json";
	argv[n] = NULL;
	hm_compose_project_describe(p, desc, sizeof desc);
	if (hm_proc_run(argv, &r, err) != 0)
		return -1;
	if (r.status != 0) {
		char line[600] = "";
		snprintf(line, sizeof line, "%s", r.errout ? r.errout : "");
		line[strcspn(line, "\n")] = '\0';
		hm_error_set(err, HM_EXIT_INPUT, "docker compose cannot read the split stack (%s): %s", desc,
			     line[0] ? line : "no message");
		hm_error_hint(err, "check it with: docker compose %s config", desc);
		goto cleanup;
	}
	if (parse(r.out ? r.out : "", p, sel, 0, out, err) != 0)
		goto cleanup;
	if (out->data_volume[0]) {
		char path[PATH_MAX];
		if (hm_docker_volume_path(out->data_volume, path, sizeof path, err) != 0 ||
		    hm_stack_set_volume_path(out, path, err) != 0) {
			memset(out->db_password, 0, sizeof out->db_password);
			goto cleanup;
		}
	}
	rc = 0;
cleanup:
	if (r.out)
		memset(r.out, 0, strlen(r.out)); /* it holds the interpolated password */
	hm_proc_result_free(&r);
	return rc;
}

int hm_stack_load(const char *dir, const char *profile, hm_stack *out, hm_error *err)
{
	hm_compose_project p;
	if (hm_compose_project_init(&p, dir, NULL, 0, NULL, NULL, profile, err) != 0)
		return -1;
	return hm_stack_load_project(&p, NULL, out, err);
}
