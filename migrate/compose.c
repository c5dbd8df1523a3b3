/* The docker CLI and compose v2 calls of a migration, built on common/process. */
#include "compose.h"

#include <errno.h>
#include <json-c/json.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/process.h"
#include "stack.h"

/* An absolute path for a command-line path: relative ones are taken from the current
 * directory (as docker compose does). The directory part is resolved (realpath), the last
 * component kept as named, so a compose file that is a symlink keeps its own directory. */
static int absolute_path(const char *in, int want_dir, char *out, size_t outsz, hm_error *err)
{
	char copy1[PATH_MAX], copy2[PATH_MAX], real[PATH_MAX];
	struct stat st;
	if (snprintf(copy1, sizeof copy1, "%s", in) >= (int)sizeof copy1)
		return hm_error_set(err, HM_EXIT_INPUT, "path too long: \"%s\"", in);
	snprintf(copy2, sizeof copy2, "%s", in);
	if (stat(in, &st) != 0)
		return hm_error_errno(err, errno,
				      want_dir ? "find the project directory" : "find the compose file", in);
	if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
		return hm_error_set(err, HM_EXIT_INPUT, "\"%s\" is not a %s", in,
				    want_dir ? "directory" : "regular file");
	if (want_dir) {
		if (!realpath(in, real))
			return hm_error_errno(err, errno, "resolve", in);
		snprintf(out, outsz, "%s", real);
		return 0;
	}
	const char *base = basename(copy1);
	if (!realpath(dirname(copy2), real))
		return hm_error_errno(err, errno, "resolve the directory of", in);
	if (snprintf(out, outsz, "%s%s%s", real, strcmp(real, "/") ? "/" : "", base) >= (int)outsz)
		return hm_error_set(err, HM_EXIT_INPUT, "path too long: \"%s\"", in);
	return 0;
}

/* Compose's rule for project names: lower-case letters, digits, '-' and '_', starting
 * with a letter or a digit. */
static int valid_project_name(const char *n)
{
	if (!n[0] || !((n[0] >= 'a' && n[0] <= 'z') || (n[0] >= '0' && n[0] <= '9')))
		return 0;
	return strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789-_") == strlen(n);
}

int hm_compose_project_init(hm_compose_project *p, const char *stack_dir, const char *const files[],
			    int n_files, const char *project_dir, const char *name, const char *profile,
			    hm_error *err)
{
	memset(p, 0, sizeof *p);
	if (n_files > HM_STACK_MAX_FILES)
		return hm_error_set(err, HM_EXIT_USAGE, "at most %d --compose-file options, not %d",
				    HM_STACK_MAX_FILES, n_files);
	if (name && name[0]) {
		if (!valid_project_name(name) || strlen(name) >= sizeof p->name) {
			hm_error_set(err, HM_EXIT_USAGE, "\"%s\" is not a compose project name", name);
			return hm_error_hint(err,
					     "lower-case letters, digits, \"-\" and \"_\", starting with "
					     "a letter or a digit (as docker compose -p)");
		}
		snprintf(p->name, sizeof p->name, "%s", name);
	}
	snprintf(p->profile, sizeof p->profile, "%s", profile ? profile : "");
	for (int i = 0; i < n_files; i++) {
		if (absolute_path(files[i], 0, p->files[i], sizeof p->files[i], err) != 0)
			return hm_error_hint(err, "--compose-file takes the path of a compose file, relative "
						  "to the current directory as with docker compose -f");
		p->n_files++;
	}
	if (project_dir && project_dir[0]) {
		if (absolute_path(project_dir, 1, p->dir, sizeof p->dir, err) != 0)
			return -1;
	}
	if (n_files == 0 && !p->dir[0]) {
		if (absolute_path(stack_dir, 1, p->dir, sizeof p->dir, err) != 0)
			return hm_error_hint(err, "--stack DIR takes the directory of the split stack");
	}
	if (n_files == 0) {
		/* compose's own search, minus its walk up the parent directories */
		static const char *const names[] = {"compose.yaml", "compose.yml", "docker-compose.yml",
						    "docker-compose.yaml"};
		for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
			char f[PATH_MAX + 32];
			struct stat st;
			snprintf(f, sizeof f, "%s/%s", p->dir, names[i]);
			if (stat(f, &st) == 0 && S_ISREG(st.st_mode))
				return 0;
		}
		hm_error_set(err, HM_EXIT_INPUT,
			     "no compose file in \"%s\" (looked for compose.yaml, compose.yml, "
			     "docker-compose.yml, docker-compose.yaml)",
			     p->dir);
		return hm_error_hint(err, "name the split stack's compose file with --compose-file FILE "
					  "(e.g. docker/templates/agent.yml), or pass --stack DIR");
	}
	return 0;
}

