/* The storage front: checks every name once, then dispatches to the driver. Keeping the
 * checks here means a driver can trust what it is given, and both backends refuse the same
 * names (a repository copied from one to the other never meets a name only one accepts). */
#include "storage.h"

#include <stdlib.h>
#include <string.h>

int hm_storage_is_url(const char *location)
{
	return strncmp(location, "s3://", 5) == 0;
}

int hm_storage_name_check(const char *name, hm_error *err)
{
	size_t len = strlen(name);
	if (len == 0)
		return hm_error_set(err, HM_EXIT_INPUT, "storage: empty name");
	if (len > HM_STORAGE_NAME_MAX)
		return hm_error_set(err, HM_EXIT_INPUT, "storage: name longer than %d bytes",
				    HM_STORAGE_NAME_MAX);
	for (const char *c = name; *c;) {
		const char *e = c + strcspn(c, "/");
		size_t n = (size_t)(e - c);
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return hm_error_set(err, HM_EXIT_INPUT,
					    "storage: invalid name \"%.200s\" (empty, \".\" or \"..\" part)",
					    name);
		if (n >= 8 && strncmp(c, ".hm-tmp.", 8) == 0)
			return hm_error_set(err, HM_EXIT_INPUT,
					    "storage: \"%.200s\": names starting with .hm-tmp. are reserved",
					    name);
		for (const char *p = c; p < e; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\')
				return hm_error_set(
					err, HM_EXIT_INPUT,
					"storage: invalid name \"%.200s\" (control character or backslash)",
					name);
		c = *e ? e + 1 : e;
		if (*e && !*c)
			return hm_error_set(err, HM_EXIT_INPUT,
					    "storage: invalid name \"%.200s\" (ends with /)", name);
	}
	return 0;
}

static int dir_check(const char *dir, hm_error *err)
{
	return *dir ? hm_storage_name_check(dir, err) : 0;
}

int hm_storage_open(const char *location, const hm_storage_options *opt, hm_storage **out, hm_error *err)
{
	static const hm_storage_options defaults;
	*out = NULL;
	if (!opt)
		opt = &defaults;
	if (hm_storage_is_url(location))
		return hm_storage_s3_open(location, opt, out, err);
	if (strstr(location, "://"))
		return hm_error_set(err, HM_EXIT_USAGE,
				    "\"%s\": unknown storage scheme (s3:// or a directory)", location);
	return hm_storage_posix_open(location, opt, out, err);
}

void hm_storage_close(hm_storage *st)
{
	if (st)
		st->drv->close(st);
}

const char *hm_storage_location(const hm_storage *st)
{
	return st->location;
}

const char *hm_storage_driver_name(const hm_storage *st)
{
	return st->drv->name;
}

int hm_storage_open_read(hm_storage *st, const char *name, uint64_t offset, uint64_t length,
			 hm_storage_reader **out, hm_error *err)
{
	*out = NULL;
	if (hm_storage_name_check(name, err) != 0)
		return -1;
	if (length != HM_STORAGE_TO_END && offset + length < offset)
		return hm_error_set(err, HM_EXIT_INPUT, "storage: read range of \"%s\" overflows", name);
	return st->drv->open_read(st, name, offset, length, out, err);
}

int hm_storage_read(hm_storage_reader *r, void *buf, size_t len, size_t *got, hm_error *err)
{
	*got = 0;
	return len ? r->ops->read(r, buf, len, got, err) : 0;
}

uint64_t hm_storage_read_object_size(const hm_storage_reader *r)
{
	return r->object_size;
}

void hm_storage_read_close(hm_storage_reader *r)
{
	if (r)
		r->ops->close(r);
}

int hm_storage_get(hm_storage *st, const char *name, size_t max, char **out, size_t *len, hm_error *err)
{
	hm_storage_reader *r;
	*out = NULL;
	*len = 0;
	int rc = hm_storage_open_read(st, name, 0, HM_STORAGE_TO_END, &r, err);
	if (rc != 0)
		return rc;
	if (r->object_size > max) {
		unsigned long long size = r->object_size;
		hm_storage_read_close(r);
		return hm_error_set(err, HM_EXIT_CORRUPT,
				    "storage: \"%s\" in %s is %llu bytes, more than the %zu expected", name,
				    st->location, size, max);
	}
	size_t cap = (size_t)r->object_size, off = 0;
	char *buf = malloc(cap + 1);
	if (!buf) {
		hm_storage_read_close(r);
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	}
	for (;;) {
		size_t got;
		if (off == cap) {
			/* Read once more to confirm the end (a longer object is refused). */
			char extra;
			if (hm_storage_read(r, &extra, 1, &got, err) != 0)
				goto fail;
			if (got) {
				hm_error_set(err, HM_EXIT_CORRUPT, "storage: \"%s\" grew while it was read",
					     name);
				goto fail;
			}
			break;
		}
		if (hm_storage_read(r, buf + off, cap - off, &got, err) != 0)
			goto fail;
		if (!got) {
			hm_error_set(err, HM_EXIT_CORRUPT, "storage: \"%s\" ended after %zu of %zu bytes",
				     name, off, cap);
			goto fail;
		}
		off += got;
	}
	hm_storage_read_close(r);
	buf[off] = '\0';
	*out = buf;
	*len = off;
	return 0;
fail:
	hm_storage_read_close(r);
	free(buf);
	return -1;
}

int hm_storage_open_write(hm_storage *st, const char *name, unsigned flags, uint64_t size_hint,
			  hm_storage_writer **out, hm_error *err)
{
	*out = NULL;
	if (hm_storage_name_check(name, err) != 0)
		return -1;
	return st->drv->open_write(st, name, flags, size_hint, out, err);
}

int hm_storage_write(hm_storage_writer *w, const void *data, size_t len, hm_error *err)
{
	return len ? w->ops->write(w, data, len, err) : 0;
}

int hm_storage_write_commit(hm_storage_writer *w, hm_storage_info *info, hm_error *err)
{
	return w->ops->commit(w, info, err);
}

void hm_storage_write_abort(hm_storage_writer *w)
{
	if (w)
		w->ops->abort(w);
}

int hm_storage_put(hm_storage *st, const char *name, const void *data, size_t len, unsigned flags,
		   hm_error *err)
{
	hm_storage_writer *w;
	int rc = hm_storage_open_write(st, name, flags, len, &w, err);
	if (rc != 0)
		return rc;
	if (hm_storage_write(w, data, len, err) != 0) {
		hm_storage_write_abort(w);
		return -1;
	}
	return hm_storage_write_commit(w, NULL, err);
}

int hm_storage_stat(hm_storage *st, const char *name, hm_storage_info *out, hm_error *err)
{
	memset(out, 0, sizeof *out);
	if (hm_storage_name_check(name, err) != 0)
		return -1;
	return st->drv->stat(st, name, out, err);
}

int hm_storage_list(hm_storage *st, const char *dir, unsigned flags, hm_storage_list_cb cb, void *ctx,
		    hm_error *err)
{
	if (dir_check(dir, err) != 0)
		return -1;
	return st->drv->list(st, dir, flags, cb, ctx, err);
}

int hm_storage_remove(hm_storage *st, const char *const *names, size_t n, hm_error *err)
{
	for (size_t i = 0; i < n; i++)
		if (hm_storage_name_check(names[i], err) != 0)
			return -1;
	return n ? st->drv->remove(st, names, n, err) : 0;
}

int hm_storage_remove_dir(hm_storage *st, const char *dir, hm_error *err)
{
	if (dir_check(dir, err) != 0)
		return -1;
	return st->drv->remove_dir(st, dir, err);
}

int hm_storage_sweep(hm_storage *st, const char *dir, int dry_run, hm_storage_partial_cb cb, void *ctx,
		     size_t *count, hm_error *err)
{
	size_t ignored;
	if (!count)
		count = &ignored;
	*count = 0;
	if (dir_check(dir, err) != 0)
		return -1;
	return st->drv->sweep(st, dir, dry_run, cb, ctx, count, err);
}

int hm_storage_lock_acquire(hm_storage *st, const char *name, const char *owner, hm_storage_lock **out,
			    hm_error *err)
{
	*out = NULL;
	if (hm_storage_name_check(name, err) != 0)
		return -1;
	return st->drv->lock_acquire(st, name, owner ? owner : "", out, err);
}

int hm_storage_lock_check(hm_storage_lock *l, hm_error *err)
{
	return l->st->drv->lock_check(l, err);
}

void hm_storage_lock_release(hm_storage_lock *l)
{
	if (l)
		l->st->drv->lock_release(l);
}
