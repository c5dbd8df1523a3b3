/* Rendering a preflight report: JSON for scripts, plain text for people. Both show the
 * same facts; JSON field names are part of the interface (docs/check.md). */
#include "preflight_int.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>

/* Add a uint64 as a JSON integer when it fits in int64, else as a decimal string. */
static void add_u64(json_object *o, const char *key, uint64_t v)
{
	if (v <= INT64_MAX)
		json_object_object_add(o, key, json_object_new_int64((int64_t)v));
	else {
		char buf[32];
		snprintf(buf, sizeof buf, "%" PRIu64, v);
		json_object_object_add(o, key, json_object_new_string(buf));
	}
}

/* "X/Y" form of an LSN, as PostgreSQL prints it. */
static void lsn_str(uint64_t lsn, char *out, size_t sz)
{
	snprintf(out, sz, "%X/%X", (unsigned)(lsn >> 32), (unsigned)(lsn & 0xFFFFFFFFu));
}

/* Every pg_control field as a JSON object. */
static json_object *control_json(const hm_pg_control *c)
{
	json_object *o = json_object_new_object();
	char buf[64];
	json_object_object_add(o, "major", json_object_new_int(c->major));
	/* the system identifier does not fit JSON's safe integer range: string */
	snprintf(buf, sizeof buf, "%" PRIu64, c->system_identifier);
	json_object_object_add(o, "system_identifier", json_object_new_string(buf));
	json_object_object_add(o, "pg_control_version", json_object_new_int64(c->pg_control_version));
	json_object_object_add(o, "catalog_version_no", json_object_new_int64(c->catalog_version_no));
	json_object_object_add(o, "state", json_object_new_int64(c->state));
	json_object_object_add(o, "state_name", json_object_new_string(hm_db_state_name(c->state)));
	json_object_object_add(o, "time", json_object_new_int64(c->time));
	lsn_str(c->checkpoint_lsn, buf, sizeof buf);
	json_object_object_add(o, "checkpoint_lsn", json_object_new_string(buf));
	lsn_str(c->checkpoint_redo, buf, sizeof buf);
	json_object_object_add(o, "checkpoint_redo", json_object_new_string(buf));
	json_object_object_add(o, "checkpoint_tli", json_object_new_int64(c->checkpoint_tli));
	json_object_object_add(o, "wal_level", json_object_new_int(c->wal_level));
	json_object_object_add(o, "wal_log_hints", json_object_new_boolean(c->wal_log_hints));
	json_object_object_add(o, "max_connections", json_object_new_int(c->max_connections));
	json_object_object_add(o, "max_worker_processes", json_object_new_int(c->max_worker_processes));
	json_object_object_add(o, "max_wal_senders", json_object_new_int(c->max_wal_senders));
	json_object_object_add(o, "max_prepared_xacts", json_object_new_int(c->max_prepared_xacts));
	json_object_object_add(o, "max_locks_per_xact", json_object_new_int(c->max_locks_per_xact));
	json_object_object_add(o, "track_commit_timestamp",
			       json_object_new_boolean(c->track_commit_timestamp));
	json_object_object_add(o, "max_align", json_object_new_int64(c->max_align));
	json_object_object_add(o, "float_format", json_object_new_double(c->float_format));
	json_object_object_add(o, "blcksz", json_object_new_int64(c->blcksz));
	json_object_object_add(o, "relseg_size", json_object_new_int64(c->relseg_size));
	json_object_object_add(o, "xlog_blcksz", json_object_new_int64(c->xlog_blcksz));
	json_object_object_add(o, "xlog_seg_size", json_object_new_int64(c->xlog_seg_size));
	json_object_object_add(o, "name_data_len", json_object_new_int64(c->name_data_len));
	json_object_object_add(o, "index_max_keys", json_object_new_int64(c->index_max_keys));
	json_object_object_add(o, "toast_max_chunk_size", json_object_new_int64(c->toast_max_chunk_size));
	json_object_object_add(o, "loblksize", json_object_new_int64(c->loblksize));
	json_object_object_add(o, "float8_by_val", json_object_new_boolean(c->float8_by_val));
	json_object_object_add(o, "data_checksum_version", json_object_new_int64(c->data_checksum_version));
	if (c->default_char_signedness >= 0)
		json_object_object_add(
			o, "default_char_signedness",
			json_object_new_string(c->default_char_signedness ? "signed" : "unsigned"));
	else
		json_object_object_add(o, "default_char_signedness", NULL);
	snprintf(buf, sizeof buf, "%08x", c->crc_stored);
	json_object_object_add(o, "crc", json_object_new_string(buf));
	return o;
}

