/* flock-based lock. The pid written inside is only informative (for the message); the
 * flock itself is the truth, which is what makes stale locks harmless. */
#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int hm_lock_acquire(hm_lock *lock, const char *path, hm_error *err)
{
	lock->fd = -1;
	if (snprintf(lock->path, sizeof lock->path, "%s", path) >= (int)sizeof lock->path)
		return hm_error_set(err, HM_EXIT_INPUT, "lock path too long: \"%s\"", path);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return hm_error_errno(err, errno, "open lock file", path);
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		char pid[32] = "";
		ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
		close(fd);
		if (e != EWOULDBLOCK)
			return hm_error_errno(err, e, "lock", path);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		hm_error_set(err, HM_EXIT_LOCKED, "another run holds the lock \"%s\" (pid %s)", path,
			     pid[0] ? pid : "unknown");
		return hm_error_hint(err, "wait for it to finish; a killed run releases the lock by itself");
	}
	char buf[32];
	int len = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
		int e = errno;
		close(fd);
		return hm_error_errno(err, e, "write lock file", path);
	}
	lock->fd = fd;
	return 0;
}

void hm_lock_release(hm_lock *lock)
{
	if (lock->fd >= 0) {
		flock(lock->fd, LOCK_UN);
		close(lock->fd);
		lock->fd = -1;
	}
}
