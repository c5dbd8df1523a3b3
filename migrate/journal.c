/* Journal encoding and the resume rules. Names, not numbers, go into the file so a human
 * reading it during an incident understands it, and so reordering the enums can never
 * silently change what an old journal means. */
#include "journal.h"

#include <errno.h>
#include <json-c/json.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/fsutil.h"

static const char *const step_names[HM_STEP__COUNT] = {
	"start",    "fingerprinted", "stopping",	 "stopped",  "snapshotted",
	"chowning", "chowned",	     "unified-starting", "verified", "done"};
static const char *const rb_names[HM_RB__COUNT] = {"none",	   "extracted",	    "unified-down", "swapped",
						   "chown-undone", "split-started", "done"};
static const char *const mode_names[HM_RBM__COUNT] = {"none", "snapshot", "live"};
static const char *const live_names[HM_LIVE__COUNT] = {"none",
						       "fingerprinted",
						       "unified-down",
						       "safety-snapshotted",
						       "owners-restored",
						       "settings-restored",
						       "split-started",
						       "verified",
						       "done"};
static const char *const status_names[HM_JS__COUNT] = {"in-progress", "done", "rolling-back", "rolled-back",
						       "rollback-failed"};

const char *hm_step_name(hm_step s)
{
	return s >= 0 && s < HM_STEP__COUNT ? step_names[s] : "unknown";
}

const char *hm_rb_step_name(hm_rb_step s)
{
	return s >= 0 && s < HM_RB__COUNT ? rb_names[s] : "unknown";
}

const char *hm_jstatus_name(hm_jstatus s)
{
	return s >= 0 && s < HM_JS__COUNT ? status_names[s] : "unknown";
}

const char *hm_rb_mode_name(hm_rb_mode m)
{
	return m >= 0 && m < HM_RBM__COUNT ? mode_names[m] : "unknown";
}

const char *hm_live_step_name(hm_live_step s)
{
	return s >= 0 && s < HM_LIVE__COUNT ? live_names[s] : "unknown";
}

/* Index of name in a table, -1 if absent. */
static int lookup(const char *const *table, int n, const char *name)
{
	for (int i = 0; name && i < n; i++)
		if (!strcmp(table[i], name))
			return i;
	return -1;
}

int hm_step_from_name(const char *name)
{
	return lookup(step_names, HM_STEP__COUNT, name);
}

int hm_rb_step_from_name(const char *name)
{
	return lookup(rb_names, HM_RB__COUNT, name);
}

int hm_jstatus_from_name(const char *name)
{
	return lookup(status_names, HM_JS__COUNT, name);
}

int hm_rb_mode_from_name(const char *name)
{
	return lookup(mode_names, HM_RBM__COUNT, name);
}

int hm_live_step_from_name(const char *name)
{
	return lookup(live_names, HM_LIVE__COUNT, name);
}

int hm_journal_path(const char *state_dir, const char *profile, char *out, size_t outsz, hm_error *err)
{
	if (snprintf(out, outsz, "%s/journal-%s.json", state_dir, profile) >= (int)outsz)
		return hm_error_set(err, HM_EXIT_INPUT, "path too long: \"%s\"", state_dir);
	return 0;
}

void hm_journal_init(hm_journal *j, const char *profile, const char *stack_dir)
{
	memset(j, 0, sizeof *j);
	j->version = 1;
	snprintf(j->profile, sizeof j->profile, "%s", profile);
	snprintf(j->stack_dir, sizeof j->stack_dir, "%s", stack_dir);
	j->step = HM_STEP_START;
	j->status = HM_JS_IN_PROGRESS;
	j->rb_step = HM_RB_NONE;
	j->started_at = j->updated_at = (long long)time(NULL);
}

/* The string fields, for encode and decode alike. */
/* clang-format off */
#define STR_FIELDS(X) \
	X(profile) X(stack_dir) X(backup_id) X(archive) X(manifest_sha256) X(data_dir) X(pgdata) \
	X(fingerprint_file) X(chown_file) X(env_file) X(template_file) X(unified_project) \
	X(unified_container) X(image) X(restore_dir) X(displaced_dir) X(failure)
