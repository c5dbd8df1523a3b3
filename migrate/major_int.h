/* Internal interfaces between the cross-major modules (major_up.c, major_dump.c,
 * major_restore.c, major_undo.c). */
#ifndef HM_MAJOR_INT_H
#define HM_MAJOR_INT_H

#include <json-c/json.h>
#include <stddef.h>

#include "../common/error.h"
#include "migration.h"

/* Name of a worker container ("dump", "restore"): UNIFIED_CONTAINER-major-WHAT. */
void hm_major_worker_name(const hm_mig *m, const char *what, char *out, size_t outsz);

/* docker rm -f a worker container; no such container is fine. */
void hm_major_rm_worker(const char *name);

/* Does the path exist (lstat)? */
int hm_major_exists(const char *p);

/* DUMP/plan.json: the old bootstrap superuser and the databases (a new reference). */
int hm_major_read_plan(const char *dump_dir, char *superuser, size_t susz, json_object **dbs, hm_error *err);

/* The uid:gid the worker containers run as (the unified image's postgres). */
#define HM_MAJOR_WORKER_UID "1000:1000"

/* A failed tool run: "No space left on device" becomes HM_EXIT_NO_SPACE with a hint naming
 * where. Always -1. */
int hm_major_tool_failed(hm_error *err, const char *where);

/* A worker's server that died of a full disk: appended to err from its docker logs. */
void hm_major_worker_cause(const char *name, hm_error *err);

/* A connection string for one database: dbname='...' with \ and ' escaped. 0, or -1 when
 * it does not fit. */
int hm_major_dbname_conninfo(const char *db, char *out, size_t outsz);

/* A fresh, empty directory owned by the worker's uid (removing what an earlier attempt left). */
int hm_major_fresh_dir(const char *path, hm_error *err);

/* The steps of the forward path, in order (hm_major_forward runs them, each redone whole
 * when resumed). major_dump.c: pg_dumpall --globals-only and pg_dump -Fd -j N of every
 * database; the clean stop of the old server; the verified snapshot of the old directory. */
int hm_major_dump(hm_mig *m, int jobs, const char *locale_map, hm_error *err);
int hm_major_stop_old(hm_mig *m, hm_error *err);
int hm_major_snapshot(hm_mig *m, const char *archive_dir, hm_error *err);

/* major_restore.c: initialise the new cluster beside the old directory and restore into it. */
int hm_major_restore(hm_mig *m, int jobs, double *analyze_seconds, hm_error *err);

#endif
