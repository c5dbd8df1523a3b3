/* The command-line options every repository command shares (backup, backups, status): how
 * to reach an s3:// repository and which key encrypts or decrypts. One table, one parser,
 * one help text, so the commands cannot drift apart. Credentials are never options: they
 * come from the environment, ~/.aws/credentials or a 0600 file (backup/storage/s3_cred.h). */
#ifndef HM_REPO_CLI_H
#define HM_REPO_CLI_H

#include <getopt.h>

#include "../common/crypt.h"
#include "../common/error.h"
#include "repo.h"

enum {
	HM_REPO_OPT_S3_ENDPOINT = 0x1200, /* above HM_STACK_OPT_BASE's range (up, rollback take both) */
	HM_REPO_OPT_S3_REGION,
	HM_REPO_OPT_S3_URI_STYLE,
	HM_REPO_OPT_S3_CA_FILE,
	HM_REPO_OPT_S3_CREDENTIALS_FILE,
	HM_REPO_OPT_S3_LOCK_TTL,
	HM_REPO_OPT_S3_PART_SIZE,
	HM_REPO_OPT_KEY_FILE,
	HM_REPO_OPT_PASSPHRASE_FILE,
};

/* Entries for a getopt_long table: the object-store options alone (up, rollback) ... */
#define HM_REPO_S3_LONGOPTS                                                                                  \
	{"s3-endpoint", required_argument, NULL, HM_REPO_OPT_S3_ENDPOINT},                                   \
		{"s3-region", required_argument, NULL, HM_REPO_OPT_S3_REGION},                               \
		{"s3-uri-style", required_argument, NULL, HM_REPO_OPT_S3_URI_STYLE},                         \
		{"s3-ca-file", required_argument, NULL, HM_REPO_OPT_S3_CA_FILE},                             \
		{"s3-credentials-file", required_argument, NULL, HM_REPO_OPT_S3_CREDENTIALS_FILE},           \
		{"s3-lock-ttl", required_argument, NULL, HM_REPO_OPT_S3_LOCK_TTL},                           \
	{                                                                                                    \
		"s3-part-size", required_argument, NULL, HM_REPO_OPT_S3_PART_SIZE                            \
	}

/* ... and with the encryption options (backup, backups, status). */
#define HM_REPO_LONGOPTS                                                                                     \
	HM_REPO_S3_LONGOPTS, {"encrypt-key-file", required_argument, NULL, HM_REPO_OPT_KEY_FILE},            \
	{                                                                                                    \
		"encrypt-passphrase-file", required_argument, NULL, HM_REPO_OPT_PASSPHRASE_FILE              \
	}

/* The part size option's help (also in up's and rollback's). */
#define HM_REPO_CLI_PART_HELP                                                                                \
	"  --s3-part-size SIZE   first multipart part size, 5MiB..512MiB (suffix KiB, MiB, GiB or\n"         \
	"                        none for bytes; default 5MiB, doubling every 2000 parts)\n"

#define HM_REPO_CLI_HELP                                                                                     \
	"Repository (--repo DIR or --repo s3://BUCKET/PREFIX):\n"                                            \
	"  --s3-endpoint URL     the S3 server (https://host[:port]); default AWS for the region\n"          \
	"  --s3-region REGION    default AWS_REGION, AWS_DEFAULT_REGION, then us-east-1\n"                   \
	"  --s3-uri-style path|host  path-style or virtual-host addressing (default: host, or path\n"        \
	"                        for an IP address endpoint)\n"                                              \
	"  --s3-ca-file FILE     CA bundle for a private endpoint (TLS is always verified)\n"                \
	"  --s3-credentials-file FILE  a 0600 AWS credentials file, read after AWS_ACCESS_KEY_ID/\n"         \
	"                        AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN and ~/.aws/credentials\n"           \
	"                        (AWS_PROFILE); credentials are never options\n"                             \
	"  --s3-lock-ttl SECONDS the lease of the repository lock (default 600): how long a run\n"           \
	"                        that died blocks the next one\n" HM_REPO_CLI_PART_HELP                      \
	"Encryption at rest (docs/security.md):\n"                                                           \
	"  --encrypt-key-file FILE         32 raw bytes or 64 hex digits, mode 0600 (else refused)\n"        \
	"  --encrypt-passphrase-file FILE  a passphrase (0600); the key is derived with Argon2id\n"

typedef struct hm_repo_cli {
	hm_repo_conn conn;
	const char *key_file;
	const char *passphrase_file;
} hm_repo_cli;

/* Handle option opt (from HM_REPO_LONGOPTS) with its argument: 1 handled, 0 not one of
 * ours, -1 a bad value (a usage line was printed). */
int hm_repo_cli_option(hm_repo_cli *c, int opt, const char *arg);

/* Parse a part size ("8MiB", "64M", "5242880"): 0 with *out in bytes when it is within
 * HM_S3_MIN_PART..HM_S3_MAX_PART, else -1. */
int hm_repo_cli_part_size(const char *arg, size_t *out);

/* The key or passphrase named on the command line (*out NULL when none). Refuses both at
 * once (HM_EXIT_USAGE) and a file others can read (HM_EXIT_PERMISSION). 0 or -1. */
int hm_repo_cli_secret(const hm_repo_cli *c, hm_crypt_secret **out, hm_error *err);

#endif
