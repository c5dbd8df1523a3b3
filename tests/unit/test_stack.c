/* The split stack parser (migrate/stack.c, stack_settings.c) on `docker compose config
 * --format json` output of each layout users run: upstream's docker/templates/agent.yml
 * (postgres-agent + app-agent, user 1000, tuning flags, list environment with defaults,
 * ports without a host IP, a path with a space), the later agent-postgres + agent-api,
 * fixtures/split, named volumes, and the ambiguous and broken stacks that must be refused
 * with one clear error. The JSON samples are written with ' for " (converted at run time). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../migrate/preflight.h"
#include "../../migrate/stack.h"

/* JSON from a sample written with single quotes. Caller frees. */
static char *J(const char *sq)
{
	char *s = strdup(sq);
	for (char *c = s; *c; c++)
		if (*c == '\'')
			*c = '"';
	return s;
}

/* A project for the parser: files[0] and the profile. */
static hm_compose_project project(const char *file, const char *profile)
{
	hm_compose_project p;
	memset(&p, 0, sizeof p);
	if (file) {
		snprintf(p.files[0], sizeof p.files[0], "%s", file);
		p.n_files = 1;
	}
	snprintf(p.profile, sizeof p.profile, "%s", profile);
	return p;
}

/* Parse a single-quoted sample. */
static int parse(const char *sq, const char *profile, const char *db, const char *api, hm_stack *s,
		 hm_error *err)
{
	char *json = J(sq);
	hm_compose_project p = project("/srv/my hive/docker/templates/agent.yml", profile);
	hm_stack_select sel = {db, api};
	memset(err, 0, sizeof *err);
	int rc = hm_stack_parse_project(json, &p, &sel, s, err);
	if (rc != 0)
		print_message("error: %s (hint: %s)\n", err->message, err->hint);
	free(json);
	return rc;
}

/* compose config of upstream docker/templates/agent.yml in "/srv/my hive" (compose 2.26). */
static const char *UPSTREAM =
	"{'name':'templates','networks':{'agent_network':{'name':'hive_agent_network','driver':'bridge','"
	"ipam':{}}},"
	"'services':{"
	"'app-agent':{'build':{'context':'/srv/my "
	"hive/docker','dockerfile':'Dockerfile','target':'production'},"
	"'command':null,'container_name':'hive-agents-agent',"
	"'depends_on':{'postgres-agent':{'condition':'service_healthy','required':true}},'entrypoint':null,"
	"'environment':{'HIVE_API_HOST':'0.0.0.0','HIVE_API_PORT':'38886','HIVE_API_WORKERS':'2',"
	"'HIVE_DATABASE_URL':'postgresql+psycopg://agent:agent@postgres-agent:5432/"
	"hive_agent','RUNTIME_ENV':'dev'},"
	"'networks':{'agent_network':null},"
	"'ports':[{'mode':'ingress','target':38886,'published':'38886','protocol':'tcp'}],"
	"'volumes':[{'type':'volume','source':'agent_app_logs','target':'/app/logs','volume':{}},"
	"{'type':'volume','source':'agent_app_data','target':'/app/data','volume':{}}]},"
	"'postgres-agent':{'command':['postgres','-c','max_connections=100','-c','shared_buffers=128MB','-c',"
	"'effective_cache_size=512MB','-c','random_page_cost=1.1','-c','effective_io_concurrency=200'],"
	"'container_name':'hive-postgres-agent','entrypoint':null,"
	"'environment':{'PGDATA':'/var/lib/postgresql/data/pgdata','POSTGRES_DB':'hive_agent',"
	"'POSTGRES_PASSWORD':'agent','POSTGRES_USER':'agent'},"
	"'image':'agnohq/pgvector:16','networks':{'agent_network':null},"
	"'ports':[{'mode':'ingress','target':5432,'published':'35532','protocol':'tcp'}],"
	"'restart':'unless-stopped','user':'1000:1000',"
	"'volumes':[{'type':'bind','source':'/srv/my "
	"hive/data/postgres-agent','target':'/var/lib/postgresql/data',"
	"'bind':{'create_host_path':true}}]}},"
	"'volumes':{'agent_app_data':{'name':'hive_agent_data','driver':'local'},"
	"'agent_app_logs':{'name':'hive_agent_logs','driver':'local'}}}";

