/* The exit-code catalogue: the table the docs and the tests read. */
#include "exitcode.h"

#include <stddef.h>

const hm_exit_info hm_exit_catalogue[] = {
	{HM_EXIT_OK, "ok", "success; for check: compatible"},
	{HM_EXIT_INTERNAL, "internal", "unexpected internal error (please report it)"},
	{HM_EXIT_USAGE, "usage", "bad command line: unknown option, missing or invalid argument"},
	{HM_EXIT_NOT_IMPLEMENTED, "not-implemented", "the command is not built yet"},
	{HM_EXIT_CHECK_WARNINGS, "check-warnings", "check: the target can run on the data, with warnings"},
	{HM_EXIT_CHECK_INCOMPATIBLE, "check-incompatible",
	 "check: the target cannot run on the data as it is"},
	{HM_EXIT_CHECK_ERROR, "check-error", "check: the inputs could not be read or are damaged"},
	{HM_EXIT_INPUT, "input", "a named file or directory is missing or is not what it must be"},
	{HM_EXIT_CORRUPT, "corrupt", "a file failed an integrity check (CRC, digest, format)"},
	{HM_EXIT_PERMISSION, "permission", "permission denied on a file or directory"},
	{HM_EXIT_NO_SPACE, "no-space", "not enough free disk space"},
	{HM_EXIT_IO, "io", "a read or write failed"},
	{HM_EXIT_STORAGE, "storage",
	 "the object store did not answer or failed (after retries), or the clock is skewed"},
	{HM_EXIT_ENGINE, "engine", "the container engine or compose failed"},
	{HM_EXIT_HEALTH_TIMEOUT, "health-timeout", "a stack did not become healthy within its deadline"},
	{HM_EXIT_DATABASE, "database", "cannot connect to or query PostgreSQL"},
	{HM_EXIT_LOCKED, "locked", "another run holds the lock; nothing was done"},
	{HM_EXIT_INTERRUPTED, "interrupted", "an interrupted run exists: resume it or roll it back"},
	{HM_EXIT_ROLLED_BACK, "rolled-back",
	 "the migration failed and was rolled back; the split stack is healthy"},
	{HM_EXIT_ROLLBACK_FAILED, "rollback-failed",
	 "rollback failed: manual action needed (docs/migration.md)"},
	{HM_EXIT_PREFLIGHT, "preflight", "refused by the preflight; nothing was changed"},
	{HM_EXIT_NEEDS_CONFIRMATION, "needs-confirmation",
	 "the rollback would discard writes and was not confirmed (no terminal, no --yes); nothing was "
	 "changed"},
	{HM_EXIT_WRITES_WOULD_BE_LOST, "writes-would-be-lost",
	 "a live rollback is impossible (cross-major migration) and --discard-new-writes was not given; "
	 "nothing was changed"},
	{HM_EXIT_VERIFY_FAILED, "verify-failed", "a backup or archive failed verification"},
	{HM_EXIT_NOT_FOUND, "not-found", "no such backup, archive or journal"},
	{HM_EXIT_STALE, "stale", "status: the newest valid backup is older than the threshold"},
	{HM_EXIT_BACKUP_FAILED, "backup-failed",
	 "a backup could not be completed; nothing partial is listed"},
	{0, NULL, NULL},
};

const char *hm_exit_name(int code)
{
	for (const hm_exit_info *i = hm_exit_catalogue; i->name; i++)
		if ((int)i->code == code)
			return i->name;
	return "unknown";
}
