/* The fingerprint of a server just started on a cleanly shut down data directory, taken
 * under one snapshot that provably predates every write made after the start, by two
 * workers in parallel, while the caller does something else (the health wait of up).
 *
 * Why it is sound (PostgreSQL sources, 15 to 18): at a start from a clean shutdown, no
 * redo, StartupXLOG sets nextXid from the shutdown checkpoint and latestCompletedXid to
 * nextXid - 1 (access/transam/xlog.c); a snapshot's xmax is latestCompletedXid + 1
 * (GetSnapshotData, storage/ipc/procarray.c), and pg_current_snapshot() gives it with its
 * epoch (utils/adt/xid8funcs.c). Every XID below the checkpoint's nextXid belongs to the
 * old cluster; every transaction of the new server has an XID at or above it, and a
 * snapshot sees no XID >= its xmax. So a REPEATABLE READ snapshot whose xmax equals the
 * nextXid read from pg_control before the start sees exactly the data as it was at the
 * shutdown, whatever the new application writes meanwhile. The snapshot is shared with a
 * second connection by pg_export_snapshot() / SET TRANSACTION SNAPSHOT (same database
 * only: ImportSnapshot refuses another database); each other database gets its own
 * snapshot, checked the same way. When a check fails the caller falls back to the
 * sequential fingerprint after the health wait. Output: the format of fingerprint.h. */
#ifndef HM_FINGERPRINT_SNAP_H
#define HM_FINGERPRINT_SNAP_H

#include <json-c/json.h>
#include <stdint.h>

#include "../common/error.h"
#include "health.h"

typedef struct hm_fpsnap hm_fpsnap;

/* Open the snapshots on the server p points at and check them against next_xid (the
 * nextXid of the data directory's shutdown checkpoint, epoch included). 0: consistent,
 * *out ready for hm_fpsnap_start; 1: a snapshot does not predate the server's writes (why
 * says which); -1: err. Nothing to free unless 0. */
int hm_fpsnap_open(const hm_pg_params *p, uint64_t next_xid, hm_fpsnap **out, char *why, size_t whysz,
		   hm_error *err);

/* The snapshot of the first database, as pg_current_snapshot() printed it (xmin:xmax:xip). */
const char *hm_fpsnap_snapshot(const hm_fpsnap *s);

/* Start the workers. 0 or -1 (err; then hm_fpsnap_free only). */
int hm_fpsnap_start(hm_fpsnap *s, hm_error *err);

/* Wait for the workers; *out is the fingerprint (json_object_put it). 0 or -1 (err). */
int hm_fpsnap_finish(hm_fpsnap *s, json_object **out, hm_error *err);

/* How many tables, and in how many pieces (queries) they are read. */
void hm_fpsnap_size(const hm_fpsnap *s, int *tables, int *pieces);

/* Seconds from hm_fpsnap_start to the last worker done (after hm_fpsnap_finish). */
double hm_fpsnap_seconds(const hm_fpsnap *s);

/* Close the connections (ending their transactions) and free. Waits for started workers. */
void hm_fpsnap_free(hm_fpsnap *s);

#endif
