/* Running the docker CLI and docker compose v2 (over podman here): the split stack's
 * project (stop/start) and the unified container's template project (up/down). Commands
 * are exec'd directly (no shell); secrets never go on argv: compose reads them from a
 * 0600 --env-file or from the split stack's own .env. */
#ifndef HM_COMPOSE_H
#define HM_COMPOSE_H

#include "../common/error.h"
#include "../common/process.h"

/* The split stack (compose project in dir, profile services):
 * stop with an explicit timeout (compose-created containers otherwise get SIGKILL). */
int hm_compose_split_stop(const char *dir, const char *profile, const char *const services[], int timeout,
			  hm_error *err);

/* Start the split stack's profile again (up -d, no recreate, no pull). */
int hm_compose_split_start(const char *dir, const char *profile, hm_error *err);

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

#endif
