/* Naming the split stack's compose project: -f/--project-directory/--project-name with
 * compose's meaning (paths from the current directory, the first file's directory as the
 * project directory, compose's project-name rule), the argv replayed on every compose call,
 * and the journal that records them so resume and rollback use the same project. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/fsutil.h"
#include "../../migrate/compose.h"
#include "../../migrate/journal.h"
#include "../../migrate/stack_options.h"

static char tmp[PATH_MAX];

/* A stack tree with a space in its path: T/my hive/docker/templates/agent.yml, T/flat/compose.yaml. */
static int setup(void **state)
{
	(void)state;
	char p[PATH_MAX + 64];
	snprintf(tmp, sizeof tmp, "/tmp/hm-test-stack-XXXXXX");
	if (!mkdtemp(tmp))
		return -1;
	snprintf(p, sizeof p, "%s/my hive/docker/templates", tmp);
	hm_error err;
	if (hm_mkdir_p(p, 0755, &err) != 0)
		return -1;
	snprintf(p, sizeof p, "%s/my hive/docker/templates/agent.yml", tmp);
	if (hm_write_file_atomic(p, "services: {}\n", 13, 0644, &err) != 0)
		return -1;
	snprintf(p, sizeof p, "%s/flat", tmp);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/flat/compose.yaml", tmp);
	if (hm_write_file_atomic(p, "services: {}\n", 13, 0644, &err) != 0)
		return -1;
	snprintf(p, sizeof p, "%s/empty", tmp);
	mkdir(p, 0755);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	hm_error err;
	return hm_rmtree(tmp, &err);
}

static void test_project_init(void **state)
{
	(void)state;
	hm_compose_project p;
	hm_error err = {0};
	char cwd[PATH_MAX], want[PATH_MAX + 64], buf[4096];
	assert_non_null(getcwd(cwd, sizeof cwd));
	/* relative to the current directory, as docker compose -f */
	snprintf(want, sizeof want, "%s/my hive", tmp);
	assert_int_equal(chdir(want), 0);
	const char *files[] = {"docker/templates/agent.yml"};
	assert_int_equal(hm_compose_project_init(&p, ".", files, 1, NULL, NULL, "agent", &err), 0);
	snprintf(want, sizeof want, "%s/my hive/docker/templates/agent.yml", tmp);
	assert_string_equal(p.files[0], want);
	assert_int_equal(p.n_files, 1);
	assert_string_equal(p.dir, "");
	assert_string_equal(p.name, "");
	hm_compose_project_workdir(&p, buf, sizeof buf);
	snprintf(want, sizeof want, "%s/my hive/docker/templates", tmp);
	assert_string_equal(buf, want);
	/* the argv compose gets */
	char *argv[32];
	int n = hm_compose_argv(&p, argv, 32);
	assert_int_equal(n, 6);
	assert_string_equal(argv[0], "docker");
	assert_string_equal(argv[2], "-f");
	assert_string_equal(argv[3], p.files[0]);
	assert_string_equal(argv[4], "--profile");
	assert_string_equal(argv[5], "agent");
	assert_int_equal(hm_compose_argv(&p, argv, 4), -1);
	/* described for hints: the path with a space quoted */
	hm_compose_project_describe(&p, buf, sizeof buf);
	snprintf(want, sizeof want, "-f '%s/my hive/docker/templates/agent.yml'", tmp);
	assert_string_equal(buf, want);
	/* a missing file, a bad name, too many files */
	const char *missing[] = {"docker/templates/genie.yml"};
	assert_int_equal(hm_compose_project_init(&p, ".", missing, 1, NULL, NULL, "agent", &err), -1);
	assert_int_equal(err.code, HM_EXIT_INPUT);
	assert_non_null(strstr(err.message, "genie.yml"));
	assert_non_null(strstr(err.hint, "current directory"));
	assert_int_equal(hm_compose_project_init(&p, ".", files, 1, NULL, "My Stack", "agent", &err), -1);
	assert_int_equal(err.code, HM_EXIT_USAGE);
	assert_int_equal(hm_compose_project_init(&p, ".", files, 1, NULL, "-x", "agent", &err), -1);
	assert_int_equal(hm_compose_project_init(&p, ".", files, 1, NULL, "hive_2", "agent", &err), 0);
	assert_string_equal(p.name, "hive_2");
	const char *nine[9] = {files[0], files[0], files[0], files[0], files[0],
			       files[0], files[0], files[0], files[0]};
	assert_int_equal(hm_compose_project_init(&p, ".", nine, 9, NULL, NULL, "agent", &err), -1);
	assert_int_equal(err.code, HM_EXIT_USAGE);
	/* --project-directory made absolute */
	assert_int_equal(hm_compose_project_init(&p, ".", files, 1, ".", NULL, "agent", &err), 0);
	snprintf(want, sizeof want, "%s/my hive", tmp);
	assert_string_equal(p.dir, want);
	assert_int_equal(chdir(cwd), 0);

	/* no -f: the compose file compose finds in the stack directory */
	snprintf(want, sizeof want, "%s/flat", tmp);
	assert_int_equal(hm_compose_project_init(&p, want, NULL, 0, NULL, NULL, "genie", &err), 0);
	assert_string_equal(p.dir, want);
	assert_int_equal(p.n_files, 0);
	snprintf(want, sizeof want, "%s/empty", tmp);
	assert_int_equal(hm_compose_project_init(&p, want, NULL, 0, NULL, NULL, "agent", &err), -1);
	assert_int_equal(err.code, HM_EXIT_INPUT);
	assert_non_null(strstr(err.message, "no compose file"));
	assert_non_null(strstr(err.hint, "--compose-file"));
	snprintf(want, sizeof want, "%s/nowhere", tmp);
	assert_int_equal(hm_compose_project_init(&p, want, NULL, 0, NULL, NULL, "agent", &err), -1);
}

