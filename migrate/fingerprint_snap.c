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
/* A table of more than 2 x this many heap blocks is read in ranges of this many blocks
 * (TID range scans, PostgreSQL 14+), so that one large table does not keep one worker busy
 * while the other is idle; the partial counts and sums add up to the table's. Test hook:
 * HIVE_MIGRATE_FP_CHUNK_BLOCKS overrides it (the end-to-end tests split tiny tables). */
#define FPS_CHUNK_BLOCKS 4096

typedef struct fps_db {
	char *name;
	PGconn *conn[FPS_WORKERS];
	json_object *exts;
} fps_db;

typedef struct fps_item {
	int db;
	char *key;   /* schema.table */
	char *qname; /* the same, quoted for SQL */
	char *sql;
	long long size, blocks, rows;
	__int128 sum;
} fps_item;

/* One query of a worker: a whole table, or one block range of it. */
typedef struct fps_chunk {
	int item;
	char *sql;
	long long cost, rows;
	__int128 sum;
} fps_chunk;

struct hm_fpsnap {
	fps_db *dbs;
	int ndbs;
	fps_item *items;
	int nitems;
	fps_chunk *chunks;
	int *order; /* chunk indexes, largest first */
	int nchunks;
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
		it->blocks = atoll(PQgetvalue(r, i, 3));
		int bad = !qns || !qrel || asprintf(&it->key, "%s.%s", ns, rel) < 0 ||
			  asprintf(&it->qname, "%s.%s", qns, qrel) < 0 ||
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

/* Lock every table of database d (items from `first` on) in ACCESS SHARE mode on each of
 * its connections, NOWAIT, right after the snapshot: from then on no worker ever waits for
 * a lock (no deadlock with the application's DDL at its start: it waits for us instead),
 * and no TRUNCATE or table rewrite, which are not MVCC-safe, can empty a table under the
 * snapshot. A table locked by the new server already: 1 (why; the caller falls back). */
static int lock_db(hm_fpsnap *s, int d, int first, char *why, size_t whysz, hm_error *err)
{
	size_t len = 64;
	for (int i = first; i < s->nitems; i++)
		len += strlen(s->items[i].qname) + 2;
	if (first == s->nitems)
		return 0;
	char *sql = malloc(len);
	if (!sql)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	size_t o = (size_t)snprintf(sql, len, "LOCK TABLE ");
	for (int i = first; i < s->nitems; i++)
		o += (size_t)snprintf(sql + o, len - o, "%s%s", i > first ? ", " : "", s->items[i].qname);
	snprintf(sql + o, len - o, " IN ACCESS SHARE MODE NOWAIT");
	int rc = 0;
	for (int w = 0; w < FPS_WORKERS && rc == 0; w++) {
		PGresult *r = PQexec(s->dbs[d].conn[w], sql);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
			if (state && strcmp(state, "55P03") == 0) { /* lock_not_available */
				snprintf(why, whysz, "a table of database \"%s\" is locked by the new server",
					 s->dbs[d].name);
				rc = 1;
			} else {
				char msg[512];
				snprintf(msg, sizeof msg, "%s", PQerrorMessage(s->dbs[d].conn[w]));
				msg[strcspn(msg, "\n")] = '\0';
				rc = hm_error_set(err, HM_EXIT_DATABASE,
						  "fingerprint of database \"%s\" failed: %s", s->dbs[d].name,
						  msg);
			}
		}
		PQclear(r);
	}
	free(sql);
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
	int first = s->nitems;
	if (list_db(s, d, err) != 0)
		return -1;
	return lock_db(s, d, first, why, whysz, err);
}

/* Larger chunk first (then the listing order), for qsort_r. */
static int by_cost(const void *a, const void *b, void *arg)
{
	const fps_chunk *c = arg;
	int i = *(const int *)a, k = *(const int *)b;
	if (c[i].cost != c[k].cost)
		return c[i].cost > c[k].cost ? -1 : 1;
	return i - k;
}

/* Add one chunk of item i: blocks [lo, hi) (hi < 0: to the end; lo < 0: the whole table). */
static int add_chunk(hm_fpsnap *s, int i, long long lo, long long hi, long long cost)
{
	fps_chunk *c = &s->chunks[s->nchunks];
	int n;
	memset(c, 0, sizeof *c);
	c->item = i;
	c->cost = cost;
	if (lo < 0)
		n = asprintf(&c->sql, "%s", s->items[i].sql);
	else if (hi < 0)
		n = asprintf(&c->sql, "%s WHERE t.ctid >= '(%lld,0)'::tid", s->items[i].sql, lo);
	else
		n = asprintf(&c->sql, "%s WHERE t.ctid >= '(%lld,0)'::tid AND t.ctid < '(%lld,0)'::tid",
			     s->items[i].sql, lo, hi);
	if (n < 0) {
		c->sql = NULL;
		return -1;
	}
	s->nchunks++;
	return 0;
}

