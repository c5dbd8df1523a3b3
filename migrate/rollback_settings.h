/* The split stack's own settings files in its data directory (pg_hba.conf, postgresql.conf,
 * postgresql.auto.conf) across a migration and a live rollback. The unified container reads
 * its own configuration (docker/common/postgresql.conf, config_file=...), so it does not need
 * these files, but whatever changes them while it runs (the container, or a user's ALTER
 * SYSTEM) lands in the directory the split stack reads again after a live rollback.
 *
 * `up` keeps a copy of the three files before the unified container starts ("before") and
 * right after it was confirmed healthy ("after"): what differs between the two is the
 * unified container's own doing; what differs between "after" and the files at rollback time
 * ("now") is the user's. The live rollback puts back the former and keeps the latter: a
 * three-way merge by setting (postgresql*.conf: the setting name, the last line of a name
 * wins as in PostgreSQL) or by rule line (pg_hba.conf: a line's content, comments and spacing
 * ignored). Lines the merge re-adds go at the end of the file (for pg_hba.conf, where order
 * matters, the report says so). */
#ifndef HM_ROLLBACK_SETTINGS_H
#define HM_ROLLBACK_SETTINGS_H

#include <stddef.h>

#include "../common/error.h"

/* The files handled, relative to the data directory (pgdata). */
extern const char *const hm_settings_files[3];

/* Three-way merge of one settings file (pure). base: the file before the migration, after:
 * right after the unified container started, now: at rollback time (each NUL-terminated;
 * NULL means the file did not exist, treated as empty). hba: 1 for pg_hba.conf rules, 0 for
 * postgresql.conf syntax. *out (malloc'd) gets the merged text: now, with every setting or
 * rule the unified container changed, added or removed (and the user did not touch since)
 * put back as in base. *reverted gets how many settings/rules were put back (0: *out equals
 * now). 0, or -1 when out of memory. */
int hm_settings_merge(const char *base, const char *after, const char *now, int hba, char **out,
		      int *reverted);

/* Copy the three files of pgdata into dir/NAME (dir created 0700; files 0600, atomically);
 * a file pgdata lacks is left out (and an older copy removed). 0 or -1. */
int hm_settings_save(const char *pgdata, const char *dir, hm_error *err);

/* For up: copy the files of pgdata into settings_dir/stage ("before": before the unified
 * container starts, "after": once it was confirmed healthy). 0 or -1. */
int hm_settings_save_stage(const char *pgdata, const char *settings_dir, const char *stage, hm_error *err);

/* Restore the three files in pgdata from dir/before and dir/after (as saved by `up`) by
 * hm_settings_merge against the files now there. A file is rewritten only when the merge
 * changes it: temp file + fsync + rename + directory fsync, with the owner and mode of the
 * file it replaces. *n_rewritten gets the count; report (optional) one line per rewritten
 * file. Without dir/after (a migration from before this existed) nothing is changed. 0 or -1. */
int hm_settings_restore(const char *pgdata, const char *dir, int *n_rewritten, char *report, size_t reportsz,
			hm_error *err);

#endif
