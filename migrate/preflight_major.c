/* The preflight of a change of PostgreSQL major (migrate/major.h): what the logical copy
 * needs, said before anything changes. Gathering asks the target image (its extensions and
 * locales) and the old server (password hashes, sizes); the rules are pure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "major.h"
#include "preflight_int.h"

int hm_pf_list_has(const char *list, const char *name, int locale)
{
	if (!list || !name)
		return 0;
	for (const char *p = list; *p;) {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		char line[256];
		snprintf(line, sizeof line, "%.*s", (int)(l < 255 ? l : 255), p);
		if (l < 255 && (locale ? hm_major_locale_same(line, name) : !strcmp(line, name)))
			return 1;
		p += l + (nl ? 1 : 0);
	}
	return 0;
}

/* The image's extension names and `locale -a`, separated by a line "---". */
static void image_lists(const char *image, hm_preflight_report *r)
{
	char *out = NULL, errline[256];
	int status = -1;
	hm_error err;
	char *argv[] = {
		"docker",
		"run",
		"--rm",
		"--network",
		"none",
		"--entrypoint",
		"sh",
		(char *)image,
		"-c",
		"for f in /usr/share/postgresql/*/extension/*.control; do b=${f##*/}; echo ${b%.control}; "
		"done; echo ---; locale -a",
		NULL};
	if (hm_pf_run_capture(argv, &out, 1u << 20, &status, errline, sizeof errline, &err) != 0)
		return;
	char *sep = status == 0 && out ? strstr(out, "\n---\n") : NULL;
	if (sep) {
		*sep = '\0';
		r->target_extensions = strdup(out);
		r->target_locales = strdup(sep + 5);
		r->facts.target_extensions = r->target_extensions;
		r->facts.target_locales = r->target_locales;
	}
	free(out);
}

/* One database locale against the image's: fine, mapped by --locale-map (noted), or the
 * problem (1). */
static int check_locale(const hm_preflight_opts *o, hm_preflight_facts *f, const char *db, const char *what,
			const char *l)
{
	char to[128] = "";
	if (!strcmp(l, "C") || !strcmp(l, "POSIX") || hm_pf_list_has(f->target_locales, l, 1))
		return 0;
	int mapped = hm_major_locale_map_lookup(o->locale_map, l, to, sizeof to);
	if (mapped &&
	    (!strcmp(to, "C") || !strcmp(to, "POSIX") || hm_pf_list_has(f->target_locales, to, 1))) {
		if (!f->locale_mapped[0])
			snprintf(f->locale_mapped, sizeof f->locale_mapped,
				 "database \"%s\": %s \"%s\" becomes \"%s\"", db, what, l, to);
		return 0;
	}
	snprintf(f->locale_problem, sizeof f->locale_problem, "database \"%s\" has %s \"%s\"%s%s%s", db, what,
		 l, mapped ? " (mapped to \"" : "", mapped ? to : "",
		 mapped ? "\", which is missing too)" : "");
	return 1;
}

void hm_pf_major_gather(const hm_preflight_opts *o, const hm_pf_conn *c, hm_preflight_report *r)
{
	hm_preflight_facts *f = &r->facts;
	if (o->image)
		image_lists(o->image, r);
	for (size_t i = 0; i < r->n_databases; i++)
		f->db_bytes += (uint64_t)(r->databases[i].size_bytes > 0 ? r->databases[i].size_bytes : 0);
	if (!f->connected || !c->have)
		return;
	PGconn *pc = hm_pgconn_connect(&c->params, NULL);
	if (PQstatus(pc) != CONNECTION_OK) {
		PQfinish(pc);
		return;
	}
	/* pg_authid needs a superuser (the stacks' POSTGRES_USER is one); otherwise unknown */
	PGresult *res = PQexec(pc, "SELECT rolname FROM pg_authid WHERE rolpassword LIKE 'md5%' ORDER BY 1");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0) {
		f->n_md5_roles = PQntuples(res);
		snprintf(f->md5_role, sizeof f->md5_role, "%s", PQgetvalue(res, 0, 0));
	}
	PQclear(res);
	res = PQexec(pc,
		     "SELECT datname, datcollate, datctype FROM pg_database WHERE datallowconn ORDER BY 1");
	if (f->target_locales && PQresultStatus(res) == PGRES_TUPLES_OK) {
		for (int i = 0; i < PQntuples(res) && !f->locale_problem[0]; i++)
			for (int k = 1; k <= 2; k++)
				if (check_locale(o, f, PQgetvalue(res, i, 0),
						 k == 1 ? "LC_COLLATE" : "LC_CTYPE", PQgetvalue(res, i, k)))
					break;
	}
	PQclear(res);
	PQfinish(pc);
}

