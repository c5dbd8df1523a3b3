/* libFuzzer target for the pg_control parser: any bytes must give either a parsed control
 * file with a matching CRC or an error with a message, never a crash or an overread.
 * Seeds: real pg_control files of PostgreSQL 15, 17 and 18 (fuzz_pg_control.seeds/). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../common/pg_control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hm_pg_control c;
	hm_error err;
	hm_pg_control_fault fault = HM_PGC_OK;
	int rc = hm_pg_control_check(data, size, "fuzz", &c, &fault, &err);
	if (rc == 0) {
		/* a success is a real match: CRC equal, known major, a state name */
		if (c.crc_stored != c.crc_computed || c.major < 15 || c.major > 18 || fault != HM_PGC_OK ||
		    !hm_db_state_name(c.state))
			__builtin_trap();
	} else if (fault == HM_PGC_OK || err.message[0] == '\0' ||
		   !strcmp(hm_pg_control_fault_code(fault), "unknown")) {
		__builtin_trap();
	}
	return 0;
}
