/* jute: see jute.h. */
#include "jute.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"

static const uint8_t *take(struct jute_reader *r, size_t n)
{
	if (r->error || n > r->len - r->pos) {
		r->error = -EBADMSG;
		return NULL;
	}
	const uint8_t *p = r->p + r->pos;
	r->pos += n;
	return p;
}

int32_t jute_read_int(struct jute_reader *r)
{
	const uint8_t *p = take(r, 4);
	return p ? (int32_t)load_be32(p) : 0;
}

int64_t jute_read_long(struct jute_reader *r)
{
	const uint8_t *p = take(r, 8);
	return p ? (int64_t)load_be64(p) : 0;
}

bool jute_read_bool(struct jute_reader *r)
{
	const uint8_t *p = take(r, 1);
	return p && *p != 0;
}

void jute_read_buffer(struct jute_reader *r, const uint8_t **ret_ptr, int32_t *ret_len)
{
	int32_t len = jute_read_int(r);
	*ret_ptr = NULL;
	*ret_len = -1;
	if (r->error)
		return;
	if (len == -1)
		return;
	if (len < -1) {
		r->error = -EBADMSG;
		return;
	}
	const uint8_t *p = take(r, (size_t)len);
	if (!p)
		return;
	*ret_ptr = p;
	*ret_len = len;
}

void jute_read_string_nullable(struct jute_reader *r, const char **ret_ptr, int32_t *ret_len)
{
	const uint8_t *p;
	jute_read_buffer(r, &p, ret_len);
	*ret_ptr = (const char *)p;
}

void jute_read_string(struct jute_reader *r, const char **ret_ptr, int32_t *ret_len)
{
	jute_read_string_nullable(r, ret_ptr, ret_len);
	if (!r->error && *ret_len < 0)
		r->error = -EBADMSG;
}

void jute_buf_free(struct jute_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->error = 0;
}

bool jute_buf_grow(struct jute_buf *b, size_t extra)
{
	if (b->error)
		return false;
	if (b->cap - b->len >= extra)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < extra) {
		if (cap > SIZE_MAX / 2) {
			b->error = -ENOMEM;
			return false;
		}
		cap *= 2;
	}
	uint8_t *p = realloc(b->data, cap);
	if (!p) {
		b->error = -ENOMEM;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

uint8_t *jute_buf_extend(struct jute_buf *b, size_t n)
{
	if (!jute_buf_reserve(b, n))
		return NULL;
	uint8_t *p = b->data + b->len;
	b->len += n;
	return p;
}

void jute_write_buffer(struct jute_buf *b, const void *p, int32_t len)
{
	if (len < 0) {
		jute_write_int(b, -1);
		return;
	}
	jute_write_int(b, len);
	jute_write_raw(b, p, (size_t)len);
}

void jute_write_string(struct jute_buf *b, const char *s, int32_t len)
{
	jute_write_buffer(b, s, len);
}

void jute_patch_int(struct jute_buf *b, size_t offset, int32_t v)
{
	if (b->error || offset + 4 > b->len)
		return;
	store_be32(b->data + offset, (uint32_t)v);
}
