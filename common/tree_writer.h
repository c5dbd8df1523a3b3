/* Writing a tree from archive members that passed the rule (tree_rule.h), safely even
 * where another user can write: the work directory is made with mkdirat under a parent
 * directory fd, opened O_DIRECTORY|O_NOFOLLOW and checked to be a fresh directory of ours;
 * every member is then created with *at() calls (mkdirat, openat O_CREAT|O_EXCL|O_NOFOLLOW,
 * symlinkat, fchownat/utimensat AT_SYMLINK_NOFOLLOW) relative to directory fds opened
 * O_NOFOLLOW from that root, never by path. Directory owners, modes and times are applied
 * last, deepest first, so nobody else can write into the tree while it is being filled.
 * Owners are applied when running as root or when an owner override is given. */
#ifndef HM_TREE_WRITER_H
#define HM_TREE_WRITER_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "error.h"
#include "tree_rule.h"

/* Optional owner for every entry (--owner UID:GID). */
typedef struct hm_tree_owner {
	int set;
	uid_t uid;
	gid_t gid;
} hm_tree_owner;

typedef struct hm_tree_writer hm_tree_writer;

/* Create the directory name (0700) inside the directory open as parentfd and a writer for
 * it. display names it in messages. owner may be NULL. An existing name is refused
 * (HM_EXIT_INPUT). 0 or -1. */
int hm_tree_writer_new(hm_tree_writer **out, int parentfd, const char *name, const char *display,
		       const hm_tree_owner *owner, hm_error *err);

/* Create a directory or symlink, or begin a regular file (then feed it with
 * hm_tree_writer_data and close it with hm_tree_writer_end_file). "." sets the top
 * directory's attributes. 0 or -1. */
int hm_tree_writer_add(hm_tree_writer *w, const hm_tree_item *item, hm_error *err);
int hm_tree_writer_data(hm_tree_writer *w, const void *buf, size_t len, hm_error *err);
int hm_tree_writer_end_file(hm_tree_writer *w, hm_error *err);

/* Apply the directories' attributes (deepest first) and sync the file system. 0 or -1. */
int hm_tree_writer_finish(hm_tree_writer *w, hm_error *err);

/* The top directory: its fd (valid until free/abort) and what fstat said of it when it
 * was created (dev/ino identify it whatever name it has later). */
int hm_tree_writer_rootfd(const hm_tree_writer *w);
const struct stat *hm_tree_writer_root_stat(const hm_tree_writer *w);

/* Close everything and free; the tree stays. */
void hm_tree_writer_free(hm_tree_writer *w);

/* Remove everything created (the top directory too, if it still has its name) and free. */
void hm_tree_writer_abort(hm_tree_writer *w);

#endif