/* Fields a journal of an earlier version may lack: empty when absent. */
#define OPT_STR_FIELDS(X) X(project_dir) X(project_name) X(db_service) X(api_service) \
	X(safety_archive) X(unified_fingerprint_file) X(unified_stop_state) X(settings_dir) \
	X(snapshot_repo) X(snapshot_s3_endpoint) X(snapshot_s3_region) X(snapshot_s3_uri_style) \
	X(snapshot_s3_ca_file) X(precopy) X(precopy_sha256)
/* clang-format on */

int hm_journal_encode(const hm_journal *j, char **out, hm_error *err)
{
	json_object *o = json_object_new_object();
	if (!o)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	json_object_object_add(o, "version", json_object_new_int(j->version));
	json_object_object_add(o, "step", json_object_new_string(hm_step_name(j->step)));
	json_object_object_add(o, "status", json_object_new_string(hm_jstatus_name(j->status)));
	json_object_object_add(o, "rollback_step", json_object_new_string(hm_rb_step_name(j->rb_step)));
	json_object_object_add(o, "started_at", json_object_new_int64(j->started_at));
	json_object_object_add(o, "updated_at", json_object_new_int64(j->updated_at));
	json_object_object_add(o, "stopped_at", json_object_new_double(j->stopped_at));
	json_object_object_add(o, "healthy_at", json_object_new_double(j->healthy_at));
	json_object_object_add(o, "stop_started_at", json_object_new_double(j->stop_started_at));
	json_object_object_add(o, "verified_at", json_object_new_double(j->verified_at));
	json_object_object_add(o, "shut_next_xid", json_object_new_int64((int64_t)j->shut_next_xid));
	json_object_object_add(o, "fp_next_xid", json_object_new_int64((int64_t)j->fp_next_xid));
	json_object_object_add(o, "unified_fp_next_xid",
			       json_object_new_int64((int64_t)j->unified_fp_next_xid));
	json_object_object_add(o, "api_port", json_object_new_int(j->api_port));
	json_object_object_add(o, "pg_port", json_object_new_int(j->pg_port));
#define ENC(f) json_object_object_add(o, #f, json_object_new_string(j->f));
	STR_FIELDS(ENC)
	OPT_STR_FIELDS(ENC)
#undef ENC
	json_object *files = json_object_new_array();
	for (int i = 0; i < j->n_compose_files && i < HM_JOURNAL_MAX_FILES; i++)
		json_object_array_add(files, json_object_new_string(j->compose_files[i]));
	json_object_object_add(o, "compose_files", files);
	json_object_object_add(o, "rollback_mode", json_object_new_string(hm_rb_mode_name(j->rb_mode)));
	json_object_object_add(o, "live_step", json_object_new_string(hm_live_step_name(j->live_step)));
	json_object_object_add(o, "safety_done", json_object_new_int(j->safety_done));
	json_object_object_add(o, "cross_major", json_object_new_int(j->cross_major));
	json_object_object_add(o, "major_step", json_object_new_string(j->major_step));
	json_object_object_add(o, "old_major", json_object_new_int(j->old_major));
	json_object_object_add(o, "new_data_dir", json_object_new_string(j->new_data_dir));
	json_object_object_add(o, "old_data_dir", json_object_new_string(j->old_data_dir));
	json_object_object_add(o, "dump_dir", json_object_new_string(j->dump_dir));
	const char *s =
		json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	*out = s ? strdup(s) : NULL;
	json_object_put(o);
	if (!*out)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	return 0;
}

int hm_journal_decode(const char *json, const char *what, hm_journal *j, hm_error *err)
{
	json_object *o = json_tokener_parse(json), *v;
	int rc = -1, n;
	memset(j, 0, sizeof *j);
	if (!o || !json_object_is_type(o, json_type_object)) {
		hm_error_set(err, HM_EXIT_CORRUPT, "journal \"%s\" is not valid JSON", what);
		goto cleanup;
	}
	if (!json_object_object_get_ex(o, "version", &v) || json_object_get_int(v) != 1) {
		hm_error_set(err, HM_EXIT_CORRUPT, "journal \"%s\" has an unknown version", what);
		goto cleanup;
	}
	j->version = 1;
#define GETSTR(k)                                                                                            \
	(json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)                     \
		 ? json_object_get_string(v)                                                                 \
		 : NULL)
	if ((n = hm_step_from_name(GETSTR("step"))) < 0 || (j->step = (hm_step)n, 0) ||
	    (n = hm_jstatus_from_name(GETSTR("status"))) < 0 || (j->status = (hm_jstatus)n, 0) ||
	    (n = hm_rb_step_from_name(GETSTR("rollback_step"))) < 0 || (j->rb_step = (hm_rb_step)n, 0)) {
		hm_error_set(err, HM_EXIT_CORRUPT, "journal \"%s\" has an unknown step or status", what);
		goto cleanup;
	}
