/* flock-based lock. The pid written inside is only informative (for the message); the
 * flock itself is the truth, which is what makes stale locks harmless. */
#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int hm_lock_acquire_at(hm_lock *lock, int dirfd, const char *name, const char *display, int shared,
		       hm_error *err)
{
	struct stat st;
	lock->fd = -1;
	if (snprintf(lock->path, sizeof lock->path, "%s", display) >= (int)sizeof lock->path)
		return hm_error_set(err, HM_EXIT_INPUT, "lock path too long: \"%s\"", display);
	int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP) {
			hm_error_set(err, HM_EXIT_PERMISSION,
				     "lock file \"%s\" is a symlink, which is never followed", display);
			return hm_error_hint(err, "remove it (rm %s); the next run recreates it", display);
		}
		return hm_error_errno(err, e, "open lock file", display);
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		close(fd);
		hm_error_set(err, HM_EXIT_PERMISSION,
			     "lock file \"%s\" is not a regular file of the user running hive-migrate",
			     display);
		return hm_error_hint(err, "remove it (rm %s); the next run recreates it", display);
	}
	if (flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
		int e = errno;
		char pid[32] = "";
		ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
		close(fd);
		if (e != EWOULDBLOCK)
			return hm_error_errno(err, e, "lock", display);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		hm_error_set(err, HM_EXIT_LOCKED, "another run holds the lock \"%s\" (pid %s)", display,
			     pid[0] ? pid : "unknown");
		return hm_error_hint(err, "wait for it to finish; a killed run releases the lock by itself");
	}
	if (!shared) {
		char buf[32];
		int len = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
		if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
			int e = errno;
			close(fd);
			return hm_error_errno(err, e, "write lock file", display);
		}
	}
	lock->fd = fd;
	return 0;
}

int hm_lock_acquire(hm_lock *lock, const char *path, hm_error *err)
{
	return hm_lock_acquire_at(lock, AT_FDCWD, path, path, 0, err);
}

void hm_lock_release(hm_lock *lock)
{
	if (lock->fd >= 0) {
		flock(lock->fd, LOCK_UN);
		close(lock->fd);
		lock->fd = -1;
	}
}
