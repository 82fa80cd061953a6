/* records: see records.h. */
#include "records.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

/* The most ACL entries one request may carry; a client cannot make us
 * allocate more than the frame could hold anyway, this keeps it explicit. */
#define ACL_ENTRIES_MAX 1024

int connect_request_decode(struct jute_reader *r, struct connect_request *ret)
{
	struct connect_request c = { 0 };

	c.protocol_version = jute_read_int(r);
	c.last_zxid_seen = jute_read_long(r);
	c.timeout_ms = jute_read_int(r);
	c.session_id = jute_read_long(r);
	jute_read_buffer(r, &c.password, &c.password_len);
	if (r->error)
		return -EBADMSG;
	if (jute_remaining(r) >= 1) {
		c.has_read_only = true;
		c.read_only = jute_read_bool(r);
	}
	*ret = c;
	return 0;
}

int path_watch_request_decode(struct jute_reader *r, struct path_watch_request *ret)
{
	struct path_watch_request p;
	jute_read_string(r, &p.path, &p.path_len);
	p.watch = jute_read_bool(r);
	if (r->error)
		return -EBADMSG;
	*ret = p;
	return 0;
}

void acl_entries_free(struct acl_entry *e, uint32_t n)
{
	for (uint32_t i = 0; e && i < n; i++) {
		free(e[i].scheme);
		free(e[i].id);
	}
	free(e);
}

struct acl_entry *acl_entries_copy(const struct acl_entry *e, uint32_t n)
{
	struct acl_entry *c = calloc(n ? n : 1, sizeof(*c));
	if (!c)
		return NULL;
	for (uint32_t i = 0; i < n; i++) {
		c[i].perms = e[i].perms;
		c[i].scheme = strdup(e[i].scheme);
		c[i].id = strdup(e[i].id);
		if (!c[i].scheme || !c[i].id) {
			acl_entries_free(c, i + 1);
			return NULL;
		}
	}
	return c;
}