static void test_upstream_templates(void **state)
{
	(void)state;
	hm_stack s;
	hm_error err;
	assert_int_equal(parse(UPSTREAM, "agent", NULL, NULL, &s, &err), 0);
	assert_string_equal(s.project, "templates");
	assert_string_equal(s.dir, "/srv/my hive/docker/templates");
	assert_string_equal(s.pg_service, "postgres-agent");
	assert_string_equal(s.pg_container, "hive-postgres-agent");
	assert_string_equal(s.pg_image, "agnohq/pgvector:16");
	assert_string_equal(s.pg_run_as, "1000:1000");
	assert_string_equal(s.api_service, "app-agent");
	assert_string_equal(s.api_container, "hive-agents-agent");
	assert_int_equal(s.n_api_services, 1);
	assert_string_equal(s.api_services[0], "app-agent");
	assert_int_equal(s.api_port, 38886);
	assert_string_equal(s.api_bind, "");
	/* "35532:5432": no host IP; connect on loopback, publish on all as before */
	assert_int_equal(s.pg_port, 35532);
	assert_string_equal(s.pg_bind, "");
	assert_string_equal(s.pg_host, "127.0.0.1");
	assert_int_equal(s.pg_internal_port, 5432);
	assert_string_equal(s.data_dir, "/srv/my hive/data/postgres-agent");
	assert_string_equal(s.pgdata, "/srv/my hive/data/postgres-agent/pgdata");
	assert_string_equal(s.pgdata_rel, "pgdata");
	assert_string_equal(s.data_volume, "");
	assert_string_equal(s.db_user, "agent");
	assert_string_equal(s.db_name, "hive_agent");
	assert_string_equal(s.db_password, "agent");
	assert_int_equal(s.n_settings, 5);
	assert_int_equal(s.n_skipped, 0);
	assert_string_equal(s.settings[1].name, "shared_buffers");
	assert_string_equal(s.settings[1].value, "128MB");
	assert_string_equal(s.settings[4].name, "effective_io_concurrency");
	char arg[1024];
	assert_int_equal(hm_stack_settings_arg(&s, arg, sizeof arg), 0);
	assert_string_equal(arg, "-c \"max_connections=100\" -c \"shared_buffers=128MB\" -c "
				 "\"effective_cache_size=512MB\" -c \"random_page_cost=1.1\" -c "
				 "\"effective_io_concurrency=200\"");
	/* the compose project is kept for replay */
	assert_int_equal(s.compose.n_files, 1);
	assert_string_equal(s.compose.files[0], "/srv/my hive/docker/templates/agent.yml");
	/* nothing to refuse in the preflight */
	hm_preflight_report r;
	memset(&r, 0, sizeof r);
	assert_int_equal(hm_preflight_stack_rules(&s, &r), 0);
	assert_int_equal(r.n_problems, 0);
	hm_preflight_report_free(&r);
}

/* docker/agent/docker-compose.yml: agent-postgres + agent-api (which also holds POSTGRES_*). */
static const char *AGENT_API =
	"{'name':'agent','services':{"
	"'agent-api':{'container_name':'hive-agent-api','image':'localhost/hive-split-api:latest',"
	"'depends_on':{'agent-postgres':{'condition':'service_healthy','required':true}},"
	"'environment':{'HIVE_API_PORT':'38886','HIVE_API_KEY':'agent-test-key-12345','POSTGRES_USER':'test_"
	"user',"
	"'POSTGRES_PASSWORD':'test_pass','POSTGRES_DB':'hive_agent',"
	"'HIVE_DATABASE_URL':'postgresql+psycopg://test_user:test_pass@agent-postgres:5432/hive_agent'},"
	"'ports':[{'mode':'ingress','target':38886,'published':'28886','protocol':'tcp'}],"
	"'volumes':[{'type':'volume','source':'agent_app_logs','target':'/app/logs'}]},"
	"'agent-postgres':{'command':['postgres','-c','max_connections=200','-c','shared_buffers=256MB','-c',"
	"'effective_cache_size=1GB'],'container_name':'hive-agent-postgres',"
	"'environment':{'HIVE_LOG_LEVEL':'info','PGDATA':'/var/lib/postgresql/data/"
	"pgdata','POSTGRES_DB':'hive_agent',"
	"'POSTGRES_PASSWORD':'test_pass','POSTGRES_USER':'test_user'},"
	"'image':'localhost/hive-split-postgres:17',"
	"'ports':[{'mode':'ingress','target':5432,'published':'28532','protocol':'tcp'}],"
	"'volumes':[{'type':'bind','source':'/srv/w/data/postgres-agent','target':'/var/lib/postgresql/"
	"data'}]}}}";

