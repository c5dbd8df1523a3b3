/* Error context helpers. Messages are kept in a fixed buffer so that error paths never
 * allocate. */
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

int hm_error_set(hm_error *err, hm_exit code, const char *fmt, ...)
{
	va_list ap;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	err->hint[0] = '\0';
	return -1;
}

int hm_error_hint(hm_error *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->hint, sizeof err->hint, fmt, ap);
	va_end(ap);
	return -1;
}

int hm_error_prefix(hm_error *err, const char *fmt, ...)
{
	char prefix[512], old[sizeof err->message];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, err->message, sizeof old);
	snprintf(err->message, sizeof err->message, "%s: %s", prefix, old);
	return -1;
}

int hm_error_errno(hm_error *err, int errnum, const char *what, const char *path)
{
	hm_exit code;
	switch (errnum) {
	case ENOENT:
	case ENOTDIR:
		code = HM_EXIT_INPUT;
		break;
	case EACCES:
	case EPERM:
		code = HM_EXIT_PERMISSION;
		break;
	case ENOSPC:
	case EDQUOT:
		code = HM_EXIT_NO_SPACE;
		break;
	default:
		code = HM_EXIT_IO;
	}
	return hm_error_set(err, code, "cannot %s \"%s\": %s", what, path, strerror(errnum));
}

void hm_error_print(const hm_error *err, FILE *f)
{
	if (err->hint[0])
		fprintf(f, "hive-migrate: error: %s (hint: %s)\n", err->message, err->hint);
	else
		fprintf(f, "hive-migrate: error: %s\n", err->message);
}
