/* The S3 driver's options and the few S3 operations that have no place in the generic
 * interface (bucket creation for tests and set-up). Credentials are never an option here:
 * they come from the environment, ~/.aws/credentials or a 0600 file (s3_cred.h). */
#ifndef HM_S3_H
#define HM_S3_H

#include <stddef.h>

#include "../../common/error.h"

typedef enum hm_s3_style {
	HM_S3_STYLE_AUTO = 0, /* virtual host unless the endpoint is an IP address or the bucket
			       * name is not a DNS label (then path) */
	HM_S3_STYLE_PATH,     /* https://endpoint/bucket/key */
	HM_S3_STYLE_HOST,     /* https://bucket.endpoint/key */
} hm_s3_style;

#define HM_S3_MIN_PART (5u * 1024 * 1024) /* S3's minimum for every part but the last */
#define HM_S3_DEFAULT_PART HM_S3_MIN_PART
#define HM_S3_GROW_EVERY 2000 /* parts without a size hint: the part size doubles after each */
#define HM_S3_MAX_PART (512u * 1024 * 1024)
#define HM_S3_MAX_PARTS 10000

typedef struct hm_s3_options {
	const char *endpoint; /* "https://host[:port]"; NULL: AWS, https://s3.REGION.amazonaws.com */
	const char *region;   /* NULL: AWS_REGION, then AWS_DEFAULT_REGION, then us-east-1 */
	hm_s3_style style;
	int no_verify_tls;	      /* 0: verify the server's certificate and name (the default) */
	const char *ca_file;	      /* CA bundle for private endpoints; NULL: the system's */
	const char *credentials_file; /* third credentials source (0600), after env and ~/.aws */
	size_t part_size;	      /* first multipart part size; 0: 5 MiB (the minimum) */
	int parallel;		      /* parts in flight; 0: 2. Memory: (parallel + 1) * part_size */
	unsigned grow_every;	      /* without a size hint, parts double after this many; 0: 2000 */
	int max_attempts;	      /* per request, with backoff; 0: 5 */
	long connect_timeout_s;	      /* 0: 10 */
	long stall_timeout_s;	      /* a transfer moving < 1 byte/s this long fails; 0: 60 */
	long clock_offset_s;	      /* tests only: added to the signing clock (a skewed host) */
	unsigned lock_ttl_s;	      /* lease of the repository lock; 0: 600 */
	unsigned list_page;	      /* keys per list request (max-keys); 0: 1000 (tests use less) */
} hm_s3_options;

struct hm_storage;

/* Create or delete the bucket of an s3 storage (tests, set-up). Delete needs it empty. */
int hm_s3_bucket_create(struct hm_storage *st, hm_error *err);
int hm_s3_bucket_delete(struct hm_storage *st, hm_error *err);

/* Counters for tests and progress: requests sent, retries made, bytes uploaded. */
typedef struct hm_s3_stats {
	unsigned long requests, retries;
	unsigned long long bytes_up, bytes_down;
	unsigned parts_max_in_flight;
} hm_s3_stats;
void hm_s3_get_stats(const struct hm_storage *st, hm_s3_stats *out);

#endif
