/* The one exit-code catalogue of hive-migrate. Every command returns one of these;
 * docs/exit-codes.md documents them and a unit test keeps the two in step. */
#ifndef HM_EXITCODE_H
#define HM_EXITCODE_H

typedef enum hm_exit {
	HM_EXIT_OK = 0,		     /* success; check: compatible */
	HM_EXIT_INTERNAL = 1,	     /* unexpected internal error (a bug) */
	HM_EXIT_USAGE = 2,	     /* bad command line */
	HM_EXIT_NOT_IMPLEMENTED = 3, /* command not built yet */

	HM_EXIT_CHECK_WARNINGS = 10,	 /* check: can run, with warnings */
	HM_EXIT_CHECK_INCOMPATIBLE = 11, /* check: the target cannot run on it */
	HM_EXIT_CHECK_ERROR = 12,	 /* check: the inputs could not be read */

	HM_EXIT_INPUT = 20,	 /* a named file or directory is missing or not what it must be */
	HM_EXIT_CORRUPT = 21,	 /* a file failed an integrity check (CRC, digest, format) */
	HM_EXIT_PERMISSION = 22, /* permission denied */
	HM_EXIT_NO_SPACE = 23,	 /* not enough free disk */
	HM_EXIT_IO = 24,	 /* any other read/write failure */
	HM_EXIT_STORAGE = 25,	 /* the object store or the network to it failed (after retries) */

	HM_EXIT_ENGINE = 30,		 /* container engine or compose failed */
	HM_EXIT_HEALTH_TIMEOUT = 31,	 /* a stack did not become healthy in time */
	HM_EXIT_DATABASE = 32,		 /* cannot connect to or query PostgreSQL */
	HM_EXIT_LOCKED = 33,		 /* another run holds the lock */
	HM_EXIT_INTERRUPTED = 34,	 /* an interrupted run exists: resume or roll back */
	HM_EXIT_ROLLED_BACK = 35,	 /* migration failed and was rolled back: split stack healthy */
	HM_EXIT_ROLLBACK_FAILED = 36,	 /* rollback failed: manual action needed (docs/migration.md) */
	HM_EXIT_PREFLIGHT = 37,		 /* refused by preflight: incompatible, nothing changed */
	HM_EXIT_NEEDS_CONFIRMATION = 38, /* rollback would discard writes: no terminal and no --yes */
	HM_EXIT_WRITES_WOULD_BE_LOST =
		39, /* cross-major: live rollback impossible, no --discard-new-writes */

	HM_EXIT_VERIFY_FAILED = 40, /* a backup or archive failed verification */
	HM_EXIT_NOT_FOUND = 41,	    /* no such backup or journal */
	HM_EXIT_STALE = 42,	    /* status: newest valid backup older than the threshold */
	HM_EXIT_BACKUP_FAILED = 43, /* a backup could not be completed; nothing partial is listed */
} hm_exit;

typedef struct hm_exit_info {
	hm_exit code;
	const char *name;    /* stable name, e.g. "check-incompatible" */
	const char *meaning; /* one line, as in docs/exit-codes.md */
} hm_exit_info;

/* The catalogue, terminated by an entry with name == NULL. */
extern const hm_exit_info hm_exit_catalogue[];

/* Name of an exit code ("unknown" if not in the catalogue). */
const char *hm_exit_name(int code);

#endif
