/* Which source wins for a libpq connection: common/pgconn (layers, connection strings
 * parsed by libpq), backup's rule (hm_bb_conn_params: libpq's environment < --profile <
 * --dbname < -h/-p/-U) and check's (hm_pf_conn_build: environment < --stack < --dbname <
 * options). No server is needed: a connection attempt to a socket directory that does
 * not exist fails at once, which is enough for the message helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../backup/basebackup.h"
#include "../../common/pgconn.h"
#include "../../migrate/preflight_int.h"
#include "../../migrate/stack.h"

/* The variables that change the rules here; every test starts without them. */
static int clean_env(void **state)
{
	(void)state;
	unsetenv("PGCONNECT_TIMEOUT");
	unsetenv("PGSERVICE");
	unsetenv("PGHOST");
	unsetenv("PGHOSTADDR");
	unsetenv("PGPORT");
	return 0;
}

static void assert_key(const hm_pgconn *p, const char *key, const char *want)
{
	const char *got = hm_pgconn_get(p, key);
	if (!want) {
		if (got)
			fail_msg("%s is \"%s\", expected unset", key, got);
		return;
	}
	if (!got)
		fail_msg("%s is unset, expected \"%s\"", key, want);
	assert_string_equal(got, want);
}

static void test_layers_replace(void **state)
{
	(void)state;
	hm_pgconn p;
	hm_pgconn_init(&p);
	assert_int_equal(hm_pgconn_set(&p, "host", "a"), 0);
	assert_int_equal(hm_pgconn_set(&p, "port", "1"), 0);
	assert_int_equal(hm_pgconn_set(&p, "host", "b"), 0);
	assert_int_equal(hm_pgconn_set(&p, "user", NULL), 0); /* not given: nothing set */
	assert_int_equal(hm_pgconn_set(&p, "port", ""), 0);   /* empty: nothing replaced */
	assert_int_equal(p.n, 2);
	assert_key(&p, "host", "b");
	assert_key(&p, "port", "1");
	assert_key(&p, "user", NULL);
	hm_pgconn_free(&p);
}

static void test_is_conninfo(void **state)
{
	(void)state;
	assert_true(hm_pgconn_is_conninfo("host=/run/pg"));
	assert_true(hm_pgconn_is_conninfo("postgresql://u@h/db"));
	assert_true(hm_pgconn_is_conninfo("postgres://h"));
	assert_false(hm_pgconn_is_conninfo("hive_agent"));
	assert_false(hm_pgconn_is_conninfo("postgresql:/x"));
	assert_false(hm_pgconn_is_conninfo(NULL));
}

static void test_apply_keyword_string(void **state)
{
	(void)state;
	hm_pgconn p;
	hm_error err = {0};
	hm_pgconn_init(&p);
	hm_pgconn_set(&p, "host", "127.0.0.1");
	hm_pgconn_set(&p, "user", "hive_backup");
	assert_int_equal(hm_pgconn_apply(&p, "--dbname", "host=/run/pg port='5433' sslmode=disable", &err),
			 0);
	assert_key(&p, "host", "/run/pg");
	assert_key(&p, "port", "5433");
	assert_key(&p, "sslmode", "disable");
	assert_key(&p, "user", "hive_backup"); /* not named by the string: kept */
	assert_key(&p, "dbname", NULL);
	hm_pgconn_free(&p);
}

static void test_apply_uri(void **state)
{
	(void)state;
	hm_pgconn p;
	hm_error err = {0};
	hm_pgconn_init(&p);
	assert_int_equal(hm_pgconn_apply(&p, "--dbname",
					 "postgresql://repl@%2Frun%2Fpg:5433/agent?application_name=x", &err),
			 0);
	assert_key(&p, "host", "/run/pg");
	assert_key(&p, "port", "5433");
	assert_key(&p, "user", "repl");
	assert_key(&p, "dbname", "agent");
	assert_key(&p, "application_name", "x");
	hm_pgconn_free(&p);
}

static void test_apply_plain_name(void **state)
{
	(void)state;
	hm_pgconn p;
	hm_error err = {0};
	hm_pgconn_init(&p);
	assert_int_equal(hm_pgconn_apply(&p, "--dbname", "hive_agent", &err), 0);
	assert_key(&p, "dbname", "hive_agent");
	assert_int_equal(p.n, 1);
	assert_int_equal(hm_pgconn_apply(&p, "--dbname", NULL, &err), 0);
	hm_pgconn_free(&p);
}