static void test_agent_api_variant(void **state)
{
	(void)state;
	hm_stack s;
	hm_error err;
	assert_int_equal(parse(AGENT_API, "agent", NULL, NULL, &s, &err), 0);
	assert_string_equal(s.pg_service, "agent-postgres");
	assert_string_equal(s.api_service, "agent-api");
	assert_string_equal(s.pg_run_as, "");
	assert_int_equal(s.pg_port, 28532);
	assert_int_equal(s.api_port, 28886);
	assert_string_equal(s.db_user, "test_user");
	assert_string_equal(s.db_password, "test_pass");
	assert_int_equal(s.n_settings, 3);
	assert_string_equal(s.settings[2].name, "effective_cache_size");
	assert_string_equal(s.settings[2].value, "1GB");
}

/* fixtures/split with profile agent: the legacy names, found by role; 127.0.0.1 kept. */
static const char *SPLIT =
	"{'name':'hu-stack','services':{"
	"'agent-api':{'container_name':'hu-hive-agent-api','image':'localhost/hive-split-api:latest',"
	"'depends_on':{'postgres-agent':{'condition':'service_healthy'}},"
	"'environment':{'HIVE_API_PORT':'38886','HIVE_DATABASE_URL':'postgresql+psycopg://"
	"agent:x@postgres-agent:5432/h'},"
	"'ports':[{'mode':'ingress','target':38886,'published':'24886','protocol':'tcp'}]},"
	"'postgres-agent':{'container_name':'hu-hive-postgres-agent','image':'localhost/"
	"hive-split-postgres:17',"
	"'environment':{'PGDATA':'/var/lib/postgresql/data/pgdata','POSTGRES_DB':'hive_agent',"
	"'POSTGRES_PASSWORD':'s3cret','POSTGRES_USER':'agent'},"
	"'ports':[{'mode':'ingress','host_ip':'127.0.0.1','target':5432,'published':'24532'}],"
	"'volumes':[{'type':'bind','source':'/tmp/s/data/postgres-agent','target':'/var/lib/postgresql/"
	"data'}]}}}";

static void test_split_fixture(void **state)
{
	(void)state;
	hm_stack s;
	hm_error err;
	assert_int_equal(parse(SPLIT, "agent", NULL, NULL, &s, &err), 0);
	assert_string_equal(s.pg_service, "postgres-agent");
	assert_string_equal(s.api_service, "agent-api");
	assert_string_equal(s.pg_bind, "127.0.0.1");
	assert_string_equal(s.pg_host, "127.0.0.1");
	assert_int_equal(s.pg_port, 24532);
	assert_int_equal(s.api_port, 24886);
	assert_int_equal(s.n_settings, 0);
	/* the legacy entry point still works on it */
	char *json = J(SPLIT);
	assert_int_equal(hm_stack_parse(json, "/tmp/s", "agent", &s, &err), 0);
	assert_string_equal(s.dir, "/tmp/s");
	assert_string_equal(s.pg_service, "postgres-agent");
	assert_int_equal(hm_stack_parse(json, "/tmp/s", "genie", &s, &err), -1);
	assert_non_null(strstr(err.message, "postgres-genie"));
	free(json);
}

/* Two databases: the profile's name decides; without it, one error listing both. */
static const char *TWO_DBS =
	"{'name':'both','services':{"
	"'postgres-agent':{'image':'postgres:17','environment':{'POSTGRES_PASSWORD':'a'},"
	"'volumes':[{'type':'bind','source':'/d/a','target':'/var/lib/postgresql/data'}]},"
	"'postgres-genie':{'image':'postgres:17','environment':{'POSTGRES_PASSWORD':'g'},"
	"'volumes':[{'type':'bind','source':'/d/g','target':'/var/lib/postgresql/data'}]},"
	"'app':{'image':'x','depends_on':['postgres-genie']}}}";
