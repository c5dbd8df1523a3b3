/* The docker CLI and compose v2 calls of a migration, built on common/process. */
#include "compose.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/process.h"

int hm_compose_split_stop(const char *dir, const char *profile, const char *const services[], int timeout,
			  hm_error *err)
{
	char t[16];
	char *argv[32];
	int n = 0;
	snprintf(t, sizeof t, "%d", timeout);
	argv[n++] = "docker";
	argv[n++] = "compose";
	argv[n++] = "--project-directory";
	argv[n++] = (char *)dir;
	argv[n++] = "--profile";
	argv[n++] = (char *)profile;
	argv[n++] = "stop";
	argv[n++] = "-t";
	argv[n++] = t;
	for (int i = 0; services && services[i] && n < 30; i++)
		argv[n++] = (char *)services[i];
	argv[n] = NULL;
	if (hm_proc_check(argv, "stopping the split stack (docker compose stop)", NULL, err) != 0)
		return hm_error_hint(err,
				     "check the engine (docker ps) and stop it by hand: docker compose "
				     "--project-directory %s stop -t %d",
				     dir, timeout);
	return 0;
}

int hm_compose_split_start(const char *dir, const char *profile, hm_error *err)
{
	char *argv[] = {"docker", "compose", "--project-directory", (char *)dir, "--profile", (char *)profile,
			"up",	  "-d",	     "--no-recreate",	    "--pull",	 "never",     NULL};
	if (hm_proc_check(argv, "starting the split stack (docker compose up -d)", NULL, err) != 0)
		return hm_error_hint(err, "start it by hand: docker compose --project-directory %s up -d",
				     dir);
	return 0;
}

int hm_compose_unified_up(const char *template_file, const char *project, const char *env_file, hm_error *err)
{
	char *argv[] = {"docker",     "compose",
			"-f",	      (char *)template_file,
			"-p",	      (char *)project,
			"--env-file", (char *)env_file,
			"up",	      "-d",
			"--pull",     "never",
			NULL};
	return hm_proc_check(argv, "starting the unified container (docker compose up -d)", NULL, err);
}

int hm_compose_unified_down(const char *template_file, const char *project, const char *env_file, int timeout,
			    hm_error *err)
{
	char t[16];
	snprintf(t, sizeof t, "%d", timeout);
	char *argv[] = {"docker",
			"compose",
			"-f",
			(char *)template_file,
			"-p",
			(char *)project,
			"--env-file",
			(char *)env_file,
			"down",
			"-t",
			t,
			NULL};
	return hm_proc_check(argv, "removing the unified container (docker compose down)", NULL, err);
}

int hm_docker_image_exists(const char *image, hm_error *err)
{
	char *argv[] = {"docker", "image", "inspect", "--format", "{{.Id}}", (char *)image, NULL};
	hm_proc_result r;
	if (hm_proc_run(argv, &r, err) != 0)
		return -1;
	int st = r.status;
	int missing = r.errout && (strstr(r.errout, "No such image") || strstr(r.errout, "no such image") ||
				   strstr(r.errout, "not known") || strstr(r.errout, "not found"));
	hm_proc_result_free(&r);
	if (st == 0)
		return 1;
	if (missing || st == 1)
		return 0;
	return hm_error_set(err, HM_EXIT_ENGINE, "cannot inspect image \"%s\" (docker exit %d)", image, st);
}

int hm_docker_container_state(const char *name, char *buf, size_t bufsz, hm_error *err)
{
	char *argv[] = {"docker",   "inspect",		 "--type",     "container",
			"--format", "{{.State.Status}}", (char *)name, NULL};
	hm_proc_result r;
	buf[0] = '\0';
	if (hm_proc_run(argv, &r, err) != 0)
		return -1;
	if (r.status == 0 && r.out) {
		snprintf(buf, bufsz, "%s", r.out);
		buf[strcspn(buf, "\r\n")] = '\0';
	}
	hm_proc_result_free(&r);
	return 0;
}