static void test_apply_refuses_password(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"host=h password=Sekr3t-x",
		"postgresql://u:Sekr3t-x@h/db",
		"postgresql://u@h/db?password=Sekr3t-x",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		hm_pgconn p;
		hm_error err = {0};
		hm_pgconn_init(&p);
		assert_int_equal(hm_pgconn_apply(&p, "--dbname", bad[i], &err), -1);
		assert_int_equal(err.code, HM_EXIT_USAGE);
		assert_non_null(strstr(err.message, "password"));
		assert_null(strstr(err.message, "Sekr3t"));
		assert_null(strstr(err.hint, "Sekr3t"));
		hm_pgconn_free(&p);
	}
}

static void test_apply_invalid(void **state)
{
	(void)state;
	hm_pgconn p;
	hm_error err = {0};
	hm_pgconn_init(&p);
	assert_int_equal(hm_pgconn_apply(&p, "--dbname", "hostx=1", &err), -1);
	assert_int_equal(err.code, HM_EXIT_USAGE);
	assert_non_null(strstr(err.message, "hostx")); /* libpq names the bad keyword */
	/* an unparsable string that may hold a password: libpq's quoting is withheld */
	assert_int_equal(hm_pgconn_apply(&p, "--dbname", "postgresql://u:Sekr3t-x@[::1", &err), -1);
	assert_int_equal(err.code, HM_EXIT_USAGE);
	assert_null(strstr(err.message, "Sekr3t"));
	assert_int_equal(hm_pgconn_apply(&p, "--dbname", "host=h password='Sekr3t-x", &err), -1);
	assert_null(strstr(err.message, "Sekr3t"));
	hm_pgconn_free(&p);
}

static void test_connect_override_and_messages(void **state)
{
	(void)state;
	hm_pgconn p;
	char where[256], cause[512];
	hm_pgconn_init(&p);
	hm_pgconn_set(&p, "host", "/nonexistent-hm-socket-dir");
	hm_pgconn_set(&p, "port", "20987");
	hm_pgconn_set(&p, "dbname", "first");
	hm_pgconn_set(&p, "password", "Sekr3t-x");
	PGconn *c = hm_pgconn_connect(&p, "second");
	assert_non_null(c);
	assert_int_equal(PQstatus(c), CONNECTION_BAD);
	assert_string_equal(PQdb(c), "second");
	hm_pgconn_where(c, where, sizeof where);
	assert_string_equal(where, "socket \"/nonexistent-hm-socket-dir\" port 20987");
	hm_pgconn_cause(c, cause, sizeof cause);
	assert_string_equal(cause, "No such file or directory"); /* one line, no libpq preamble */
	assert_null(strchr(cause, '\n'));
	PQfinish(c);
	hm_pgconn_free(&p);
}

static void test_backup_defaults_are_libpqs(void **state)
{
	(void)state;
	hm_bb_conn spec;
	hm_pgconn p;
	hm_error err = {0};
	memset(&spec, 0, sizeof spec);
	hm_pgconn_init(&p);
	assert_int_equal(hm_bb_conn_params(&spec, &p, &err), 0);
	/* nothing of ours for host, port, user, password: libpq's environment decides */
	assert_key(&p, "host", NULL);
	assert_key(&p, "port", NULL);
	assert_key(&p, "user", NULL);
	assert_key(&p, "password", NULL);
	assert_key(&p, "dbname", "replication");
	assert_key(&p, "replication", "true");
	assert_key(&p, "fallback_application_name", "hive-migrate");
	assert_key(&p, "application_name", NULL); /* PGAPPNAME wins over the fallback */
	assert_key(&p, "connect_timeout", "15");
	hm_pgconn_free(&p);
}

