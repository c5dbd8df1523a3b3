/* Backup retention (restic-like "forget" policy) as a pure function over backup times.
 * Buckets are wall-clock calendar periods in UTC: a day, an ISO 8601 week, a month.
 *   keep_last N     the N newest backups
 *   keep_daily N    the newest backup of each of the N most recent days that have backups
 *   keep_weekly N   the same per ISO week; keep_monthly N per calendar month
 * Rules are independent (one backup may satisfy several). Backups that failed
 * verification (valid = 0) are never kept by a rule and never count towards one. The
 * newest valid backup is always kept, whatever the policy. */
#ifndef HM_RETENTION_H
#define HM_RETENTION_H

#include <stddef.h>
#include <time.h>

typedef struct hm_retention_policy {
	int keep_last, keep_daily, keep_weekly, keep_monthly;
} hm_retention_policy;

typedef struct hm_retention_item {
	time_t time; /* when the backup started */
	int valid;   /* 0: failed verification */
	/* output */
	int keep;
	char reason[64]; /* "last", "daily", "weekly,monthly", "newest valid", "" */
} hm_retention_item;

/* Decide keep/remove for n items (any order; not reordered; of items with equal times the
 * one later in the array counts as newer). */
void hm_retention_apply(const hm_retention_policy *p, hm_retention_item *items, size_t n);

/* True when the policy keeps nothing by rule (all counts zero): callers refuse that. */
int hm_retention_empty(const hm_retention_policy *p);

#endif
