/* hm-storage-tool: a test-only command line over backup/storage, so that the end-to-end tests
 * (tests/e2e/test_s3_driver.py) drive the real drivers against the real radosgw. Not
 * installed. Errors print as hive-migrate's do and the exit code is the error's.
 *   hm-storage-tool [OPTIONS] LOCATION COMMAND [ARGS]
 * Commands: mb | rb | put NAME (stdin) | gen NAME BYTES [SEED] | genmany DIR N |
 *   get NAME [OFF [LEN]] | sha NAME [OFF [LEN]] | stat NAME | ls [DIR] | rm NAME... |
 *   rmdir DIR | sweep [DIR] |
 *   lock NAME OWNER [SECONDS] | lockcheck NAME OWNER
 * Options: --endpoint URL --region R --style auto|path|host --ca-file F --no-verify-tls
 *   --credentials-file F --part-size MIB --grow-every PARTS --parallel N --attempts N --list-page N
 *   --clock-offset S --lock-ttl S --stall-timeout S --no-probe --exclusive --size-hint N
 *   --recursive --dry-run --stall-after BYTES (gen: stop producing there and wait)
 *   --fail-after BYTES (gen: abort the write there, as a failing backup would)
 *   --rss (print "peak_rss_kb N" on stderr) --stats (print request counters on stderr) */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../backup/storage/storage.h"
#include "../../common/digest.h"

typedef struct args {
	hm_storage_options so;
	unsigned flags;
	uint64_t size_hint;
	int recursive, dry_run, rss, stats;
	uint64_t stall_after, fail_after;
} args;

static int usage(void)
{
	fprintf(stderr,
		"usage: hm-storage-tool [OPTIONS] LOCATION COMMAND [ARGS] (see the source's header)\n");
	return 2;
}

static uint64_t num(const char *s)
{
	char *e;
	errno = 0;
	unsigned long long v = strtoull(s, &e, 10);
	if (errno || *e || !*s) {
		fprintf(stderr, "hm-storage-tool: not a number: %s\n", s);
		exit(2);
	}
	return v;
}

/* xorshift64*: a cheap reproducible byte stream, so big objects need no input file. */
static void gen_fill(uint64_t *state, unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t x = *state;
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		*state = x;
		uint64_t v = x * 0x2545F4914F6CDD1DULL;
		size_t n = len - i < 8 ? len - i : 8;
		memcpy(buf + i, &v, n);
	}
}

static int list_print(void *ctx, const hm_storage_info *info, hm_error *err)
{
	(void)ctx;
	(void)err;
	if (info->is_dir)
		printf("%s/\n", info->name);
	else
		printf("%s\t%" PRIu64 "\t%s\n", info->name, info->size, info->etag);
	return 0;
}

static void partial_print(void *ctx, const char *name, time_t started)
{
	(void)ctx;
	printf("%s\t%lld\n", name, (long long)started);
}

static int put_stream(hm_storage *st, const char *name, const args *a, int from_stdin, uint64_t bytes,
		      uint64_t seed, hm_error *err)
{
	hm_storage_writer *w;
	hm_storage_info info;
	size_t bufsz = 1 << 20;
	unsigned char *buf = malloc(bufsz);
	hm_sha256 *sha = hm_sha256_new();
	char hex[HM_SHA256_HEX_LEN + 1];
	uint64_t state = seed ? seed : 0x9E3779B97F4A7C15ULL, done = 0;
	int rc = hm_storage_open_write(st, name, a->flags, a->size_hint ? a->size_hint : bytes, &w, err);
	if (rc != 0) {
		free(buf);
		hm_sha256_free(sha);
		return rc;
	}
	for (;;) {
		size_t n;
		if (from_stdin) {
			n = fread(buf, 1, bufsz, stdin);
			if (n == 0)
				break;
		} else {
			if (done == bytes)
				break;
			if (a->fail_after && done >= a->fail_after) {
				/* The caller gives up (its source failed): abort, as backup would. */
				hm_storage_write_abort(w);
				free(buf);
				hm_sha256_free(sha);
				return hm_error_set(err, HM_EXIT_BACKUP_FAILED,
						    "gave up after %" PRIu64 " bytes (--fail-after)", done);
			}
			if (a->stall_after && done >= a->stall_after) {
				fprintf(stderr, "stalled at %" PRIu64 "\n", done);
				fflush(stderr);
				for (;;)
					pause(); /* a producer that stops: the test kills us here */
			}
			n = bytes - done < bufsz ? (size_t)(bytes - done) : bufsz;
			gen_fill(&state, buf, n);
		}
		hm_sha256_update(sha, buf, n);
		done += n;
		if (hm_storage_write(w, buf, n, err) != 0) {
			hm_storage_write_abort(w);
			free(buf);
			hm_sha256_free(sha);
			return -1;
		}
	}
	free(buf);
	rc = hm_storage_write_commit(w, &info, err);
	hm_sha256_final_hex(sha, hex);
	if (rc == 0)
		printf("%s\t%" PRIu64 "\t%s\n", hex, info.size, info.etag);
	return rc;
}

