/* docs/exit-codes.md documents every entry of the exit-code catalogue (common/exitcode.c)
 * with the same number, name and meaning, and documents nothing that is not in it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/exitcode.h"

/* Read docs/exit-codes.md (HM_SRCDIR is the repo root) into a malloc'd string. */
static char *read_doc(void)
{
	const char *root = getenv("HM_SRCDIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/docs/exit-codes.md", root && *root ? root : ".");
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	char *buf = calloc(1, 1 << 20);
	assert_non_null(buf);
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* The table row of a code: the line starting "| CODE |", or NULL. Copied into row. */
static int find_row(const char *doc, int code, char *row, size_t sz)
{
	char prefix[32];
	snprintf(prefix, sizeof prefix, "| %d |", code);
	for (const char *p = doc; p && *p;) {
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) : strlen(p);
		if (!strncmp(p, prefix, strlen(prefix))) {
			snprintf(row, sz, "%.*s", (int)n, p);
			return 1;
		}
		p = eol ? eol + 1 : NULL;
	}
	return 0;
}

static void test_every_code_documented(void **state)
{
	(void)state;
	char *doc = read_doc();
	int n = 0;
	for (const hm_exit_info *i = hm_exit_catalogue; i->name; i++, n++) {
		char row[2048], cell[128];
		if (!find_row(doc, (int)i->code, row, sizeof row))
			fail_msg("exit code %d (%s) is not in docs/exit-codes.md", i->code, i->name);
		snprintf(cell, sizeof cell, "| %s |", i->name);
		if (!strstr(row, cell))
			fail_msg("docs/exit-codes.md: row of %d does not name \"%s\": %s", i->code, i->name,
				 row);
		if (!strstr(row, i->meaning))
			fail_msg("docs/exit-codes.md: row of %d lacks the meaning \"%s\"", i->code,
				 i->meaning);
		assert_string_equal(hm_exit_name((int)i->code), i->name);
	}
	assert_true(n >= 20);
	free(doc);
}

static void test_no_stale_rows(void **state)
{
	(void)state;
	char *doc = read_doc();
	for (const char *p = doc; p && *p;) {
		int code;
		if (sscanf(p, "| %d |", &code) == 1 && strcmp(hm_exit_name(code), "unknown") == 0)
			fail_msg("docs/exit-codes.md documents code %d, which is not in the catalogue", code);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	free(doc);
}

static void test_codes_unique(void **state)
{
	(void)state;
	for (const hm_exit_info *i = hm_exit_catalogue; i->name; i++)
		for (const hm_exit_info *j = i + 1; j->name; j++) {
			assert_int_not_equal(i->code, j->code);
			assert_string_not_equal(i->name, j->name);
		}
	assert_int_equal(HM_EXIT_CHECK_WARNINGS, 10);
	assert_int_equal(HM_EXIT_CHECK_INCOMPATIBLE, 11);
	assert_int_equal(HM_EXIT_CHECK_ERROR, 12);
	assert_string_equal(hm_exit_name(999), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_code_documented),
		cmocka_unit_test(test_no_stale_rows),
		cmocka_unit_test(test_codes_unique),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
