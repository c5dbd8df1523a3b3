/* File-system helpers that keep user data safe: atomic writes (temp + fsync + rename +
 * directory fsync), directory creation with explicit modes, and removal and checks that
 * never follow a symlink. Functions ending in _at work relative to a directory fd: that is
 * how every caller works inside a place someone else might write (a repository, a restore
 * target's parent), so that a path swapped for a symlink cannot redirect them. */
#ifndef HM_FSUTIL_H
#define HM_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "error.h"

/* Write len bytes to path atomically with the given mode: a temp file in the same
 * directory (created O_EXCL|O_NOFOLLOW), fsync, rename over path, fsync the directory.
 * 0 or -1 with err set. */
int hm_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, hm_error *err);

/* The same for name inside the directory open as dirfd (display names it in messages). */
int hm_write_file_atomic_at(int dirfd, const char *name, const char *display, const void *data, size_t len,
			    mode_t mode, hm_error *err);

/* fsync a directory so that a rename or create inside it is durable. 0 or -1. */
int hm_fsync_dir(const char *dir, hm_error *err);

/* fsync the directory holding path. 0 or -1. */
int hm_fsync_parent(const char *path, hm_error *err);

/* mkdir -p with mode for every directory it creates (existing ones are left as they are). */
int hm_mkdir_p(const char *path, mode_t mode, hm_error *err);

/* Sum of the sizes of the regular files under dirfd/name (AT_FDCWD and a path work too),
 * walked with directory fds and without following any symlink; unreadable subdirectories
 * are skipped. Best effort: for progress totals and disk estimates, never for a check. */
uint64_t hm_tree_bytes(int dirfd, const char *name);

/* Read a whole (small) file into a malloc'd NUL-terminated buffer; *len gets its size.
 * Refuses files over max bytes (HM_EXIT_INPUT, "larger than"). 0 or -1. */
int hm_read_file(const char *path, size_t max, char **out, size_t *len, hm_error *err);

/* The same from an open fd (read from its current offset; not closed). */
int hm_read_fd(int fd, const char *display, size_t max, char **out, size_t *len, hm_error *err);

/* A secret (password) file: its first line, with the trailing newline removed. Refused
 * with HM_EXIT_PERMISSION when group or others may read it (the mode is checked on the
 * opened file, so it cannot change in between). *out is malloc'd; wipe it after use. */
int hm_read_secret_file(const char *path, size_t max, char **out, hm_error *err);

/* Remove a directory tree without following symlinks; a missing path is not an error.
 * Every directory is opened O_NOFOLLOW relative to its parent and emptied with unlinkat, so
 * a directory swapped for a symlink while this runs is unlinked, never entered. */
int hm_rmtree(const char *path, hm_error *err);

/* Remove name (anything) inside the directory open as dirfd, as hm_rmtree does. */
int hm_rmtree_at(int dirfd, const char *name, const char *display, hm_error *err);

/* Remove everything inside the directory open as fd (the directory itself stays). */
int hm_empty_dir_fd(int fd, const char *display, hm_error *err);

/* Open name inside dirfd as a directory, never through a symlink
 * (O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC). The fd, or -1 with err set (a symlink is
 * HM_EXIT_PERMISSION "is a symlink"). */
int hm_open_dir_at(int dirfd, const char *name, const char *display, hm_error *err);

/* Check a directory that must be private to the running user (a backup repository,
 * STACK/.hive-migrate): owned by geteuid() and not writable by group or others.
 * HM_EXIT_PERMISSION naming `what` and path, with a hint, otherwise. 0 or -1. */
int hm_check_private_dir(const struct stat *st, const char *what, const char *path, hm_error *err);

/* Make path a private directory: created 0700 (with missing parents) when absent, never
 * a symlink, then hm_check_private_dir. 0 or -1. */
int hm_private_dir(const char *path, const char *what, hm_error *err);

/* Rename the directory from to to (same parent), checked: from must be a real directory
 * (not a symlink), and to must afterwards be that same directory (dev/ino); otherwise the
 * rename is undone when possible and HM_EXIT_IO is returned. 0 or -1. */
int hm_rename_dir_checked(const char *from, const char *to, hm_error *err);

/* Join two path parts into out (size outsz); -1 with err set if it does not fit. */
int hm_path_join(char *out, size_t outsz, const char *a, const char *b, hm_error *err);

/* Split path into its parent directory (into dir; "." when there is none) and its last
 * component (into base); trailing slashes are ignored. -1 with err for "", "/", "." or
 * "..", or when a part does not fit. */
int hm_path_split(const char *path, char *dir, size_t dirsz, char *base, size_t basesz, hm_error *err);

#endif
