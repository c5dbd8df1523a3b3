/* Running external commands (the docker CLI, compose). fork + execvp with pipes read through poll so that a
 * chatty stderr cannot block a child writing lots of stdout (compose config is large). */
#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CAPTURE (16u << 20)

void hm_proc_result_free(hm_proc_result *res)
{
	free(res->out);
	free(res->errout);
	res->out = res->errout = NULL;
}

/* Append up to n bytes to a growing buffer (silently truncated past MAX_CAPTURE). */
static void append(char **buf, size_t *len, const char *data, size_t n)
{
	if (*len + n > MAX_CAPTURE)
		n = MAX_CAPTURE - *len;
	char *nb = realloc(*buf, *len + n + 1);
	if (!nb)
		return;
	memcpy(nb + *len, data, n);
	*len += n;
	nb[*len] = '\0';
	*buf = nb;
}

int hm_proc_run(char *const argv[], hm_proc_result *res, hm_error *err)
{
	int po[2] = {-1, -1}, pe[2] = {-1, -1};
	size_t olen = 0, elen = 0;
	memset(res, 0, sizeof *res);
	res->status = -1;
	if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0) {
		int e = errno;
		if (po[0] >= 0) {
			close(po[0]);
			close(po[1]);
		}
		return hm_error_errno(err, e, "create pipe for", argv[0]);
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(po[0]);
		close(po[1]);
		close(pe[0]);
		close(pe[1]);
		return hm_error_errno(err, e, "fork for", argv[0]);
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
	int open_fds = 2;
	char buf[65536];
	while (open_fds > 0) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(fds[i].fd, buf, sizeof buf);
			if (n > 0) {
				if (i == 0)
					append(&res->out, &olen, buf, (size_t)n);
				else
					append(&res->errout, &elen, buf, (size_t)n);
			} else if (n == 0 || (n < 0 && errno != EINTR)) {
				close(fds[i].fd);
				fds[i].fd = -1;
				open_fds--;
			}
		}
	}
	for (int i = 0; i < 2; i++)
		if (fds[i].fd >= 0)
			close(fds[i].fd);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return hm_error_errno(err, errno, "wait for", argv[0]);
	res->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return 0;
}

/* The last non-empty lines of a command's stderr, joined by "; " (for messages). */
static void tail_lines(const char *s, char *out, size_t outsz)
{
	out[0] = '\0';
	if (!s)
		return;
	size_t len = strlen(s);
	while (len && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' '))
		len--;
	size_t start = len, lines = 0;
	while (start > 0 && lines < 3) {
		start--;
		if (s[start] == '\n')
			lines++;
	}
	if (s[start] == '\n')
		start++;
	size_t j = 0;
	for (size_t i = start; i < len && j + 3 < outsz; i++) {
		if (s[i] == '\n') {
			out[j++] = ';';
			out[j++] = ' ';
		} else if (s[i] != '\r') {
			out[j++] = s[i];
		}
	}
	out[j] = '\0';
}

int hm_proc_check(char *const argv[], const char *what, char **out, hm_error *err)
{
	hm_proc_result r;
	if (hm_proc_run(argv, &r, err) != 0)
		return -1;
	if (r.status != 0) {
		char tail[700];
		tail_lines(r.errout, tail, sizeof tail);
		hm_error_set(err, HM_EXIT_ENGINE, "%s failed (exit %d): %s", what, r.status,
			     tail[0] ? tail : "no error output");
		hm_proc_result_free(&r);
		return -1;
	}
	if (out) {
		*out = r.out ? r.out : strdup("");
		r.out = NULL;
	}
	hm_proc_result_free(&r);
	return 0;
}
