/* What the writing and the reading half of common/archive_dir share (not a public API). */
#ifndef HM_ARCHIVE_DIR_INT_H
#define HM_ARCHIVE_DIR_INT_H

#include <archive.h>

#include "error.h"

#define HM_AD_META_MEMBER "hive-migrate/metadata.json"
#define HM_AD_MANIFEST_MEMBER "hive-migrate/manifest.json"
#define HM_AD_DATA_PREFIX "data"
#define HM_AD_IO_BUF (1 << 20)

/* Turn the last libarchive error into an hm_error (ENOSPC -> NO_SPACE). Returns -1. */
int hm_ad_archive_fail(hm_error *err, struct archive *a, const char *what, const char *path);

/* Formats and filters of a new archive, as hm_archive_dir_create sets them (opts: its
 * zstd level and threads); path names it in messages. 0 or -1. */
struct hm_archive_opts;
int hm_ad_setup_writer(struct archive *a, const struct hm_archive_opts *opts, const char *path,
		       hm_error *err);

#endif