json_object *hm_preflight_report_json(const hm_preflight_report *r)
{
	const hm_preflight_facts *f = &r->facts;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "verdict", json_object_new_string(hm_verdict_name(r->verdict)));
	json_object_object_add(o, "exit_code", json_object_new_int(hm_preflight_verdict_exit(r->verdict)));
	json_object_object_add(o, "data_dir", r->data_dir[0] ? json_object_new_string(r->data_dir) : NULL);
	json_object *probs = json_object_new_array();
	for (size_t i = 0; i < r->n_problems; i++) {
		const hm_problem *p = &r->problems[i];
		json_object *po = json_object_new_object();
		json_object_object_add(po, "code", json_object_new_string(p->code));
		json_object_object_add(po, "severity", json_object_new_string(hm_severity_name(p->severity)));
		json_object_object_add(po, "message", json_object_new_string(p->message));
		json_object_object_add(po, "hint", json_object_new_string(p->hint));
		json_object_array_add(probs, po);
	}
	json_object_object_add(o, "problems", probs);
	json_object_object_add(o, "pg_version", f->pg_version ? json_object_new_int(f->pg_version) : NULL);
	json_object_object_add(o, "control", f->have_control ? control_json(&f->control) : NULL);

	json_object *t = json_object_new_object();
	json_object_object_add(t, "major", json_object_new_int(f->target_major));
	json_object_object_add(t, "catalog_version_no",
			       f->target_catalog ? json_object_new_int64(f->target_catalog) : NULL);
	json_object_object_add(t, "pgvector",
			       f->target_pgvector[0] ? json_object_new_string(f->target_pgvector) : NULL);
	json_object_object_add(t, "uid", json_object_new_int64((int64_t)f->target_uid));
	json_object_object_add(o, "target", t);

	if (f->have_stat) {
		json_object *d = json_object_new_object();
		json_object_object_add(d, "owner_uid", json_object_new_int64((int64_t)f->data_uid));
		char mode[8];
		snprintf(mode, sizeof mode, "%04o", (unsigned)(f->data_mode & 07777));
		json_object_object_add(d, "mode", json_object_new_string(mode));
		if (f->have_disk) {
			add_u64(d, "size_bytes", f->data_bytes);
			add_u64(d, "free_bytes", f->free_bytes);
			json_object_object_add(d, "free_path", json_object_new_string(f->disk_path));
		}
		json_object_object_add(d, "tablespaces_outside",
				       json_object_new_int(f->n_tablespaces_outside));
		json_object_object_add(o, "data_directory", d);
	}
	json_object *s = json_object_new_object();
	json_object_object_add(s, "running", json_object_new_boolean(f->server_running));
	json_object_object_add(
		s, "pid", f->postmaster_pid > 0 ? json_object_new_int64((int64_t)f->postmaster_pid) : NULL);
	json_object_object_add(s, "connected", json_object_new_boolean(f->connected));
	json_object_object_add(s, "server", r->server[0] ? json_object_new_string(r->server) : NULL);
	json_object_object_add(o, "server", s);
	if (f->connected) {
		json_object *dbs = json_object_new_array();
		for (size_t i = 0; i < r->n_databases; i++) {
			json_object *d = json_object_new_object();
			json_object_object_add(d, "name", json_object_new_string(r->databases[i].name));
			json_object_object_add(d, "size_bytes",
					       json_object_new_int64(r->databases[i].size_bytes));
			json_object_array_add(dbs, d);
		}
		json_object_object_add(o, "databases", dbs);
		json_object *exts = json_object_new_array();
		for (size_t i = 0; i < r->n_extensions; i++) {
			json_object *e = json_object_new_object();
			json_object_object_add(e, "database",
					       json_object_new_string(r->extensions[i].database));
			json_object_object_add(e, "name", json_object_new_string(r->extensions[i].name));
			json_object_object_add(e, "version",
					       json_object_new_string(r->extensions[i].version));
			json_object_array_add(exts, e);
		}
		json_object_object_add(o, "extensions", exts);
	}
	json_object_object_add(o, "stack", r->stack ? hm_pf_stack_json(r->stack) : NULL);
	return o;
}