static void test_project_same(void **state)
{
	(void)state;
	hm_compose_project a, b;
	memset(&a, 0, sizeof a);
	snprintf(a.files[0], sizeof a.files[0], "/s/docker/templates/agent.yml");
	a.n_files = 1;
	b = a;
	assert_true(hm_compose_project_same(&a, &b));
	snprintf(b.name, sizeof b.name, "templates"); /* one has no name: compose's default */
	assert_true(hm_compose_project_same(&a, &b));
	snprintf(a.name, sizeof a.name, "other");
	assert_false(hm_compose_project_same(&a, &b));
	a = b;
	snprintf(a.dir, sizeof a.dir, "/s");
	assert_false(hm_compose_project_same(&a, &b));
	a = b;
	snprintf(a.files[1], sizeof a.files[1], "/s/override.yml");
	a.n_files = 2;
	assert_false(hm_compose_project_same(&a, &b));
}

/* A journal of up with the project recorded: resume and rollback use it; options naming
 * another project are refused; a journal from before the fields existed still decodes. */
static void test_journal_project(void **state)
{
	(void)state;
	hm_journal j, k;
	hm_error err = {0};
	char *s = NULL, file[PATH_MAX + 64], stack[PATH_MAX + 16];
	snprintf(stack, sizeof stack, "%s/my hive", tmp);
	snprintf(file, sizeof file, "%s/my hive/docker/templates/agent.yml", tmp);
	hm_journal_init(&j, "agent", stack);
	snprintf(j.compose_files[0], sizeof j.compose_files[0], "%s", file);
	j.n_compose_files = 1;
	snprintf(j.project_name, sizeof j.project_name, "templates");
	snprintf(j.db_service, sizeof j.db_service, "postgres-agent");
	snprintf(j.api_service, sizeof j.api_service, "app-agent");
	assert_int_equal(hm_journal_encode(&j, &s, &err), 0);
	assert_non_null(strstr(s, "\"compose_files\""));
	assert_int_equal(hm_journal_decode(s, "t", &k, &err), 0);
	free(s);
	assert_int_equal(k.n_compose_files, 1);
	assert_string_equal(k.compose_files[0], file);
	assert_string_equal(k.project_dir, "");
	assert_string_equal(k.project_name, "templates");
	assert_string_equal(k.db_service, "postgres-agent");
	assert_string_equal(k.api_service, "app-agent");

	/* the journal's project, without options */
	hm_stack_options none = {0}, same = {0}, other = {0}, svc = {0};
	hm_compose_project p;
	hm_stack_select sel;
	assert_int_equal(hm_stack_options_project(&none, stack, "agent", &k, "J", &p, &sel, &err), 0);
	assert_int_equal(p.n_files, 1);
	assert_string_equal(p.files[0], file);
	assert_string_equal(p.name, "templates");
	assert_string_equal(p.profile, "agent");
	assert_string_equal(sel.db_service, "postgres-agent");
	assert_string_equal(sel.api_service, "app-agent");
	/* the same one given again: fine */
	same.files[0] = file;
	same.n_files = 1;
	assert_int_equal(hm_stack_options_project(&same, stack, "agent", &k, "J", &p, &sel, &err), 0);
	/* another one: refused, naming the journal and the recorded project */
	other.project_dir = stack;
	other.files[0] = file;
	other.n_files = 1;
	assert_int_equal(hm_stack_options_project(&other, stack, "agent", &k, "J", &p, &sel, &err), -1);
	assert_int_equal(err.code, HM_EXIT_USAGE);
	assert_non_null(strstr(err.message, "recorded in J"));
	assert_non_null(strstr(err.message, "agent.yml"));
	svc.db_service = "agent-postgres";
	assert_int_equal(hm_stack_options_project(&svc, stack, "agent", &k, "J", &p, &sel, &err), -1);
	assert_non_null(strstr(err.message, "--db-service postgres-agent"));
	/* no journal: the options */
	assert_int_equal(hm_stack_options_project(&other, stack, "agent", NULL, "J", &p, &sel, &err), 0);
	assert_string_equal(p.dir, stack);
	assert_null(sel.db_service);

	/* a journal written before: the stack directory's compose file, services by role */
	const char *old =
		"{\"version\":1,\"step\":\"done\",\"status\":\"done\",\"rollback_step\":\"none\","
		"\"profile\":\"agent\",\"stack_dir\":\"/srv/hive\",\"backup_id\":\"\",\"archive\":\"\","
		"\"manifest_sha256\":\"\",\"data_dir\":\"/srv/hive/data/postgres-agent\",\"pgdata\":\"\","
		"\"fingerprint_file\":\"\",\"chown_file\":\"\",\"env_file\":\"\",\"template_file\":\"\","
		"\"unified_project\":\"\",\"unified_container\":\"\",\"image\":\"\",\"restore_dir\":\"\","
		"\"displaced_dir\":\"\",\"failure\":\"\"}";
	assert_int_equal(hm_journal_decode(old, "old", &k, &err), 0);
	assert_int_equal(k.n_compose_files, 0);
	assert_string_equal(k.project_name, "");
	assert_int_equal(hm_stack_options_project(&none, "/x", "agent", &k, "J", &p, &sel, &err), 0);
	assert_string_equal(p.dir, "/srv/hive");
	assert_int_equal(p.n_files, 0);
	assert_string_equal(p.name, "");
	assert_null(sel.db_service);
	/* damaged lists are refused */
	const char *bad =
		"{\"version\":1,\"step\":\"done\",\"status\":\"done\",\"rollback_step\":\"none\","
		"\"profile\":\"agent\",\"stack_dir\":\"/s\",\"backup_id\":\"\",\"archive\":\"\","
		"\"manifest_sha256\":\"\",\"data_dir\":\"\",\"pgdata\":\"\",\"fingerprint_file\":\"\","
		"\"chown_file\":\"\",\"env_file\":\"\",\"template_file\":\"\",\"unified_project\":\"\","
		"\"unified_container\":\"\",\"image\":\"\",\"restore_dir\":\"\",\"displaced_dir\":\"\","
		"\"failure\":\"\",\"compose_files\":[1]}";
	assert_int_equal(hm_journal_decode(bad, "bad", &k, &err), -1);
	assert_int_equal(err.code, HM_EXIT_CORRUPT);
}