static const char *AMBIGUOUS =
	"{'name':'amb','services':{"
	"'db1':{'image':'pgvector/pgvector:pg17','environment':{'POSTGRES_PASSWORD':'a','PGDATA':'/data/pg'},"
	"'volumes':[{'type':'bind','source':'/d/1','target':'/data'}]},"
	"'db2':{'image':'pgvector/pgvector:pg17','environment':{'POSTGRES_PASSWORD':'b','PGDATA':'/data/pg'},"
	"'volumes':[{'type':'volume','source':'two','target':'/data'}]},"
	"'web':{'image':'nginx'}}}";

static void test_ambiguous(void **state)
{
	(void)state;
	hm_stack s;
	hm_error err;
	assert_int_equal(parse(TWO_DBS, "genie", NULL, NULL, &s, &err), 0);
	assert_string_equal(s.pg_service, "postgres-genie");
	assert_string_equal(s.db_password, "g");
	assert_string_equal(s.db_user, "postgres"); /* the official image's defaults */
	assert_string_equal(s.db_name, "postgres");
	assert_string_equal(s.api_service, "app"); /* depends_on as a list */
	assert_int_equal(s.api_port, 0);
	assert_int_equal(parse(AMBIGUOUS, "agent", NULL, NULL, &s, &err), -1);
	assert_int_equal(err.code, HM_EXIT_INPUT);
	assert_non_null(strstr(err.message, "2 PostgreSQL services"));
	assert_non_null(strstr(err.message, "db1 (bind /d/1)"));
	assert_non_null(strstr(err.message, "db2 (volume two)"));
	assert_non_null(strstr(err.hint, "--db-service"));
	assert_string_equal(s.db_password, "");
	/* --db-service picks one */
	assert_int_equal(parse(AMBIGUOUS, "agent", "db1", NULL, &s, &err), 0);
	assert_string_equal(s.pg_service, "db1");
	assert_string_equal(s.pgdata, "/d/1/pg");
	assert_string_equal(s.pgdata_rel, "pg");
	/* ... and the preflight refuses its layout: the unified container needs .../pgdata */
	hm_preflight_report r;
	memset(&r, 0, sizeof r);
	assert_int_equal(hm_preflight_stack_rules(&s, &r), 0);
	assert_non_null(hm_preflight_find(&r, "pgdata-layout"));
	assert_int_equal(r.verdict, HM_VERDICT_INCOMPATIBLE);
	hm_preflight_report_free(&r);
	/* a wrong name lists the services */
	assert_int_equal(parse(AMBIGUOUS, "agent", "db3", NULL, &s, &err), -1);
	assert_non_null(strstr(err.message, "no service \"db3\""));
	assert_non_null(strstr(err.message, "db1, db2, web"));
}

/* Named volumes: the name compose gives it (explicit, or PROJECT_KEY); the path comes later. */
static const char *VOLUME =
	"{'name':'vol','services':{"
	"'postgres-agent':{'image':'localhost/hive-split-postgres:17','environment':{'POSTGRES_PASSWORD':'p',"
	"'POSTGRES_USER':'agent','PGDATA':'/var/lib/postgresql/data/pgdata'},"
	"'volumes':[{'type':'volume','source':'pg','target':'/var/lib/postgresql/data','volume':{}}]},"
	"'app-agent':{'image':'a','environment':{'DB':'host=postgres-agent port=5432'}}},"
	"'volumes':{'pg':{'name':'hs-hive_agent_pgdata','driver':'local'}}}";
static const char *VOLUME_UNNAMED =
	"{'name':'proj','services':{"
	"'db':{'image':'postgres:16','environment':{'POSTGRES_PASSWORD':'p','PGDATA':'/var/lib/postgresql/"
	"data/pgdata'},"
	"'volumes':[{'type':'volume','source':'pgdata','target':'/var/lib/postgresql/data/'}]}}}";

