/* hive-migrate up: the fingerprint taken again after the stop when the split stack was
 * written to after step 2 (live traffic). The stopped data is what the snapshot holds and
 * what steps 7 and the rollbacks compare with, so the fingerprint must describe it, not the
 * data of step 2. */
#include <stdio.h>
#include <string.h>

#include "../common/fsutil.h"
#include "../common/progress.h"
#include "compose.h"
#include "fingerprint.h"
#include "fingerprint_snap.h"
#include "health.h"
#include "up_int.h"

/* Start the split database alone, fingerprint it under a snapshot whose xmax is next_xid
 * (the nextXid of the shutdown checkpoint just read: fingerprint_snap.h explains why that
 * snapshot sees exactly the shut-down data, whatever a client writes meanwhile), and make
 * that the migration's fingerprint. 0 done, 1 a client wrote before the snapshot could be
 * opened (logged; the caller stops and tries again), -1 err. The caller stops it again. */
int hm_up_refingerprint(hm_mig *m, unsigned long long next_xid, hm_error *err)
{
	hm_journal *j = &m->j;
	hm_pg_params sp = hm_mig_split_params(m);
	hm_fpsnap *fs = NULL;
	json_object *fp = NULL;
	char why[700] = "";
	int rc = -1;
	hm_mig_log(m, "starting the split database alone (its API stays stopped) to fingerprint the "
		      "data as it was shut down");
	if (hm_compose_split_start_db(&m->stack, err) != 0 ||
	    hm_pg_wait_accepting("the split database", &sp, m->health_timeout, err) != 0)
		return -1;
	if (hm_major_fail_point("before:refingerprint-snapshot", err) != 0) /* test hook */
		return -1;
	int o = hm_fpsnap_open(&sp, next_xid, &fs, why, sizeof why, err);
	if (o != 0) {
		if (o == 1)
			hm_mig_log(m, "%s; stopping it and trying again", why);
		return o;
	}
	if (hm_fpsnap_start(fs, err) != 0 || hm_fpsnap_finish(fs, &fp, err) != 0)
		goto cleanup;
	const char *s = json_object_to_json_string_ext(fp, JSON_C_TO_STRING_PRETTY);
	if (hm_write_file_atomic(j->fingerprint_file, s, strlen(s), 0600, err) != 0)
		goto cleanup;
	j->fp_next_xid = next_xid;
	if (hm_mig_save(m, err) != 0)
		goto cleanup;
	hm_mig_log(m, "fingerprint of the shut-down data (snapshot %s): %lld rows", hm_fpsnap_snapshot(fs),
		   hm_fingerprint_total_rows(fp));
	rc = 0;
cleanup:
	hm_fpsnap_free(fs);
	json_object_put(fp);
	return rc;
}
