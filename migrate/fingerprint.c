/* Fingerprints. The digest is a sum (not a hash of sorted rows) so it needs no ORDER BY
 * and no memory on either side: the server streams each table once. md5 over the row's
 * text form catches any changed value; the count catches lost or duplicated rows whose
 * digests could cancel out. */
#include "fingerprint.h"

#include "fingerprint_int.h"
#include "preflight.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Run a query expecting tuples; NULL with err on failure. */
static PGresult *query(PGconn *c, const char *sql, const char *db, hm_error *err)
{
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", PQerrorMessage(c));
		msg[strcspn(msg, "\n")] = '\0';
		hm_error_set(err, HM_EXIT_DATABASE, "fingerprint of database \"%s\" failed: %s", db, msg);
		PQclear(r);
		return NULL;
	}
	return r;
}

/* Fingerprint of one database (tables + extensions) into a new object. */
static int take_db(const hm_pg_params *base, const char *db, json_object **out, long long *total,
		   hm_error *err)
{
	hm_pg_params p = *base;
	PGconn *c;
	PGresult *r = NULL;
	json_object *o = json_object_new_object(), *tables = json_object_new_object(),
		    *exts = json_object_new_object();
	int rc = -1;
	p.dbname = db;
	if (!(c = hm_pg_connect(&p, err)))
		goto cleanup;
	/* The text form of a row depends on a few session settings (time zone, date and
	 * interval styles, float digits, bytea output): fixed here, so that the digest depends
	 * only on the data, whichever server, major or configuration computes it. */
	PQclear(PQexec(c, HM_FP_SESSION_SQL));
	if (!(r = query(c, HM_FP_EXTENSIONS_SQL, db, err)))
		goto cleanup;
	for (int i = 0; i < PQntuples(r); i++)
		json_object_object_add(exts, PQgetvalue(r, i, 0),
				       json_object_new_string(PQgetvalue(r, i, 1)));
	PQclear(r);
	r = query(c, HM_FP_TABLES_SQL, db, err);
	if (!r)
		goto cleanup;
	for (int i = 0; i < PQntuples(r); i++) {
		const char *ns = PQgetvalue(r, i, 0), *rel = PQgetvalue(r, i, 1);
		char *qns = PQescapeIdentifier(c, ns, strlen(ns)),
		     *qrel = PQescapeIdentifier(c, rel, strlen(rel));
		char *sql = NULL, key[300];
		if (!qns || !qrel || asprintf(&sql, HM_FP_TABLE_FMT, qns, qrel) < 0) {
			PQfreemem(qns);
			PQfreemem(qrel);
			hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
			goto cleanup;
		}
		PQfreemem(qns);
		PQfreemem(qrel);
		PGresult *t = query(c, sql, db, err);
		free(sql);
		if (!t)
			goto cleanup;
		json_object *e = json_object_new_object();
		long long rows = atoll(PQgetvalue(t, 0, 0));
		json_object_object_add(e, "rows", json_object_new_int64(rows));
		json_object_object_add(e, "digest", json_object_new_string(PQgetvalue(t, 0, 1)));
		PQclear(t);
		snprintf(key, sizeof key, "%s.%s", ns, rel);
		json_object_object_add(tables, key, e);
		*total += rows;
	}
	json_object_object_add(o, "tables", tables);
	json_object_object_add(o, "extensions", exts);
	tables = exts = NULL;
	*out = o;
	o = NULL;
	rc = 0;
cleanup:
	PQclear(r);
	PQfinish(c);
	json_object_put(o);
	json_object_put(tables);
	json_object_put(exts);
	return rc;
}

int hm_fingerprint_take(const hm_pg_params *p, json_object **out, hm_error *err)
{
	PGconn *c = hm_pg_connect(p, err);
	PGresult *r = NULL;
	json_object *root = NULL, *dbs = NULL;
	long long total = 0;
	int rc = -1;
	if (!c)
		return -1;
	r = query(c, HM_FP_DATABASES_SQL, p->dbname, err);
	if (!r)
		goto cleanup;
	root = json_object_new_object();
	dbs = json_object_new_object();
	for (int i = 0; i < PQntuples(r); i++) {
		json_object *d = NULL;
		if (take_db(p, PQgetvalue(r, i, 0), &d, &total, err) != 0)
			goto cleanup;
		json_object_object_add(dbs, PQgetvalue(r, i, 0), d);
	}
	json_object_object_add(root, "databases", dbs);
	dbs = NULL;
	json_object_object_add(root, "total_rows", json_object_new_int64(total));
	*out = root;
	root = NULL;
	rc = 0;
cleanup:
	PQclear(r);
	PQfinish(c);
	json_object_put(root);
	json_object_put(dbs);
	return rc;
}