static void test_backup_precedence(void **state)
{
	(void)state;
	hm_error err = {0};
	hm_pgconn p;
	/* profile alone */
	hm_bb_conn spec = {
		.profile_host = "127.0.0.1", .profile_port = "35532", .profile_user = "hive_backup"};
	hm_pgconn_init(&p);
	assert_int_equal(hm_bb_conn_params(&spec, &p, &err), 0);
	assert_key(&p, "host", "127.0.0.1");
	assert_key(&p, "port", "35532");
	assert_key(&p, "user", "hive_backup");
	hm_pgconn_free(&p);
	/* --dbname over the profile, for what it names only */
	spec.conninfo = "port=5433 dbname=other replication=database";
	hm_pgconn_init(&p);
	assert_int_equal(hm_bb_conn_params(&spec, &p, &err), 0);
	assert_key(&p, "host", "127.0.0.1");
	assert_key(&p, "port", "5433");
	assert_key(&p, "dbname", "other");
	assert_key(&p, "replication", "true"); /* forced: BASE_BACKUP needs physical */
	hm_pgconn_free(&p);
	/* -h/-p/-U over --dbname, the password given over everything */
	spec.host = "/run/pg";
	spec.port = "6000";
	spec.user = "postgres";
	spec.password = "pw";
	hm_pgconn_init(&p);
	assert_int_equal(hm_bb_conn_params(&spec, &p, &err), 0);
	assert_key(&p, "host", "/run/pg");
	assert_key(&p, "port", "6000");
	assert_key(&p, "user", "postgres");
	assert_key(&p, "password", "pw");
	hm_pgconn_free(&p);
	/* -h/-p/-U alone: nothing else of ours */
	hm_bb_conn flags = {.port = "5433"};
	hm_pgconn_init(&p);
	assert_int_equal(hm_bb_conn_params(&flags, &p, &err), 0);
	assert_key(&p, "port", "5433");
	assert_key(&p, "host", NULL);
	assert_key(&p, "user", NULL);
	hm_pgconn_free(&p);
}

static void test_backup_timeout_defers(void **state)
{
	(void)state;
	hm_error err = {0};
	hm_pgconn p;
	hm_bb_conn spec = {.conninfo = "connect_timeout=2"};
	hm_pgconn_init(&p);
	assert_int_equal(hm_bb_conn_params(&spec, &p, &err), 0);
	assert_key(&p, "connect_timeout", "2");
	hm_pgconn_free(&p);
	spec.conninfo = "service=hive";
	hm_pgconn_init(&p);
	assert_int_equal(hm_bb_conn_params(&spec, &p, &err), 0);
	assert_key(&p, "service", "hive");
	assert_key(&p, "connect_timeout", NULL); /* the service file may set it */
	hm_pgconn_free(&p);
	spec.conninfo = NULL;
	setenv("PGCONNECT_TIMEOUT", "7", 1);
	hm_pgconn_init(&p);
	assert_int_equal(hm_bb_conn_params(&spec, &p, &err), 0);
	assert_key(&p, "connect_timeout", NULL);
	hm_pgconn_free(&p);
	unsetenv("PGCONNECT_TIMEOUT");
	setenv("PGSERVICE", "hive", 1);
	hm_pgconn_init(&p);
	assert_int_equal(hm_bb_conn_params(&spec, &p, &err), 0);
	assert_key(&p, "connect_timeout", NULL);
	hm_pgconn_free(&p);
	unsetenv("PGSERVICE");
}

static void test_backup_refuses_password_in_dbname(void **state)
{
	(void)state;
	hm_error err = {0};
	hm_pgconn p;
	hm_bb_conn spec = {.conninfo = "host=h password=Sekr3t-x"};
	hm_pgconn_init(&p);
	assert_int_equal(hm_bb_conn_params(&spec, &p, &err), -1);
	assert_int_equal(err.code, HM_EXIT_USAGE);
	assert_null(strstr(err.message, "Sekr3t"));
	hm_pgconn_free(&p);
}

/* A stack as compose describes it: published on 127.0.0.1:35532, agent/hive_agent. */
static hm_stack stack_fixture(void)
{
	hm_stack s;
	memset(&s, 0, sizeof s);
	snprintf(s.pg_host, sizeof s.pg_host, "127.0.0.1");
	s.pg_port = 35532;
	snprintf(s.db_user, sizeof s.db_user, "agent");
	snprintf(s.db_name, sizeof s.db_name, "hive_agent");
	snprintf(s.db_password, sizeof s.db_password, "pw");
	return s;
}