int acl_vector_decode(struct jute_reader *r, struct acl_entry **ret, uint32_t *ret_count)
{
	int32_t n = jute_read_int(r);
	if (r->error || n < -1 || n > ACL_ENTRIES_MAX)
		return -EBADMSG;
	if (n <= 0) {
		*ret = NULL;
		*ret_count = 0;
		return 0;
	}
	struct acl_entry *e = calloc((size_t)n, sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (int32_t i = 0; i < n; i++) {
		const char *scheme, *id;
		int32_t slen, ilen;
		e[i].perms = jute_read_int(r);
		/* kazoo sends "" as a null string: take null as empty. */
		jute_read_string_nullable(r, &scheme, &slen);
		jute_read_string_nullable(r, &id, &ilen);
		if (r->error) {
			acl_entries_free(e, (uint32_t)i);
			return -EBADMSG;
		}
		if (slen < 0) {
			scheme = "";
			slen = 0;
		}
		if (ilen < 0) {
			id = "";
			ilen = 0;
		}
		e[i].scheme = strndup(scheme, (size_t)slen);
		e[i].id = strndup(id, (size_t)ilen);
		if (!e[i].scheme || !e[i].id) {
			acl_entries_free(e, (uint32_t)i + 1);
			return -ENOMEM;
		}
	}
	*ret = e;
	*ret_count = (uint32_t)n;
	return 0;
}

int create_request_decode(struct jute_reader *r, bool with_ttl, struct create_request *ret)
{
	struct create_request c = { 0 };
	int err;

	jute_read_string(r, &c.path, &c.path_len);
	jute_read_buffer(r, &c.data, &c.data_len);
	if (r->error)
		return -EBADMSG;
	err = acl_vector_decode(r, &c.acl, &c.acl_count);
	if (err < 0)
		return err;
	c.flags = jute_read_int(r);
	if (with_ttl)
		c.ttl_ms = jute_read_long(r);
	if (r->error) {
		acl_entries_free(c.acl, c.acl_count);
		return -EBADMSG;
	}
	*ret = c;
	return 0;
}

int delete_request_decode(struct jute_reader *r, struct delete_request *ret)
{
	struct delete_request d;
	jute_read_string(r, &d.path, &d.path_len);
	d.version = jute_read_int(r);
	if (r->error)
		return -EBADMSG;
	*ret = d;
	return 0;
}

int set_data_request_decode(struct jute_reader *r, struct set_data_request *ret)
{
	struct set_data_request s;
	jute_read_string(r, &s.path, &s.path_len);
	jute_read_buffer(r, &s.data, &s.data_len);
	s.version = jute_read_int(r);
	if (r->error)
		return -EBADMSG;
	*ret = s;
	return 0;
}

void stat_encode(struct jute_buf *b, const struct zk_stat *st)
{
	if (!jute_buf_reserve(b, ZK_STAT_BYTES))
		return;
	jute_write_long(b, st->czxid);
	jute_write_long(b, st->mzxid);
	jute_write_long(b, st->ctime);
	jute_write_long(b, st->mtime);
	jute_write_int(b, st->version);
	jute_write_int(b, st->cversion);
	jute_write_int(b, st->aversion);
	jute_write_long(b, st->ephemeral_owner);
	jute_write_int(b, st->data_length);
	jute_write_int(b, st->num_children);
	jute_write_long(b, st->pzxid);
}

int set_acl_request_decode(struct jute_reader *r, struct set_acl_request *ret)
{
	struct set_acl_request s = { 0 };
	int err;

	jute_read_string(r, &s.path, &s.path_len);
	if (r->error)
		return -EBADMSG;
	err = acl_vector_decode(r, &s.acl, &s.acl_count);
	if (err < 0)
		return err;
	s.version = jute_read_int(r);
	if (r->error) {
		acl_entries_free(s.acl, s.acl_count);
		return -EBADMSG;
	}
	*ret = s;
	return 0;
}

int auth_request_decode(struct jute_reader *r, struct auth_request *ret)
{
	struct auth_request a;
	a.type = jute_read_int(r);
	jute_read_string(r, &a.scheme, &a.scheme_len);
	jute_read_buffer(r, &a.auth, &a.auth_len);
	if (r->error)
		return -EBADMSG;
	if (a.auth_len < 0)
		a.auth_len = 0;
	*ret = a;
	return 0;
}

int path_request_decode(struct jute_reader *r, struct path_request *ret)
{
	struct path_request p;
	jute_read_string(r, &p.path, &p.path_len);
	if (r->error)
		return -EBADMSG;
	*ret = p;
	return 0;
}

int watch_request_decode(struct jute_reader *r, struct watch_request *ret)
{
	struct watch_request w;
	jute_read_string(r, &w.path, &w.path_len);
	w.type = jute_read_int(r);
	if (r->error)
		return -EBADMSG;
	*ret = w;
	return 0;
}

int multi_header_decode(struct jute_reader *r, struct multi_header *ret)
{
	struct multi_header h;
	h.type = jute_read_int(r);
	h.done = jute_read_bool(r);
	h.err = jute_read_int(r);
	if (r->error)
		return -EBADMSG;
	*ret = h;
	return 0;
}

int reconfig_request_decode(struct jute_reader *r, struct reconfig_request *ret)
{
	struct reconfig_request c;
	jute_read_string_nullable(r, &c.joining, &c.joining_len);
	jute_read_string_nullable(r, &c.leaving, &c.leaving_len);
	jute_read_string_nullable(r, &c.members, &c.members_len);
	c.config_id = jute_read_long(r);
	if (r->error)
		return -EBADMSG;
	*ret = c;
	return 0;
}

int set_watches_begin(struct set_watches_reader *it, struct jute_reader *r, bool v2)
{
	int64_t rel = jute_read_long(r);
	if (r->error)
		return -EBADMSG;
	*it = (struct set_watches_reader){ .r = r, .relative_zxid = rel, .lists = v2 ? 5 : 3 };
	return 0;
}

int set_watches_next(struct set_watches_reader *it, unsigned *ret_list, const char **ret_path,
		     int32_t *ret_path_len)
{
	struct jute_reader *r = it->r;
	while (it->left == 0) {
		if (it->next_list == it->lists)
			return 0;
		int32_t n = jute_read_int(r);
		if (r->error || n < -1)
			return -EBADMSG;
		it->list = it->next_list++;
		it->left = n > 0 ? n : 0;
	}
	const char *path;
	int32_t len;
	jute_read_string(r, &path, &len);
	if (r->error)
		return -EBADMSG;
	it->left--;
	*ret_list = it->list;
	*ret_path = path;
	*ret_path_len = len;
	return 1;
}
