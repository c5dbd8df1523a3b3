/* The backup repository: a local directory (below) or an object-store prefix
 * (s3://BUCKET/PREFIX, repo_s3.c, same names: PREFIX/<id>/<archive>, PREFIX/<id>/backup.json
 * written last, PREFIX/.lock a lease object). The commands above (backup, verify, restore,
 * prune, status) only call the functions here and in repo_io.h, so they do not know where
 * the bytes live.
 * The local repository on disk:
 *   REPO/                   0700, owned by the user running hive-migrate (else refused)
 *   REPO/.lock              run lock (common/lock.h): backup, verify and prune hold it
 *   REPO/.restore-lock      restores hold it shared, prune exclusive: prune never deletes a
 *                           backup a restore is reading, and restores never wait for backups
 *   REPO/.tmp/              work area: partial backups and backups being deleted; emptied by
 *                           the next run that holds .lock, never listed
 *   REPO/<id>/              0700, one per complete backup, renamed into place from .tmp as
 *                           the very last step (the commit point)
 *   REPO/<id>/backup.tar    online: the archive (0600); offline: data.tar.zst
 *   REPO/<id>/backup.json   metadata + verification status (0600, rewritten atomically)
 * Everything below REPO is reached through REPO's directory fd with O_NOFOLLOW: a symlink
 * in place of .tmp, .lock, a backup directory or one of its files is never followed. A
 * directory with a backup.json that cannot be read (too large, not JSON, another id) is
 * listed as broken, never pruned, never "latest"; one without backup.json is not a backup.
 * This file is the one place that opens anything under a repository, so that another
 * storage (object storage) can later sit behind the same functions. */
#ifndef HM_REPO_H
#define HM_REPO_H

#include <stddef.h>
#include <time.h>

#include "../common/crypt.h"
#include "../common/error.h"
#include "../common/lock.h"
#include "meta.h"
#include "storage/storage.h"

#define HM_REPO_META "backup.json"
#define HM_REPO_META_MAX (1u << 20) /* a larger backup.json is reported as broken */

typedef enum hm_repo_lock {
	HM_REPO_NO_LOCK = 0,   /* list, show, status: read only */
	HM_REPO_EXCLUSIVE = 1, /* backup, verify: .lock; .tmp is cleared */
	HM_REPO_PRUNE = 2,     /* prune: .lock and .restore-lock exclusive; .tmp is cleared */
	HM_REPO_RESTORE = 3,   /* restore: .restore-lock shared */
} hm_repo_lock;

/* How to reach a repository in an object store (ignored for a local directory). */
typedef struct hm_repo_conn {
	hm_s3_options s3;
} hm_repo_conn;

typedef struct hm_repo {
	char path[4096]; /* the location as given: a directory or s3://BUCKET/PREFIX */
	int fd;		 /* local: REPO, -1 when closed */
	int tmpfd;	 /* local: REPO/.tmp (with .lock held); s3: the stage; else -1 */
	hm_lock lock;
	hm_lock restore_lock;
	hm_storage *st;		 /* s3: the storage (NULL for a local directory) */
	hm_storage_lock *slock;	 /* s3: the lease lock PREFIX/.lock, when held */
	hm_storage_lock *srlock; /* s3: PREFIX/.restore-lock (restore, copy's source, prune) */
	char stage[4096];	 /* a private local work directory (0700, removed on close), or "" */
	int stagefd;
	unsigned lease_s;	 /* s3: the lock's lease */
	struct timespec renewed; /* s3: when the lease was last renewed (CLOCK_MONOTONIC) */
} hm_repo;

/* Is location an object-store repository (s3://...)? */
int hm_repo_is_remote(const char *location);

