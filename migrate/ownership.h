/* Ownership change of a data directory for the unified container (999 -> 1000 by
 * default), with an undo record written BEFORE anything changes: one line per entry that
 * will change, "UID GID RELPATH" (relative to the directory; "." is the directory itself),
 * and beside it the list of entries that already had the new owner (see hm_owner_plan).
 * Applying and undoing are idempotent (lchown to a fixed owner), so a run killed half way
 * is completed or undone by simply running the same step again. */
#ifndef HM_OWNERSHIP_H
#define HM_OWNERSHIP_H

#include <sys/types.h>

#include "../common/error.h"

/* The same-owner list beside a record: RECORD HM_OWNER_SAME_SUFFIX, one line "INODE RELPATH"
 * per entry that was already owned by uid:gid when the record was planned (the entries the
 * record leaves out). */
#define HM_OWNER_SAME_SUFFIX ".same"

/* Walk dir and write the undo record (atomically, 0600) of every entry not owned by
 * uid:gid, and beside it the same-owner list (also atomically, 0600) of every entry that is.
 * *count gets the number of entries that will change. */
int hm_owner_plan(const char *dir, uid_t uid, gid_t gid, const char *record, long *count, hm_error *err);

/* lchown every entry listed in record to uid:gid. Entries that vanished are skipped. */
int hm_owner_apply(const char *dir, const char *record, uid_t uid, gid_t gid, hm_error *err);

/* lchown every entry listed in record back to its recorded owner. */
int hm_owner_undo(const char *dir, const char *record, hm_error *err);

/* After a live rollback (issue 11): undo the record as hm_owner_undo does, then give every
 * entry below dir still owned by uid:gid (the unified container's owner: entries it created
 * after the migration) the owner the record gives pgdata (the split stack's owner). When the
 * record does not list pgdata, the split stack ran as uid:gid itself and nothing more
 * changes. An entry that was already owned by uid:gid before the migration (listed in the
 * same-owner list with the same path and inode) keeps that owner. A record written by an
 * older hive-migrate has no same-owner list: then such an entry cannot be told from a new
 * one and gets the split stack's owner too, as before. So does one the unified container
 * replaced by a new file at the same path (another inode).
 * pgdata: the absolute path the record's lines resolve to (dir/pgdata as written by up).
 * *n_new gets the number of entries changed. 0 or -1. */
int hm_owner_undo_live(const char *dir, const char *record, const char *pgdata, uid_t uid, gid_t gid,
		       long *n_new, hm_error *err);

#endif
