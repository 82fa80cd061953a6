/* txn_codec: see txn_codec.h. */
#include "txn_codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "path.h"

#define TXN_OPS_MAX 100000

/* The bytes txn_encode() writes for t: reserved at once, the buffer is
 * allocated once instead of doubling its way up (a multi's was realloc'ed
 * four or five times per write, and glibc's consolidation of the freed
 * pieces showed among the top costs of a multi). */
static size_t encoded_size(const struct txn *t)
{
	size_t n = 4 + 8 + 8 + 4 + 4 + 8 + 4;
	for (uint32_t i = 0; i < t->op_count; i++) {
		const struct txn_op *o = &t->ops[i];
		n += 4 + 4 + 4 + 4 + (o->path ? o->path_len : 0) + 4 +
		     (o->data && o->data_len > 0 ? (size_t)o->data_len : 0) + 4;
		for (uint32_t k = 0; k < o->acl_count; k++)
			n += 4 + 4 + strlen(o->acl[k].scheme) + 4 + strlen(o->acl[k].id);
		n += 8 + 4 + 4 + 8 + 4 + sizeof(o->password);
	}
	return n;
}

void txn_encode(struct jute_buf *b, const struct txn *t)
{
	jute_buf_reserve(b, encoded_size(t));
	jute_write_int(b, TXN_CODEC_VERSION);
	jute_write_long(b, t->time_ms);
	jute_write_long(b, t->session_id);
	jute_write_int(b, t->request_op);
	jute_write_int(b, (int32_t)t->origin);
	jute_write_long(b, (int64_t)t->origin_seq);
	jute_write_int(b, (int32_t)t->op_count);
	for (uint32_t i = 0; i < t->op_count; i++) {
		const struct txn_op *o = &t->ops[i];
		jute_write_int(b, o->type);
		jute_write_int(b, o->request_type);
		jute_write_int(b, o->err);
		jute_write_string(b, o->path, o->path ? (int32_t)o->path_len : -1);
		jute_write_buffer(b, o->data, o->data ? o->data_len : (o->data_len < 0 ? -1 : 0));
		jute_write_int(b, (int32_t)o->acl_count);
		for (uint32_t k = 0; k < o->acl_count; k++) {
			jute_write_int(b, o->acl[k].perms);
			jute_write_string(b, o->acl[k].scheme, (int32_t)strlen(o->acl[k].scheme));
			jute_write_string(b, o->acl[k].id, (int32_t)strlen(o->acl[k].id));
		}
		jute_write_long(b, o->owner);
		jute_write_int(b, o->version);
		jute_write_int(b, o->parent_child_creates);
		jute_write_long(b, o->session_id);
		jute_write_int(b, (int32_t)o->timeout_ms);
		jute_write_raw(b, o->password, sizeof(o->password));
	}
}

static char *dup_string(struct jute_reader *r, uint32_t *ret_len)
{
	const char *s;
	int32_t len;
	jute_read_string_nullable(r, &s, &len);
	if (r->error || len < 0)
		return NULL;
	char *c = malloc((size_t)len + 1);
	if (!c)
		return NULL;
	memcpy(c, s, (size_t)len);
	c[len] = 0;
	if (ret_len)
		*ret_len = (uint32_t)len;
	return c;
}

/* An op type txn_apply() knows: any other is not a txn of this version
 * (and would stop the server that applied it). */
static bool known_type(int32_t type)
{
	switch (type) {
	case TXN_OP_CREATE:
	case TXN_OP_DELETE:
	case TXN_OP_SET_DATA:
	case TXN_OP_SET_ACL:
	case TXN_OP_CHECK:
	case TXN_OP_CREATE_SESSION:
	case TXN_OP_CLOSE_SESSION:
	case TXN_OP_ERROR:
		return true;
	}
	return false;
}