int hm_compose_project_same(const hm_compose_project *a, const hm_compose_project *b)
{
	if (a->n_files != b->n_files || strcmp(a->dir, b->dir) != 0)
		return 0;
	for (int i = 0; i < a->n_files; i++)
		if (strcmp(a->files[i], b->files[i]) != 0)
			return 0;
	return !a->name[0] || !b->name[0] || !strcmp(a->name, b->name);
}

/* Append s to out, in single quotes when it holds anything a shell would split on. */
static void append_word(char *out, size_t outsz, const char *s)
{
	size_t len = strlen(out);
	int plain = s[0] && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
				      "_-./:@+,=") == strlen(s);
	if (len >= outsz - 1)
		return;
	if (plain) {
		snprintf(out + len, outsz - len, "%s%s", len ? " " : "", s);
		return;
	}
	snprintf(out + len, outsz - len, "%s'", len ? " " : "");
	for (const char *c = s; *c; c++) {
		len = strlen(out);
		if (*c == '\'')
			snprintf(out + len, outsz - len, "'\\''");
		else
			snprintf(out + len, outsz - len, "%c", *c);
	}
	len = strlen(out);
	snprintf(out + len, outsz - len, "'");
}

void hm_compose_project_describe(const hm_compose_project *p, char *out, size_t outsz)
{
	out[0] = '\0';
	for (int i = 0; i < p->n_files; i++) {
		append_word(out, outsz, "-f");
		append_word(out, outsz, p->files[i]);
	}
	if (p->dir[0]) {
		append_word(out, outsz, "--project-directory");
		append_word(out, outsz, p->dir);
	}
	if (p->name[0]) {
		append_word(out, outsz, "-p");
		append_word(out, outsz, p->name);
	}
}

void hm_compose_project_workdir(const hm_compose_project *p, char *out, size_t outsz)
{
	if (p->dir[0] || !p->n_files) {
		snprintf(out, outsz, "%s", p->dir);
		return;
	}
	char copy[PATH_MAX];
	snprintf(copy, sizeof copy, "%s", p->files[0]);
	snprintf(out, outsz, "%s", dirname(copy));
}

int hm_compose_argv(const hm_compose_project *p, char **argv, int max)
{
	int n = 0;
	if (max < 2 + 2 * p->n_files + 6)
		return -1;
	argv[n++] = "docker";
	argv[n++] = "compose";
	for (int i = 0; i < p->n_files; i++) {
		argv[n++] = "-f";
		argv[n++] = (char *)p->files[i];
	}
	if (p->dir[0]) {
		argv[n++] = "--project-directory";
		argv[n++] = (char *)p->dir;
	}
	if (p->name[0]) {
		argv[n++] = "-p";
		argv[n++] = (char *)p->name;
	}
	if (p->profile[0]) {
		argv[n++] = "--profile";
		argv[n++] = (char *)p->profile;
	}
	return n;
}

#define MAX_ARGV (2 + 2 * HM_STACK_MAX_FILES + 6 + 8 + HM_STACK_MAX_APIS + 2)

int hm_compose_split_stop(const hm_stack *s, int timeout, hm_error *err)
{
	char t[16], desc[2048];
	char *argv[MAX_ARGV];
	int n = hm_compose_argv(&s->compose, argv, MAX_ARGV);
	snprintf(t, sizeof t, "%d", timeout);
	argv[n++] = "stop";
	argv[n++] = "-t";
	argv[n++] = t;
	for (int i = 0; i < s->n_api_services; i++)
		argv[n++] = (char *)s->api_services[i];
	argv[n++] = (char *)s->pg_service;
	argv[n] = NULL;
	if (hm_proc_check(argv, "stopping the split stack (docker compose stop)", NULL, err) != 0) {
		hm_compose_project_describe(&s->compose, desc, sizeof desc);
		return hm_error_hint(
			err, "check the engine (docker ps) and stop it by hand: docker compose %s stop -t %d",
			desc, timeout);
	}
	return 0;
}

