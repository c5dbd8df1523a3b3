/* The offline backup into a repository (offline.h): the archive of a stopped cluster's
 * directory, stored as a file or streamed into the repository's stream. Moved here from
 * backup.c so that up's snapshot to an object store uses the very same code. */
#include "offline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../common/digest.h"
#include "../common/fsutil.h"
#include "../common/pg_control.h"
#include "repo_io.h"

/* The archive of an offline backup on its way to the repository's stream: hashed and
 * counted as plain bytes (the digest `backups verify` checks after decrypting), the lock's
 * lease renewed while it runs. */
typedef struct offline_sink {
	hm_repo *repo;
	hm_repo_stream *stream;
	hm_sha256 *sha;
	uint64_t size;
} offline_sink;

/* Sink of hm_archive_dir_create_sink: one block of the plain archive. */
static int offline_write(void *ctx, const void *data, size_t len, hm_error *err)
{
	offline_sink *o = ctx;
	if (hm_repo_keepalive(o->repo, err) != 0)
		return -1;
	hm_sha256_update(o->sha, data, len);
	o->size += len;
	return hm_repo_stream_write(o->stream, data, len, err);
}

/* Stream the archive of data_dir into the repository (an object store, or an encrypted
 * local repository): no local copy of it, plain or encrypted, outside the stored object.
 * The stored object commits only once the archive is complete (s3: the multipart upload is
 * completed at the end and its ETag checked; local: fsync'd inside partial); m gets its
 * plain size and digest and the stored fields. 0 or -1 (the stream aborted). */
static int stream_offline(const char *srcdir, hm_repo *repo, const char *partial, hm_backup_meta *meta,
			  hm_crypt_secret *secret, const hm_archive_opts *opts, hm_archive_stats *stats,
			  hm_error *err)
{
	offline_sink o = {.repo = repo};
	char disp[4800], hex[HM_SHA256_HEX_LEN + 1];
	int rc = -1;
	if (!(o.sha = hm_sha256_new()))
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	if (hm_repo_stream_open_in(repo, partial, meta, secret, &o.stream, err) != 0) {
		o.stream = NULL;
		goto cleanup;
	}
	if (repo->st)
		snprintf(disp, sizeof disp, "%s/%s/%s%s", repo->path, meta->id, meta->archive,
			 secret ? " (encrypted)" : "");
	else
		snprintf(disp, sizeof disp, "%s/%s (encrypted)", partial, meta->archive);
	if (hm_archive_dir_create_sink(srcdir, offline_write, &o, disp, opts, stats, err) != 0)
		goto cleanup;
	hm_repo_stream *done = o.stream;
	o.stream = NULL;
	if (hm_repo_stream_commit(done, meta, err) != 0)
		goto cleanup;
	hm_sha256_final_hex(o.sha, hex);
	o.sha = NULL;
	meta->archive_size = o.size;
	hm_backup_member *m = &meta->members[meta->nmembers];
	snprintf(m->name, sizeof m->name, "%s", meta->archive);
	m->size = o.size;
	snprintf(m->sha256, sizeof m->sha256, "%s", hex);
	meta->nmembers++;
	rc = 0;
cleanup:
	hm_repo_stream_abort(o.stream);
	if (o.sha)
		hm_sha256_free(o.sha);
	return rc;
}

/* The offline backup of a stopped data directory (common/archive_dir): a plain local
 * repository gets the archive file in partial as before; an object store or an encrypted
 * repository gets it streamed (stream_offline), never staged. */
int hm_offline_backup(hm_repo *repo, const char *srcdir, const char *pgdata, hm_backup_meta *meta,
		      hm_crypt_secret *secret, hm_progress *prog, hm_archive_stats *stats_out, hm_error *err)
{
	hm_pg_control pc;
	char partial[4500], arch[4600], pidfile[4200];
	struct stat st;
	if (hm_path_join(pidfile, sizeof pidfile, pgdata, "postmaster.pid", err) != 0)
		return -1;
	if (hm_pg_control_read(pgdata, &pc, err) != 0)
		return hm_error_prefix(err, "offline backup of \"%s\"", pgdata);
	if (pc.state != HM_DB_SHUTDOWNED || lstat(pidfile, &st) == 0) {
		hm_error_set(err, HM_EXIT_INPUT,
			     "cluster in \"%s\" is not cleanly shut down (pg_control: %s%s)", pgdata,
			     hm_db_state_name(pc.state),
			     lstat(pidfile, &st) == 0 ? ", postmaster.pid present" : "");
		return hm_error_hint(err, "stop the stack with a timeout (docker compose stop -t 30), or "
					  "take an online backup");
	}
	snprintf(meta->kind, sizeof meta->kind, "offline");
	snprintf(meta->archive, sizeof meta->archive, "data.tar.zst");
	snprintf(meta->compression, sizeof meta->compression, "zstd:1");
	snprintf(meta->source, sizeof meta->source, "%s", srcdir);
	snprintf(meta->system_identifier, sizeof meta->system_identifier, "%llu",
		 (unsigned long long)pc.system_identifier);
	meta->pg_version = pc.major * 10000;
	meta->timeline = pc.checkpoint_tli;
	meta->wal_segment_size = pc.xlog_seg_size;
	if (hm_repo_partial(repo, meta->id, partial, sizeof partial, err) != 0)
		return -1;
	snprintf(arch, sizeof arch, "%s/%s", partial, meta->archive);
	char *j = hm_meta_encode(meta, 0);
	if (!j)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	hm_archive_opts opts = {.metadata_json = j, .zstd_level = 1, .progress = prog};
	hm_archive_stats stats;
	memset(&stats, 0, sizeof stats);
	if (repo->st || secret) {
		/* one zstd worker beside this thread: about half the memory of one per CPU
		 * (zstd's job buffers), for a bound below 64 MB (docs/backup.md) */
		opts.zstd_threads = 1;
		int r = stream_offline(srcdir, repo, partial, meta, secret, &opts, &stats, err);
		free(j);
		if (r != 0)
			return -1;
		hm_progress_finish(prog);
		meta->database_size = stats.bytes;
		meta->end_time = time(NULL);
		if (stats_out)
			*stats_out = stats;
		return 0;
	}
	int rc = hm_archive_dir_create(srcdir, arch, &opts, &stats, err);
	free(j);
	if (rc != 0)
		return -1;
	hm_progress_finish(prog);
	if (stat(arch, &st) != 0)
		return hm_error_errno(err, errno, "stat", arch);
	meta->archive_size = (uint64_t)st.st_size;
	meta->database_size = stats.bytes;
	meta->end_time = time(NULL);
	/* the archive file's digest, so that `backups verify` can check the bytes as stored */
	hm_backup_member *m = &meta->members[meta->nmembers];
	snprintf(m->name, sizeof m->name, "%s", meta->archive);
	m->size = meta->archive_size;
	if (hm_sha256_file(arch, m->sha256, err) != 0)
		return -1;
	meta->nmembers++;
	if (stats_out)
		*stats_out = stats;
	return 0;
}
