/* Fingerprint differences for the to-snapshot report. Both directions are walked so that a
 * table created or dropped on the unified container is named as well as a changed one. */
#include "rollback_report.h"

#include <string.h>

static json_object *get(json_object *o, const char *k)
{
	json_object *v = NULL;
	return o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, k, &v) ? v
												    : NULL;
}

static long long rows_of(json_object *t)
{
	json_object *r = get(t, "rows");
	return r ? json_object_get_int64(r) : 0;
}

static void add(json_object *arr, const char *db, const char *table, const char *change, long long rb,
		long long rn)
{
	json_object *e = json_object_new_object();
	json_object_object_add(e, "database", json_object_new_string(db));
	json_object_object_add(e, "table", json_object_new_string(table));
	json_object_object_add(e, "change", json_object_new_string(change));
	json_object_object_add(e, "rows_before", json_object_new_int64(rb));
	json_object_object_add(e, "rows_now", json_object_new_int64(rn));
	json_object_array_add(arr, e);
}

/* Total rows of a database's tables (for a database that appeared or vanished). */
static long long db_rows(json_object *db)
{
	long long n = 0;
	json_object *t = get(db, "tables");
	if (!t || !json_object_is_type(t, json_type_object))
		return 0;
	json_object_object_foreach(t, k, v)
	{
		(void)k;
		n += rows_of(v);
	}
	return n;
}

json_object *hm_rb_fingerprint_diff(json_object *before, json_object *now)
{
	json_object *arr = json_object_new_array();
	json_object *da = get(before, "databases"), *dn = get(now, "databases");
	if (!arr)
		return NULL;
	if (da && json_object_is_type(da, json_type_object)) {
		json_object_object_foreach(da, name, a)
		{
			json_object *n = get(dn, name);
			if (!n) {
				add(arr, name, "", "dropped database", db_rows(a), -1);
				continue;
			}
			json_object *ta = get(a, "tables"), *tn = get(n, "tables");
			if (ta && json_object_is_type(ta, json_type_object)) {
				json_object_object_foreach(ta, tname, x)
				{
					json_object *y = get(tn, tname);
					if (!y) {
						add(arr, name, tname, "dropped", rows_of(x), -1);
						continue;
					}
					const char *ga = json_object_get_string(get(x, "digest")),
						   *gn = json_object_get_string(get(y, "digest"));
					if (rows_of(x) != rows_of(y) || !ga || !gn || strcmp(ga, gn) != 0)
						add(arr, name, tname, "changed", rows_of(x), rows_of(y));
				}
			}
			if (tn && json_object_is_type(tn, json_type_object)) {
				json_object_object_foreach(tn, tname, y)
				{
					if (!get(ta, tname))
						add(arr, name, tname, "new", -1, rows_of(y));
				}
			}
		}
	}
	if (dn && json_object_is_type(dn, json_type_object)) {
		json_object_object_foreach(dn, name, n)
		{
			if (!get(da, name))
				add(arr, name, "", "new database", -1, db_rows(n));
		}
	}
	return arr;
}

void hm_rb_diff_print(json_object *diff, FILE *f)
{
	size_t n = diff ? json_object_array_length(diff) : 0;
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(diff, i);
		const char *db = json_object_get_string(get(e, "database")),
			   *t = json_object_get_string(get(e, "table")),
			   *c = json_object_get_string(get(e, "change"));
		long long rb = json_object_get_int64(get(e, "rows_before")),
			  rn = json_object_get_int64(get(e, "rows_now"));
		if (!t[0])
			fprintf(f, "  database %s: %s (%lld rows)\n", db, c, rn >= 0 ? rn : rb);
		else if (!strcmp(c, "new"))
			fprintf(f, "  %s %s: new table, %lld rows\n", db, t, rn);
		else if (!strcmp(c, "dropped"))
			fprintf(f, "  %s %s: dropped since (had %lld rows)\n", db, t, rb);
		else
			fprintf(f, "  %s %s: %lld rows before, %lld now, content changed\n", db, t, rb, rn);
	}
}
