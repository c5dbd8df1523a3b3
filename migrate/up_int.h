/* Internal interfaces between the modules of `up` (up.c, up_steps.c, up_plan.c). */
#ifndef HM_UP_INT_H
#define HM_UP_INT_H

#include <json-c/json.h>

#include "../common/archive_dir.h"
#include "../common/error.h"
#include "major.h"
#include "migration.h"
#include "stack_options.h"

/* The owner of the unified container's data directory. */
#define HM_UP_UNIFIED_UID 1000
#define HM_UP_UNIFIED_GID 1000

/* Seconds spent per step in this run (0 when the step did not run here). */
typedef struct hm_up_times {
	double stop, snapshot, verify, chown, start, health, fingerprint;
	double pg_ready;      /* start -> the unified PostgreSQL accepts connections */
	double refingerprint; /* writes came after step 2: the fingerprint taken again (up_fingerprint.c) */
	/* the pre-copy (up_precopy.h): base and its verification before the stop, the delta
	 * and its verification in the downtime, the merge after health */
	double precopy, precopy_verify, delta, delta_verify, merge;
	int fp_concurrent;    /* 1: fingerprint under the start snapshot, during the health wait */
	hm_major_times major; /* the cross-major path's steps instead */
} hm_up_times;

typedef struct hm_up_opts {
	const char *stack;
	hm_stack_options split; /* --compose-file, --project-directory, --project-name, --db/api-service */
	const char *profile;
	const char *image;
	const char *templates;
	const char *archive_dir;
	const char *container_name;
	const char *name_prefix; /* prepended to the default container name hive-PROFILE-unified */
	const char *backup_password_file;
	char *backup_password; /* read from backup_password_file (secret: never printed) */
	int api_port, pg_port;
	int health_timeout, stop_timeout;
	int jobs;	       /* pg_dump -j / pg_restore -j across majors */
	char locale_map[1024]; /* --locale-map OLD=NEW lines (hm_major_locale_map_add) */
	int dry_run, json, yes, quiet;
	int no_precopy; /* --no-precopy: the whole snapshot after the stop (up_precopy.h) */
} hm_up_opts;

/* Everything `check` checks, plus what up itself needs (image, ports, a running stack).
 * Refusals are HM_EXIT_PREFLIGHT; nothing has changed when this fails (up_plan.c). */
int hm_up_preflight(hm_mig *m, const hm_up_opts *o, hm_error *err);

/* Print the plan of a dry run (up_plan.c). */
void hm_up_print_plan(const hm_mig *m, const hm_up_opts *o);

/* The final summary: human lines on stderr, or a JSON object added to arr (up_plan.c). */
void hm_up_summary(const hm_mig *m, const hm_up_opts *o, int code, const hm_archive_stats *ast,
		   const hm_up_times *t, const hm_error *err, const char *failed_step, json_object *arr);

/* Everything from the stop of the split stack on (steps 3-8), resumable from j->step
 * (up_steps.c). */
int hm_up_forward(hm_mig *m, const hm_up_opts *o, hm_archive_stats *ast, hm_up_times *t, hm_error *err);

/* Start the split database alone and fingerprint it under a snapshot whose xmax is next_xid,
 * the nextXid of its shutdown checkpoint; that becomes the migration's fingerprint
 * (up_fingerprint.c). 0 done, 1 a client wrote first (stop and try again), -1 err. */
int hm_up_refingerprint(hm_mig *m, unsigned long long next_xid, hm_error *err);

#endif
