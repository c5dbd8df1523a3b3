/* `up` across PostgreSQL majors: an old data directory of major 13..target is copied
 * logically (pg_dumpall --globals-only + pg_dump -Fd from the target image against the
 * still running old server), restored into a new cluster initialised beside the old
 * directory, and cut over by two renames: STACK/data/postgres-PROFILE then holds the new
 * cluster and the old directory is kept beside it, never written after its clean stop.
 * docs/migration.md ("Across PostgreSQL majors") describes the steps and what is kept.
 *
 * This header has the pure parts (step names, the support rule, names of the directories,
 * the fault points) and the entry points that up.c calls. */
#ifndef HM_MAJOR_H
#define HM_MAJOR_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

struct hm_mig;
struct hm_preflight_facts;

/* The oldest major the path supports (pg_dump of the targets reads 9.2+, but older majors
 * are not tested here: 13 is the oldest release still maintained when 17 came out). */
#define HM_MAJOR_OLDEST 13

/* The cross-major path's own progress (journal field major_step), in order. */
typedef enum hm_major_step {
	HM_MS_NONE = 0,	    /* nothing done yet */
	HM_MS_API_STOPPED,  /* the API containers are stopped; the old server still runs */
	HM_MS_DUMPED,	    /* globals + every database dumped, complete */
	HM_MS_OLD_STOPPED,  /* the old server is stopped, pg_control "shut down" */
	HM_MS_SNAPSHOTTED,  /* verified snapshot of the old directory */
	HM_MS_RESTORED,	    /* the new cluster holds everything, analyzed, stopped cleanly */
	HM_MS_CUTTING_OVER, /* the two renames are under way */
	HM_MS_CUT_OVER,	    /* canonical place = new cluster, old directory kept beside */
	HM_MS_UNIFIED,	    /* the unified container started on it */
	HM_MS_VERIFIED,	    /* healthy, pgvector working, fingerprint equal */
	HM_MS__COUNT
} hm_major_step;

/* Journal names ("", "api-stopped", "dumped", ...) and back (-1 unknown). */
const char *hm_major_step_name(hm_major_step s);
int hm_major_step_from_name(const char *name);

/* Is a change from old_major to target_major supported? 1 yes (old older, 13 or later,
 * target 17 or 18), 0 no (same major: not a major change; newer or too old: refused).
 * why (optional) gets the reason for 0 when old != target. Pure. */
int hm_major_supported(int old_major, int target_major, char *why, size_t whysz);

/* The directories beside data_dir (the canonical place): where the new cluster is built
 * ("DATA_DIR.pgNN-new") and where the old directory is kept ("DATA_DIR.pgOO-old").
 * 0, or -1 when a name would not fit. Pure. */
int hm_major_dir_names(const char *data_dir, int old_major, int new_major, char *new_dir, size_t new_sz,
		       char *old_dir, size_t old_sz);

/* Downtime estimate (seconds) of the logical copy for bytes of database data: dump and
 * restore at about 40 MB/s each, plus index builds and analyze; a planning figure. Pure. */
double hm_major_estimate_seconds(double bytes);

/* The output of pg_dumpall --globals-only (in, len bytes) without the line that creates
 * the bootstrap superuser (initdb of the new cluster made it; the ALTER ROLE after it gives
 * its attributes and password): written to out (len + 1 bytes), NUL-terminated; returns
 * the length. Every other line is kept byte for byte. Pure. */
size_t hm_major_filter_globals(const char *in, size_t len, const char *superuser, char *out);

/* The pre-data SQL of one database (pg_restore --create --section=pre-data), made
 * restorable on the target. Drops the column option pg_attver=DIGITS from the lines
 * "ALTER ... ALTER COLUMN ... SET (options);" that pg_dump writes, one per line (Debian's
 * PostgreSQL 17.12 gives every column that option, and PostgreSQL 18 refuses an option it
 * does not know, failing the whole table), and the line when no option is left. With
 * drop_create, also the first line "CREATE DATABASE ..." before the first \connect (the
 * database exists: postgres, or one created with a mapped locale). Every other line is kept
 * byte for byte. out: len + 1 bytes, NUL-terminated; *dropped gets the number of options
 * left out. Returns the length. Pure. */
size_t hm_major_filter_predata(const char *in, size_t len, int drop_create, char *out, long *dropped);

