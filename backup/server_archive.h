/* One server archive of an online backup (base.tar.zst, <oid>.tar.zst: PostgreSQL's own
 * tar as BASE_BACKUP streamed it), read from inside the outer tar. Anyone who can write
 * the repository, or who controls the server answering BASE_BACKUP, controls these bytes,
 * so every member goes through the archive rule (common/tree_rule.h); each regular file's
 * checksum is computed as backup_manifest states it (CRC32C or SHA-256); and when
 * restoring, each member is written with common/tree_writer.h in the same pass. The same
 * code checks and restores: a backup that verifies also restores. */
#ifndef HM_SERVER_ARCHIVE_H
#define HM_SERVER_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/digest.h"
#include "../common/error.h"
#include "../common/tree_writer.h"

struct archive;

/* A regular file found in a server archive. */
typedef struct hm_sa_file {
	char *path; /* with the archive's prefix, as backup_manifest names it */
	uint64_t size;
	char checksum[HM_SHA256_HEX_LEN + 1];
} hm_sa_file;

typedef struct hm_sa_files {
	hm_sa_file *v;
	size_t n, cap;
} hm_sa_files;

/* How to walk one archive. */
typedef struct hm_sa_walk {
	const char *member;	/* its name in the outer archive, for messages */
	const char *prefix;	/* "" for base.tar.zst, "pg_tblspc/<oid>/" for a tablespace */
	int alg;		/* hm_pgm_alg: checksum to compute for regular files */
	hm_tree_writer *writer; /* NULL: check only */
	hm_sa_files *files;	/* regular files seen are appended here */
	void (*problem)(void *ctx, const char *line);
	void *ctx;
} hm_sa_walk;

/* Walk every member of the archive in (opened by the caller). Problems (a member that
 * breaks the rule, a damaged archive) are reported through w->problem, and end the walk
 * of this archive. 0: walked; -1 with err set: writing the restore failed, or out of
 * memory (stop everything). */
int hm_sa_walk_archive(struct archive *in, const hm_sa_walk *w, hm_error *err);

/* Sort files by path (for hm_sa_find). */
void hm_sa_files_sort(hm_sa_files *f);

/* A file by path in sorted files, or NULL. */
const hm_sa_file *hm_sa_find(const hm_sa_files *f, const char *path);

void hm_sa_files_free(hm_sa_files *f);

#endif
