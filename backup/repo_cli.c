/* Shared repository options (repo_cli.h). */
#include "repo_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hm_repo_cli_part_size(const char *arg, size_t *out)
{
	static const struct {
		const char *suffix;
		unsigned long long mult;
	} units[] = {{"", 1},		{"B", 1},
		     {"K", 1ull << 10}, {"KiB", 1ull << 10},
		     {"M", 1ull << 20}, {"MiB", 1ull << 20},
		     {"G", 1ull << 30}, {"GiB", 1ull << 30}};
	char *end;
	if (!arg || arg[0] < '0' || arg[0] > '9')
		return -1;
	unsigned long long v = strtoull(arg, &end, 10);
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(end, units[i].suffix) != 0)
			continue;
		if (v > (unsigned long long)HM_S3_MAX_PART / units[i].mult)
			return -1;
		v *= units[i].mult;
		if (v < HM_S3_MIN_PART || v > HM_S3_MAX_PART)
			return -1;
		*out = (size_t)v;
		return 0;
	}
	return -1;
}

int hm_repo_cli_option(hm_repo_cli *c, int opt, const char *arg)
{
	hm_s3_options *s = &c->conn.s3;
	switch (opt) {
	case HM_REPO_OPT_S3_ENDPOINT:
		s->endpoint = arg;
		return 1;
	case HM_REPO_OPT_S3_REGION:
		s->region = arg;
		return 1;
	case HM_REPO_OPT_S3_URI_STYLE:
		if (!strcmp(arg, "path"))
			s->style = HM_S3_STYLE_PATH;
		else if (!strcmp(arg, "host"))
			s->style = HM_S3_STYLE_HOST;
		else {
			fprintf(stderr,
				"hive-migrate: error: --s3-uri-style must be path or host, not \"%s\"\n",
				arg);
			return -1;
		}
		return 1;
	case HM_REPO_OPT_S3_CA_FILE:
		s->ca_file = arg;
		return 1;
	case HM_REPO_OPT_S3_CREDENTIALS_FILE:
		s->credentials_file = arg;
		return 1;
	case HM_REPO_OPT_S3_LOCK_TTL: {
		char *end;
		long v = strtol(arg, &end, 10);
		if (end == arg || *end || v < 10 || v > 86400) {
			fprintf(stderr, "hive-migrate: error: --s3-lock-ttl must be 10..86400 seconds\n");
			return -1;
		}
		s->lock_ttl_s = (unsigned)v;
		return 1;
	}
	case HM_REPO_OPT_S3_PART_SIZE:
		if (hm_repo_cli_part_size(arg, &s->part_size) != 0) {
			fprintf(stderr,
				"hive-migrate: error: --s3-part-size must be 5MiB..512MiB (e.g. 8MiB, "
				"64MiB), not "
				"\"%s\" (hint: S3's minimum part is 5 MiB; each part in flight is held in "
				"memory)\n",
				arg);
			return -1;
		}
		return 1;
	case HM_REPO_OPT_KEY_FILE:
		c->key_file = arg;
		return 1;
	case HM_REPO_OPT_PASSPHRASE_FILE:
		c->passphrase_file = arg;
		return 1;
	default:
		return 0;
	}
}

int hm_repo_cli_secret(const hm_repo_cli *c, hm_crypt_secret **out, hm_error *err)
{
	*out = NULL;
	if (c->key_file && c->passphrase_file)
		return hm_error_set(err, HM_EXIT_USAGE,
				    "--encrypt-key-file and --encrypt-passphrase-file exclude each other");
	if (c->key_file)
		return hm_crypt_secret_from_key_file(c->key_file, out, err);
	if (c->passphrase_file)
		return hm_crypt_secret_from_passphrase_file(c->passphrase_file, out, err);
	return 0;
}