#define DEC(f)                                                                                               \
	{                                                                                                    \
		const char *s = GETSTR(#f);                                                                  \
		if (!s || snprintf(j->f, sizeof j->f, "%s", s) >= (int)sizeof j->f) {                        \
			hm_error_set(err, HM_EXIT_CORRUPT, "journal \"%s\": field %s missing or too long",   \
				     what, #f);                                                              \
			goto cleanup;                                                                        \
		}                                                                                            \
	}
	STR_FIELDS(DEC)
#undef DEC
#define OPT(f)                                                                                               \
	{                                                                                                    \
		const char *s = GETSTR(#f);                                                                  \
		if (s && snprintf(j->f, sizeof j->f, "%s", s) >= (int)sizeof j->f) {                         \
			hm_error_set(err, HM_EXIT_CORRUPT, "journal \"%s\": field %s too long", what, #f);   \
			goto cleanup;                                                                        \
		}                                                                                            \
	}
	OPT_STR_FIELDS(OPT)
#undef OPT
#undef GETSTR
	if (json_object_object_get_ex(o, "compose_files", &v)) {
		size_t nf = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : SIZE_MAX;
		if (nf > HM_JOURNAL_MAX_FILES) {
			hm_error_set(err, HM_EXIT_CORRUPT,
				     "journal \"%s\": compose_files is not a list of at most %d", what,
				     HM_JOURNAL_MAX_FILES);
			goto cleanup;
		}
		for (size_t i = 0; i < nf; i++) {
			json_object *f = json_object_array_get_idx(v, i);
			if (!json_object_is_type(f, json_type_string) ||
			    snprintf(j->compose_files[i], sizeof j->compose_files[i], "%s",
				     json_object_get_string(f)) >= (int)sizeof j->compose_files[i]) {
				hm_error_set(err, HM_EXIT_CORRUPT,
					     "journal \"%s\": a compose file is not a path", what);
				goto cleanup;
			}
			j->n_compose_files++;
		}
	}
	if (json_object_object_get_ex(o, "started_at", &v))
		j->started_at = json_object_get_int64(v);
	if (json_object_object_get_ex(o, "updated_at", &v))
		j->updated_at = json_object_get_int64(v);
	if (json_object_object_get_ex(o, "stopped_at", &v))
		j->stopped_at = json_object_get_double(v);
	if (json_object_object_get_ex(o, "healthy_at", &v))
		j->healthy_at = json_object_get_double(v);
	if (json_object_object_get_ex(o, "stop_started_at", &v))
		j->stop_started_at = json_object_get_double(v);
	if (json_object_object_get_ex(o, "verified_at", &v))
		j->verified_at = json_object_get_double(v);
	if (json_object_object_get_ex(o, "shut_next_xid", &v))
		j->shut_next_xid = (unsigned long long)json_object_get_int64(v);
	if (json_object_object_get_ex(o, "fp_next_xid", &v))
		j->fp_next_xid = (unsigned long long)json_object_get_int64(v);
	if (json_object_object_get_ex(o, "unified_fp_next_xid", &v))
		j->unified_fp_next_xid = (unsigned long long)json_object_get_int64(v);
	if (json_object_object_get_ex(o, "api_port", &v))
		j->api_port = json_object_get_int(v);
	if (json_object_object_get_ex(o, "pg_port", &v))
		j->pg_port = json_object_get_int(v);
	/* issue 11: optional, strict when present */
	if (json_object_object_get_ex(o, "rollback_mode", &v)) {
		if (!json_object_is_type(v, json_type_string) ||
		    (n = hm_rb_mode_from_name(json_object_get_string(v))) < 0) {
			hm_error_set(err, HM_EXIT_CORRUPT, "journal \"%s\" has an unknown rollback_mode",
				     what);
			goto cleanup;
		}
		j->rb_mode = (hm_rb_mode)n;
	}
	if (json_object_object_get_ex(o, "live_step", &v)) {
		if (!json_object_is_type(v, json_type_string) ||
		    (n = hm_live_step_from_name(json_object_get_string(v))) < 0) {
			hm_error_set(err, HM_EXIT_CORRUPT, "journal \"%s\" has an unknown live_step", what);
			goto cleanup;
		}
		j->live_step = (hm_live_step)n;
	}
	if (json_object_object_get_ex(o, "safety_done", &v))
		j->safety_done = json_object_get_int(v) ? 1 : 0;
	if (json_object_object_get_ex(o, "cross_major", &v))
		j->cross_major = json_object_get_int(v) ? 1 : 0;
	if (json_object_object_get_ex(o, "old_major", &v))
		j->old_major = json_object_get_int(v);
	{
		struct {
			const char *key;
			char *dst;
			size_t sz;
		} mf[] = {{"major_step", j->major_step, sizeof j->major_step},
			  {"new_data_dir", j->new_data_dir, sizeof j->new_data_dir},
			  {"old_data_dir", j->old_data_dir, sizeof j->old_data_dir},
			  {"dump_dir", j->dump_dir, sizeof j->dump_dir}};
		for (size_t i = 0; i < sizeof mf / sizeof mf[0]; i++) {
			if (!json_object_object_get_ex(o, mf[i].key, &v))
				continue;
			if (!json_object_is_type(v, json_type_string) ||
			    snprintf(mf[i].dst, mf[i].sz, "%s", json_object_get_string(v)) >= (int)mf[i].sz) {
				hm_error_set(err, HM_EXIT_CORRUPT, "journal \"%s\": field %s too long", what,
					     mf[i].key);
				goto cleanup;
			}
		}
	}
	rc = 0;
cleanup:
	json_object_put(o);
	return rc;
}

int hm_journal_load(const char *path, hm_journal *j, hm_error *err)
{
	char *buf = NULL;
	size_t len;
	if (access(path, F_OK) != 0) {
		if (errno == ENOENT)
			return 1;
		return hm_error_errno(err, errno, "read the journal", path);
	}
	if (hm_read_file(path, 1 << 20, &buf, &len, err) != 0)
		return -1;
	int rc = hm_journal_decode(buf, path, j, err);
	free(buf);
	return rc;
}

int hm_journal_save(const char *path, hm_journal *j, hm_error *err)
{
	char *s = NULL;
	j->updated_at = (long long)time(NULL);
	if (hm_journal_encode(j, &s, err) != 0)
		return -1;
	int rc = hm_write_file_atomic(path, s, strlen(s), 0600, err);
	free(s);
	if (rc != 0)
		hm_error_prefix(err, "cannot write the journal");
	return rc;
}

hm_resume hm_journal_resume_action(const hm_journal *j)
{
	if (!j)
		return HM_RESUME_FRESH;
	switch (j->status) {
	case HM_JS_DONE:
		return HM_RESUME_ALREADY_DONE;
	case HM_JS_ROLLED_BACK:
		return HM_RESUME_FRESH;
	case HM_JS_ROLLING_BACK:
	case HM_JS_ROLLBACK_FAILED:
		return HM_RESUME_NEED_ROLLBACK;
	case HM_JS_IN_PROGRESS:
	default:
		break;
	}
	if (j->step == HM_STEP_DONE)
		return HM_RESUME_ALREADY_DONE;
	/* Up to and including "fingerprinted" nothing was touched; "stopping" may have stopped
	 * some containers, so from there on the run goes forward from what it recorded. */
	if (j->step <= HM_STEP_FINGERPRINTED)
		return HM_RESUME_RESTART;
	return HM_RESUME_CONTINUE;
}

int hm_journal_needs_restore(const hm_journal *j)
{
	return j->step >= HM_STEP_UNIFIED_STARTING;
}

hm_rb_mode hm_journal_rollback_mode(const hm_journal *j, int to_snapshot)
{
	if (j->status == HM_JS_ROLLING_BACK || j->status == HM_JS_ROLLBACK_FAILED) {
		/* a live rollback may still turn into a snapshot one (the archive is untouched);
		 * a snapshot rollback that began swapping directories can only go on */
		if (j->rb_mode == HM_RBM_LIVE)
			return to_snapshot ? HM_RBM_SNAPSHOT : HM_RBM_LIVE;
		return j->rb_mode;
	}
	if (j->status != HM_JS_DONE)
		return HM_RBM_NONE; /* during or right after a failed up: today's rollback */
	if (to_snapshot || j->cross_major)
		return HM_RBM_SNAPSHOT;
	return HM_RBM_LIVE;
}
