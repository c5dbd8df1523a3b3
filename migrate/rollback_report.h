/* What `rollback --to-snapshot` (or --discard-new-writes) leaves out: the tables whose
 * fingerprint now differs from the one `up` recorded before the migration, with row counts.
 * Pure functions over two fingerprints (migrate/fingerprint.h's JSON form). */
#ifndef HM_ROLLBACK_REPORT_H
#define HM_ROLLBACK_REPORT_H

#include <json-c/json.h>
#include <stdio.h>

/* The differences between the fingerprint recorded before the migration (before) and the
 * live one (now): a new JSON array of {"database", "table", "change" ("changed", "new",
 * "dropped"), "rows_before", "rows_now"} (rows -1 where the table does not exist), one per
 * table that differs, in the fingerprints' order; databases that appeared or vanished give
 * one entry with "table" "" and change "new database" / "dropped database". NULL when out of
 * memory. */
json_object *hm_rb_fingerprint_diff(json_object *before, json_object *now);

/* Print the array of hm_rb_fingerprint_diff as indented lines on f ("  db.table: 120 -> 125
 * rows, content changed"). */
void hm_rb_diff_print(json_object *diff, FILE *f);

#endif
