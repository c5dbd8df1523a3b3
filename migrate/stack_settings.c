/* The database's command line (`command: postgres -c shared_buffers=128MB ...`): which
 * settings the unified container can carry, and which it cannot and why. PostgreSQL's own
 * option forms are read (-c NAME=VALUE, -cNAME=VALUE, --NAME=VALUE, and the short options
 * that stand for settings: -B, -N, -S, -F, ...), later ones winning as in postgres. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stack.h"

/* Short options of postgres that stand for a setting (postgres.c, process_postgres_switches). */
static const struct short_opt {
	char opt;
	const char *name;
	const char *fixed; /* NULL: takes a value */
} shorts[] = {
	{'B', "shared_buffers", NULL},
	{'N', "max_connections", NULL},
	{'S', "work_mem", NULL},
	{'p', "port", NULL},
	{'h', "listen_addresses", NULL},
	{'k', "unix_socket_directories", NULL},
	{'D', "data_directory", NULL},
	{'F', "fsync", "off"},
	{'i', "listen_addresses", "*"},
	{'l', "ssl", "on"},
	{'O', "allow_system_table_mods", "on"},
	{'P', "ignore_system_indexes", "on"},
	{'s', "log_statement_stats", "on"},
	{'e', "datestyle", "euro"},
};

/* Settings the unified container sets itself, or cannot honour. */
static const struct managed {
	const char *name;
	int prefix; /* name is a prefix (ssl_...) */
	int lost;
	const char *reason;
} managed[] = {
	{"listen_addresses", 0, 0,
	 "the unified container listens on all its interfaces; the host ports are kept"},
	{"port", 0, 0, "the unified container listens on 5432 inside; the published host port is kept"},
	{"unix_socket_directories", 0, 0, "the unified container keeps its socket in /var/run/postgresql"},
	{"unix_socket_group", 0, 0, "the unified container owns its socket directory"},
	{"unix_socket_permissions", 0, 0, "the unified container owns its socket directory"},
	{"data_directory", 0, 0, "the unified container mounts the data directory itself"},
	{"external_pid_file", 0, 0, "a path inside the old container"},
	{"config_file", 0, 1,
	 "the unified container reads its own postgresql.conf: the settings in that file are not carried"},
	{"hba_file", 0, 1, "the unified container uses its own pg_hba.conf (scram-sha-256 for TCP)"},
	{"ident_file", 0, 1, "the unified container uses its own pg_ident.conf"},
	{"ssl", 0, 1, "the unified container has no TLS certificate"},
	{"ssl_", 1, 1, "the unified container has no TLS certificate"},
};

/* Record a part of the command line that is not carried. */
static void skip(hm_stack *s, const char *what, const char *reason, int lost)
{
	if (s->n_skipped >= HM_STACK_MAX_SKIPPED) {
		hm_pg_skipped *k = &s->skipped[HM_STACK_MAX_SKIPPED - 1];
		snprintf(k->what, sizeof k->what, "more arguments");
		snprintf(k->reason, sizeof k->reason, "the command line has too many settings to list");
		k->lost = 1;
		return;
	}
	hm_pg_skipped *k = &s->skipped[s->n_skipped++];
	snprintf(k->what, sizeof k->what, "%s", what);
	snprintf(k->reason, sizeof k->reason, "%s", reason);
	k->lost = lost;
}