static void test_named_volume(void **state)
{
	(void)state;
	hm_stack s;
	hm_error err;
	assert_int_equal(parse(VOLUME, "agent", NULL, NULL, &s, &err), 0);
	assert_string_equal(s.data_volume, "hs-hive_agent_pgdata");
	assert_string_equal(s.data_dir, "");
	assert_string_equal(s.api_service, "app-agent"); /* by the host in its environment */
	assert_int_equal(hm_stack_set_volume_path(&s, "/var/lib/containers/storage/volumes/v/_data", &err),
			 0);
	assert_string_equal(s.pgdata, "/var/lib/containers/storage/volumes/v/_data/pgdata");
	assert_int_equal(parse(VOLUME_UNNAMED, "agent", NULL, NULL, &s, &err), 0);
	assert_string_equal(s.data_volume, "proj_pgdata");
	assert_string_equal(s.pgdata_rel, "pgdata");
	assert_string_equal(s.api_service, "");
	assert_int_equal(s.n_api_services, 0);
}

/* Stacks with nothing to migrate, or nothing readable: one clear error each. */
static void test_refusals(void **state)
{
	(void)state;
	hm_stack s;
	hm_error err;
	const struct {
		const char *json, *expect;
	} cases[] = {
		/* upstream's agent-postgres kept its data in the container */
		{"{'name':'a','services':{'agent-postgres':{'image':'agnohq/pgvector:16','environment':{"
		 "'POSTGRES_PASSWORD':'x','PGDATA':'/var/lib/postgresql/data/pgdata'}},"
		 "'agent-api':{'image':'y','depends_on':{'agent-postgres':{}}}}}",
		 "keeps no data on the host (no volume at all"},
		{"{'name':'a','services':{'db':{'image':'postgres:17','environment':{'POSTGRES_PASSWORD':'x'}"
		 ","
		 "'volumes':[{'type':'tmpfs','target':'/var/lib/postgresql/data'}]}}}",
		 "tmpfs"},
		{"{'name':'a','services':{'db':{'image':'postgres:17','environment':{'POSTGRES_PASSWORD':'x'}"
		 ","
		 "'volumes':[{'type':'bind','source':'/x','target':'/srv'}]}}}",
		 "inside the container"},
		{"{'name':'a','services':{'web':{'image':'nginx'},'cache':{'image':'redis'}}}",
		 "no service of the stack"},
		{"{'name':'a','services':{'db':{'image':'postgres:17','environment':{'POSTGRES_PASSWORD_FILE'"
		 ":'/run/s'},"
		 "'volumes':[{'type':'bind','source':'/x','target':'/var/lib/postgresql/data'}]}}}",
		 "POSTGRES_PASSWORD_FILE"},
		{"{'name':'a','services':{}}", "has no services"},
		{"not json", "is not JSON"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(parse(cases[i].json, "agent", NULL, NULL, &s, &err), -1);
		assert_int_equal(err.code, HM_EXIT_INPUT);
		if (!strstr(err.message, cases[i].expect))
			fail_msg("case %zu: \"%s\" not in \"%s\"", i, cases[i].expect, err.message);
		assert_string_equal(s.db_password, "");
	}
}

/* Several users of the database: all are stopped with it; the port is the one publisher's,
 * and two publishers need --api-service. Environment as a list, a network alias, PGPORT. */
static const char *APIS =
	"{'name':'m','services':{"
	"'pg':{'image':'localhost/"
	"hive-split-postgres:17','environment':['POSTGRES_PASSWORD=pw','PGPORT=5433'],"
	"'networks':{'n':{'aliases':['database']}},"
	"'ports':[{'target':5433,'published':'25433','host_ip':'0.0.0.0'}],"
	"'volumes':[{'type':'bind','source':'/x','target':'/var/lib/postgresql/data'}],"
	"'command':['postgres','-c','port=5433']},"
	"'worker':{'image':'w','environment':['DATABASE_URL=postgres://u:p@database:5433/d']},"
	"'api':{'image':'a','depends_on':{'pg':{}},'ports':[{'target':9000,'published':'29000'},"
	"{'target':38886,'published':'28886'}],'environment':{'HIVE_API_PORT':'38886'}},"
	"'admin':{'image':'b','depends_on':{'pg':{}},'ports':[{'target':80,'published':'28080'}]},"
	"'unrelated':{'image':'c','environment':{'URL':'http://pgx:1/"
	"'},'ports':[{'target':1,'published':'2'}]}}}";

static void test_api_services(void **state)
{
	(void)state;
	hm_stack s;
	hm_error err;
	assert_int_equal(parse(APIS, "agent", NULL, NULL, &s, &err), -1);
	assert_non_null(strstr(err.message, "publish ports"));
	assert_non_null(strstr(err.message, "api, admin") ? err.message : strstr(err.message, "admin, api"));
	assert_non_null(strstr(err.hint, "--api-service"));
	assert_int_equal(parse(APIS, "agent", NULL, "api", &s, &err), 0);
	assert_string_equal(s.api_service, "api");
	assert_int_equal(s.api_port, 28886);   /* the HIVE_API_PORT one of its two ports */
	assert_int_equal(s.n_api_services, 3); /* worker (alias), api, admin; not "unrelated" */
	int found = 0;
	for (int i = 0; i < s.n_api_services; i++)
		found += !strcmp(s.api_services[i], "worker") + !strcmp(s.api_services[i], "admin");
	assert_int_equal(found, 2);
	/* PGPORT and -c port=: the published port of 5433; 0.0.0.0 is "all" */
	assert_int_equal(s.pg_internal_port, 5433);
	assert_int_equal(s.pg_port, 25433);
	assert_string_equal(s.pg_host, "127.0.0.1");
	assert_string_equal(s.db_password, "pw");
	assert_int_equal(s.n_settings, 0);
	assert_int_equal(s.n_skipped, 1);
	assert_int_equal(s.skipped[0].lost, 0);
}

/* The command line of postgres, every form postgres takes. */
static void test_command_forms(void **state)
{
	(void)state;
	hm_stack s;
	memset(&s, 0, sizeof s);
	const char *argv[] = {"/usr/lib/postgresql/17/bin/postgres",
			      "-c",
			      "work_mem=4MB",
			      "-cmaintenance_work_mem=64MB",
			      "--log-min-duration-statement=250ms",
			      "-B",
			      "256MB",
			      "-N200",
			      "-F",
			      "-c",
			      "Work_Mem=8MB", /* case-insensitive, later wins */
			      "-c",
			      "listen_addresses=*",
			      "-c",
			      "config_file=/etc/postgresql/postgresql.conf",
			      "-c",
			      "ssl_cert_file=/c.pem",
			      "-c",
			      "search_path='$user', public",
			      "-c",
			      "shared_preload_libraries=pg_stat_statements",
			      "-c",
			      "log_line_prefix=%m [%p] \"%u\" \\ ",
			      "-x",
			      "positional",
			      "-c",
			      "novalue",
			      "-c",
			      "9bad=1",
			      "-c"};
	hm_stack_parse_command(&s, argv, (int)(sizeof argv / sizeof argv[0]));
	const char *want[][2] = {{"work_mem", "8MB"},
				 {"maintenance_work_mem", "64MB"},
				 {"log_min_duration_statement", "250ms"},
				 {"shared_buffers", "256MB"},
				 {"max_connections", "200"},
				 {"fsync", "off"},
				 {"shared_preload_libraries", "pg_stat_statements"},
				 {"log_line_prefix", "%m [%p] \"%u\" \\ "}};
	assert_int_equal(s.n_settings, (int)(sizeof want / sizeof want[0]));
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		assert_string_equal(s.settings[i].name, want[i][0]);
		assert_string_equal(s.settings[i].value, want[i][1]);
	}
	/* not carried, each with its reason; only listen_addresses is harmless */
	const char *skipped[] = {"listen_addresses=*", "config_file=", "ssl_cert_file=",
				 "search_path=",       "-x",	       "positional",
				 "-c novalue",	       "9bad=1",       "-c"};
	assert_int_equal(s.n_skipped, (int)(sizeof skipped / sizeof skipped[0]));
	for (size_t i = 0; i < sizeof skipped / sizeof skipped[0]; i++) {
		if (!strstr(s.skipped[i].what, skipped[i]))
			fail_msg("skipped %zu: \"%s\" not in \"%s\"", i, skipped[i], s.skipped[i].what);
		assert_true(s.skipped[i].reason[0] != '\0');
		assert_int_equal(s.skipped[i].lost, i != 0);
	}
	assert_non_null(strstr(s.skipped[1].reason, "postgresql.conf"));
	assert_non_null(strstr(s.skipped[3].reason, "quote"));
	/* HIVE_PG_SETTINGS: double quotes, backslash before " and \ (shlex reads it back) */
	char arg[4096];
	assert_int_equal(hm_stack_settings_arg(&s, arg, sizeof arg), 0);
	assert_non_null(strstr(arg, "-c \"work_mem=8MB\" -c \"maintenance_work_mem=64MB\""));
	assert_non_null(strstr(arg, "-c \"log_line_prefix=%m [%p] \\\"%u\\\" \\\\ \""));
	assert_int_equal(hm_stack_settings_arg(&s, arg, 20), -1);

	/* commands that are not postgres, the official entrypoint's forms */
	hm_stack t;
	memset(&t, 0, sizeof t);
	const char *sh[] = {"sh", "-c", "exec postgres -c a=b"};
	hm_stack_parse_command(&t, sh, 3);
	assert_int_equal(t.n_settings, 0);
	assert_int_equal(t.n_skipped, 1);
	assert_int_equal(t.skipped[0].lost, 1);
	memset(&t, 0, sizeof t);
	const char *opts_only[] = {"-c", "work_mem=1MB"};
	hm_stack_parse_command(&t, opts_only, 2);
	assert_int_equal(t.n_settings, 1);
	memset(&t, 0, sizeof t);
	const char *ep[] = {"docker-entrypoint.sh", "postgres", "-c", "work_mem=2MB"};
	hm_stack_parse_command(&t, ep, 4);
	assert_int_equal(t.n_settings, 1);
	assert_string_equal(t.settings[0].value, "2MB");
	assert_int_equal(hm_stack_settings_arg(&t, arg, sizeof arg), 0);
	assert_string_equal(arg, "-c \"work_mem=2MB\"");
	memset(&t, 0, sizeof t);
	assert_int_equal(hm_stack_settings_arg(&t, arg, sizeof arg), 0);
	assert_string_equal(arg, "");
	/* too many: the rest is reported, never dropped silently */
	memset(&t, 0, sizeof t);
	char names[40][32];
	const char *many[81];
	many[0] = "postgres";
	for (int i = 0; i < 40; i++) {
		snprintf(names[i], sizeof names[i], "x.setting_%d=%d", i, i);
		many[1 + 2 * i] = "-c";
		many[2 + 2 * i] = names[i];
	}
	hm_stack_parse_command(&t, many, 81);
	assert_int_equal(t.n_settings, HM_STACK_MAX_SETTINGS);
	assert_int_equal(t.n_skipped, 40 - HM_STACK_MAX_SETTINGS);
	assert_int_equal(t.skipped[0].lost, 1);
}