/* Bytes as a short human figure. */
static void human_bytes(uint64_t b, char *out, size_t sz)
{
	const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	int i = 0;
	while (v >= 1024.0 && i < 4)
		v /= 1024.0, i++;
	snprintf(out, sz, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

void hm_preflight_report_print(const hm_preflight_report *r, FILE *out)
{
	const hm_preflight_facts *f = &r->facts;
	char a[64], b[64];
	if (r->stack)
		hm_pf_stack_print(r->stack, out);
	if (r->data_dir[0])
		fprintf(out, "data directory   %s\n", r->data_dir);
	if (f->pg_version)
		fprintf(out, "PG_VERSION       %d\n", f->pg_version);
	if (f->have_control) {
		const hm_pg_control *c = &f->control;
		char when[64] = "";
		time_t t = (time_t)c->time;
		struct tm tm;
		if (gmtime_r(&t, &tm))
			strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
		fprintf(out,
			"pg_control       PostgreSQL %d layout, control version %u, catalog %u, "
			"CRC-32C ok\n",
			c->major, c->pg_control_version, c->catalog_version_no);
		fprintf(out, "system id        %" PRIu64 "\n", c->system_identifier);
		fprintf(out, "cluster state    %s (updated %s)\n", hm_db_state_name(c->state), when);
		lsn_str(c->checkpoint_lsn, a, sizeof a);
		lsn_str(c->checkpoint_redo, b, sizeof b);
		fprintf(out, "checkpoint       %s (redo %s, timeline %u)\n", a, b, c->checkpoint_tli);
		fprintf(out, "sizes            block %u, WAL block %u, WAL segment %u MiB, relseg %u\n",
			c->blcksz, c->xlog_blcksz, c->xlog_seg_size / (1024u * 1024u), c->relseg_size);
		fprintf(out,
			"build            maxalign %u, namedatalen %u, index keys %u, toast chunk "
			"%u, lo chunk %u, float8 %s\n",
			c->max_align, c->name_data_len, c->index_max_keys, c->toast_max_chunk_size,
			c->loblksize, c->float8_by_val ? "by value" : "by reference");
		fprintf(out, "data checksums   %s (version %u)%s%s\n",
			c->data_checksum_version ? "on" : "off", c->data_checksum_version,
			c->default_char_signedness >= 0 ? ", char signedness " : "",
			c->default_char_signedness < 0 ? ""
			: c->default_char_signedness   ? "signed"
						       : "unsigned");
	}
	if (f->have_stat) {
		fprintf(out, "owner, mode      uid %u, %04o\n", (unsigned)f->data_uid,
			(unsigned)(f->data_mode & 07777));
		if (f->have_disk) {
			human_bytes(f->data_bytes, a, sizeof a);
			human_bytes(f->free_bytes, b, sizeof b);
			fprintf(out, "disk             %s of data, %s free at %s\n", a, b, f->disk_path);
		}
	}
	fprintf(out, "target           PostgreSQL %d", f->target_major);
	if (f->target_catalog)
		fprintf(out, " (catalog %u)", f->target_catalog);
	if (f->target_pgvector[0])
		fprintf(out, ", pgvector %s", f->target_pgvector);
	fprintf(out, ", uid %u\n", (unsigned)f->target_uid);
	if (f->server_running && !f->connected)
		fprintf(out, "server           running (pid %ld)\n", (long)f->postmaster_pid);
	if (f->connected) {
		fprintf(out, "server           %s\n", r->server);
		for (size_t i = 0; i < r->n_databases; i++) {
			human_bytes((uint64_t)r->databases[i].size_bytes, a, sizeof a);
			fprintf(out, "  database       %s (%s)", r->databases[i].name, a);
			const char *sep = ": ";
			for (size_t j = 0; j < r->n_extensions; j++)
				if (!strcmp(r->extensions[j].database, r->databases[i].name)) {
					fprintf(out, "%s%s %s", sep, r->extensions[j].name,
						r->extensions[j].version);
					sep = ", ";
				}
			fputc('\n', out);
		}
	}
	fputc('\n', out);
	for (size_t i = 0; i < r->n_problems; i++) {
		const hm_problem *p = &r->problems[i];
		fprintf(out, "%-12s [%s] %s\n", hm_severity_name(p->severity), p->code, p->message);
		if (p->hint[0])
			fprintf(out, "%-12s hint: %s\n", "", p->hint);
	}
	fprintf(out, "verdict: %s\n", hm_verdict_name(r->verdict));
}
