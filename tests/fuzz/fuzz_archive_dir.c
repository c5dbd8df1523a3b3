/* libFuzzer target: the offline archive reader (common/archive_dir_read.c): verification
 * and extraction of a data.tar.zst / migration snapshot that whoever writes the repository
 * or STACK/.hive-migrate controls. Any input must be refused or read cleanly, and an
 * extraction must leave nothing behind or outside its target. Seeds:
 * fuzz_archive_dir.seeds/ (valid archives, and hostile ones whose manifests agree). */
#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/archive_dir.h"
#include "../../common/fsutil.h"

static int infd = -1;
static char dir[64];

/* The work directory goes when the fuzzer exits (it is empty after every input). */
static void cleanup(void)
{
	rmdir(dir);
}

static int empty(int fd)
{
	int n = 0, d2 = dup(fd);
	DIR *d = fdopendir(d2);
	if (!d)
		abort();
	rewinddir(d);
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hm_error err;
	if (infd < 0) {
		snprintf(dir, sizeof dir, "/tmp/hm-fuzz-ad-%ld", (long)getpid());
		if (mkdir(dir, 0700) != 0 || (infd = open(dir, O_RDONLY | O_DIRECTORY)) < 0)
			abort();
		atexit(cleanup);
	}
	int fd = memfd_create("archive", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	(void)hm_archive_verify_fd(fd, "fuzz", NULL, NULL, &err);
	if (hm_archive_extract_at(fd, "fuzz", infd, "x", "x", NULL, NULL, NULL, NULL, &err) == 0)
		hm_rmtree_at(infd, "x", "x", &err);
	close(fd);
	if (!empty(infd))
		abort();
	return 0;
}
