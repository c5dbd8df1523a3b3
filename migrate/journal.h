/* The migration journal: STACK/.hive-migrate/journal-<profile>.json, a small JSON file
 * rewritten atomically (temp + fsync + rename + dir fsync, 0600) before and after every
 * step of `up` and `rollback`, so that after kill -9 or a power loss the next run knows
 * exactly what was done: `up` resumes forward, `rollback` undoes from where it stands.
 *
 * up's steps, in order (the journal's "step" is the last one started or finished):
 *   start -> fingerprinted -> stopping -> stopped -> snapshotted -> chowning -> chowned
 *   -> unified-starting -> verified -> done
 * status: "in-progress" (up running or interrupted), "done" (migrated), "rolling-back"
 * (rollback running or interrupted), "rolled-back" (split stack back), "rollback-failed".
 * rollback's own progress is "rollback_step":
 *   none -> extracted -> unified-down -> swapped -> chown-undone -> split-started -> done
 * Since issue 11 a rollback after a completed migration has a mode ("rollback_mode"):
 * "snapshot" (restore the pre-migration archive: the steps above) or "live" (carry the
 * unified container's data directory back), whose own progress is "live_step":
 *   none -> fingerprinted -> unified-down -> safety-snapshotted -> owners-restored
 *   -> settings-restored -> split-started -> verified -> done
 * A journal without these keys (written before they existed) means mode "none" (today's
 * snapshot rollback) and live step "none". */
#ifndef HM_JOURNAL_H
#define HM_JOURNAL_H

#include <limits.h>

#include "../common/error.h"

#define HM_JOURNAL_MAX_FILES 8

typedef enum hm_step {
	HM_STEP_START = 0,
	HM_STEP_FINGERPRINTED,
	HM_STEP_STOPPING,
	HM_STEP_STOPPED,
	HM_STEP_SNAPSHOTTED,
	HM_STEP_CHOWNING,
	HM_STEP_CHOWNED,
	HM_STEP_UNIFIED_STARTING,
	HM_STEP_VERIFIED,
	HM_STEP_DONE,
	HM_STEP__COUNT
} hm_step;

typedef enum hm_rb_step {
	HM_RB_NONE = 0,
	HM_RB_EXTRACTED,
	HM_RB_UNIFIED_DOWN,
	HM_RB_SWAPPED,
	HM_RB_CHOWN_UNDONE,
	HM_RB_SPLIT_STARTED,
	HM_RB_DONE,
	HM_RB__COUNT
} hm_rb_step;

/* Which rollback is (or was) under way; "none": none chosen yet, or a journal from before. */
typedef enum hm_rb_mode { HM_RBM_NONE = 0, HM_RBM_SNAPSHOT, HM_RBM_LIVE, HM_RBM__COUNT } hm_rb_mode;

/* Progress of a live rollback (see above). */
typedef enum hm_live_step {
	HM_LIVE_NONE = 0,
	HM_LIVE_FINGERPRINTED,
	HM_LIVE_UNIFIED_DOWN,
	HM_LIVE_SAFETY_SNAPSHOTTED,
	HM_LIVE_OWNERS_RESTORED,
	HM_LIVE_SETTINGS_RESTORED,
	HM_LIVE_SPLIT_STARTED,
	HM_LIVE_VERIFIED,
	HM_LIVE_DONE,
	HM_LIVE__COUNT
} hm_live_step;

typedef enum hm_jstatus {
	HM_JS_IN_PROGRESS = 0,
	HM_JS_DONE,
	HM_JS_ROLLING_BACK,
	HM_JS_ROLLED_BACK,
	HM_JS_ROLLBACK_FAILED,
	HM_JS__COUNT
} hm_jstatus;

