/* Retention: walk backups newest first; each rule remembers the last bucket it kept from
 * and keeps a backup when its bucket differs and the rule still has room. Pure: no I/O,
 * no clock, so it is tested over a synthetic calendar. */
#include "retention.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hm_retention_empty(const hm_retention_policy *p)
{
	return p->keep_last <= 0 && p->keep_daily <= 0 && p->keep_weekly <= 0 && p->keep_monthly <= 0;
}

/* Bucket number of t for a rule: 0 = each backup its own, 1 = day, 2 = ISO week, 3 = month. */
static long bucket(time_t t, int kind, size_t index)
{
	struct tm tm;
	char buf[16];
	gmtime_r(&t, &tm);
	switch (kind) {
	case 0:
		return (long)index;
	case 1:
		return (long)(tm.tm_year + 1900) * 1000 + tm.tm_yday;
	case 2:
		strftime(buf, sizeof buf, "%G%V", &tm); /* ISO year and week */
		return strtol(buf, NULL, 10);
	default:
		return (long)(tm.tm_year + 1900) * 100 + tm.tm_mon;
	}
}

/* Append a reason. */
static void add_reason(hm_retention_item *it, const char *r)
{
	size_t l = strlen(it->reason);
	snprintf(it->reason + l, sizeof it->reason - l, "%s%s", l ? "," : "", r);
}

void hm_retention_apply(const hm_retention_policy *p, hm_retention_item *items, size_t n)
{
	static const char *names[] = {"last", "daily", "weekly", "monthly"};
	int left[4] = {p->keep_last, p->keep_daily, p->keep_weekly, p->keep_monthly};
	long lastb[4];
	int have[4] = {0, 0, 0, 0};
	size_t *order = malloc((n ? n : 1) * sizeof *order);
	for (size_t i = 0; i < n; i++) {
		items[i].keep = 0;
		items[i].reason[0] = '\0';
	}
	if (!order) { /* out of memory: the safe answer is to keep everything */
		for (size_t i = 0; i < n; i++) {
			items[i].keep = 1;
			add_reason(&items[i], "out of memory");
		}
		return;
	}
	/* newest first; among equal times the later item (callers pass oldest first) first */
	for (size_t i = 0; i < n; i++) {
		size_t j = i;
		while (j > 0 && items[order[j - 1]].time <= items[i].time) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}
	int newest_valid_done = 0;
	for (size_t k = 0; k < n; k++) {
		hm_retention_item *it = &items[order[k]];
		if (!it->valid)
			continue;
		if (!newest_valid_done) {
			it->keep = 1;
			add_reason(it, "newest valid");
			newest_valid_done = 1;
		}
		for (int r = 0; r < 4; r++) {
			if (left[r] <= 0)
				continue;
			long b = bucket(it->time, r, k);
			if (have[r] && b == lastb[r])
				continue;
			have[r] = 1;
			lastb[r] = b;
			left[r]--;
			it->keep = 1;
			add_reason(it, names[r]);
		}
	}
	free(order);
}