/* Split the tables into chunks (block ranges of large tables; the last range is open, so
 * rows in blocks added after the listing are read too; rows visible to the snapshot never
 * move: VACUUM keeps them, and the ACCESS SHARE locks keep out VACUUM FULL and CLUSTER),
 * and order them largest first. */
static int make_chunks(hm_fpsnap *s, hm_error *err)
{
	long long cb = FPS_CHUNK_BLOCKS, total = 0;
	const char *env = getenv("HIVE_MIGRATE_FP_CHUNK_BLOCKS");
	if (env && atoll(env) > 0)
		cb = atoll(env);
	for (int i = 0; i < s->nitems; i++)
		total += s->items[i].blocks > 2 * cb ? (s->items[i].blocks + cb - 1) / cb : 1;
	if (!(s->chunks = calloc((size_t)total + 1, sizeof *s->chunks)) ||
	    !(s->order = calloc((size_t)total + 1, sizeof *s->order)))
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	for (int i = 0; i < s->nitems; i++) {
		const fps_item *it = &s->items[i];
		long long n = (it->blocks + cb - 1) / cb;
		int rc = 0;
		if (it->blocks <= 2 * cb)
			rc = add_chunk(s, i, -1, -1, it->size);
		else
			for (long long lo = 0; rc == 0 && lo < it->blocks; lo += cb)
				rc = add_chunk(s, i, lo, lo + cb >= it->blocks ? -1 : lo + cb, it->size / n);
		if (rc != 0)
			return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	}
	for (int i = 0; i < s->nchunks; i++)
		s->order[i] = i;
	qsort_r(s->order, (size_t)s->nchunks, sizeof *s->order, by_cost, s->chunks);
	return 0;
}

/* Parse a decimal integer (a sum of 64-bit values over at most 2^60 rows: fits 128 bits).
 * 0 or -1. */
static int parse_i128(const char *t, __int128 *out)
{
	int neg = *t == '-';
	unsigned __int128 v = 0;
	if (neg || *t == '+')
		t++;
	if (!*t)
		return -1;
	for (; *t; t++) {
		if (*t < '0' || *t > '9' || v > ((unsigned __int128)1 << 122))
			return -1;
		v = v * 10 + (unsigned)(*t - '0');
	}
	*out = neg ? -(__int128)v : (__int128)v;
	return 0;
}

/* Decimal text of v, as PostgreSQL prints an integral numeric. */
static void format_i128(__int128 v, char *buf, size_t sz)
{
	char tmp[48];
	int n = 0, neg = v < 0;
	unsigned __int128 u = neg ? -(unsigned __int128)v : (unsigned __int128)v;
	do {
		tmp[n++] = (char)('0' + (int)(u % 10));
		u /= 10;
	} while (u);
	size_t o = 0;
	if (neg && o + 1 < sz)
		buf[o++] = '-';
	while (n > 0 && o + 1 < sz)
		buf[o++] = tmp[--n];
	buf[o] = '\0';
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
	if (make_chunks(s, err) != 0)
		goto cleanup;
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
		int i = s->failed || s->next >= s->nchunks ? -1 : s->order[s->next++];
		pthread_mutex_unlock(&s->mu);
		if (i < 0)
			break;
		fps_chunk *c = &s->chunks[i];
		const fps_db *x = &s->dbs[s->items[c->item].db];
		PGresult *r = NULL;
		hm_error e = {0};
		if (run(x->conn[a->w], c->sql, PGRES_TUPLES_OK, &r, x->name, &e) == 0) {
			c->rows = atoll(PQgetvalue(r, 0, 0));
			int bad = parse_i128(PQgetvalue(r, 0, 1), &c->sum);
			if (bad)
				hm_error_set(&e, HM_EXIT_DATABASE,
					     "fingerprint of database \"%s\": unexpected digest \"%s\"",
					     x->name, PQgetvalue(r, 0, 1));
			PQclear(r);
			if (!bad)
				continue;
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
	for (int i = 0; i < s->nchunks; i++) {
		s->items[s->chunks[i].item].rows += s->chunks[i].rows;
		s->items[s->chunks[i].item].sum += s->chunks[i].sum;
	}
	for (int d = 0; d < s->ndbs; d++) {
		json_object *o = json_object_new_object(), *tables = json_object_new_object();
		for (int i = 0; i < s->nitems; i++) {
			fps_item *it = &s->items[i];
			if (it->db != d)
				continue;
			json_object *e = json_object_new_object();
			char digest[48];
			format_i128(it->sum, digest, sizeof digest);
			json_object_object_add(e, "rows", json_object_new_int64(it->rows));
			json_object_object_add(e, "digest", json_object_new_string(digest));
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

void hm_fpsnap_size(const hm_fpsnap *s, int *tables, int *pieces)
{
	*tables = s->nitems;
	*pieces = s->nchunks;
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
		free(s->items[i].qname);
		free(s->items[i].sql);
	}
	for (int i = 0; i < s->nchunks; i++)
		free(s->chunks[i].sql);
	free(s->chunks);
	pthread_mutex_destroy(&s->mu);
	free(s->dbs);
	free(s->items);
	free(s->order);
	free(s);
}