/* Settings that cannot be carried make a warning in the preflight. */
static void test_settings_warning(void **state)
{
	(void)state;
	hm_stack s;
	hm_error err;
	const char *json = "{'name':'a','services':{'db':{'image':'postgres:17','environment':{"
			   "'POSTGRES_PASSWORD':'x','PGDATA':'/var/lib/postgresql/data/pgdata'},"
			   "'command':['postgres','-c','listen_addresses=*','-c','hba_file=/etc/hba.conf'],"
			   "'entrypoint':['/custom.sh'],"
			   "'volumes':[{'type':'bind','source':'/x','target':'/var/lib/postgresql/data'}]}}}";
	assert_int_equal(parse(json, "agent", NULL, NULL, &s, &err), 0);
	assert_int_equal(s.n_skipped, 3);
	hm_preflight_report r;
	memset(&r, 0, sizeof r);
	assert_int_equal(hm_preflight_stack_rules(&s, &r), 0);
	const hm_problem *p = hm_preflight_find(&r, "settings-not-carried");
	assert_non_null(p);
	assert_int_equal(p->severity, HM_SEV_WARNING);
	assert_non_null(strstr(p->message, "2 parts"));
	assert_non_null(strstr(p->message, "hba_file"));
	assert_non_null(strstr(p->message, "entrypoint"));
	assert_null(strstr(p->message, "listen_addresses"));
	assert_null(hm_preflight_find(&r, "pgdata-layout"));
	hm_preflight_report_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upstream_templates), cmocka_unit_test(test_agent_api_variant),
		cmocka_unit_test(test_split_fixture),	   cmocka_unit_test(test_ambiguous),
		cmocka_unit_test(test_named_volume),	   cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_api_services),	   cmocka_unit_test(test_command_forms),
		cmocka_unit_test(test_settings_warning),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
