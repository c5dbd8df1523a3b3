/* Running the docker CLI and docker compose v2 (over podman here): the split stack's
 * project (stop/start) and the unified container's template project (up/down). Commands
 * are exec'd directly (no shell); secrets never go on argv: compose reads them from a
 * 0600 --env-file or from the split stack's own .env.
 *
 * The split stack's project is named the way the user names it to compose: the compose
 * files (-f, repeatable), the project directory and the project name, with compose's own
 * meaning and defaults. hm_compose_project holds them and is replayed on every call. */
#ifndef HM_COMPOSE_H
#define HM_COMPOSE_H

#include <limits.h>

#include "../common/error.h"
#include "../common/process.h"

#define HM_STACK_MAX_FILES 8

struct hm_stack;

/* How compose is told which project this is: replayed on every later compose call (stop,
 * start, rollback), and recorded in the journal so rollback and resume use the same one. */
typedef struct hm_compose_project {
	char files[HM_STACK_MAX_FILES][PATH_MAX]; /* -f, absolute; none: compose finds the file in dir */
	int n_files;
	char dir[PATH_MAX]; /* --project-directory (absolute); "" = compose's default (the first file's) */
	char name[128];	    /* -p; "" = compose's default (COMPOSE_PROJECT_NAME, name:, the directory) */
	char profile[16];   /* --profile: agent | genie */
} hm_compose_project;

/* Fill p from command-line options: files (relative to the current directory, as docker
 * compose -f) made absolute, project_dir likewise, name checked against compose's rules.
 * With neither files nor project_dir, the project is stack_dir with the compose file compose
 * finds there (compose.yaml, docker-compose.yml, ...; an error if there is none). Errors:
 * HM_EXIT_INPUT (a file or directory is missing), HM_EXIT_USAGE (bad name, too many files). */
int hm_compose_project_init(hm_compose_project *p, const char *stack_dir, const char *const files[],
			    int n_files, const char *project_dir, const char *name, const char *profile,
			    hm_error *err);

/* The same project? (files, directory, and the name when both have one). */
int hm_compose_project_same(const hm_compose_project *a, const hm_compose_project *b);

/* "-f A -f B --project-directory D -p N" for messages and hints (paths quoted when needed). */
void hm_compose_project_describe(const hm_compose_project *p, char *out, size_t outsz);

/* The project directory compose uses: p->dir, else the first file's directory. */
void hm_compose_project_workdir(const hm_compose_project *p, char *out, size_t outsz);

/* Fill argv with `docker compose [-f F]... [--project-directory D] [-p N] [--profile P]`
 * (pointers into p). Returns the number of entries, or -1 if max is too small. */
int hm_compose_argv(const hm_compose_project *p, char **argv, int max);

/* The split stack: stop its API services and its database with an explicit timeout
 * (compose-created containers otherwise get SIGKILL). */
int hm_compose_split_stop(const struct hm_stack *s, int timeout, hm_error *err);

/* Start the split stack's database and API services again (up -d, no recreate, no pull). */
int hm_compose_split_start(const struct hm_stack *s, hm_error *err);

/* Start the split stack's database service alone (its API stays stopped). */
int hm_compose_split_start_db(const struct hm_stack *s, hm_error *err);

/* The unified container: `docker compose -f TEMPLATE -p PROJECT --env-file ENV up -d`. */
int hm_compose_unified_up(const char *template_file, const char *project, const char *env_file,
			  hm_error *err);

/* Stop and remove the unified container (`down -t timeout`); data is a bind mount, kept. */
int hm_compose_unified_down(const char *template_file, const char *project, const char *env_file, int timeout,
			    hm_error *err);

/* Does the image exist locally? 1 yes, 0 no, -1 engine error. */
int hm_docker_image_exists(const char *image, hm_error *err);

/* State of a container: "running", "exited", ... into buf; "" when there is no such
 * container. 0 or -1 (engine error). */
int hm_docker_container_state(const char *name, char *buf, size_t bufsz, hm_error *err);

/* Where a named volume keeps its files on this host: its Mountpoint, or the device of a
 * local volume bound to a host directory (driver_opts type=none, o=bind). A volume of
 * another driver, or with other mount options (nfs, tmpfs, ...), is refused with
 * HM_EXIT_INPUT: its files are not a plain host directory. HM_EXIT_INPUT also when the
 * volume does not exist. */
int hm_docker_volume_path(const char *volume, char *out, size_t outsz, hm_error *err);

#endif
