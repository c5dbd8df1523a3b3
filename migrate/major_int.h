/* Internal interfaces between the cross-major modules (major_up.c, major_undo.c). */
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

#endif
