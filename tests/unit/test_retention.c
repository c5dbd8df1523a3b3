/* backup/retention.c over a synthetic calendar: a year of dailies, restic-like buckets,
 * the newest valid backup always kept, failed backups never counted. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../../backup/retention.h"

/* Unix time of YYYY-MM-DD hh:00 UTC. */
static time_t at(int y, int m, int d, int h)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	return timegm(&tm);
}

/* "YYYY-MM-DD" of t. */
static void day(time_t t, char out[11])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

#define NDAYS 365

/* One backup at 02:00 every day of 2025; keep-last 3, daily 7, weekly 4, monthly 12. */
static void year_of_dailies(void **state)
{
	(void)state;
	hm_retention_item items[NDAYS];
	memset(items, 0, sizeof items);
	for (int i = 0; i < NDAYS; i++) {
		items[i].time = at(2025, 1, 1, 2) + (time_t)i * 86400;
		items[i].valid = 1;
	}
	hm_retention_policy p = {.keep_last = 3, .keep_daily = 7, .keep_weekly = 4, .keep_monthly = 12};
	hm_retention_apply(&p, items, NDAYS);
	/* Expected, worked out by hand from the calendar (2025-12-31 is a Wednesday):
	 * daily: Dec 25..31 (last 3 are inside); weekly (ISO weeks, newest of each): Dec 31
	 * (week 2026-W01), Dec 28 (W52), Dec 21 (W51), Dec 14 (W50); monthly: the last day of
	 * each month Jan..Dec. */
	static const char *expected[] = {
		"2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30", "2025-05-31",
		"2025-06-30", "2025-07-31", "2025-08-31", "2025-09-30", "2025-10-31",
		"2025-11-30", "2025-12-14", "2025-12-21", "2025-12-25", "2025-12-26",
		"2025-12-27", "2025-12-28", "2025-12-29", "2025-12-30", "2025-12-31",
	};
	size_t nexp = sizeof expected / sizeof expected[0], kept = 0;
	for (int i = 0; i < NDAYS; i++) {
		char d[11];
		day(items[i].time, d);
		int want = 0;
		for (size_t k = 0; k < nexp; k++)
			if (!strcmp(expected[k], d))
				want = 1;
		if (want != items[i].keep)
			fail_msg("%s: keep=%d, expected %d (reason \"%s\")", d, items[i].keep, want,
				 items[i].reason);
		kept += (size_t)items[i].keep;
	}
	assert_int_equal(kept, nexp);
	/* reasons name every rule that kept it */
	assert_string_equal(items[NDAYS - 1].reason, "newest valid,last,daily,weekly,monthly");
	assert_string_equal(items[NDAYS - 4].reason, "daily,weekly"); /* Dec 28 */
	assert_string_equal(items[30].reason, "monthly");	      /* Jan 31 */
}

/* Several backups a day: daily keeps only the newest of each day. */
static void several_per_day(void **state)
{
	(void)state;
	hm_retention_item it[6];
	memset(it, 0, sizeof it);
	for (int i = 0; i < 6; i++) {
		it[i].time = at(2025, 3, 1 + i / 3, 1 + 6 * (i % 3));
		it[i].valid = 1;
	}
	hm_retention_policy p = {.keep_daily = 2};
	hm_retention_apply(&p, it, 6);
	int keep[6] = {0, 0, 1, 0, 0, 1};
	for (int i = 0; i < 6; i++)
		assert_int_equal(it[i].keep, keep[i]);
}

/* Order of input does not matter, and it is not reordered. */
static void unsorted_input(void **state)
{
	(void)state;
	hm_retention_item it[3];
	memset(it, 0, sizeof it);
	it[0].time = at(2025, 5, 3, 0);
	it[1].time = at(2025, 5, 1, 0);
	it[2].time = at(2025, 5, 2, 0);
	for (int i = 0; i < 3; i++)
		it[i].valid = 1;
	hm_retention_policy p = {.keep_last = 2};
	hm_retention_apply(&p, it, 3);
	assert_int_equal(it[0].keep, 1);
	assert_int_equal(it[1].keep, 0);
	assert_int_equal(it[2].keep, 1);
}

/* A failed backup is never kept and does not use up a bucket; the newest valid backup is
 * kept even when no rule would keep it. */
static void invalid_and_newest_valid(void **state)
{
	(void)state;
	hm_retention_item it[4];
	memset(it, 0, sizeof it);
	for (int i = 0; i < 4; i++) {
		it[i].time = at(2025, 6, 1, 0) + (time_t)i * 86400;
		it[i].valid = 1;
	}
	it[3].valid = 0; /* newest failed verification */
	hm_retention_policy p = {.keep_daily = 1};
	hm_retention_apply(&p, it, 4);
	assert_int_equal(it[3].keep, 0);
	assert_int_equal(it[2].keep, 1); /* newest valid, also the daily one */
	assert_int_equal(it[1].keep, 0);
	assert_int_equal(it[0].keep, 0);
	/* monthly only, with the newest valid in an older month than an invalid one */
	hm_retention_policy m = {.keep_monthly = 1};
	it[2].valid = 0;
	hm_retention_apply(&m, it, 4);
	assert_int_equal(it[1].keep, 1);
	assert_string_equal(it[1].reason, "newest valid,monthly");
	assert_int_equal(it[0].keep + it[2].keep + it[3].keep, 0);
}

/* Edge cases: nothing to do; an all-zero policy is reported as empty. */
static void edges(void **state)
{
	(void)state;
	hm_retention_policy zero = {0};
	assert_true(hm_retention_empty(&zero));
	hm_retention_policy one = {.keep_weekly = 1};
	assert_false(hm_retention_empty(&one));
	hm_retention_apply(&one, NULL, 0);
	hm_retention_item it = {.time = at(2024, 2, 29, 12), .valid = 1};
	hm_retention_apply(&zero, &it, 1);
	assert_int_equal(it.keep, 1); /* the only valid backup survives even an empty policy */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(year_of_dailies), cmocka_unit_test(several_per_day),
		cmocka_unit_test(unsorted_input),  cmocka_unit_test(invalid_and_newest_valid),
		cmocka_unit_test(edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