int hm_pf_major_rules(const hm_preflight_facts *f, hm_preflight_report *r)
{
	double bytes = f->db_bytes ? (double)f->db_bytes : (double)f->data_bytes;
	if (hm_preflight_add(
		    r, HM_SEV_WARNING, "major-upgrade",
		    "hive-migrate up does it (--dry-run shows the plan); see docs/migration.md, "
		    "\"Across PostgreSQL majors\"",
		    "the data directory is PostgreSQL %d, the target runs %d: up copies the data "
		    "logically into a new cluster beside the old directory (pg_dumpall --globals-only, "
		    "pg_dump -Fd, pg_restore, ALTER EXTENSION ... UPDATE, vacuumdb --analyze-in-stages) "
		    "and keeps the old directory unchanged; estimated downtime %.0f s for %.1f MiB of "
		    "databases",
		    f->control.major, f->target_major, hm_major_estimate_seconds(bytes), bytes / 1048576.0))
		return -1;
	for (size_t i = 0; f->target_extensions && i < f->n_extensions; i++) {
		const hm_ext_info *e = &f->extensions[i];
		if (hm_pf_list_has(f->target_extensions, e->name, 0))
			continue;
		if (hm_preflight_add(
			    r, HM_SEV_INCOMPATIBLE, "extension-missing",
			    "use a unified image that ships it, or DROP EXTENSION it in the old stack "
			    "if it is not needed",
			    "database \"%s\" uses extension %s %s, which the target image does not ship",
			    e->database, e->name, e->version))
			return -1;
	}
	if (f->locale_problem[0] &&
	    hm_preflight_add(
		    r, HM_SEV_INCOMPATIBLE, "locale-missing",
		    "map it to one the image has: up --locale-map OLD=NEW (e.g. en_US.UTF-8=C.UTF-8; "
		    "text then sorts by the new locale), or add the locale to the unified image",
		    "%s, which the target image lacks", f->locale_problem))
		return -1;
	if (f->locale_mapped[0] &&
	    hm_preflight_add(
		    r, HM_SEV_WARNING, "locale-mapped",
		    "nothing to do if the new sort order is fine (the restore builds every index anew)",
		    "%s (--locale-map): that database is created with the new locale and its objects "
		    "restored into it (its own GRANTs, comment and ALTER DATABASE settings are not "
		    "carried)",
		    f->locale_mapped))
		return -1;
	if (f->n_md5_roles > 0 &&
	    hm_preflight_add(r, HM_SEV_WARNING, "md5-passwords",
			     "set the password again (ALTER ROLE ... PASSWORD) with password_encryption = "
			     "scram-sha-256 after the migration",
			     "%d role(s) have an md5 password hash (first: %s); they are carried over as "
			     "they are, but cannot log in over TCP where pg_hba asks for scram-sha-256 (the "
			     "unified container does), and PostgreSQL 18 deprecates md5",
			     f->n_md5_roles, f->md5_role))
		return -1;
	if (f->have_disk) {
		double need = 2.0 * (double)f->data_bytes; /* the dump and the new cluster */
		if ((double)f->free_bytes < need) {
			if (hm_preflight_add(
				    r, HM_SEV_INCOMPATIBLE, "low-disk-major",
				    "free space: the dump and the new cluster each need up to the size "
				    "of the data, the snapshot a part of it",
				    "only %.1f MiB free at %s; the copy across majors needs about %.1f "
				    "MiB (dump + new cluster) plus the snapshot",
				    (double)f->free_bytes / 1048576.0, f->disk_path, need / 1048576.0))
				return -1;
		}
	}
	return 0;
}
