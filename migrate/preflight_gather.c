/* hm_preflight_run: gathers the facts (data directory, target, server) and hands them to
 * the rule engine. Read-only: nothing here writes, chmods or starts anything.
 *
 * Read failures of the data directory become problems of severity "error" (verdict
 * error) so that --json output still carries them; the first one is also returned in
 * err for callers that print a single line. */
#include "preflight_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "../common/fsutil.h"
#include "stack.h"

/* Turn err into an error problem with a stable code. Returns -1. */
static int add_error(hm_preflight_report *r, const hm_error *err, const char *code)
{
	hm_preflight_add(r, HM_SEV_ERROR, code, err->hint, "%s", err->message);
	return -1;
}

/* Problem code for an errno-based failure to read something in the data directory. */
static const char *errno_code(int e)
{
	if (e == ENOENT || e == ENOTDIR)
		return "not-a-data-directory";
	if (e == EACCES || e == EPERM)
		return "unreadable";
	return "io-error";
}

/* Is a process whose working directory is the data directory running? PostgreSQL's
 * postmaster and backends chdir into PGDATA. postmaster.pid alone cannot tell: inside a
 * container it holds the container's pid (often 1), meaningless on the host; comparing
 * device and inode of /proc/PID/cwd works across mount namespaces (bind mounts keep
 * them). Returns the lowest such pid, or 0. */
static pid_t find_server(const struct stat *data_st)
{
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	pid_t best = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		char path[64];
		struct stat st;
		snprintf(path, sizeof path, "/proc/%ld/cwd", pid);
		if (stat(path, &st) || st.st_dev != data_st->st_dev || st.st_ino != data_st->st_ino)
			continue;
		char comm[32] = "";
		snprintf(path, sizeof path, "/proc/%ld/comm", pid);
		FILE *f = fopen(path, "re");
		if (f) {
			if (!fgets(comm, sizeof comm, f))
				comm[0] = '\0';
			fclose(f);
		}
		if (strncmp(comm, "postgres", 8) && strncmp(comm, "postmaster", 10))
			continue;
		if (!best || pid < best)
			best = (pid_t)pid;
	}
	closedir(d);
	return best;
}

/* Fill the tablespace facts: pg_tblspc symlinks whose target is not inside datadir. */
static void find_tablespaces(const char *datadir, hm_preflight_facts *f)
{
	char dir[4200], real_data[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/pg_tblspc", datadir);
	if (!realpath(datadir, real_data))
		return;
	DIR *d = opendir(dir);
	if (!d)
		return;
	size_t rl = strlen(real_data);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char link[4400], target[PATH_MAX], real[PATH_MAX];
		snprintf(link, sizeof link, "%s/%s", dir, e->d_name);
		ssize_t n = readlink(link, target, sizeof target - 1);
		if (n < 0)
			continue; /* an in-place tablespace (a directory) lives inside */
		target[n] = '\0';
		int inside = realpath(link, real) && !strncmp(real, real_data, rl) &&
			     (real[rl] == '/' || real[rl] == '\0');
		if (inside)
			continue;
		if (!f->n_tablespaces_outside++)
			snprintf(f->tablespace_outside, sizeof f->tablespace_outside, "%s -> %s", e->d_name,
				 target);
	}
	closedir(d);
}

/* Free space where the snapshot will be written (snapshot_dir, else the data dir). */
static void measure_disk(const char *datadir, const char *snapshot_dir, hm_preflight_facts *f)
{
	const char *where = snapshot_dir ? snapshot_dir : datadir;
	struct statvfs vfs;
	if (statvfs(where, &vfs))
		return;
	f->free_bytes = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
	f->data_bytes = hm_tree_bytes(AT_FDCWD, datadir);
	snprintf(f->disk_path, sizeof f->disk_path, "%s", where);
	f->have_disk = 1;
}

/* Read PG_VERSION and pg_control into the facts; on failure add an error problem. */
static int read_data_dir(const char *datadir, hm_preflight_report *r, hm_error *err)
{
	hm_preflight_facts *f = &r->facts;
	struct stat st;
	if (stat(datadir, &st)) {
		int e = errno;
		hm_error_errno(err, e, "open data directory", datadir);
		if (e == ENOENT) {
			hm_error_hint(err, "check the path; for the split stack it is "
					   "STACK/data/postgres-PROFILE/pgdata");
			return add_error(r, err, "missing-directory");
		}
		return add_error(r, err, errno_code(e));
	}
	if (!S_ISDIR(st.st_mode)) {
		hm_error_set(err, HM_EXIT_INPUT, "\"%s\" is not a directory", datadir);
		hm_error_hint(err, "point --data-dir at the PostgreSQL data directory (PGDATA)");
		return add_error(r, err, "not-a-data-directory");
	}
	f->have_stat = 1;
	f->data_uid = st.st_uid;
	f->data_mode = st.st_mode & 07777;

	if (hm_pg_version_read(datadir, &f->pg_version, err)) {
		if (err->code == HM_EXIT_CORRUPT)
			return add_error(r, err, "pg-version-invalid");
		if (err->code == HM_EXIT_INPUT)
			return add_error(r, err, "not-a-data-directory");
		return add_error(r, err, err->code == HM_EXIT_PERMISSION ? "unreadable" : "io-error");
	}
	hm_pg_control_fault fault = HM_PGC_OK;
	if (hm_pg_control_read_ex(datadir, &f->control, &fault, err))
		return add_error(r, err, hm_pg_control_fault_code(fault));
	f->have_control = 1;
	return 0;
}