static void test_check_stack_then_dbname_then_options(void **state)
{
	(void)state;
	hm_preflight_opts o;
	hm_pf_conn c;
	hm_error err = {0};
	hm_stack s = stack_fixture();
	hm_preflight_opts_init(&o);
	hm_pgconn_init(&c.params);
	assert_int_equal(hm_pf_conn_build(&o, &s, 0, &c, &err), 0);
	assert_true(c.have);
	assert_false(c.explicit_conn); /* a stopped stack is no news */
	assert_key(&c.params, "host", "127.0.0.1");
	assert_key(&c.params, "port", "35532");
	assert_key(&c.params, "user", "agent");
	assert_key(&c.params, "dbname", "hive_agent");
	assert_key(&c.params, "password", "pw");
	assert_key(&c.params, "connect_timeout", "3");
	hm_pgconn_free(&c.params);

	o.conninfo = "host=/run/pg dbname=other";
	o.port = 5433;
	hm_pgconn_init(&c.params);
	assert_int_equal(hm_pf_conn_build(&o, &s, 0, &c, &err), 0);
	assert_true(c.explicit_conn);
	assert_key(&c.params, "host", "/run/pg"); /* --dbname over the stack */
	assert_key(&c.params, "port", "5433");	  /* --port over both */
	assert_key(&c.params, "dbname", "other");
	assert_key(&c.params, "user", "agent"); /* named by neither: the stack's */
	hm_pgconn_free(&c.params);
}

static void test_check_bare_data_dir(void **state)
{
	(void)state;
	hm_preflight_opts o;
	hm_pf_conn c;
	hm_error err = {0};
	hm_preflight_opts_init(&o);
	/* nothing running, nothing named: no connection at all */
	hm_pgconn_init(&c.params);
	assert_int_equal(hm_pf_conn_build(&o, NULL, 0, &c, &err), 0);
	assert_false(c.have);
	hm_pgconn_free(&c.params);
	/* a server runs on the directory: libpq's environment, nothing of ours */
	hm_pgconn_init(&c.params);
	assert_int_equal(hm_pf_conn_build(&o, NULL, 1, &c, &err), 0);
	assert_true(c.have);
	assert_false(c.explicit_conn);
	assert_key(&c.params, "host", NULL);
	assert_key(&c.params, "port", NULL);
	assert_key(&c.params, "user", NULL);
	hm_pgconn_free(&c.params);
	/* PGHOST names a server */
	setenv("PGHOST", "/run/pg", 1);
	hm_pgconn_init(&c.params);
	assert_int_equal(hm_pf_conn_build(&o, NULL, 0, &c, &err), 0);
	assert_true(c.have);
	assert_key(&c.params, "host", NULL); /* left to libpq, which reads PGHOST */
	hm_pgconn_free(&c.params);
	unsetenv("PGHOST");
	/* --port alone is a request (it used to be ignored without --host) */
	o.port = 5433;
	hm_pgconn_init(&c.params);
	assert_int_equal(hm_pf_conn_build(&o, NULL, 0, &c, &err), 0);
	assert_true(c.have && c.explicit_conn);
	assert_key(&c.params, "port", "5433");
	assert_key(&c.params, "host", NULL);
	hm_pgconn_free(&c.params);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_layers_replace, clean_env),
		cmocka_unit_test_setup(test_is_conninfo, clean_env),
		cmocka_unit_test_setup(test_apply_keyword_string, clean_env),
		cmocka_unit_test_setup(test_apply_uri, clean_env),
		cmocka_unit_test_setup(test_apply_plain_name, clean_env),
		cmocka_unit_test_setup(test_apply_refuses_password, clean_env),
		cmocka_unit_test_setup(test_apply_invalid, clean_env),
		cmocka_unit_test_setup(test_connect_override_and_messages, clean_env),
		cmocka_unit_test_setup(test_backup_defaults_are_libpqs, clean_env),
		cmocka_unit_test_setup(test_backup_precedence, clean_env),
		cmocka_unit_test_setup(test_backup_timeout_defers, clean_env),
		cmocka_unit_test_setup(test_backup_refuses_password_in_dbname, clean_env),
		cmocka_unit_test_setup(test_check_stack_then_dbname_then_options, clean_env),
		cmocka_unit_test_setup(test_check_bare_data_dir, clean_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