static int get_stream(hm_storage *st, const char *name, uint64_t off, uint64_t len, int print_sha,
		      hm_error *err)
{
	hm_storage_reader *r;
	size_t bufsz = 256 * 1024;
	unsigned char *buf;
	uint64_t total = 0;
	int rc = hm_storage_open_read(st, name, off, len, &r, err);
	if (rc != 0)
		return rc;
	buf = malloc(bufsz);
	hm_sha256 *sha = hm_sha256_new();
	for (;;) {
		size_t got;
		if (hm_storage_read(r, buf, bufsz, &got, err) != 0) {
			rc = -1;
			break;
		}
		if (!got)
			break;
		total += got;
		if (print_sha)
			hm_sha256_update(sha, buf, got);
		else if (fwrite(buf, 1, got, stdout) != got) {
			rc = hm_error_set(err, HM_EXIT_IO, "write to stdout failed");
			break;
		}
	}
	if (rc == 0 && print_sha) {
		char hex[HM_SHA256_HEX_LEN + 1];
		hm_sha256_final_hex(sha, hex);
		printf("%s\t%" PRIu64 "\t%" PRIu64 "\n", hex, total, hm_storage_read_object_size(r));
	} else {
		hm_sha256_free(sha);
	}
	free(buf);
	hm_storage_read_close(r);
	return rc;
}

