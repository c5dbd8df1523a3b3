/* The one rule every archive reader applies, offline and online, in verify and in restore
 * alike (so a backup that verifies also restores), and that keeps whatever an archive
 * holds inside its target:
 *   - only regular files, directories and symlinks: no hard links (whatever their type
 *     says), devices, FIFOs or sockets;
 *   - relative paths without ".", ".." or empty components, components under NAME_MAX
 *     bytes, at most HM_TREE_MAX_DEPTH deep (a leading "./" and trailing "/" are what tar
 *     writers add, and are accepted);
 *   - no set-user-ID or set-group-ID bit; modes are reduced to 0777 (plus the sticky bit
 *     on directories);
 *   - nothing below a symlink or a file of the same archive, no path twice, "." (the top)
 *     a directory, symlink targets not empty and shorter than PATH_MAX, owners that are
 *     real ids (not -1);
 *   - a directory may appear after entries below it only if nothing else was there: it
 *     was created (0700) when its first child was.
 * Names are bytes: nothing here depends on the locale or on UTF-8. */
#ifndef HM_TREE_RULE_H
#define HM_TREE_RULE_H

#include <stddef.h>
#include <stdint.h>

struct archive_entry;

#define HM_TREE_MAX_DEPTH 200

/* An archive member that passed the rule. */
typedef struct hm_tree_item {
	const char *path; /* normalized relative path ("." = the top); owned by the rule */
	char type;	  /* 'f' file, 'd' directory, 'l' symlink */
	uint32_t mode;	  /* permission bits as archived (set-id refused, so at most 01777) */
	uint32_t uid, gid;
	int64_t mtime;
	const char *target; /* symlinks: the target (valid until the next header is read) */
} hm_tree_item;

/* State of one archive being checked: every path seen so far and its type. */
typedef struct hm_tree_rule {
	struct hm_tree_slot *slots;
	size_t cap, count;
	int top_seen;
} hm_tree_rule;

void hm_tree_rule_init(hm_tree_rule *r);
void hm_tree_rule_free(hm_tree_rule *r);

/* Normalize an archive member name into out (size outsz): leading "./" and trailing "/"
 * removed, "" and "." become ".". -1 when the name is unsafe or too long, with a reason in
 * why (size whysz) that names it. */
int hm_tree_normalize(const char *name, char *out, size_t outsz, char *why, size_t whysz);

/* Check member e whose normalized name is path against the rule and the members seen
 * before it; on success fill *item and remember the path. -1 with a reason in why (it
 * names the path) otherwise. */
int hm_tree_rule_check(hm_tree_rule *r, const char *path, struct archive_entry *e, hm_tree_item *item,
		       char *why, size_t whysz);

/* The mode a member is created with: 0777 bits (plus sticky for directories). */
uint32_t hm_tree_mode(const hm_tree_item *item);

#endif
