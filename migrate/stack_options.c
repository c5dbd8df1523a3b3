/* Shared handling of the options naming the split stack (see stack_options.h). */
#include "stack_options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hm_stack_options_parse(hm_stack_options *o, int c, const char *optarg_, const char *cmd)
{
	switch (c) {
	case 'f':
		if (o->n_files >= HM_STACK_MAX_FILES) {
			fprintf(stderr, "hive-migrate: error: %s: at most %d --compose-file options\n", cmd,
				HM_STACK_MAX_FILES);
			return -1;
		}
		o->files[o->n_files++] = optarg_;
		return 1;
	case HM_STACK_OPT_BASE + 1:
		o->project_dir = optarg_;
		return 1;
	case HM_STACK_OPT_BASE + 2:
		o->project_name = optarg_;
		return 1;
	case HM_STACK_OPT_BASE + 3:
	case HM_STACK_OPT_BASE + 4:
		if (!optarg_[0] || strlen(optarg_) >= 64) {
			fprintf(stderr, "hive-migrate: error: %s: %s needs a service name (up to 63 bytes)\n",
				cmd, c == HM_STACK_OPT_BASE + 3 ? "--db-service" : "--api-service");
			return -1;
		}
		*(c == HM_STACK_OPT_BASE + 3 ? &o->db_service : &o->api_service) = optarg_;
		return 1;
	default:
		return 0;
	}
}

int hm_stack_options_given(const hm_stack_options *o)
{
	return o->n_files > 0 || o->project_dir || o->project_name;
}

/* The project recorded by up in journal j. A journal from before they were recorded means
 * the compose file in its stack directory and services found by role. */
static void recorded_project(const hm_journal *j, const char *profile, hm_compose_project *p,
			     hm_stack_select *sel)
{
	memset(p, 0, sizeof *p);
	snprintf(p->profile, sizeof p->profile, "%s", profile);
	sel->db_service = j->db_service[0] ? j->db_service : NULL;
	sel->api_service = j->api_service[0] ? j->api_service : NULL;
	if (!j->project_name[0]) {
		snprintf(p->dir, sizeof p->dir, "%s", j->stack_dir);
		return;
	}
	p->n_files = j->n_compose_files;
	for (int i = 0; i < j->n_compose_files; i++)
		snprintf(p->files[i], sizeof p->files[i], "%s", j->compose_files[i]);
	snprintf(p->dir, sizeof p->dir, "%s", j->project_dir);
	snprintf(p->name, sizeof p->name, "%s", j->project_name);
}

/* Refuse a service option that contradicts the journal's choice. */
static int same_service(const char *given, const char *rec, const char *opt, const char *journal_path,
			hm_error *err)
{
	if (!given || !rec || !strcmp(given, rec))
		return 0;
	hm_error_set(err, HM_EXIT_USAGE, "the migration recorded in %s was made with %s %s, not %s",
		     journal_path, opt, rec, given);
	return hm_error_hint(err, "leave %s out: the journal's choice is used", opt);
}

int hm_stack_options_project(const hm_stack_options *o, const char *stack_dir, const char *profile,
			     const hm_journal *recorded, const char *journal_path, hm_compose_project *p,
			     hm_stack_select *sel, hm_error *err)
{
	hm_compose_project want;
	if (!recorded) {
		sel->db_service = o->db_service;
		sel->api_service = o->api_service;
		return hm_compose_project_init(p, stack_dir, o->files, o->n_files, o->project_dir,
					       o->project_name, profile, err);
	}
	recorded_project(recorded, profile, p, sel);
	if (hm_stack_options_given(o)) {
		if (hm_compose_project_init(&want, stack_dir, o->files, o->n_files, o->project_dir,
					    o->project_name, profile, err) != 0)
			return -1;
		if (!hm_compose_project_same(&want, p)) {
			char desc[2048];
			hm_compose_project_describe(p, desc, sizeof desc);
			hm_error_set(err, HM_EXIT_USAGE,
				     "the migration recorded in %s was made on another compose project "
				     "(docker compose %s)",
				     journal_path, desc);
			return hm_error_hint(
				err, "leave out --compose-file/--project-directory/--project-name: the "
				     "journal's project is used; or pass --stack DIR of the other stack");
		}
	}
	if (same_service(o->db_service, sel->db_service, "--db-service", journal_path, err) ||
	    same_service(o->api_service, sel->api_service, "--api-service", journal_path, err))
		return -1;
	if (o->db_service)
		sel->db_service = o->db_service;
	if (o->api_service)
		sel->api_service = o->api_service;
	return 0;
}

int hm_stack_options_distinct(const hm_stack_options *o, const char *stack_dir, const char *const profiles[2])
{
	hm_stack *s = calloc(2, sizeof *s);
	int rc = 0;
	for (int i = 0; s && i < 2; i++) {
		hm_compose_project p;
		hm_stack_select sel;
		hm_error e = {0};
		if (hm_stack_options_project(o, stack_dir, profiles[i], NULL, "", &p, &sel, &e) != 0 ||
		    hm_stack_load_project(&p, &sel, &s[i], &e) != 0)
			goto out;
	}
	if (s && !strcmp(s[0].pgdata, s[1].pgdata)) {
		fprintf(stderr,
			"hive-migrate: error: up: --profile all finds one database, %s (%s), for both agent "
			"and "
			"genie (hint: the compose files hold one profile: run up once per profile, each with "
			"its "
			"own --compose-file)\n",
			s[0].pg_service, s[0].pgdata);
		rc = -1;
	}
out:
	if (s) {
		memset(s[0].db_password, 0, sizeof s[0].db_password);
		memset(s[1].db_password, 0, sizeof s[1].db_password);
	}
	free(s);
	return rc;
}