/* The options themselves (getopt codes). */
static void test_options_parse(void **state)
{
	(void)state;
	hm_stack_options o = {0};
	assert_int_equal(hm_stack_options_parse(&o, 'f', "a.yml", "t"), 1);
	assert_int_equal(hm_stack_options_parse(&o, HM_STACK_OPT_BASE + 1, "/d", "t"), 1);
	assert_int_equal(hm_stack_options_parse(&o, HM_STACK_OPT_BASE + 2, "n", "t"), 1);
	assert_int_equal(hm_stack_options_parse(&o, HM_STACK_OPT_BASE + 3, "db", "t"), 1);
	assert_int_equal(hm_stack_options_parse(&o, HM_STACK_OPT_BASE + 4, "api", "t"), 1);
	assert_int_equal(hm_stack_options_parse(&o, HM_STACK_OPT_BASE + 4, "", "t"), -1);
	assert_int_equal(hm_stack_options_parse(&o, 's', "x", "t"), 0);
	assert_int_equal(o.n_files, 1);
	assert_string_equal(o.project_dir, "/d");
	assert_string_equal(o.db_service, "db");
	assert_true(hm_stack_options_given(&o));
	for (int i = 1; i < HM_STACK_MAX_FILES; i++)
		assert_int_equal(hm_stack_options_parse(&o, 'f', "a.yml", "t"), 1);
	assert_int_equal(hm_stack_options_parse(&o, 'f', "a.yml", "t"), -1);
	hm_stack_options none = {0};
	assert_false(hm_stack_options_given(&none));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_project_init),
		cmocka_unit_test(test_project_same),
		cmocka_unit_test(test_journal_project),
		cmocka_unit_test(test_options_parse),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