int main(int argc, char **argv)
{
	args a;
	hm_error err;
	hm_storage *st = NULL;
	int i = 1, rc = 0, probe = 1;
	memset(&a, 0, sizeof a);
	memset(&err, 0, sizeof err);
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		hm_s3_options *s = &a.so.s3;
#define VAL()                                                                                                \
	do {                                                                                                 \
		if (!v)                                                                                      \
			return usage();                                                                      \
		i++;                                                                                         \
	} while (0)
		if (!strcmp(o, "--endpoint")) {
			VAL();
			s->endpoint = v;
		} else if (!strcmp(o, "--region")) {
			VAL();
			s->region = v;
		} else if (!strcmp(o, "--style")) {
			VAL();
			s->style = !strcmp(v, "path")	? HM_S3_STYLE_PATH
				   : !strcmp(v, "host") ? HM_S3_STYLE_HOST
							: HM_S3_STYLE_AUTO;
		} else if (!strcmp(o, "--ca-file")) {
			VAL();
			s->ca_file = v;
		} else if (!strcmp(o, "--no-verify-tls")) {
			s->no_verify_tls = 1;
		} else if (!strcmp(o, "--credentials-file")) {
			VAL();
			s->credentials_file = v;
		} else if (!strcmp(o, "--part-size")) {
			VAL();
			s->part_size = (size_t)num(v) << 20;
		} else if (!strcmp(o, "--grow-every")) {
			VAL();
			s->grow_every = (unsigned)num(v);
		} else if (!strcmp(o, "--parallel")) {
			VAL();
			s->parallel = (int)num(v);
		} else if (!strcmp(o, "--attempts")) {
			VAL();
			s->max_attempts = (int)num(v);
		} else if (!strcmp(o, "--list-page")) {
			VAL();
			s->list_page = (unsigned)num(v);
		} else if (!strcmp(o, "--clock-offset")) {
			VAL();
			s->clock_offset_s = strtol(v, NULL, 10);
		} else if (!strcmp(o, "--lock-ttl")) {
			VAL();
			s->lock_ttl_s = (unsigned)num(v);
		} else if (!strcmp(o, "--stall-timeout")) {
			VAL();
			s->stall_timeout_s = (long)num(v);
		} else if (!strcmp(o, "--no-probe")) {
			probe = 0;
		} else if (!strcmp(o, "--exclusive")) {
			a.flags |= HM_STORAGE_EXCLUSIVE;
		} else if (!strcmp(o, "--size-hint")) {
			VAL();
			a.size_hint = num(v);
		} else if (!strcmp(o, "--recursive")) {
			a.recursive = 1;
		} else if (!strcmp(o, "--dry-run")) {
			a.dry_run = 1;
		} else if (!strcmp(o, "--stall-after")) {
			VAL();
			a.stall_after = num(v);
		} else if (!strcmp(o, "--fail-after")) {
			VAL();
			a.fail_after = num(v);
		} else if (!strcmp(o, "--rss")) {
			a.rss = 1;
		} else if (!strcmp(o, "--stats")) {
			a.stats = 1;
		} else {
			return usage();
		}
	}
	if (argc - i < 2)
		return usage();
	const char *loc = argv[i], *cmd = argv[i + 1];
	char **rest = argv + i + 2;
	int nrest = argc - i - 2;
	/* mb needs a handle before the bucket exists; posix "create" makes the directory. */
	a.so.create = !probe || !strcmp(cmd, "mb");
	if (hm_storage_open(loc, &a.so, &st, &err) != 0) {
		hm_error_print(&err, stderr);
		return err.code ? (int)err.code : 1;
	}
	if (!strcmp(cmd, "mb")) {
		rc = hm_s3_bucket_create(st, &err);
	} else if (!strcmp(cmd, "rb")) {
		rc = hm_s3_bucket_delete(st, &err);
	} else if (!strcmp(cmd, "put") && nrest == 1) {
		rc = put_stream(st, rest[0], &a, 1, 0, 0, &err);
	} else if (!strcmp(cmd, "gen") && (nrest == 2 || nrest == 3)) {
		rc = put_stream(st, rest[0], &a, 0, num(rest[1]), nrest == 3 ? num(rest[2]) : 0, &err);
	} else if ((!strcmp(cmd, "get") || !strcmp(cmd, "sha")) && nrest >= 1 && nrest <= 3) {
		uint64_t off = nrest >= 2 ? num(rest[1]) : 0,
			 len = nrest == 3 ? num(rest[2]) : HM_STORAGE_TO_END;
		rc = get_stream(st, rest[0], off, len, !strcmp(cmd, "sha"), &err);
	} else if (!strcmp(cmd, "stat") && nrest == 1) {
		hm_storage_info info;
		rc = hm_storage_stat(st, rest[0], &info, &err);
		if (rc == 0)
			printf("%s\t%" PRIu64 "\t%s\t%lld\n", info.name, info.size, info.etag,
			       (long long)info.mtime);
	} else if (!strcmp(cmd, "ls") && nrest <= 1) {
		rc = hm_storage_list(st, nrest ? rest[0] : "", a.recursive ? HM_STORAGE_RECURSIVE : 0,
				     list_print, NULL, &err);
	} else if (!strcmp(cmd, "genmany") && nrest == 2) {
		/* N small objects DIR/00000 ... in one process (for removal in batches). */
		uint64_t n = num(rest[1]);
		for (uint64_t k = 0; k < n && rc == 0; k++) {
			char name[HM_STORAGE_NAME_MAX + 1];
			snprintf(name, sizeof name, "%s/%05" PRIu64, rest[0], k);
			rc = hm_storage_put(st, name, name, strlen(name), 0, &err);
		}
	} else if (!strcmp(cmd, "rm") && nrest >= 1) {
		rc = hm_storage_remove(st, (const char *const *)rest, (size_t)nrest, &err);
	} else if (!strcmp(cmd, "rmdir") && nrest == 1) {
		rc = hm_storage_remove_dir(st, rest[0], &err);
	} else if (!strcmp(cmd, "sweep") && nrest <= 1) {
		size_t n = 0;
		rc = hm_storage_sweep(st, nrest ? rest[0] : "", a.dry_run, partial_print, NULL, &n, &err);
		if (rc == 0)
			fprintf(stderr, "partials %zu\n", n);
	} else if ((!strcmp(cmd, "lock") || !strcmp(cmd, "lockcheck")) && (nrest == 2 || nrest == 3)) {
		hm_storage_lock *l;
		rc = hm_storage_lock_acquire(st, rest[0], rest[1], &l, &err);
		if (rc == 0) {
			printf("locked\n");
			fflush(stdout);
			if (nrest == 3) {
				/* Hold it, renewing as a long run would, until the time is up. */
				time_t until = time(NULL) + (time_t)num(rest[2]);
				while (rc == 0 && time(NULL) < until) {
					struct timespec ts = {0, 200000000};
					nanosleep(&ts, NULL);
					if (!strcmp(cmd, "lockcheck"))
						rc = hm_storage_lock_check(l, &err);
				}
			}
			if (rc == 0 && !strcmp(cmd, "lockcheck"))
				rc = hm_storage_lock_check(l, &err);
			hm_storage_lock_release(l);
		}
	} else {
		hm_storage_close(st);
		return usage();
	}
	if (a.stats) {
		hm_s3_stats s;
		hm_s3_get_stats(st, &s);
		fprintf(stderr, "requests %lu retries %lu up %llu down %llu max_in_flight %u\n", s.requests,
			s.retries, s.bytes_up, s.bytes_down, s.parts_max_in_flight);
	}
	hm_storage_close(st);
	if (a.rss) {
		/* VmHWM, not getrusage's ru_maxrss: the latter keeps the high-water mark of the
		 * process before execve (a big parent that forked us, such as pytest). */
		char line[256];
		FILE *f = fopen("/proc/self/status", "r");
		while (f && fgets(line, sizeof line, f))
			if (strncmp(line, "VmHWM:", 6) == 0)
				fprintf(stderr, "peak_rss_kb %ld\n", strtol(line + 6, NULL, 10));
		if (f)
			fclose(f);
	}
	if (rc != 0) {
		hm_error_print(&err, stderr);
		return err.code ? (int)err.code : 1;
	}
	return 0;
}
