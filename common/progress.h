/* Progress of a long step (archiving, verifying, extracting): on a terminal one line
 * rewritten in place with bytes done, rate and time left; otherwise a plain line at most
 * every 10% (or every 5 s when the total is unknown), so logs stay readable. */
#ifndef HM_PROGRESS_H
#define HM_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct hm_progress {
	FILE *out;	/* where lines go (usually stderr) */
	int tty;	/* out is a terminal */
	int quiet;	/* print nothing at all */
	char label[64]; /* e.g. "snapshot" */
	uint64_t total; /* expected bytes, 0 if unknown */
	uint64_t done;	/* bytes so far */
	double start;	/* monotonic seconds at hm_progress_init */
	double last_print;
	int last_decile;
} hm_progress;

/* Start a progress display on out for `total` bytes (0 = unknown). quiet != 0 prints nothing. */
void hm_progress_init(hm_progress *p, FILE *out, const char *label, uint64_t total, int quiet);

/* Add n bytes done; prints when due (at most 5 times a second on a terminal). p may be NULL. */
void hm_progress_add(hm_progress *p, uint64_t n);

/* Final line: bytes, seconds, average rate. p may be NULL. */
void hm_progress_finish(hm_progress *p);

/* Format a byte count as "1.2 GB" into buf. Returns buf. */
const char *hm_progress_bytes(uint64_t n, char *buf, size_t bufsz);

/* Monotonic clock in seconds. */
double hm_progress_now(void);

/* Seconds since the epoch (wall clock, for journal timestamps that must survive a restart;
 * durations use hm_progress_now). */
double hm_wall_now(void);

#endif
