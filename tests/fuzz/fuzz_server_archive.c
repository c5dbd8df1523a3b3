/* libFuzzer target: the online archive walker (backup/server_archive.c), which reads a
 * server archive (base.tar.zst) that whoever writes the repository, or whoever answers
 * BASE_BACKUP, controls. Any input must be refused or walked cleanly: no crash, no leak,
 * and, when restoring, nothing written outside the target (the target's parent and a
 * sibling directory are checked empty after every input). The input is a tar, optionally
 * zstd-compressed. Seeds (fuzz_server_archive.seeds/): hard links (ustar, and pax with
 * data), devices, FIFOs, set-id files, long and odd names, huge sizes, members below
 * symlinks. */
#include <archive.h>
#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../backup/pgmanifest.h"
#include "../../backup/server_archive.h"
#include "../../common/fsutil.h"
#include "../../common/tree_writer.h"

static char base[64];
static int infd = -1, outfd = -1;

static void ignore_problem(void *ctx, const char *line)
{
	(void)line;
	++*(int *)ctx;
}

/* Number of entries in the directory open as fd. */
static int entries(int fd)
{
	int n = 0, d2 = dup(fd);
	DIR *d = fdopendir(d2);
	if (!d)
		abort();
	rewinddir(d);
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

/* The work directories go when the fuzzer exits (they are empty after every input). */
static void cleanup(void)
{
	char p[128];
	snprintf(p, sizeof p, "%s/in", base);
	rmdir(p);
	snprintf(p, sizeof p, "%s/outside", base);
	rmdir(p);
	rmdir(base);
}

static int init(void)
{
	char p[128];
	atexit(cleanup);
	snprintf(base, sizeof base, "/tmp/hm-fuzz-sa-%ld", (long)getpid());
	snprintf(p, sizeof p, "%s/in", base);
	if (mkdir(base, 0700) != 0 || mkdir(p, 0700) != 0)
		return -1;
	infd = open(p, O_RDONLY | O_DIRECTORY);
	snprintf(p, sizeof p, "%s/outside", base);
	if (mkdir(p, 0700) != 0)
		return -1;
	outfd = open(p, O_RDONLY | O_DIRECTORY);
	return infd >= 0 && outfd >= 0 ? 0 : -1;
}

/* Walk data as a server archive; with writer, restore it into in/x. */
static void walk(const uint8_t *data, size_t size, int restore, int alg)
{
	struct archive *a = archive_read_new();
	hm_sa_files files = {0};
	hm_tree_writer *w = NULL;
	hm_error err;
	int problems = 0;
	if (!a)
		return;
	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	if (restore && hm_tree_writer_new(&w, infd, "x", "x", NULL, &err) != 0)
		abort(); /* the previous input left something behind */
	if (archive_read_open_memory(a, data, size) == ARCHIVE_OK) {
		hm_sa_walk sw = {"base.tar.zst", "", alg, w, &files, ignore_problem, &problems};
		(void)hm_sa_walk_archive(a, &sw, &err);
		hm_sa_files_sort(&files);
		for (size_t i = 0; i < files.n; i++)
			if (hm_sa_find(&files, files.v[i].path) == NULL)
				abort();
	}
	archive_read_free(a);
	hm_sa_files_free(&files);
	if (w) {
		if (!problems)
			(void)hm_tree_writer_finish(w, &err);
		hm_tree_writer_abort(w);
	}
	if (entries(infd) != 0 || entries(outfd) != 0)
		abort(); /* written outside the target, or not cleaned up */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready = 0;
	if (!ready) {
		if (init() != 0)
			abort();
		ready = 1;
	}
	walk(data, size, 0, HM_PGM_CRC32C);
	walk(data, size, 1, HM_PGM_SHA256);
	return 0;
}
