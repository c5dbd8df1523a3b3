/* Inside the repository layer: what repo.c (local directory, dispatch), repo_s3.c (object
 * store) and repo_io.c (archive streams, encryption) share. Not for the commands. */
#ifndef HM_REPO_INT_H
#define HM_REPO_INT_H

#include "repo.h"

/* The private local work directory of r (created 0700 under $TMPDIR, else /var/tmp, on
 * first use; removed by hm_repo_close). A cache inside a const handle. The fd, or -1. */
int hm_repo_stage_fd(const hm_repo *r, hm_error *err);

/* Fill m as a broken entry named name (its backup.json could not be read: why in e). */
void hm_repo_mark_broken(hm_backup_meta *m, const char *name, const hm_error *e);

/* Decode the backup.json text of the directory name into m; 0, or -1 with e set (the
 * caller marks it broken). */
int hm_repo_decode_entry(const char *name, const char *text, const char *disp, hm_backup_meta *m,
			 hm_error *e);

/* Order metadata by id. */
int hm_repo_cmp_meta(const void *a, const void *b);

/* Object-store side (repo_s3.c): the same contracts as the hm_repo_ functions. */
int hm_repo_s3_open(hm_repo *r, const char *url, const hm_repo_conn *conn, int create, hm_repo_lock lock,
		    hm_error *err);
void hm_repo_s3_close(hm_repo *r);
int hm_repo_s3_list(const hm_repo *r, hm_backup_meta **out, size_t *n, hm_error *err);
int hm_repo_s3_save_meta(const hm_repo *r, const hm_backup_meta *m, int exclusive, hm_error *err);
int hm_repo_s3_remove(const hm_repo *r, const char *id, hm_error *err);

/* Storage failures of an object store become HM_EXIT_STORAGE (the server or the network),
 * other codes (permission, missing bucket, locked, ...) stay. Returns -1. */
int hm_repo_s3_fail(hm_error *err);

#endif
