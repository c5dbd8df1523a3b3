/* Placeholder until the reader lands (migrate/check helper replaces this file). */
#include "pg_control.h"

const char *hm_db_state_name(uint32_t state)
{
	(void)state;
	return "unknown";
}

int hm_pg_control_parse(const unsigned char *buf, size_t len, const char *what, hm_pg_control *out,
			hm_error *err)
{
	(void)buf;
	(void)len;
	(void)out;
	return hm_error_set(err, HM_EXIT_NOT_IMPLEMENTED, "pg_control reader not built yet (%s)", what);
}

int hm_pg_control_read(const char *datadir, hm_pg_control *out, hm_error *err)
{
	(void)out;
	return hm_error_set(err, HM_EXIT_NOT_IMPLEMENTED, "pg_control reader not built yet (%s)", datadir);
}

int hm_pg_version_read(const char *datadir, int *major, hm_error *err)
{
	(void)major;
	return hm_error_set(err, HM_EXIT_NOT_IMPLEMENTED, "PG_VERSION reader not built yet (%s)", datadir);
}
