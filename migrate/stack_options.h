/* The options that name the split stack, shared by check, up and rollback:
 *   -f/--compose-file FILE (repeatable), --project-directory DIR, --project-name NAME
 *   (docker compose's -f, --project-directory and -p, with compose's meaning and defaults),
 *   --db-service NAME, --api-service NAME (override the search by role).
 * A migration under way is continued (or rolled back) with the project its journal
 * recorded: these options may then be left out, and if given they must name the same one. */
#ifndef HM_STACK_OPTIONS_H
#define HM_STACK_OPTIONS_H

#include <getopt.h>

#include "journal.h"
#include "stack.h"

typedef struct hm_stack_options {
	const char *files[HM_STACK_MAX_FILES];
	int n_files;
	const char *project_dir;
	const char *project_name;
	const char *db_service;
	const char *api_service;
} hm_stack_options;

#define HM_STACK_OPT_BASE 0x1000
/* Entries for a command's struct option table. */
#define HM_STACK_LONGOPTS                                                                                    \
	{"compose-file", required_argument, NULL, 'f'},                                                      \
		{"project-directory", required_argument, NULL, HM_STACK_OPT_BASE + 1},                       \
		{"project-name", required_argument, NULL, HM_STACK_OPT_BASE + 2},                            \
		{"db-service", required_argument, NULL, HM_STACK_OPT_BASE + 3},                              \
	{                                                                                                    \
		"api-service", required_argument, NULL, HM_STACK_OPT_BASE + 4                                \
	}

/* Their lines in a command's --help; IND is the command's description column (spaces). */
#define HM_STACK_OPTIONS_HELP(IND)                                                                           \
	"  -f, --compose-file FILE\n" IND                                                                    \
	"the split stack's compose file, repeatable, relative to the\n" IND                                  \
	"current directory (as docker compose -f), e.g.\n" IND "docker/templates/agent.yml\n"                \
	"  --project-directory DIR\n" IND "compose's project directory (default: the first file's)\n"        \
	"  --project-name NAME\n" IND "compose's project name (default: as compose decides)\n"               \
	"  --db-service NAME\n" IND "the database service (default: found by role, the service\n" IND        \
	"running PostgreSQL with its data on the host)\n"                                                    \
	"  --api-service NAME\n" IND "the API service whose port the unified API takes (default:\n" IND      \
	"the one using the database that publishes a port)\n"

/* Handle getopt's c / optarg if it is one of these options: 1 consumed, 0 not one of them,
 * -1 bad value (one error line printed for command cmd). */
int hm_stack_options_parse(hm_stack_options *o, int c, const char *optarg_, const char *cmd);

/* Was any of -f/--project-directory/--project-name given? */
int hm_stack_options_given(const hm_stack_options *o);

/* The compose project and service choices to use. recorded (a journal of a migration under
 * way, or NULL): its project, which options naming another one are refused against
 * (HM_EXIT_USAGE naming journal_path). Otherwise from the options and stack_dir. */
int hm_stack_options_project(const hm_stack_options *o, const char *stack_dir, const char *profile,
			     const hm_journal *recorded, const char *journal_path, hm_compose_project *p,
			     hm_stack_select *sel, hm_error *err);

/* --profile all on compose files that hold one profile would find the same database for
 * agent and genie: 0 when they differ (or a stack cannot be read: the caller reports that),
 * -1 with one error line on stderr when they are the same. */
int hm_stack_options_distinct(const hm_stack_options *o, const char *stack_dir,
			      const char *const profiles[2]);

#endif
