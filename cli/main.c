/* hive-migrate: entry point and command dispatch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/exitcode.h"
#include "../common/version.h"
#include "commands.h"

typedef struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} command;

static const command commands[] = {
	{"check", hm_cmd_check, "preflight: can the unified container run on this data directory?"},
	{"up", hm_cmd_up, "migrate a split stack onto the unified container (one safe transaction)"},
	{"rollback", hm_cmd_rollback, "restore the snapshot and bring the split stack back"},
	{"backup", hm_cmd_backup, "take a verified backup (online, or --offline from a data directory)"},
	{"backups", hm_cmd_backups, "list, show, verify, restore and prune backups"},
	{"status", hm_cmd_status, "newest valid backup; non-zero when older than a threshold"},
	{NULL, NULL, NULL},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: hive-migrate COMMAND [OPTIONS]\n"
		   "       hive-migrate COMMAND --help\n"
		   "       hive-migrate --version\n\n"
		   "Moves a split PostgreSQL + API compose stack onto the unified container, safely,\n"
		   "and keeps it backed up.\n\ncommands:\n");
	for (const command *c = commands; c->name; c++)
		fprintf(f, "  %-10s %s\n", c->name, c->summary);
	fprintf(f, "\nexit codes: docs/exit-codes.md\n");
}

int hm_cmd_not_implemented(const char *name)
{
	fprintf(stderr, "hive-migrate: error: command \"%s\" is not implemented yet\n", name);
	return HM_EXIT_NOT_IMPLEMENTED;
}

/* The docker CLI talks to /var/run/docker.sock unless DOCKER_HOST says otherwise. Where no
 * Docker engine runs but podman serves its Docker-compatible API, point the CLI there, so
 * that a bare `hive-migrate up` works on both kinds of host. */
static void default_docker_host(void)
{
	if (getenv("DOCKER_HOST") || access("/var/run/docker.sock", F_OK) == 0)
		return;
	if (access("/run/podman/podman.sock", F_OK) == 0)
		setenv("DOCKER_HOST", "unix:///run/podman/podman.sock", 0);
}

int main(int argc, char **argv)
{
	default_docker_host();
	if (argc < 2) {
		usage(stderr);
		return HM_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return HM_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("hive-migrate %s\n", HM_VERSION);
		return HM_EXIT_OK;
	}
	for (const command *c = commands; c->name; c++)
		if (!strcmp(argv[1], c->name))
			return c->run(argc - 1, argv + 1);
	fprintf(stderr, "hive-migrate: error: unknown command \"%s\" (hint: run hive-migrate --help)\n",
		argv[1]);
	return HM_EXIT_USAGE;
}
