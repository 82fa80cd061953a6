/* jute: ZooKeeper's wire encoding (big-endian ints, length-prefixed buffers,
 * strings and vectors, -1 = null). A reader walks a received frame and
 * remembers the first error, so a decoder can read a whole record and check
 * once; a writer appends to a growable byte buffer.
 *
 * This file knows encodings only, not what any record means. */
#pragma once

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct jute_reader {
	const uint8_t *p;
	size_t len;
	size_t pos;
	int error;		/* 0, or -EBADMSG after the first short or bad read */
};

static inline void jute_reader_init(struct jute_reader *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->pos = 0;
	r->error = 0;
}

static inline size_t jute_remaining(const struct jute_reader *r)
{
	return r->len - r->pos;
}

int32_t jute_read_int(struct jute_reader *r);
int64_t jute_read_long(struct jute_reader *r);
bool jute_read_bool(struct jute_reader *r);
/* Buffers and strings point into the frame (no copy). A null (-1) gives
 * *ret_ptr = NULL, *ret_len = -1. */
void jute_read_buffer(struct jute_reader *r, const uint8_t **ret_ptr, int32_t *ret_len);
/* A string that must not be null. Its bytes are not checked here: what is
 * valid depends on the field (path_validate() checks paths). */
void jute_read_string(struct jute_reader *r, const char **ret_ptr, int32_t *ret_len);
/* A string that may be null (-1): returned as *ret_ptr NULL and *ret_len -1. */
void jute_read_string_nullable(struct jute_reader *r, const char **ret_ptr, int32_t *ret_len);

/* A growable output buffer. Allocation failure is remembered in .error. */
struct jute_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	int error;		/* 0 or -ENOMEM */
};

void jute_buf_free(struct jute_buf *b);
/* The slow path of jute_buf_reserve: grows the buffer (doubling). */
bool jute_buf_grow(struct jute_buf *b, size_t extra);

/* The writers are inline: a reply is dozens of small fields, and a call
 * plus a reserve check plus a memcpy call per field was a quarter of
 * corrald's instructions (callgrind, setData and getData under load). */
static inline bool jute_buf_reserve(struct jute_buf *b, size_t extra)
{
	if (!b->error && b->cap - b->len >= extra)
		return true;
	return jute_buf_grow(b, extra);
}

static inline void jute_write_raw(struct jute_buf *b, const void *p, size_t n)
{
	if (!jute_buf_reserve(b, n))
		return;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
}

static inline void jute_write_int(struct jute_buf *b, int32_t v)
{
	uint32_t be = htobe32((uint32_t)v);
	jute_write_raw(b, &be, 4);
}

static inline void jute_write_long(struct jute_buf *b, int64_t v)
{
	uint64_t be = htobe64((uint64_t)v);
	jute_write_raw(b, &be, 8);
}

static inline void jute_write_bool(struct jute_buf *b, bool v)
{
	uint8_t c = v ? 1 : 0;
	jute_write_raw(b, &c, 1);
}
/* len -1 writes a null buffer. */
void jute_write_buffer(struct jute_buf *b, const void *p, int32_t len);
void jute_write_string(struct jute_buf *b, const char *s, int32_t len);
/* Room for n bytes at the end, counted as written: the caller fills them
 * (jute_put_int and memcpy). NULL on allocation failure (.error set). */
uint8_t *jute_buf_extend(struct jute_buf *b, size_t n);
static inline uint8_t *jute_put_int(uint8_t *p, int32_t v)
{
	p[0] = (uint8_t)((uint32_t)v >> 24);
	p[1] = (uint8_t)((uint32_t)v >> 16);
	p[2] = (uint8_t)((uint32_t)v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}
/* Overwrites 4 bytes at offset (a length prefix reserved earlier). */
void jute_patch_int(struct jute_buf *b, size_t offset, int32_t v);