int hm_compose_split_start(const hm_stack *s, hm_error *err)
{
	char desc[2048];
	char *argv[MAX_ARGV];
	int n = hm_compose_argv(&s->compose, argv, MAX_ARGV);
	argv[n++] = "up";
	argv[n++] = "-d";
	argv[n++] = "--no-recreate";
	argv[n++] = "--pull";
	argv[n++] = "never";
	argv[n++] = (char *)s->pg_service;
	for (int i = 0; i < s->n_api_services; i++)
		argv[n++] = (char *)s->api_services[i];
	argv[n] = NULL;
	if (hm_proc_check(argv, "starting the split stack (docker compose up -d)", NULL, err) != 0) {
		hm_compose_project_describe(&s->compose, desc, sizeof desc);
		return hm_error_hint(err, "start it by hand: docker compose %s up -d", desc);
	}
	return 0;
}

int hm_compose_split_start_db(const hm_stack *s, hm_error *err)
{
	char desc[2048];
	char *argv[MAX_ARGV];
	int n = hm_compose_argv(&s->compose, argv, MAX_ARGV);
	argv[n++] = "up";
	argv[n++] = "-d";
	argv[n++] = "--no-recreate";
	argv[n++] = "--pull";
	argv[n++] = "never";
	argv[n++] = (char *)s->pg_service;
	argv[n] = NULL;
	if (hm_proc_check(argv, "starting the split stack's database (docker compose up -d)", NULL, err) !=
	    0) {
		hm_compose_project_describe(&s->compose, desc, sizeof desc);
		return hm_error_hint(err, "start it by hand: docker compose %s up -d %s", desc,
				     s->pg_service);
	}
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

/* String member of a JSON object, or NULL. */
static const char *jstr(json_object *o, const char *k)
{
	json_object *v;
	if (!o || !json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int hm_docker_volume_path(const char *volume, char *out, size_t outsz, hm_error *err)
{
	char *argv[] = {"docker", "volume", "inspect", "--format", "{{json .}}", (char *)volume, NULL};
	hm_proc_result r;
	int rc = -1;
	if (hm_proc_run(argv, &r, err) != 0)
		return -1;
	if (r.status != 0) {
		hm_error_set(err, HM_EXIT_INPUT, "the volume \"%s\" of the split database does not exist",
			     volume);
		hm_error_hint(err,
			      "start the split stack once (docker compose up -d) so that its volume exists, "
			      "then run hive-migrate again");
		hm_proc_result_free(&r);
		return -1;
	}
	json_object *root = json_tokener_parse(r.out ? r.out : ""), *o = root;
	if (root && json_object_is_type(root, json_type_array)) /* podman without --format */
		o = json_object_array_get_idx(root, 0);
	const char *driver = jstr(o, "Driver"), *mp = jstr(o, "Mountpoint");
	json_object *opts = NULL;
	if (o)
		json_object_object_get_ex(o, "Options", &opts);
	const char *type = jstr(opts, "type"), *oo = jstr(opts, "o"), *device = jstr(opts, "device");
	int n_opts =
		opts && json_object_is_type(opts, json_type_object) ? json_object_object_length(opts) : 0;
	if (!o || !mp || !mp[0]) {
		hm_error_set(err, HM_EXIT_ENGINE,
			     "cannot read where the volume \"%s\" lives (docker volume inspect)", volume);
	} else if (driver && strcmp(driver, "local") != 0) {
		hm_error_set(err, HM_EXIT_INPUT,
			     "the volume \"%s\" uses the driver \"%s\": its files are not a host "
			     "directory hive-migrate can snapshot",
			     volume, driver);
		hm_error_hint(err,
			      "copy the data into a host directory and bind-mount it (see docs/migration.md, "
			      "named volumes), then run hive-migrate again");
	} else if (n_opts == 0) {
		rc = snprintf(out, outsz, "%s", mp) >= (int)outsz
			     ? hm_error_set(err, HM_EXIT_INPUT, "path too long")
			     : 0;
	} else if (type && !strcmp(type, "none") && oo && strstr(oo, "bind") && device && device[0] == '/') {
		rc = snprintf(out, outsz, "%s", device) >= (int)outsz
			     ? hm_error_set(err, HM_EXIT_INPUT, "path too long")
			     : 0;
	} else {
		hm_error_set(
			err, HM_EXIT_INPUT,
			"the volume \"%s\" is mounted with options (type=%s): its files are not a plain host "
			"directory hive-migrate can snapshot",
			volume, type ? type : "?");
		hm_error_hint(err,
			      "copy the data into a host directory and bind-mount it (see docs/migration.md, "
			      "named volumes), then run hive-migrate again");
	}
	json_object_put(root);
	hm_proc_result_free(&r);
	return rc;
}