/* Open a repository: it must be a directory owned by the running user and not writable
 * by group or others (HM_EXIT_PERMISSION otherwise). create: make it (0700) if missing.
 * lock: see hm_repo_lock (HM_EXIT_LOCKED when another run holds what is needed). For an
 * s3:// location (conn: its options, may be NULL), the credentials and the bucket are
 * checked first; exclusive and prune take the lease lock PREFIX/.lock, abort multipart
 * uploads left by killed runs and remove backup directories without backup.json (the
 * leftovers of a killed upload); restore (and prune, after .lock) take the lease lock
 * PREFIX/.restore-lock, so that prune never deletes what a restore reads; unlike the local
 * shared lock it is exclusive: one restore at a time. Storage failures are HM_EXIT_STORAGE.
 * 0 or -1. */
int hm_repo_open(hm_repo *r, const char *path, const hm_repo_conn *conn, int create, hm_repo_lock lock,
		 hm_error *err);

/* While a long step runs without talking to the object store (the online backup staging
 * its archive): renew the lease once a third of it has passed. Local, or no lock: 0. 0 or
 * -1 (HM_EXIT_LOCKED when it was lost). */
int hm_repo_keepalive(hm_repo *r, hm_error *err);

/* Release the locks and close. */
void hm_repo_close(hm_repo *r);

/* Every backup (broken ones included, marked broken), oldest first (*out malloc'd). 0 or -1. */
int hm_repo_list(const hm_repo *r, hm_backup_meta **out, size_t *n, hm_error *err);

/* The backup named id ("latest" = the newest that is not broken; a unique prefix is
 * accepted). HM_EXIT_NOT_FOUND when missing. 0 or -1. */
int hm_repo_find(const hm_repo *r, const char *id, hm_backup_meta *out, hm_error *err);

/* Path of a file inside a backup's directory (for messages and containers). 0 or -1. */
int hm_repo_file(const hm_repo *r, const char *id, const char *name, char *out, size_t outsz, hm_error *err);

/* Open a file of a backup (flags as open(2); O_NOFOLLOW is added). The fd, or -1. */
int hm_repo_open_file(const hm_repo *r, const char *id, const char *name, int flags, hm_error *err);

/* Rewrite a backup's metadata (with status) atomically. 0 or -1. */
int hm_repo_save_meta(const hm_repo *r, const hm_backup_meta *m, hm_error *err);

/* A fresh partial directory REPO/.tmp/<id> (0700) for a new backup; path into out. Needs
 * .lock. 0 or -1. */
int hm_repo_partial(const hm_repo *r, const char *id, char *out, size_t outsz, hm_error *err);

/* Commit the partial directory of backup m: write m as its backup.json (the last write),
 * then local: fsync it, rename to REPO/<id>, fsync REPO; s3: confirm the lease, PUT
 * <id>/backup.json if absent, remove the local stage. The archive must be stored first
 * (hm_repo_store_archive). 0 or -1. */
int hm_repo_commit(const hm_repo *r, const char *partial, const hm_backup_meta *m, hm_error *err);

/* After a failed backup: remove whatever of backup id reached an object store (best
 * effort; a killed run's leftovers are removed by the next locked run). Local: nothing. */
void hm_repo_discard(const hm_repo *r, const char *id);

/* Remove a backup: rename it into .tmp (atomic: it disappears from list at once), then
 * delete the files. Needs .lock. 0 or -1. */
int hm_repo_remove(const hm_repo *r, const char *id, hm_error *err);

/* A private local work directory as a fd, and its path: REPO/.tmp of a locked local
 * repository, else the stage (for s3, and for decrypting). -1 when there is none. */
int hm_repo_tmpfd(const hm_repo *r);
const char *hm_repo_tmp_path(const hm_repo *r, char *buf, size_t bufsz);

/* A new backup id for time t ("20261127T001500.123Z-1a2b3c4d": UTC, milliseconds, the
 * uuid's first 8 hex digits; sorts by start) and the full uuid. */
void hm_repo_new_id(time_t t, char id[64], char uuid[40]);

#endif
