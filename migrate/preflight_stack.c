/* The split stack's part of the preflight: the rules on the stack itself (data layout,
 * settings that cannot be carried) and its section of the report (services, where the data
 * is, the settings carried into the unified container and those that are not). */
#include <string.h>

#include "preflight_int.h"
#include "stack.h"

int hm_preflight_stack_rules(const hm_stack *st, hm_preflight_report *r)
{
	const char *slash = strrchr(st->pgdata, '/');
	if (!slash || strcmp(slash + 1, "pgdata") != 0 || !st->pgdata_rel[0]) {
		char hint[768];
		snprintf(hint, sizeof hint,
			 "stop the split stack, move the cluster into a folder named pgdata inside its mount "
			 "(mkdir DIR/pgdata; mv every entry of DIR into it; chmod 0700 DIR/pgdata), set "
			 "PGDATA=%s/pgdata for service %s, start it once to confirm, then run up",
			 st->data_target, st->pg_service);
		if (hm_preflight_add(
			    r, HM_SEV_INCOMPATIBLE, "pgdata-layout", hint,
			    "PGDATA of service %s is %s%s%s: the unified container needs the cluster in a "
			    "folder named pgdata (its PGDATA is /var/lib/postgresql/data/pgdata)",
			    st->pg_service, st->data_target, st->pgdata_rel[0] ? "/" : "", st->pgdata_rel))
			return -1;
	}
	char lost[900] = "";
	int n_lost = 0;
	for (int i = 0; i < st->n_skipped; i++) {
		if (!st->skipped[i].lost)
			continue;
		size_t l = strlen(lost);
		snprintf(lost + l, sizeof lost - l, "%s%s (%s)", n_lost ? "; " : "", st->skipped[i].what,
			 st->skipped[i].reason);
		n_lost++;
	}
	if (n_lost &&
	    hm_preflight_add(r, HM_SEV_WARNING, "settings-not-carried",
			     "set what is still needed on the unified container with HIVE_PG_SETTINGS "
			     "(docs/unified-container.md), or ALTER SYSTEM after the migration",
			     "%d part%s of the command line of service %s cannot be carried into the unified "
			     "container: %s",
			     n_lost, n_lost == 1 ? "" : "s", st->pg_service, lost))
		return -1;
	return 0;
}

json_object *hm_pf_stack_json(const hm_stack *st)
{
	json_object *o = json_object_new_object(), *files = json_object_new_array();
	json_object *db = json_object_new_object(), *api = json_object_new_object();
	json_object *apis = json_object_new_array(), *set = json_object_new_object();
	json_object *carried = json_object_new_array(), *not_carried = json_object_new_array();
	json_object_object_add(o, "project", json_object_new_string(st->project));
	json_object_object_add(o, "project_dir", json_object_new_string(st->dir));
	for (int i = 0; i < st->compose.n_files; i++)
		json_object_array_add(files, json_object_new_string(st->compose.files[i]));
	json_object_object_add(o, "compose_files", files);
	json_object_object_add(o, "profile", json_object_new_string(st->profile));

	json_object_object_add(db, "service", json_object_new_string(st->pg_service));
	json_object_object_add(db, "container", json_object_new_string(st->pg_container));
	json_object_object_add(db, "image", json_object_new_string(st->pg_image));
	json_object_object_add(db, "user", json_object_new_string(st->pg_run_as));
	json_object_object_add(db, "mount", json_object_new_string(st->data_volume[0] ? "volume" : "bind"));
	json_object_object_add(db, "volume",
			       st->data_volume[0] ? json_object_new_string(st->data_volume) : NULL);
	json_object_object_add(db, "data_dir", json_object_new_string(st->data_dir));
	json_object_object_add(db, "pgdata", json_object_new_string(st->pgdata));
	json_object_object_add(db, "port", json_object_new_int(st->pg_port));
	json_object_object_add(db, "host_ip", json_object_new_string(st->pg_bind));
	json_object_object_add(db, "user_name", json_object_new_string(st->db_user));
	json_object_object_add(db, "database", json_object_new_string(st->db_name));
	json_object_object_add(o, "database", db);

	json_object_object_add(api, "service", json_object_new_string(st->api_service));
	json_object_object_add(api, "container", json_object_new_string(st->api_container));
	json_object_object_add(api, "port", json_object_new_int(st->api_port));
	json_object_object_add(api, "host_ip", json_object_new_string(st->api_bind));
	for (int i = 0; i < st->n_api_services; i++)
		json_object_array_add(apis, json_object_new_string(st->api_services[i]));
	json_object_object_add(api, "services", apis);
	json_object_object_add(o, "api", api);

	for (int i = 0; i < st->n_settings; i++) {
		json_object *s = json_object_new_object();
		json_object_object_add(s, "name", json_object_new_string(st->settings[i].name));
		json_object_object_add(s, "value", json_object_new_string(st->settings[i].value));
		json_object_array_add(carried, s);
	}
	for (int i = 0; i < st->n_skipped; i++) {
		json_object *s = json_object_new_object();
		json_object_object_add(s, "setting", json_object_new_string(st->skipped[i].what));
		json_object_object_add(s, "reason", json_object_new_string(st->skipped[i].reason));
		json_object_object_add(s, "lost", json_object_new_boolean(st->skipped[i].lost));
		json_object_array_add(not_carried, s);
	}
	json_object_object_add(set, "carried", carried);
	json_object_object_add(set, "not_carried", not_carried);
	json_object_object_add(o, "settings", set);
	return o;
}

