/* What `up` and `rollback` share: the state directory of a stack (STACK/.hive-migrate:
 * journal, lock, fingerprint, ownership record, unified env file, archives), logging of
 * steps, the fault-injection points used by the end-to-end tests, and the rollback itself
 * (run by `rollback` and automatically by a failed `up`). */
#ifndef HM_MIGRATION_H
#define HM_MIGRATION_H

#include <limits.h>
#include <stdio.h>

#include "../common/error.h"
#include "../common/lock.h"
#include "health.h"
#include "journal.h"
#include "stack.h"

typedef struct hm_mig {
	char stack_dir[PATH_MAX]; /* absolute */
	char profile[16];
	char state_dir[PATH_MAX]; /* STACK/.hive-migrate */
	char journal_path[PATH_MAX];
	hm_stack stack; /* the split stack (compose config) */
	hm_journal j;
	int stop_timeout;   /* seconds for docker compose stop/down -t */
	int health_timeout; /* seconds to wait for health */
	int quiet;	    /* no progress lines */
	hm_lock lock;
} hm_mig;

/* Fill paths for stack_dir (made absolute) and profile; creates nothing. */
int hm_mig_init(hm_mig *m, const char *stack_dir, const char *profile, hm_error *err);

/* Record the split stack's compose project and services (m->stack) in the journal. */
void hm_mig_record_stack(hm_mig *m);

/* Create the state directory (0700) and take the stack's lock (HM_EXIT_LOCKED if held). */
int hm_mig_lock(hm_mig *m, hm_error *err);
void hm_mig_unlock(hm_mig *m);

/* Save the journal (atomic). */
int hm_mig_save(hm_mig *m, hm_error *err);

/* One progress line on stderr: "hive-migrate: [profile] message". */
/* Connection parameters of the split stack's database (its published port, its credentials). */
hm_pg_params hm_mig_split_params(const hm_mig *m);

void hm_mig_log(const hm_mig *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Fault injection for tests: when HIVE_MIGRATE_FAULT equals `point` (e.g. "after:snapshot"),
 * the process SIGKILLs itself right here, exactly like a kill -9 from outside. */
void hm_fault_point(const char *point);

/* Roll back the migration recorded in m->j (m->stack must be loaded). archive_override
 * (optional) is the archive to restore instead of the journal's. Order: extract the archive
 * into a new directory next to the data directory (verifying it; a bad archive is refused
 * before anything changes), stop and remove the unified container, swap the directories by
 * rename (the displaced one is kept until the split stack is healthy), undo ownership
 * changes, start the split stack, confirm its health and that its data matches the
 * fingerprint taken before the migration. Every step is journaled; a killed rollback is
 * completed by running it again. 0 or -1 (HM_EXIT_ROLLBACK_FAILED unless the archive was
 * refused: HM_EXIT_VERIFY_FAILED with nothing changed). */
int hm_mig_rollback(hm_mig *m, const char *archive_override, hm_error *err);

/* Stop and remove the unified container: through its compose project when the env file is
 * there, else by name (docker stop -t / rm), with m->stop_timeout. Absent containers are fine. */
int hm_mig_unified_down(hm_mig *m, hm_error *err);

/* The unified container's env file: 0600, holding the password (never on argv) and, when
 * backup_password is not NULL, HIVE_BACKUP_PASSWORD (the container then creates the
 * hive_backup replication role used by `hive-migrate backup`). */
int hm_mig_write_env(const hm_mig *m, const char *path, const char *backup_password, hm_error *err);

#endif
