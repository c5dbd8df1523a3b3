/* Progress lines. Rate and ETA are from the average since the start: a steady figure is
 * more useful to a person than an instantaneous one that jumps with page-cache hits. */
#include "progress.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

/* Monotonic seconds. */
double hm_progress_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double hm_wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Human byte count with decimal units. */
const char *hm_progress_bytes(uint64_t n, char *buf, size_t bufsz)
{
	static const char *units[] = {"B", "kB", "MB", "GB", "TB"};
	double v = (double)n;
	int u = 0;
	while (v >= 1000.0 && u < 4) {
		v /= 1000.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, bufsz, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, bufsz, "%.1f %s", v, units[u]);
	return buf;
}

/* Set up the display; decides once whether out is a terminal. */
void hm_progress_init(hm_progress *p, FILE *out, const char *label, uint64_t total, int quiet)
{
	memset(p, 0, sizeof *p);
	p->out = out;
	p->quiet = quiet;
	p->tty = out && isatty(fileno(out));
	snprintf(p->label, sizeof p->label, "%s", label);
	p->total = total;
	p->start = hm_progress_now();
	p->last_print = p->start;
}

/* Print one status line (in place on a terminal). */
static void print_line(hm_progress *p, double now, int final)
{
	char done[32], total[32], rate[32];
	double secs = now - p->start;
	double r = secs > 0 ? (double)p->done / secs : 0;
	hm_progress_bytes(p->done, done, sizeof done);
	hm_progress_bytes((uint64_t)r, rate, sizeof rate);
	if (final) {
		fprintf(p->out, "%s%s: %s in %.1f s (%s/s)\n", p->tty ? "\r\033[K" : "", p->label, done, secs,
			rate);
	} else if (p->total) {
		double left = r > 0 && p->total > p->done ? (double)(p->total - p->done) / r : 0;
		hm_progress_bytes(p->total, total, sizeof total);
		fprintf(p->out, "%s%s: %s of %s (%d%%), %s/s, %.0f s left%s", p->tty ? "\r\033[K" : "",
			p->label, done, total, (int)(100.0 * (double)p->done / (double)p->total), rate, left,
			p->tty ? "" : "\n");
	} else {
		fprintf(p->out, "%s%s: %s, %s/s%s", p->tty ? "\r\033[K" : "", p->label, done, rate,
			p->tty ? "" : "\n");
	}
	fflush(p->out);
}

void hm_progress_add(hm_progress *p, uint64_t n)
{
	if (!p)
		return;
	p->done += n;
	if (p->quiet || !p->out)
		return;
	double now = hm_progress_now();
	if (p->tty) {
		if (now - p->last_print >= 0.2) {
			p->last_print = now;
			print_line(p, now, 0);
		}
		return;
	}
	if (p->total) {
		int decile = (int)(10.0 * (double)p->done / (double)p->total);
		if (decile > p->last_decile && decile < 10 && now - p->last_print >= 5.0) {
			p->last_decile = decile;
			p->last_print = now;
			print_line(p, now, 0);
		}
	} else if (now - p->last_print >= 5.0) {
		p->last_print = now;
		print_line(p, now, 0);
	}
}

void hm_progress_finish(hm_progress *p)
{
	if (!p || p->quiet || !p->out)
		return;
	print_line(p, hm_progress_now(), 1);
}
