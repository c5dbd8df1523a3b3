/* Run locks for cron-driven and interactive commands: flock on a file that holds the
 * exclusive owner's pid. The kernel drops a flock when its holder dies, so a lock left by
 * a killed run is recognised as stale by simply being acquirable. Lock files are opened
 * O_NOFOLLOW and must be regular files of the running user: a symlink planted in their
 * place is refused, never truncated through. */
#ifndef HM_LOCK_H
#define HM_LOCK_H

#include <sys/types.h>

#include "error.h"

typedef struct hm_lock {
	int fd;
	char path[4096];
} hm_lock;

/* Take the exclusive lock at path without waiting. On contention: -1 with HM_EXIT_LOCKED
 * and a message naming the holder's pid. The file is created 0600. */
int hm_lock_acquire(hm_lock *lock, const char *path, hm_error *err);

/* The same for name inside the directory open as dirfd (display: its path, for
 * messages). shared: a shared lock (many holders; no pid is written), else exclusive. */
int hm_lock_acquire_at(hm_lock *lock, int dirfd, const char *name, const char *display, int shared,
		       hm_error *err);

/* Release (the lock file stays; its content no longer matters). */
void hm_lock_release(hm_lock *lock);

#endif
