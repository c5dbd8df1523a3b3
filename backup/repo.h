/* The backup repository on disk:
 *   REPO/                  0700
 *   REPO/.lock             run lock (common/lock.h): backup, verify and prune hold it
 *   REPO/.tmp/             work area: partial backups and backups being deleted; emptied by
 *                          the next run that holds the lock, never listed
 *   REPO/<id>/             0700, one per complete backup, renamed into place from .tmp as
 *                          the very last step (the commit point)
 *   REPO/<id>/backup.tar   online: the archive (0600); offline: data.tar.zst
 *   REPO/<id>/backup.json  metadata + verification status (0600, rewritten atomically)
 * A backup directory without a readable backup.json is not a backup (never listed). */
#ifndef HM_REPO_H
#define HM_REPO_H

#include <stddef.h>

#include "../common/error.h"
#include "../common/lock.h"
#include "meta.h"

#define HM_REPO_META "backup.json"

typedef struct hm_repo {
	char path[4096];
	hm_lock lock; /* fd -1 when not held */
} hm_repo;

/* Open a repository. create: make it (0700) if missing. lock: take REPO/.lock (exit code
 * HM_EXIT_LOCKED when another run holds it) and, holding it, clear stale partials. 0 or -1. */
int hm_repo_open(hm_repo *r, const char *path, int create, int lock, hm_error *err);

/* Release the lock (if held). */
void hm_repo_close(hm_repo *r);

/* Every complete backup, oldest first (*out malloc'd). 0 or -1. */
int hm_repo_list(const hm_repo *r, hm_backup_meta **out, size_t *n, hm_error *err);

/* The backup named id ("latest" = newest; a unique prefix is accepted). HM_EXIT_NOT_FOUND
 * when missing. 0 or -1. */
int hm_repo_find(const hm_repo *r, const char *id, hm_backup_meta *out, hm_error *err);

/* Path of a file inside a backup's directory. 0 or -1. */
int hm_repo_file(const hm_repo *r, const char *id, const char *name, char *out, size_t outsz, hm_error *err);

/* Rewrite a backup's metadata (with status) atomically. 0 or -1. */
int hm_repo_save_meta(const hm_repo *r, const hm_backup_meta *m, hm_error *err);

/* A fresh partial directory REPO/.tmp/<id> (0700) for a new backup; path into out. */
int hm_repo_partial(const hm_repo *r, const char *id, char *out, size_t outsz, hm_error *err);

/* Commit a partial directory: fsync it, rename to REPO/<id>, fsync REPO. 0 or -1. */
int hm_repo_commit(const hm_repo *r, const char *partial, const char *id, hm_error *err);

/* Remove a backup: rename it into .tmp (atomic: it disappears from list at once), then
 * delete the files. 0 or -1. */
int hm_repo_remove(const hm_repo *r, const char *id, hm_error *err);

/* A new backup id for time t ("20261127T001500.123Z-1a2b3c4d": UTC, milliseconds, the
 * uuid's first 8 hex digits; sorts by start) and the full uuid. */
void hm_repo_new_id(time_t t, char id[64], char uuid[40]);

#endif
