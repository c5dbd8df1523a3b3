/* S3 credentials, found the way AWS tools find them, in this order:
 *   1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN) in the environment;
 *   2. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials),
 *      profile AWS_PROFILE or "default";
 *   3. a file named by an option (same format; a [default]/AWS_PROFILE section or bare keys).
 * Files must be regular files owned by the user (or root) and not readable or writable by
 * group or others (0600), else they are refused. Secrets are never printed: messages name the
 * source, not the values. */
#ifndef HM_S3_CRED_H
#define HM_S3_CRED_H

#include <stddef.h>

#include "../../common/error.h"

typedef struct hm_s3_credentials {
	char access_key[129];
	char secret_key[129];
	char session_token[4097]; /* "" when none */
	char source[512];	  /* "environment", "/root/.aws/credentials [default]", ... */
} hm_s3_credentials;

/* Find credentials (option_file may be NULL). HM_EXIT_INPUT when there are none,
 * HM_EXIT_PERMISSION for a file others can read. 0 or -1. */
int hm_s3_credentials_load(const char *option_file, hm_s3_credentials *out, hm_error *err);

/* Parse credentials-file text (INI: [section], key = value, '#'/';' comments) for profile
 * (NULL: "default"; with allow_bare, keys before any section count too). what names the file
 * in errors. 0 found, 1 the profile or its keys are absent, -1 malformed (err set). */
int hm_s3_credentials_parse(const char *text, size_t len, const char *profile, int allow_bare,
			    const char *what, hm_s3_credentials *out, hm_error *err);

/* Overwrite the secrets in memory. */
void hm_s3_credentials_wipe(hm_s3_credentials *c);

#endif
