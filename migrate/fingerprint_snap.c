/* Parallel fingerprint under snapshots checked to predate the new server's writes (the
 * reasoning is in fingerprint_snap.h). Layout: one entry per database with one connection
 * per worker, all in a REPEATABLE READ READ ONLY transaction on the same snapshot; one work
 * item per table, handed out largest first from a shared counter; the JSON is assembled in
 * the order of fingerprint.c once every worker is done. */
#include "fingerprint_snap.h"

#include "../common/progress.h"
#include "fingerprint_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FPS_WORKERS 2

typedef struct fps_db {
	char *name;
	PGconn *conn[FPS_WORKERS];
	json_object *exts;
} fps_db;

typedef struct fps_item {
	int db;
	char *key; /* schema.table */
	char *sql;
	long long size, rows;
	char *digest;
} fps_item;

struct hm_fpsnap {
	fps_db *dbs;
	int ndbs;
	fps_item *items;
	int *order; /* item indexes, largest table first */
	int nitems;
	pthread_mutex_t mu;
	int next, failed, started;
	hm_error err;
	pthread_t th[FPS_WORKERS];
	double t_start, t_end; /* workers started, last one done (hm_progress_now) */
	char snapshot[256];
};

typedef struct fps_arg {
	hm_fpsnap *s;
	int w;
} fps_arg;

/* Run sql on c expecting status want; -1 with err naming db on anything else. */
static int run(PGconn *c, const char *sql, ExecStatusType want, PGresult **res, const char *db, hm_error *err)
{
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != want) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", PQerrorMessage(c));
		msg[strcspn(msg, "\n")] = '\0';
		hm_error_set(err, HM_EXIT_DATABASE, "fingerprint of database \"%s\" failed: %s", db, msg);
		PQclear(r);
		return -1;
	}
	if (res)
		*res = r;
	else
		PQclear(r);
	return 0;
}