/* maintenance_work_mem (MB) of the restore worker's server, from the host's available memory:
 * a quarter of it, between 256 MB and 2 GB. An HNSW index build whose graph does not fit in
 * maintenance_work_mem goes on much more slowly (pgvector's NOTICE "hnsw graph no longer fits
 * into maintenance_work_mem"): with 256 MB that happens on 1 GB of hive data. The worker's
 * --shm-size is this plus 512 MB, since a parallel build keeps the graph in shared memory.
 * HIVE_MIGRATE_INDEX_MEMORY_MB (64..65536) overrides it, for benchmarks. Pure. */
int hm_major_index_memory_mb(uint64_t mem_available_bytes);

/* --locale-map OLD=NEW (repeatable): the map is text, one "OLD=NEW\n" line per mapping.
 * add: validate arg (both sides non-empty, printable, no '=' in OLD, no newline) and append
 * it to map (sz bytes, NUL-terminated); 0, or -1 with err (HM_EXIT_USAGE). lookup: the NEW
 * of OLD (locale names compared as glibc does: "en_US.UTF-8" = "en_US.utf8") into out, 1
 * when mapped, 0 when not. Pure. */
int hm_major_locale_same(const char *a, const char *b);
int hm_major_locale_map_add(char *map, size_t sz, const char *arg, hm_error *err);
int hm_major_locale_map_lookup(const char *map, const char *old, char *out, size_t outsz);

/* Test hooks. HIVE_MIGRATE_FAULT=POINT kills the process at POINT (hm_fault_point);
 * HIVE_MIGRATE_FAIL=POINT makes the step at POINT fail with an error instead, so that the
 * automatic rollback runs; HIVE_MIGRATE_PAUSE=POINT[,POINT...] stops the process (SIGSTOP) there until
 * it gets SIGCONT (a test fills the disk meanwhile). -1 with err set when a failure fires. */
int hm_major_fail_point(const char *point, hm_error *err);

/* Seconds per step of the cross-major path in this run (0 when the step did not run here):
 * the downtime split that `up --json` reports and tests/bench/major.sh prints. restore is
 * initdb, the globals, pg_restore (tables and index builds) and the extension updates;
 * analyze is vacuumdb --analyze-in-stages and the new cluster's clean stop. */
typedef struct hm_major_times {
	double api_stop, fingerprint, dump, old_stop, snapshot, restore, analyze, cutover, start, health,
		verify;
} hm_major_times;

/* Run (or resume) the cross-major path from m->j (m->stack loaded, fingerprint taken,
 * j.cross_major set): steps 3..8 of up for this path. backup_password as for the unified
 * env file. locale_map: --locale-map lines (NULL none): a database whose LC_COLLATE or
 * LC_CTYPE is mapped is created with the new locale and restored without --create. 0
 * migrated, -1 with err (the caller rolls back with hm_major_rollback). */
int hm_major_forward(struct hm_mig *m, const char *archive_dir, const char *backup_password, int jobs,
		     const char *locale_map, hm_major_times *t, hm_error *err);

/* Called by up's preflight when it reported "major-upgrade": record the cross-major run in
 * the journal (cross_major, old_major, the directories beside the data directory, the
 * dump directory) and refuse what this path cannot do (a named volume instead of a bind
 * mount; a kept directory of an earlier run in the way). HM_EXIT_PREFLIGHT, nothing changed. */
int hm_major_up_setup(struct hm_mig *m, const struct hm_preflight_facts *f, hm_error *err);

/* The plan of a dry run of the cross-major path (stdout). */
void hm_major_print_plan(const struct hm_mig *m, const char *archive_dir, int jobs);

/* Undo a failed or interrupted cross-major run: remove the worker containers, stop the
 * unified container, put the old directory back in its place (untouched), remove the
 * failed new cluster and the dump, start the split stack and confirm its fingerprint.
 * Journaled; running it again completes it. Only for a run that did not complete: a
 * completed one (status done) is refused (HM_EXIT_USAGE), since the unified container may
 * hold writes since. 0, or -1 (HM_EXIT_ROLLBACK_FAILED). */
int hm_major_rollback(struct hm_mig *m, hm_error *err);

/* rollback --discard-new-writes after a completed cross-major run (the caller reported what
 * is left behind and has the user's consent): the same steps, except that the new cluster,
 * which holds the writes made since, is checked "shut down" and kept as ".pgN-new", never
 * removed. Also resumes such a rollback. 0, or -1 (HM_EXIT_ROLLBACK_FAILED). */
int hm_major_rollback_completed(struct hm_mig *m, hm_error *err);

#endif