void hm_pf_stack_print(const hm_stack *st, FILE *f)
{
	fprintf(f, "stack            project %s in %s (profile %s)\n", st->project, st->dir, st->profile);
	for (int i = 0; i < st->compose.n_files; i++)
		fprintf(f, "  compose file   %s\n", st->compose.files[i]);
	fprintf(f, "  database       %s", st->pg_service);
	if (st->pg_container[0])
		fprintf(f, " (container %s)", st->pg_container);
	fprintf(f, ", image %s, user %s\n", st->pg_image[0] ? st->pg_image : "(built)",
		st->pg_run_as[0] ? st->pg_run_as : "image default");
	if (st->data_volume[0])
		fprintf(f, "  data           volume %s at %s\n", st->data_volume, st->data_dir);
	else
		fprintf(f, "  data           bind mount %s\n", st->data_dir);
	if (st->pg_port)
		fprintf(f, "  published      %s:%d -> %d\n", st->pg_bind[0] ? st->pg_bind : "*", st->pg_port,
			st->pg_internal_port);
	fprintf(f, "  api            %s", st->api_service[0] ? st->api_service : "(none found)");
	if (st->api_container[0])
		fprintf(f, " (container %s)", st->api_container);
	if (st->api_port)
		fprintf(f, ", port %s:%d", st->api_bind[0] ? st->api_bind : "*", st->api_port);
	for (int i = 0; i < st->n_api_services; i++)
		if (strcmp(st->api_services[i], st->api_service))
			fprintf(f, "%s%s",
				i == 0 || !strcmp(st->api_services[0], st->api_service) ? "; also " : ", ",
				st->api_services[i]);
	fputc('\n', f);
	if (!st->n_settings && !st->n_skipped) {
		fprintf(f, "  settings       none on the command line\n");
		return;
	}
	fprintf(f, "  settings       carried into the unified container:%s\n", st->n_settings ? "" : " none");
	for (int i = 0; i < st->n_settings; i++)
		fprintf(f, "                   %s = %s\n", st->settings[i].name, st->settings[i].value);
	if (st->n_skipped)
		fprintf(f, "                 not carried:\n");
	for (int i = 0; i < st->n_skipped; i++)
		fprintf(f, "                   %s: %s\n", st->skipped[i].what, st->skipped[i].reason);
}
