/* Every hive-migrate command: int hm_cmd_NAME(int argc, char **argv), with argv[0] the
 * command name. Each returns an hm_exit code and handles its own --help. */
#ifndef HM_COMMANDS_H
#define HM_COMMANDS_H

int hm_cmd_check(int argc, char **argv);    /* migrate/check.c */
int hm_cmd_up(int argc, char **argv);	    /* migrate/up.c */
int hm_cmd_rollback(int argc, char **argv); /* migrate/rollback.c */
int hm_cmd_backup(int argc, char **argv);   /* backup/backup.c */
int hm_cmd_backups(int argc, char **argv);  /* backup/backups.c: list/show/verify/restore/prune */
int hm_cmd_status(int argc, char **argv);   /* backup/status.c */

/* Helper for commands not built yet: prints a clear line, returns HM_EXIT_NOT_IMPLEMENTED. */
int hm_cmd_not_implemented(const char *name);

#endif
