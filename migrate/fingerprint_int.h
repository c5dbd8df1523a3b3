/* The SQL of a fingerprint, shared by the sequential reader (fingerprint.c) and the
 * parallel one under a single snapshot (fingerprint_snap.c): both must produce the very
 * same JSON for the same data. */
#ifndef HM_FINGERPRINT_INT_H
#define HM_FINGERPRINT_INT_H

/* Session settings that fix the text form of a row (see fingerprint.h). */
#define HM_FP_SESSION_SQL                                                                                    \
	"SET statement_timeout = 0; SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; "                      \
	"SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; "                                       \
	"SET bytea_output = 'hex'; SET lc_monetary = 'C'"

/* The databases fingerprinted. */
#define HM_FP_DATABASES_SQL                                                                                  \
	"SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1"

/* The extensions of a database. */
#define HM_FP_EXTENSIONS_SQL "SELECT extname, extversion FROM pg_extension ORDER BY 1"

/* The ordinary tables of a database (schema, name; total size and heap blocks, for
 * scheduling and for splitting a large table into block ranges). */
#define HM_FP_TABLES_SQL                                                                                     \
	"SELECT n.nspname, c.relname, pg_total_relation_size(c.oid), "                                       \
	"pg_relation_size(c.oid) / current_setting('block_size')::int FROM pg_class c "                      \
	"JOIN pg_namespace n ON n.oid = c.relnamespace "                                                     \
	"WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "                   \
	"AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' ORDER BY 1, 2"

/* Row count and digest of one table: printf format taking the quoted schema and name. */
#define HM_FP_TABLE_FMT                                                                                      \
	"SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 16))"                                 \
	"::bit(64)::bigint), 0)::text FROM ONLY %s.%s t"

#endif
