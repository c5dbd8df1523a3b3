/* A fingerprint of the data, taken through libpq while a server runs: for every database
 * that accepts connections (templates excluded), for every ordinary table, its row count
 * and an order-independent content digest computed server-side in one pass:
 *     sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint)   over the rows t
 * plus every extension's version. The session's output settings (TimeZone UTC, DateStyle
 * ISO, IntervalStyle postgres, extra_float_digits 1, bytea_output hex, lc_monetary C) are
 * fixed first, so the text form of a row, hence the digest, is the same on any server and
 * any major from 12 on (the text output of the built-in types and of pgvector has not
 * changed since): fingerprints are comparable across majors. Taken before the split stack stops and again on
 * the unified container: equal fingerprints mean every row arrived unchanged. JSON form:
 * {"databases":{"hive_agent":{"tables":{"agno.sessions":{"rows":3,"digest":"-12"}},
 *             "extensions":{"vector":"0.8.0","plpgsql":"1.0"}}}, "total_rows":N} */
#ifndef HM_FINGERPRINT_H
#define HM_FINGERPRINT_H

#include <json-c/json.h>

#include "../common/error.h"
#include "health.h"

/* Take the fingerprint of the server p points at (p->dbname is the first database to
 * connect to; the others are reached with the same credentials). *out is a new JSON
 * object (json_object_put it). 0 or -1 (HM_EXIT_DATABASE). */
int hm_fingerprint_take(const hm_pg_params *p, json_object **out, hm_error *err);

/* The guard of a fingerprint, read on the server p points at just before the fingerprint
 * is taken: the xmax of a snapshot that has no transaction in progress (xmin = xmax, epoch
 * included), else 0 (no guard). Every transaction that changes a row takes an XID, and the
 * XIDs below a snapshot's xmax that it does not list had ended; so when a shutdown
 * checkpoint's nextXid (pg_control) still equals the guard, no transaction took an XID
 * after the guard was read, and the fingerprint describes the shut-down data exactly.
 * Anything else (writes, an autoanalyze, a transaction open at the guard) means "take the
 * fingerprint again". 0 or -1 (HM_EXIT_DATABASE). */
int hm_fingerprint_guard(const hm_pg_params *p, unsigned long long *next_xid, hm_error *err);

/* Compare two fingerprints: 0 equal; -1 with HM_EXIT_VERIFY_FAILED naming the first
 * difference (database, table, rows/digest or extension). Pure. */
int hm_fingerprint_compare(json_object *before, json_object *after, hm_error *err);

/* hm_fingerprint_compare with options. HM_FP_CROSS_MAJOR: the two sides ran on different
 * PostgreSQL majors (a logical copy): an extension's version may be newer after (it was
 * updated), never older; rows and digests must be equal as always. */
#define HM_FP_CROSS_MAJOR 1
int hm_fingerprint_compare_ex(json_object *before, json_object *after, int flags, hm_error *err);

/* Total rows recorded in a fingerprint (for summaries). */
long long hm_fingerprint_total_rows(json_object *fp);

#endif
