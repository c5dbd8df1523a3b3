/* The archive rule. The seen-path table is an open-addressing hash (paths are checked
 * once each, and every ancestor of every member is looked up), so checking stays linear in
 * the number of members whatever their order. */
#include "tree_rule.h"

#include <archive_entry.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct hm_tree_slot {
	char *path;
	char type;     /* 'f', 'd', 'l' */
	char explicit; /* listed in the archive (else: a directory created for a child) */
} hm_tree_slot;

void hm_tree_rule_init(hm_tree_rule *r)
{
	memset(r, 0, sizeof *r);
}

void hm_tree_rule_free(hm_tree_rule *r)
{
	for (size_t i = 0; i < r->cap; i++)
		free(r->slots[i].path);
	free(r->slots);
	hm_tree_rule_init(r);
}

static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

/* The slot of the n-byte path s, or the empty slot where it would go. */
static hm_tree_slot *find(hm_tree_rule *r, const char *s, size_t n)
{
	size_t i = (size_t)(hash(s, n) & (r->cap - 1));
	for (;; i = (i + 1) & (r->cap - 1)) {
		hm_tree_slot *sl = &r->slots[i];
		if (!sl->path || (strlen(sl->path) == n && !memcmp(sl->path, s, n)))
			return sl;
	}
}

static int grow(hm_tree_rule *r)
{
	size_t ncap = r->cap ? r->cap * 2 : 1024;
	hm_tree_slot *old = r->slots;
	size_t ocap = r->cap;
	r->slots = calloc(ncap, sizeof *r->slots);
	if (!r->slots) {
		r->slots = old;
		return -1;
	}
	r->cap = ncap;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].path)
			*find(r, old[i].path, strlen(old[i].path)) = old[i];
	free(old);
	return 0;
}

/* Look up (and with type != 0 insert) the n-byte path s. NULL when out of memory. */
static hm_tree_slot *slot(hm_tree_rule *r, const char *s, size_t n, char type, char explicit, int *fresh)
{
	*fresh = 0;
	if ((r->count + 1) * 2 > r->cap && grow(r) != 0)
		return NULL;
	hm_tree_slot *sl = find(r, s, n);
	if (sl->path || !type)
		return sl;
	if (!(sl->path = strndup(s, n)))
		return NULL;
	sl->type = type;
	sl->explicit = explicit;
	r->count++;
	*fresh = 1;
	return sl;
}

int hm_tree_normalize(const char *name, char *out, size_t outsz, char *why, size_t whysz)
{
	const char *p = name;
	while (p[0] == '.' && p[1] == '/')
		for (p += 2; *p == '/';)
			p++;
	size_t n = strlen(p);
	while (n > 0 && p[n - 1] == '/')
		n--;
	if (n == 0 || (n == 1 && p[0] == '.')) {
		if (p[0] == '/') /* "/" itself */
			return snprintf(why, whysz, "\"%s\": absolute path", name), -1;
		snprintf(out, outsz, ".");
		return 0;
	}
	if (p[0] == '/')
		return snprintf(why, whysz, "\"%s\": absolute path", name), -1;
	if (n >= outsz || n >= PATH_MAX)
		return snprintf(why, whysz, "\"%.200s...\": path too long", name), -1;
	int depth = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && p[j] != '/')
			j++;
		size_t len = j - i;
		if (len == 0)
			return snprintf(why, whysz, "\"%s\": empty path component", name), -1;
		if (len == 1 && p[i] == '.')
			return snprintf(why, whysz, "\"%s\": a \".\" component", name), -1;
		if (len == 2 && p[i] == '.' && p[i + 1] == '.')
			return snprintf(why, whysz, "\"%s\": a \"..\" component (outside the target)", name),
			       -1;
		if (len > NAME_MAX)
			return snprintf(why, whysz, "\"%.200s...\": a name longer than %d bytes", name,
					NAME_MAX),
			       -1;
		if (++depth > HM_TREE_MAX_DEPTH)
			return snprintf(why, whysz, "\"%.200s...\": nested deeper than %d", name,
					HM_TREE_MAX_DEPTH),
			       -1;
		i = j + 1;
	}
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