/* Connect to database db with p's credentials and fix the session settings. */
static PGconn *open_conn(const hm_pg_params *p, const char *db, hm_error *err)
{
	hm_pg_params q = *p;
	q.dbname = db;
	PGconn *c = hm_pg_connect(&q, err);
	if (c && run(c, HM_FP_SESSION_SQL, PGRES_COMMAND_OK, NULL, db, err) != 0) {
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* Begin the exporting transaction on c and check its snapshot: 0 consistent (id gets the
 * exported snapshot's name, snap its text), 1 not (why), -1 err. */
static int begin_export(PGconn *c, const char *db, uint64_t next_xid, char *id, size_t idsz, char *snap,
			size_t snapsz, char *why, size_t whysz, hm_error *err)
{
	PGresult *r = NULL;
	if (run(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", PGRES_COMMAND_OK, NULL, db, err) != 0 ||
	    run(c,
		"SELECT pg_current_snapshot()::text, pg_snapshot_xmax(pg_current_snapshot())::text, "
		"pg_export_snapshot()",
		PGRES_TUPLES_OK, &r, db, err) != 0)
		return -1;
	snprintf(snap, snapsz, "%s", PQgetvalue(r, 0, 0));
	snprintf(id, idsz, "%s", PQgetvalue(r, 0, 2));
	unsigned long long xmax = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
	PQclear(r);
	if (xmax != next_xid) {
		snprintf(why, whysz,
			 "the snapshot %s of database \"%s\" has xmax %llu, not the next XID %llu of the "
			 "shutdown checkpoint: a transaction of the new server got an XID first",
			 snap, db, xmax, (unsigned long long)next_xid);
		return 1;
	}
	return 0;
}

/* Begin c's transaction on the exported snapshot id. */
static int begin_import(PGconn *c, const char *db, const char *id, hm_error *err)
{
	char *lit = PQescapeLiteral(c, id, strlen(id)), *sql = NULL;
	int rc = -1;
	if (!lit || asprintf(&sql,
			     "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
			     "SET TRANSACTION SNAPSHOT %s",
			     lit) < 0)
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	else
		rc = run(c, sql, PGRES_COMMAND_OK, NULL, db, err);
	PQfreemem(lit);
	free(sql);
	return rc;
}

/* Extensions and tables of database d (on its first connection, inside the snapshot). */
static int list_db(hm_fpsnap *s, int d, hm_error *err)
{
	fps_db *x = &s->dbs[d];
	PGconn *c = x->conn[0];
	PGresult *r = NULL;
	if (run(c, HM_FP_EXTENSIONS_SQL, PGRES_TUPLES_OK, &r, x->name, err) != 0)
		return -1;
	x->exts = json_object_new_object();
	for (int i = 0; i < PQntuples(r); i++)
		json_object_object_add(x->exts, PQgetvalue(r, i, 0),
				       json_object_new_string(PQgetvalue(r, i, 1)));
	PQclear(r);
	if (run(c, HM_FP_TABLES_SQL, PGRES_TUPLES_OK, &r, x->name, err) != 0)
		return -1;
	int n = PQntuples(r), rc = -1;
	fps_item *grown = realloc(s->items, (size_t)(s->nitems + n + 1) * sizeof *grown);
	if (!grown)
		goto oom;
	s->items = grown;
	for (int i = 0; i < n; i++) {
		const char *ns = PQgetvalue(r, i, 0), *rel = PQgetvalue(r, i, 1);
		fps_item *it = &s->items[s->nitems];
		char *qns = PQescapeIdentifier(c, ns, strlen(ns)),
		     *qrel = PQescapeIdentifier(c, rel, strlen(rel));
		memset(it, 0, sizeof *it);
		it->db = d;
		it->size = atoll(PQgetvalue(r, i, 2));
		int bad = !qns || !qrel || asprintf(&it->key, "%s.%s", ns, rel) < 0 ||
			  asprintf(&it->sql, HM_FP_TABLE_FMT, qns, qrel) < 0;
		PQfreemem(qns);
		PQfreemem(qrel);
		s->nitems++; /* counted even when half built: freed with the rest */
		if (bad)
			goto oom;
	}
	rc = 0;
	goto done;
oom:
	hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
done:
	PQclear(r);
	return rc;
}

/* Open database d's connections on a snapshot: the first database reuses c0 (already
 * exporting id0); every other one exports and checks its own. 0, 1 (why) or -1. */
static int open_db(hm_fpsnap *s, const hm_pg_params *p, int d, PGconn **c0, const char *id0,
		   uint64_t next_xid, char *why, size_t whysz, hm_error *err)
{
	fps_db *x = &s->dbs[d];
	char id[128], snap[256];
	snprintf(id, sizeof id, "%s", id0);
	if (*c0 && strcmp(x->name, p->dbname) == 0) {
		x->conn[0] = *c0;
		*c0 = NULL;
	} else {
		if (!(x->conn[0] = open_conn(p, x->name, err)))
			return -1;
		int rc = begin_export(x->conn[0], x->name, next_xid, id, sizeof id, snap, sizeof snap, why,
				      whysz, err);
		if (rc != 0)
			return rc;
	}
	for (int w = 1; w < FPS_WORKERS; w++)
		if (!(x->conn[w] = open_conn(p, x->name, err)) ||
		    begin_import(x->conn[w], x->name, id, err) != 0)
			return -1;
	return list_db(s, d, err);
}

/* Larger table first (then the listing order), for qsort_r. */
static int by_size(const void *a, const void *b, void *arg)
{
	const fps_item *it = arg;
	int i = *(const int *)a, k = *(const int *)b;
	if (it[i].size != it[k].size)
		return it[i].size > it[k].size ? -1 : 1;
	return i - k;
}

int hm_fpsnap_open(const hm_pg_params *p, uint64_t next_xid, hm_fpsnap **out, char *why, size_t whysz,
		   hm_error *err)
{
	hm_fpsnap *s = calloc(1, sizeof *s);
	PGconn *c0 = NULL;
	PGresult *r = NULL;
	char id[128];
	int rc = -1;
	if (!s)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	pthread_mutex_init(&s->mu, NULL);
	if (!(c0 = open_conn(p, p->dbname, err)))
		goto cleanup;
	if ((rc = begin_export(c0, p->dbname, next_xid, id, sizeof id, s->snapshot, sizeof s->snapshot, why,
			       whysz, err)) != 0)
		goto cleanup;
	rc = -1;
	if (run(c0, HM_FP_DATABASES_SQL, PGRES_TUPLES_OK, &r, p->dbname, err) != 0)
		goto cleanup;
	if (!(s->dbs = calloc((size_t)PQntuples(r) + 1, sizeof *s->dbs))) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		s->dbs[i].name = strdup(PQgetvalue(r, i, 0));
		s->ndbs++;
		if (!s->dbs[i].name) {
			hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
			goto cleanup;
		}
		if ((rc = open_db(s, p, i, &c0, id, next_xid, why, whysz, err)) != 0)
			goto cleanup;
		rc = -1;
	}
	if (!(s->order = calloc((size_t)s->nitems + 1, sizeof *s->order))) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	for (int i = 0; i < s->nitems; i++)
		s->order[i] = i;
	qsort_r(s->order, (size_t)s->nitems, sizeof *s->order, by_size, s->items);
	*out = s;
	s = NULL;
	rc = 0;
cleanup:
	PQclear(r);
	PQfinish(c0);
	hm_fpsnap_free(s);
	return rc;
}

const char *hm_fpsnap_snapshot(const hm_fpsnap *s)
{
	return s->snapshot;
}

/* One worker: take the next table until none is left or another worker failed. */
static void *worker(void *argp)
{
	fps_arg *a = argp;
	hm_fpsnap *s = a->s;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		int i = s->failed || s->next >= s->nitems ? -1 : s->order[s->next++];
		pthread_mutex_unlock(&s->mu);
		if (i < 0)
			break;
		fps_item *it = &s->items[i];
		PGresult *r = NULL;
		hm_error e = {0};
		if (run(s->dbs[it->db].conn[a->w], it->sql, PGRES_TUPLES_OK, &r, s->dbs[it->db].name, &e) ==
		    0) {
			it->rows = atoll(PQgetvalue(r, 0, 0));
			it->digest = strdup(PQgetvalue(r, 0, 1));
			PQclear(r);
			if (it->digest)
				continue;
			hm_error_set(&e, HM_EXIT_INTERNAL, "out of memory");
		}
		pthread_mutex_lock(&s->mu);
		if (!s->failed++)
			s->err = e;
		pthread_mutex_unlock(&s->mu);
		break;
	}
	pthread_mutex_lock(&s->mu);
	s->t_end = hm_progress_now();
	pthread_mutex_unlock(&s->mu);
	free(a);
	return NULL;
}

int hm_fpsnap_start(hm_fpsnap *s, hm_error *err)
{
	s->t_start = hm_progress_now();
	for (int w = 0; w < FPS_WORKERS; w++) {
		fps_arg *a = malloc(sizeof *a);
		if (!a)
			return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		a->s = s;
		a->w = w;
		if (pthread_create(&s->th[w], NULL, worker, a) != 0) {
			free(a);
			return hm_error_set(err, HM_EXIT_INTERNAL, "cannot start a fingerprint worker");
		}
		s->started++;
	}
	return 0;
}

/* Join the started workers (once). */
static void join_all(hm_fpsnap *s)
{
	for (; s->started > 0; s->started--)
		pthread_join(s->th[s->started - 1], NULL);
}

int hm_fpsnap_finish(hm_fpsnap *s, json_object **out, hm_error *err)
{
	join_all(s);
	if (s->failed) {
		*err = s->err;
		return -1;
	}
	json_object *root = json_object_new_object(), *dbs = json_object_new_object();
	long long total = 0;
	for (int d = 0; d < s->ndbs; d++) {
		json_object *o = json_object_new_object(), *tables = json_object_new_object();
		for (int i = 0; i < s->nitems; i++) {
			fps_item *it = &s->items[i];
			if (it->db != d)
				continue;
			json_object *e = json_object_new_object();
			json_object_object_add(e, "rows", json_object_new_int64(it->rows));
			json_object_object_add(e, "digest", json_object_new_string(it->digest));
			json_object_object_add(tables, it->key, e);
			total += it->rows;
		}
		json_object_object_add(o, "tables", tables);
		json_object_object_add(o, "extensions", json_object_get(s->dbs[d].exts));
		json_object_object_add(dbs, s->dbs[d].name, o);
	}
	json_object_object_add(root, "databases", dbs);
	json_object_object_add(root, "total_rows", json_object_new_int64(total));
	*out = root;
	return 0;
}

double hm_fpsnap_seconds(const hm_fpsnap *s)
{
	return s->t_end > s->t_start ? s->t_end - s->t_start : 0;
}

void hm_fpsnap_free(hm_fpsnap *s)
{
	if (!s)
		return;
	join_all(s);
	for (int d = 0; d < s->ndbs; d++) {
		for (int w = 0; w < FPS_WORKERS; w++)
			PQfinish(s->dbs[d].conn[w]);
		json_object_put(s->dbs[d].exts);
		free(s->dbs[d].name);
	}
	for (int i = 0; i < s->nitems; i++) {
		free(s->items[i].key);
		free(s->items[i].sql);
		free(s->items[i].digest);
	}
	pthread_mutex_destroy(&s->mu);
	free(s->dbs);
	free(s->items);
	free(s->order);
	free(s);
}