typedef struct hm_journal {
	int version; /* 1 */
	char profile[16];
	char stack_dir[PATH_MAX];
	hm_step step;
	hm_jstatus status;
	hm_rb_step rb_step;
	long long started_at; /* unix seconds */
	long long updated_at;
	double stopped_at; /* unix time (s, fractional) the split stack was stopped; 0 if not */
	double healthy_at; /* unix time the unified container was confirmed healthy */
	/* Optional in the file (0 when absent): when the stop of the split stack began (the app
	 * is down from then on: the start of up's downtime), when the data was verified equal
	 * (the fingerprint may end after the API is healthy), and the next XID (with epoch) of
	 * the split cluster's shutdown checkpoint, read before the unified start: a directory
	 * whose shutdown checkpoint still has it holds no transaction of the unified server. */
	double stop_started_at;
	double verified_at;
	unsigned long long shut_next_xid;
	/* The guards (fingerprint.h hm_fingerprint_guard) of the split stack's fingerprint and of
	 * the unified server's fingerprint before a live rollback; 0: none. */
	unsigned long long fp_next_xid;
	unsigned long long unified_fp_next_xid;
	char backup_id[40];	/* UUID of the snapshot */
	char archive[PATH_MAX]; /* snapshot archive */
	char manifest_sha256[65];
	char data_dir[PATH_MAX]; /* host dir holding pgdata (the bind mount source) */
	char pgdata[PATH_MAX];
	char fingerprint_file[PATH_MAX];
	char chown_file[PATH_MAX]; /* list of original owners (undo record), "" if none */
	char env_file[PATH_MAX];
	char template_file[PATH_MAX];
	char unified_project[128];
	char unified_container[128];
	char image[256];
	int api_port, pg_port;	      /* unified's published ports */
	char restore_dir[PATH_MAX];   /* rollback: the archive is extracted here */
	char displaced_dir[PATH_MAX]; /* rollback: where the replaced data dir was moved */
	char failure[1024];	      /* why up failed ("" if it did not) */
	/* The split stack's compose project as up found it, so that resume and rollback reach
	 * the same project and services. Optional in the file: a journal without them (written
	 * before they existed) means the compose file in stack_dir and services found by role. */
	char compose_files[HM_JOURNAL_MAX_FILES][PATH_MAX]; /* -f, absolute */
	int n_compose_files;
	char project_dir[PATH_MAX]; /* --project-directory ("" = compose's default) */
	char project_name[128];	    /* -p, as compose resolved it */
	char db_service[64];
	char api_service[64];
	/* Rollback that keeps what was written (issue 11). All optional in the file. */
	hm_rb_mode rb_mode;			 /* "rollback_mode" */
	hm_live_step live_step;			 /* "live_step" */
	char safety_archive[PATH_MAX];		 /* archive of the live directory taken before a rollback */
	int safety_done;			 /* 1 once safety_archive is written and verified */
	char unified_fingerprint_file[PATH_MAX]; /* the unified server's fingerprint before its stop */
	char unified_stop_state[32];		 /* pg_control state after the unified stop ("" = not yet) */
	char settings_dir[PATH_MAX];		 /* up's copies of the settings files (before/, after/) */
	int cross_major; /* 1 when up went across PostgreSQL majors (old dir kept beside) */
	/* The cross-major path (migrate/major.h), optional in the file ("" / 0 when absent). */
	char major_step[32];	     /* its own progress: see hm_major_step in migrate/major.h */
	int old_major;		     /* PostgreSQL major of the old data directory */
	char new_data_dir[PATH_MAX]; /* the new cluster while it is built (beside data_dir) */
	char old_data_dir[PATH_MAX]; /* where the old directory is kept after the cut-over */
	char dump_dir[PATH_MAX];     /* the logical copy (STACK/.hive-migrate/dump-PROFILE) */
	/* up --archive-dir s3://... (migrate/up_snapshot_repo.h), optional ("" when absent: the
	 * snapshot is the local file in archive). Never credentials. */
	char snapshot_repo[PATH_MAX];	    /* s3://BUCKET/PREFIX holding backup backup_id */
	char snapshot_s3_endpoint[512];	    /* --s3-endpoint as given ("" = default) */
	char snapshot_s3_region[64];	    /* --s3-region ("" = environment, then us-east-1) */
	char snapshot_s3_uri_style[8];	    /* "path", "host" or "" (auto) */
	char snapshot_s3_ca_file[PATH_MAX]; /* --s3-ca-file ("" = the system's) */
	/* The pre-copy of the snapshot (migrate/up_precopy.h, issue 13), optional in the file:
	 * "precopy" is "" (none: the whole snapshot after the stop), "base" (base archive and
	 * its record verified before the stop), "delta" (delta verified after it: the snapshot
	 * is base + delta until merged), "merged" (archive is the one snapshot) or "off" (given
	 * up: the whole snapshot is taken after the stop). */
	char precopy[16];
	char precopy_sha256[65]; /* digest of the base's record file (ID.base.stat) */
} hm_journal;

const char *hm_step_name(hm_step s);
const char *hm_rb_step_name(hm_rb_step s);
const char *hm_jstatus_name(hm_jstatus s);
const char *hm_rb_mode_name(hm_rb_mode m);
const char *hm_live_step_name(hm_live_step s);
/* Inverse lookups: -1 when unknown. */
int hm_step_from_name(const char *name);
int hm_rb_step_from_name(const char *name);
int hm_jstatus_from_name(const char *name);
int hm_rb_mode_from_name(const char *name);
int hm_live_step_from_name(const char *name);

/* STACK/.hive-migrate/journal-PROFILE.json into out. */
int hm_journal_path(const char *state_dir, const char *profile, char *out, size_t outsz, hm_error *err);

/* A fresh journal (step start, status in-progress, times now). */
void hm_journal_init(hm_journal *j, const char *profile, const char *stack_dir);

/* Encode / decode (pure; decode is strict: unknown step or status is HM_EXIT_CORRUPT).
 * encode: *out malloc'd. */
int hm_journal_encode(const hm_journal *j, char **out, hm_error *err);
int hm_journal_decode(const char *json, const char *what, hm_journal *j, hm_error *err);

/* Load from path: 0 loaded, 1 no journal there, -1 error. */
int hm_journal_load(const char *path, hm_journal *j, hm_error *err);

/* Save atomically (0600), updating updated_at. */
int hm_journal_save(const char *path, hm_journal *j, hm_error *err);

/* What a new `up` must do given an existing journal (the resume state machine). */
typedef enum hm_resume {
	HM_RESUME_FRESH = 0,	/* no journal, or the last run was rolled back: start from scratch */
	HM_RESUME_RESTART,	/* interrupted before anything changed: start over (split may need a start) */
	HM_RESUME_CONTINUE,	/* interrupted after changes: continue forward from j->step */
	HM_RESUME_ALREADY_DONE, /* migrated already: nothing to do */
	HM_RESUME_NEED_ROLLBACK, /* a rollback was started or failed: finish it with `rollback` first */
} hm_resume;

hm_resume hm_journal_resume_action(const hm_journal *j);

/* What `rollback` must undo: 1 if the data directory may have been written by the unified
 * container (restore the archive), 0 if not (undo ownership only, if any). */
int hm_journal_needs_restore(const hm_journal *j);

/* Which rollback `rollback` runs for this journal (issue 11), given --to-snapshot (1/0):
 * HM_RBM_LIVE after a completed same-major migration (or to resume a live rollback),
 * HM_RBM_SNAPSHOT with --to-snapshot, after a cross-major one, or to resume a snapshot
 * rollback, HM_RBM_NONE for a failed or interrupted `up` (today's rollback). Pure. */
hm_rb_mode hm_journal_rollback_mode(const hm_journal *j, int to_snapshot);

#endif