/* (A multi's check op has none: it was checked at prep, and applies as nothing.) */
static bool has_path(int32_t type)
{
	return type == TXN_OP_CREATE || type == TXN_OP_DELETE || type == TXN_OP_SET_DATA ||
	       type == TXN_OP_SET_ACL;
}

static int decode_op(struct jute_reader *r, struct txn_op *o)
{
	const char *path;
	int32_t plen;

	o->type = jute_read_int(r);
	o->request_type = jute_read_int(r);
	o->err = jute_read_int(r);
	jute_read_string_nullable(r, &path, &plen);
	if (r->error || !known_type(o->type))
		return -EBADMSG;
	/* The ops on a node name one by a valid path, as prep made it: apply
	 * walks it to its parent. */
	if (has_path(o->type) && (plen < 0 || !path_valid(path, (size_t)plen, false)))
		return -EBADMSG;
	if (plen >= 0) {
		o->path = malloc((size_t)plen + 1);
		if (!o->path)
			return -ENOMEM;
		memcpy(o->path, path, (size_t)plen);
		o->path[plen] = 0;
		o->path_len = (uint32_t)plen;
	}
	const uint8_t *data;
	jute_read_buffer(r, &data, &o->data_len);
	if (r->error)
		return -EBADMSG;
	if (o->data_len > 0) {
		o->data = malloc((size_t)o->data_len);
		if (!o->data)
			return -ENOMEM;
		memcpy(o->data, data, (size_t)o->data_len);
	}
	int32_t n = jute_read_int(r);
	if (r->error || n < 0 || (size_t)n > jute_remaining(r))
		return -EBADMSG;
	if (n > 0) {
		o->acl = calloc((size_t)n, sizeof(*o->acl));
		if (!o->acl)
			return -ENOMEM;
		for (int32_t k = 0; k < n; k++) {
			o->acl[k].perms = jute_read_int(r);
			o->acl[k].scheme = dup_string(r, NULL);
			o->acl[k].id = dup_string(r, NULL);
			o->acl_count = (uint32_t)k + 1;
			if (!o->acl[k].scheme || !o->acl[k].id)
				return r->error ? -EBADMSG : -ENOMEM;
		}
	}
	o->owner = jute_read_long(r);
	o->version = jute_read_int(r);
	o->parent_child_creates = jute_read_int(r);
	o->session_id = jute_read_long(r);
	o->timeout_ms = (uint32_t)jute_read_int(r);
	if (r->error || jute_remaining(r) < sizeof(o->password))
		return -EBADMSG;
	memcpy(o->password, r->p + r->pos, sizeof(o->password));
	r->pos += sizeof(o->password);
	return 0;
}

int txn_decode(const uint8_t *p, size_t len, struct txn **ret)
{
	struct jute_reader r;
	jute_reader_init(&r, p, len);
	int32_t version = jute_read_int(&r);
	if ((version != TXN_CODEC_VERSION && version != 1) || r.error)
		return -EBADMSG;
	int64_t time_ms = jute_read_long(&r);
	int64_t session_id = jute_read_long(&r);
	int32_t request_op = jute_read_int(&r);
	uint32_t origin = 0;
	uint64_t origin_seq = 0;
	if (version >= 2) {
		origin = (uint32_t)jute_read_int(&r);
		origin_seq = (uint64_t)jute_read_long(&r);
	}
	int32_t n = jute_read_int(&r);
	if (r.error || n < 0 || n > TXN_OPS_MAX)
		return -EBADMSG;
	struct txn *t = txn_new((uint32_t)n);
	if (!t)
		return -ENOMEM;
	t->time_ms = time_ms;
	t->session_id = session_id;
	t->request_op = request_op;
	t->origin = origin;
	t->origin_seq = origin_seq;
	for (int32_t i = 0; i < n; i++) {
		int err = decode_op(&r, &t->ops[i]);
		if (err < 0) {
			txn_free(t);
			return err;
		}
	}
	if (jute_remaining(&r) != 0) {
		txn_free(t);
		return -EBADMSG;
	}
	*ret = t;
	return 0;
}