uint32_t hm_tree_mode(const hm_tree_item *item)
{
	return item->mode & (item->type == 'd' ? 01777u : 0777u);
}

/* What a refused file type is called. */
static const char *type_name(unsigned t)
{
	switch (t) {
	case AE_IFCHR:
		return "a character device";
	case AE_IFBLK:
		return "a block device";
	case AE_IFIFO:
		return "a FIFO";
	case AE_IFSOCK:
		return "a socket";
	default:
		return "of an unsupported type";
	}
}

int hm_tree_rule_check(hm_tree_rule *r, const char *path, struct archive_entry *e, hm_tree_item *item,
		       char *why, size_t whysz)
{
	const char *hl = archive_entry_hardlink(e);
	int fresh;
	memset(item, 0, sizeof *item);
	if (hl)
		return snprintf(why, whysz, "\"%s\" is a hard link (to \"%s\"): hard links are refused", path,
				hl),
		       -1;
	switch (archive_entry_filetype(e)) {
	case AE_IFREG:
		item->type = 'f';
		break;
	case AE_IFDIR:
		item->type = 'd';
		break;
	case AE_IFLNK:
		item->type = 'l';
		break;
	default:
		return snprintf(why, whysz, "\"%s\" is %s: only files, directories and symlinks are allowed",
				path, type_name(archive_entry_filetype(e))),
		       -1;
	}
	item->mode = (uint32_t)archive_entry_perm(e) & 07777;
	if (item->mode & (S_ISUID | S_ISGID))
		return snprintf(why, whysz, "\"%s\" has the setuid/setgid bit (mode %04o): refused", path,
				item->mode),
		       -1;
	la_int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
	if (uid < 0 || uid >= 0xFFFFFFFFll || gid < 0 || gid >= 0xFFFFFFFFll)
		return snprintf(why, whysz, "\"%s\" has an invalid owner %lld:%lld", path, (long long)uid,
				(long long)gid),
		       -1;
	item->uid = (uint32_t)uid;
	item->gid = (uint32_t)gid;
	item->mtime = archive_entry_mtime(e);
	if (item->type == 'l') {
		item->target = archive_entry_symlink(e);
		if (!item->target || !item->target[0])
			return snprintf(why, whysz, "\"%s\" is a symlink without a target", path), -1;
		if (strlen(item->target) >= PATH_MAX)
			return snprintf(why, whysz, "\"%s\" is a symlink with a target too long", path), -1;
	}
	if (!strcmp(path, ".")) {
		if (item->type != 'd')
			return snprintf(why, whysz, "\".\" (the top directory) is not a directory"), -1;
		if (r->top_seen)
			return snprintf(why, whysz, "\".\" (the top directory) appears twice"), -1;
		r->top_seen = 1;
		item->path = ".";
		return 0;
	}
	/* every ancestor: a directory of this archive, or created now for this member */
	for (const char *s = strchr(path, '/'); s; s = strchr(s + 1, '/')) {
		hm_tree_slot *a = slot(r, path, (size_t)(s - path), 'd', 0, &fresh);
		if (!a)
			return snprintf(why, whysz, "out of memory"), -1;
		if (a->type != 'd')
			return snprintf(why, whysz, "\"%s\" is below \"%s\", which is a %s in the archive",
					path, a->path, a->type == 'l' ? "symlink" : "file"),
			       -1;
	}
	hm_tree_slot *me = slot(r, path, strlen(path), item->type, 1, &fresh);
	if (!me)
		return snprintf(why, whysz, "out of memory"), -1;
	if (!fresh) {
		if (me->explicit)
			return snprintf(why, whysz, "\"%s\" appears twice in the archive", path), -1;
		if (item->type != 'd')
			return snprintf(why, whysz,
					"\"%s\" appears after members below it and is no directory", path),
			       -1;
		me->explicit = 1;
	}
	item->path = me->path;
	return 0;
}