/* Record a failed connection: news when the user asked for it, silent for --stack
 * (a stopped stack is the normal case before a migration). */
static int live_checks(const hm_preflight_opts *o, const hm_pf_conn *c, int explicit_conn,
		       hm_preflight_report *r, hm_error *err)
{
	hm_error cerr;
	(void)err;
	int got = hm_pf_live_collect(c, r, &cerr);
	if (got == -2) /* another cluster answered: whoever asked, its facts are not these */
		return hm_preflight_add(r, HM_SEV_WARNING, "live-server-mismatch",
					"point the connection at the server of this data directory "
					"(--host/--port/--dbname, or PGHOST/PGPORT)",
					"%s", cerr.message);
	if (got == 0) {
		r->facts.connected = 1;
		r->facts.server_running = 1;
		r->facts.extensions = r->extensions;
		r->facts.n_extensions = r->n_extensions;
		return 0;
	}
	if (explicit_conn && !o->no_live)
		hm_preflight_add(r, HM_SEV_WARNING, "no-connection",
				 "start the old server for the live checks (databases, pgvector "
				 "version), or leave out the connection options",
				 "%s", cerr.message);
	return 0;
}

int hm_preflight_run(const hm_preflight_opts *o, hm_preflight_report *r, hm_error *err)
{
	hm_stack *loaded = NULL;
	const hm_stack *stack = o->stack;
	hm_pf_conn conn;
	const char *datadir = o->data_dir;
	hm_preflight_facts *f = &r->facts;

	memset(r, 0, sizeof *r);
	memset(&conn, 0, sizeof conn);
	hm_pgconn_init(&conn.params);
	memset(err, 0, sizeof *err);
	r->verdict = HM_VERDICT_COMPATIBLE;
	f->target_uid = o->target_uid;
	f->target_major = o->target_major > 0 ? o->target_major : 17;
	f->control.default_char_signedness = -1;

	if (o->image) {
		if (hm_pf_image_target(o->image, &f->target_major, f->target_pgvector,
				       sizeof f->target_pgvector, err))
			goto fail_image;
	}
	f->target_catalog = hm_preflight_catalog_for_major(f->target_major);
	if (!f->target_pgvector[0])
		snprintf(f->target_pgvector, sizeof f->target_pgvector, "%s",
			 hm_preflight_pgvector_for_major(f->target_major));

	if (!stack && (o->compose || o->stack_dir)) {
		hm_stack_select sel = {o->db_service, o->api_service};
		if (!(loaded = calloc(1, sizeof *loaded))) {
			hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
			add_error(r, err, "stack-config");
			goto done;
		}
		if (o->compose
			    ? hm_stack_load_project(o->compose, &sel, loaded, err)
			    : hm_stack_load(o->stack_dir, o->profile ? o->profile : "agent", loaded, err)) {
			add_error(r, err, "stack-config");
			goto done;
		}
		stack = loaded;
	}
	if (stack) {
		if (!datadir)
			datadir = stack->pgdata;
		if ((r->stack = malloc(sizeof *r->stack))) {
			*r->stack = *stack;
			memset(r->stack->db_password, 0, sizeof r->stack->db_password);
		}
		if (hm_preflight_stack_rules(stack, r)) {
			hm_error_set(err, HM_EXIT_INTERNAL, "out of memory while evaluating the preflight");
			r->verdict = HM_VERDICT_ERROR;
			goto done;
		}
	}

	if (!datadir) {
		hm_error_set(err, HM_EXIT_USAGE, "no data directory given");
		hm_error_hint(err, "use --data-dir DIR or --stack DIR --profile agent|genie");
		add_error(r, err, "no-data-directory");
		goto done;
	}
	snprintf(r->data_dir, sizeof r->data_dir, "%s", datadir);

	if (read_data_dir(datadir, r, err))
		goto done;

	struct stat st;
	if (stat(datadir, &st) == 0) {
		pid_t pid = find_server(&st);
		if (pid > 0) {
			f->server_running = 1;
			f->postmaster_pid = pid;
		}
	}
	find_tablespaces(datadir, f);
	measure_disk(datadir, o->snapshot_dir, f);
	if (hm_pf_conn_build(o, stack, f->server_running, &conn, err)) {
		add_error(r, err, "connection-options");
		goto done;
	}
	if (conn.have && !o->no_live)
		live_checks(o, &conn, conn.explicit_conn, r, err);
	if (f->have_control && (int)f->control.major != f->target_major)
		hm_pf_major_gather(o, &conn, r);

	if (hm_preflight_evaluate(f, r)) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory while evaluating the preflight");
		r->verdict = HM_VERDICT_ERROR;
	}
	goto done;

fail_image:
	add_error(r, err, "image");
done:
	hm_pgconn_free(&conn.params);
	if (loaded) {
		memset(loaded->db_password, 0, sizeof loaded->db_password);
		free(loaded);
	}
	if (r->verdict == HM_VERDICT_ERROR) {
		/* err holds the first error when a step failed; rebuild it from the problem
		 * list otherwise (e.g. pg-version-mismatch found by the rules). */
		if (!err->message[0]) {
			for (size_t i = 0; i < r->n_problems; i++)
				if (r->problems[i].severity == HM_SEV_ERROR) {
					hm_error_set(err, HM_EXIT_CHECK_ERROR, "%s", r->problems[i].message);
					if (r->problems[i].hint[0])
						hm_error_hint(err, "%s", r->problems[i].hint);
					break;
				}
		}
		return -1;
	}
	return 0;
}
