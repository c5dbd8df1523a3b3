/* Fingerprint comparison (migrate/fingerprint.c) and the split stack's compose config
 * parser (migrate/stack.c): pure functions, driven by tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../migrate/fingerprint.h"
#include "../../migrate/stack.h"

#define BASE                                                                                                 \
	"{\"databases\":{\"hive_agent\":{\"tables\":{\"agno.sessions\":{\"rows\":3,\"digest\":\"-12\"},"     \
	"\"hive.agent_metrics\":{\"rows\":10,\"digest\":\"99\"}},\"extensions\":{\"vector\":\"0.8.0\"}},"    \
	"\"postgres\":{\"tables\":{},\"extensions\":{\"plpgsql\":\"1.0\"}}},\"total_rows\":13}"

static void test_compare_table(void **state)
{
	(void)state;
	static const struct {
		const char *after, *expect; /* expect NULL: equal */
	} cases[] = {
		{BASE, NULL},
		{"{\"databases\":{\"hive_agent\":{\"tables\":{\"agno.sessions\":{\"rows\":2,\"digest\":\"-"
		 "12\"},"
		 "\"hive.agent_metrics\":{\"rows\":10,\"digest\":\"99\"}},\"extensions\":{\"vector\":\"0.8."
		 "0\"}},"
		 "\"postgres\":{\"tables\":{},\"extensions\":{\"plpgsql\":\"1.0\"}}}}",
		 "agno.sessions in database \"hive_agent\" has 2 rows, had 3"},
		{"{\"databases\":{\"hive_agent\":{\"tables\":{\"agno.sessions\":{\"rows\":3,\"digest\":\"-"
		 "13\"},"
		 "\"hive.agent_metrics\":{\"rows\":10,\"digest\":\"99\"}},\"extensions\":{\"vector\":\"0.8."
		 "0\"}},"
		 "\"postgres\":{\"tables\":{},\"extensions\":{\"plpgsql\":\"1.0\"}}}}",
		 "content differs"},
		{"{\"databases\":{\"hive_agent\":{\"tables\":{\"agno.sessions\":{\"rows\":3,\"digest\":\"-"
		 "12\"}},"
		 "\"extensions\":{\"vector\":\"0.8.0\"}},\"postgres\":{\"tables\":{},\"extensions\":{"
		 "\"plpgsql\":\"1.0\"}}}}",
		 "table \"hive.agent_metrics\" in database \"hive_agent\" is missing"},
		{"{\"databases\":{\"hive_agent\":{\"tables\":{\"agno.sessions\":{\"rows\":3,\"digest\":\"-"
		 "12\"},"
		 "\"hive.agent_metrics\":{\"rows\":10,\"digest\":\"99\"}},\"extensions\":{\"vector\":\"0.8."
		 "1\"}},"
		 "\"postgres\":{\"tables\":{},\"extensions\":{\"plpgsql\":\"1.0\"}}}}",
		 "extension vector"},
		{"{\"databases\":{\"hive_agent\":{\"tables\":{\"agno.sessions\":{\"rows\":3,\"digest\":\"-"
		 "12\"},"
		 "\"hive.agent_metrics\":{\"rows\":10,\"digest\":\"99\"}},\"extensions\":{\"vector\":\"0.8."
		 "0\"}}}}",
		 "database \"postgres\" is missing"},
		{"{\"databases\":{\"hive_agent\":{\"tables\":{\"agno.sessions\":{\"rows\":3,\"digest\":\"-"
		 "12\"},"
		 "\"hive.agent_metrics\":{\"rows\":10,\"digest\":\"99\"},\"x.new\":{\"rows\":0,\"digest\":"
		 "\"0\"}},"
		 "\"extensions\":{\"vector\":\"0.8.0\"}},\"postgres\":{\"tables\":{},\"extensions\":{"
		 "\"plpgsql\":\"1.0\"}}}}",
		 "appeared"},
		{"{}", "incomplete"},
	};
	json_object *before = json_tokener_parse(BASE);
	assert_non_null(before);
	assert_int_equal(hm_fingerprint_total_rows(before), 13);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_object *after = json_tokener_parse(cases[i].after);
		hm_error err = {0};
		assert_non_null(after);
		int rc = hm_fingerprint_compare(before, after, &err);
		if (!cases[i].expect) {
			assert_int_equal(rc, 0);
		} else {
			print_message("%s\n", err.message);
			assert_int_equal(rc, -1);
			assert_int_equal(err.code, HM_EXIT_VERIFY_FAILED);
			assert_non_null(strstr(err.message, cases[i].expect));
		}
		json_object_put(after);
	}
	json_object_put(before);
}

static const char *CONFIG =
	"{\"name\":\"stack\",\"services\":{"
	"\"agent-api\":{\"container_name\":\"hu-hive-agent-api\",\"environment\":{\"HIVE_API_PORT\":"
	"\"38886\"},"
	"\"ports\":[{\"mode\":\"ingress\",\"target\":38886,\"published\":\"44886\",\"protocol\":\"tcp\"}]},"
	"\"postgres-agent\":{\"container_name\":\"hu-hive-postgres-agent\",\"image\":\"localhost/"
	"hive-split-postgres:17\","
	"\"environment\":{\"PGDATA\":\"/var/lib/postgresql/data/pgdata\",\"POSTGRES_DB\":\"hive_agent\","
	"\"POSTGRES_PASSWORD\":\"s3cret\",\"POSTGRES_USER\":\"agent\"},"
	"\"ports\":[{\"mode\":\"ingress\",\"host_ip\":\"127.0.0.1\",\"target\":5432,\"published\":\"44532\"}]"
	","
	"\"volumes\":[{\"type\":\"bind\",\"source\":\"/tmp/s/data/postgres-agent\",\"target\":\"/var/lib/"
	"postgresql/data\"}]}}}";

static void test_stack_parse(void **state)
{
	(void)state;
	hm_stack s;
	hm_error err = {0};
	assert_int_equal(hm_stack_parse(CONFIG, "/tmp/s", "agent", &s, &err), 0);
	assert_string_equal(s.project, "stack");
	assert_string_equal(s.pg_service, "postgres-agent");
	assert_string_equal(s.api_service, "agent-api");
	assert_string_equal(s.pg_container, "hu-hive-postgres-agent");
	assert_int_equal(s.pg_port, 44532);
	assert_int_equal(s.api_port, 44886);
	assert_string_equal(s.pg_host, "127.0.0.1");
	assert_string_equal(s.data_dir, "/tmp/s/data/postgres-agent");
	assert_string_equal(s.pgdata, "/tmp/s/data/postgres-agent/pgdata");
	assert_string_equal(s.db_user, "agent");
	assert_string_equal(s.db_name, "hive_agent");
	assert_string_equal(s.db_password, "s3cret");
	/* the genie profile is not in this config */
	assert_int_equal(hm_stack_parse(CONFIG, "/tmp/s", "genie", &s, &err), -1);
	assert_int_equal(err.code, HM_EXIT_INPUT);
	assert_non_null(strstr(err.message, "postgres-genie"));
	assert_int_equal(hm_stack_parse("nope", "/tmp/s", "agent", &s, &err), -1);
	assert_int_equal(hm_stack_parse(CONFIG, "/tmp/s", "other", &s, &err), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compare_table),
		cmocka_unit_test(test_stack_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