int hm_fingerprint_guard(const hm_pg_params *p, unsigned long long *next_xid, hm_error *err)
{
	PGconn *c = hm_pg_connect(p, err);
	*next_xid = 0;
	if (!c)
		return -1;
	PGresult *r = query(c,
			    "SELECT pg_snapshot_xmin(s)::text, pg_snapshot_xmax(s)::text "
			    "FROM pg_current_snapshot() s",
			    p->dbname, err);
	if (r) {
		unsigned long long xmin = strtoull(PQgetvalue(r, 0, 0), NULL, 10),
				   xmax = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
		*next_xid = xmin == xmax ? xmax : 0;
	}
	PQclear(r);
	PQfinish(c);
	return r ? 0 : -1;
}

/* Object member or NULL. */
static json_object *get(json_object *o, const char *k)
{
	json_object *v = NULL;
	return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

/* Compare the keys of two objects both ways; report the first missing one. */
static int same_keys(json_object *a, json_object *b, const char *what, const char *where, hm_error *err)
{
	json_object_object_foreach(a, ka, va)
	{
		(void)va;
		if (!get(b, ka))
			return hm_error_set(err, HM_EXIT_VERIFY_FAILED,
					    "%s \"%s\"%s is missing after the move", what, ka, where);
	}
	json_object_object_foreach(b, kb, vb)
	{
		(void)vb;
		if (!get(a, kb))
			return hm_error_set(err, HM_EXIT_VERIFY_FAILED, "%s \"%s\"%s appeared after the move",
					    what, kb, where);
	}
	return 0;
}

int hm_fingerprint_compare(json_object *before, json_object *after, hm_error *err)
{
	return hm_fingerprint_compare_ex(before, after, 0, err);
}

int hm_fingerprint_compare_ex(json_object *before, json_object *after, int flags, hm_error *err)
{
	json_object *da = get(before, "databases"), *db = get(after, "databases");
	char where[300];
	if (!da || !db)
		return hm_error_set(err, HM_EXIT_VERIFY_FAILED, "fingerprint is incomplete");
	if (same_keys(da, db, "database", "", err) != 0)
		return -1;
	json_object_object_foreach(da, name, a)
	{
		json_object *b = get(db, name);
		json_object *ta = get(a, "tables"), *tb = get(b, "tables");
		json_object *ea = get(a, "extensions"), *eb = get(b, "extensions");
		snprintf(where, sizeof where, " in database \"%s\"", name);
		if (!ta || !tb || !ea || !eb)
			return hm_error_set(err, HM_EXIT_VERIFY_FAILED, "fingerprint of \"%s\" is incomplete",
					    name);
		if (same_keys(ta, tb, "table", where, err) != 0 ||
		    same_keys(ea, eb, "extension", where, err) != 0)
			return -1;
		json_object_object_foreach(ta, tname, x)
		{
			json_object *y = get(tb, tname);
			long long ra = json_object_get_int64(get(x, "rows")),
				  rb = json_object_get_int64(get(y, "rows"));
			if (ra != rb)
				return hm_error_set(err, HM_EXIT_VERIFY_FAILED,
						    "table %s%s has %lld rows, had %lld", tname, where, rb,
						    ra);
			const char *ga = json_object_get_string(get(x, "digest")),
				   *gb = json_object_get_string(get(y, "digest"));
			if (!ga || !gb || strcmp(ga, gb) != 0)
				return hm_error_set(err, HM_EXIT_VERIFY_FAILED,
						    "table %s%s: content differs (digest)", tname, where);
		}
		json_object_object_foreach(ea, ename, v)
		{
			const char *va = json_object_get_string(v),
				   *vb = json_object_get_string(get(eb, ename));
			/* across majors the new cluster updates an extension (ALTER EXTENSION ...
			 * UPDATE): a newer version is the expected result, an older one is not */
			if (va && vb && (flags & HM_FP_CROSS_MAJOR) && hm_preflight_version_cmp(vb, va) >= 0)
				continue;
			if (!va || !vb || strcmp(va, vb) != 0)
				return hm_error_set(err, HM_EXIT_VERIFY_FAILED,
						    "extension %s%s: version %s, was %s", ename, where,
						    vb ? vb : "?", va ? va : "?");
		}
	}
	return 0;
}

long long hm_fingerprint_total_rows(json_object *fp)
{
	json_object *t = get(fp, "total_rows");
	return t ? json_object_get_int64(t) : 0;
}