/* Add NAME=VALUE (name as written; "-" counts as "_", case-insensitive as in postgres). */
static void add(hm_stack *s, const char *raw_name, size_t name_len, const char *value)
{
	char name[64], what[160];
	snprintf(what, sizeof what, "%.*s=%s", (int)(name_len < 60 ? name_len : 60), raw_name, value);
	if (name_len == 0 || name_len >= sizeof name) {
		skip(s, what, "not a setting name", 1);
		return;
	}
	for (size_t i = 0; i < name_len; i++) {
		char c = raw_name[i];
		name[i] = c == '-' ? '_' : (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	name[name_len] = '\0';
	if (strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_.") != name_len ||
	    (name[0] >= '0' && name[0] <= '9') || name[0] == '.') {
		skip(s, what, "not a setting name", 1);
		return;
	}
	for (size_t i = 0; i < sizeof managed / sizeof managed[0]; i++) {
		const struct managed *m = &managed[i];
		if (m->prefix ? strncmp(name, m->name, strlen(m->name)) != 0 : strcmp(name, m->name) != 0)
			continue;
		if (!strcmp(name, "port") && atoi(value) > 0)
			s->pg_internal_port = atoi(value);
		skip(s, what, m->reason, m->lost);
		return;
	}
	if (strlen(value) >= sizeof s->settings[0].value) {
		skip(s, what, "the value is too long (255 bytes at most)", 1);
		return;
	}
	if (strchr(value, '\n') || strchr(value, '\r') || strchr(value, '\'')) {
		skip(s, what,
		     "the value holds a quote or a line break, which the unified container's env file cannot "
		     "pass",
		     1);
		return;
	}
	for (int i = 0; i < s->n_settings; i++)
		if (!strcmp(s->settings[i].name, name)) {
			snprintf(s->settings[i].value, sizeof s->settings[i].value, "%s", value);
			return;
		}
	if (s->n_settings >= HM_STACK_MAX_SETTINGS) {
		skip(s, what, "more than 32 settings on the command line", 1);
		return;
	}
	hm_pg_setting *st = &s->settings[s->n_settings++];
	snprintf(st->name, sizeof st->name, "%s", name);
	snprintf(st->value, sizeof st->value, "%s", value);
}

/* "NAME=VALUE" of -c / --: split and add; without "=" it cannot be read. */
static void add_assignment(hm_stack *s, const char *arg, const char *shown)
{
	const char *eq = strchr(arg, '=');
	if (!eq) {
		skip(s, shown, "a setting without a value", 1);
		return;
	}
	add(s, arg, (size_t)(eq - arg), eq + 1);
}

/* Last path component. */
static const char *base_of(const char *p)
{
	const char *slash = strrchr(p, '/');
	return slash ? slash + 1 : p;
}

void hm_stack_parse_command(hm_stack *s, const char *const argv[], int argc)
{
	int i = 0;
	char shown[160];
	if (argc <= 0 || !argv[0])
		return;
	if (!strcmp(base_of(argv[0]), "postgres") || !strcmp(base_of(argv[0]), "postmaster"))
		i = 1;
	else if (argv[0][0] == '-')
		i = 0; /* the official entrypoint puts "postgres" in front of options */
	else if (!strcmp(base_of(argv[0]), "docker-entrypoint.sh") && argc > 1 && argv[1] &&
		 !strcmp(base_of(argv[1]), "postgres"))
		i = 2;
	else {
		snprintf(shown, sizeof shown, "command: %s", argv[0]);
		skip(s, shown, "the command does not start postgres: settings it gives cannot be read", 1);
		return;
	}
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (!a)
			continue;
		snprintf(shown, sizeof shown, "%s", a);
		if (!strcmp(a, "-c")) {
			if (i + 1 >= argc || !argv[i + 1]) {
				skip(s, "-c", "-c without a setting", 1);
				continue;
			}
			snprintf(shown, sizeof shown, "-c %s", argv[i + 1]);
			add_assignment(s, argv[++i], shown);
		} else if (!strncmp(a, "-c", 2)) {
			add_assignment(s, a + 2, shown);
		} else if (!strncmp(a, "--", 2)) {
			add_assignment(s, a + 2, shown);
		} else if (a[0] == '-' && a[1]) {
			const struct short_opt *o = NULL;
			for (size_t k = 0; k < sizeof shorts / sizeof shorts[0]; k++)
				if (shorts[k].opt == a[1])
					o = &shorts[k];
			if (!o) {
				skip(s, shown,
				     "an option of postgres that is not a setting hive-migrate knows", 1);
				continue;
			}
			const char *value = o->fixed;
			if (!value) {
				if (a[2])
					value = a + 2;
				else if (i + 1 < argc && argv[i + 1]) {
					snprintf(shown, sizeof shown, "%s %s", a, argv[i + 1]);
					value = argv[++i];
				} else {
					skip(s, shown, "an option without its value", 1);
					continue;
				}
			} else if (a[2]) {
				skip(s, shown,
				     "an option of postgres that is not a setting hive-migrate knows", 1);
				continue;
			}
			add(s, o->name, strlen(o->name), value);
		} else {
			skip(s, shown, "an argument of postgres that is not a setting", 1);
		}
	}
}

int hm_stack_settings_arg(const hm_stack *s, char *out, size_t outsz)
{
	size_t len = 0;
	if (outsz == 0)
		return -1;
	out[0] = '\0';
	for (int i = 0; i < s->n_settings; i++) {
		char item[sizeof s->settings[0].name + 2 * sizeof s->settings[0].value + 16];
		size_t n =
			(size_t)snprintf(item, sizeof item, "%s-c \"%s=", i ? " " : "", s->settings[i].name);
		for (const char *c = s->settings[i].value; *c && n < sizeof item - 3; c++) {
			if (*c == '"' || *c == '\\')
				item[n++] = '\\';
			item[n++] = *c;
		}
		item[n++] = '"';
		item[n] = '\0';
		if (len + n >= outsz)
			return -1;
		memcpy(out + len, item, n + 1);
		len += n;
	}
	return 0;
}
