/* The safety snapshot taken before a rollback of a completed migration: a verified archive
 * of the live data directory, by the same archive code as up's snapshot, so that even the
 * rollback can be undone (`backups restore`-style by hand, or `rollback --backup` is not
 * for it: it is the unified side's state). Only taken with no server on the directory. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "../common/archive_dir.h"
#include "../common/fsutil.h"
#include "../common/progress.h"
#include "../common/version.h"
#include "rollback_live.h"
#include "up_snapshot_repo.h"

/* Metadata of the safety archive (no secrets). */
static char *metadata(const hm_mig *m, const char *id)
{
	json_object *o = json_object_new_object(), *src = json_object_new_object();
	json_object_object_add(o, "backup_id", json_object_new_string(id));
	json_object_object_add(o, "kind", json_object_new_string("rollback-safety-snapshot"));
	json_object_object_add(o, "created_at", json_object_new_int64((int64_t)time(NULL)));
	json_object_object_add(o, "tool", json_object_new_string("hive-migrate"));
	json_object_object_add(o, "tool_version", json_object_new_string(HM_VERSION));
	json_object_object_add(src, "stack_dir", json_object_new_string(m->stack_dir));
	json_object_object_add(src, "profile", json_object_new_string(m->profile));
	json_object_object_add(src, "data_dir", json_object_new_string(m->j.data_dir));
	json_object_object_add(src, "migration_backup_id", json_object_new_string(m->j.backup_id));
	json_object_object_add(o, "source", src);
	const char *s =
		json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *r = s ? strdup(s) : NULL;
	json_object_put(o);
	return r;
}

int hm_rb_safety_snapshot(hm_mig *m, const char *archive_dir, hm_error *err)
{
	hm_journal *j = &m->j;
	hm_archive_stats st, vst;
	hm_progress pr;
	char dir[PATH_MAX];
	if (j->safety_done && access(j->safety_archive, F_OK) == 0)
		return 0;
	j->safety_done = 0;
	/* never archive a directory a server may be writing to */
	if (hm_mig_unified_down(m, err) != 0)
		return -1;
	if (!j->safety_archive[0]) {
		uuid_t u;
		char id[40], name[96], base[PATH_MAX];
		if (archive_dir && !hm_upsnap_is_remote(archive_dir)) /* s3: kept local */
			snprintf(dir, sizeof dir, "%s", archive_dir);
		else if (j->archive[0] && !hm_upsnap_is_remote(j->archive) &&
			 hm_path_split(j->archive, dir, sizeof dir, base, sizeof base, err) == 0)
			;
		else if (hm_path_join(dir, sizeof dir, m->state_dir, "archives", err) != 0)
			return -1;
		if (hm_mkdir_p(dir, 0700, err) != 0)
			return -1;
		uuid_generate(u);
		uuid_unparse_lower(u, id);
		snprintf(name, sizeof name, "rollback-safety-%s.tar.zst", id);
		if (hm_path_join(j->safety_archive, sizeof j->safety_archive, dir, name, err) != 0 ||
		    hm_mig_save(m, err) != 0)
			return -1;
	}
	if (access(j->safety_archive, F_OK) == 0) {
		hm_mig_log(m, "verifying the safety snapshot left by the interrupted run: %s",
			   j->safety_archive);
		if (hm_archive_verify(j->safety_archive, NULL, &vst, err) == 0)
			goto done;
		hm_mig_log(m, "it does not verify (%s): taking it again", err->message);
		unlink(j->safety_archive);
	}
	const char *slash = strrchr(j->safety_archive, '/');
	char *meta = metadata(m, slash ? slash + 1 : j->safety_archive);
	if (!meta)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	hm_archive_opts ao = {.metadata_json = meta, .zstd_level = 1, .progress = &pr};
	hm_mig_log(m, "safety snapshot of the live directory %s into %s", j->data_dir, j->safety_archive);
	hm_progress_init(&pr, stderr, "safety snapshot", 0, m->quiet);
	int rc = hm_archive_dir_create(j->data_dir, j->safety_archive, &ao, &st, err);
	free(meta);
	if (rc != 0) {
		hm_error_prefix(err, "cannot take the safety snapshot");
		if (!err->hint[0])
			hm_error_hint(err, "free space in the archive directory (or pass --archive-dir, or "
					   "--no-safety-snapshot) and run hive-migrate rollback again");
		return -1;
	}
	hm_progress_finish(&pr);
	hm_fault_point("rollback:during:safety-verify");
	hm_progress_init(&pr, stderr, "verify", st.bytes, m->quiet);
	if (hm_archive_verify(j->safety_archive, &pr, &vst, err) != 0)
		return hm_error_prefix(err, "the safety snapshot just written does not verify");
	hm_progress_finish(&pr);
done:
	j->safety_done = 1;
	if (hm_mig_save(m, err) != 0)
		return -1;
	hm_mig_log(m, "safety snapshot verified: %s", j->safety_archive);
	return 0;
}
