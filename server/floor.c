/* floor: see floor.h. */
#include "floor.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "proto.h"
#include "records.h"
#include "reply.h"
#include "request_path.h"
#include "watch.h"

#define FLOOR_PARENT_MAX 512

/* What the replies are made of; one server, one loop: no locking. */
static struct {
	int64_t zxid;
	int32_t value_len;			/* of the last value written */
	uint32_t children;			/* creates under parent */
	char parent[FLOOR_PARENT_MAX];
	size_t parent_len;
	struct jute_buf names;			/* "k0" .. "k<children-1>", encoded */
	uint32_t names_count;
} fl = { .value_len = 100 };

static const uint8_t value_bytes[1 << 20];

static void write_stat(struct conn *c)
{
	struct zk_stat st = { .czxid = fl.zxid, .mzxid = fl.zxid, .pzxid = fl.zxid,
			      .data_length = fl.value_len };
	stat_encode(&c->obuf, &st);
}

static void note_create(const char *path, int32_t len)
{
	const char *slash = memrchr(path, '/', (size_t)len);
	size_t plen = slash ? (size_t)(slash - path) : 0;
	if (plen >= FLOOR_PARENT_MAX)
		return;
	if (plen != fl.parent_len || memcmp(path, fl.parent, plen) != 0) {
		memcpy(fl.parent, path, plen);
		fl.parent_len = plen;
		fl.children = 0;
	}
	fl.children++;
}

/* The names a getChildren answers, encoded once (as the real server copies
 * names it holds, not formats them). */
static const struct jute_buf *children_names(void)
{
	if (fl.names_count > fl.children) {
		fl.names.len = 0;
		fl.names_count = 0;
	}
	while (fl.names_count < fl.children && !fl.names.error) {
		char name[16];
		int n = snprintf(name, sizeof(name), "k%u", fl.names_count++);
		jute_write_string(&fl.names, name, n);
	}
	return &fl.names;
}

static void set_value(int32_t len)
{
	fl.value_len = len < 0 ? -1 : len > (int32_t)sizeof(value_bytes) ? (int32_t)sizeof(value_bytes) : len;
}

static void deliver(void *ctx, struct watch_owner *o, int event_type, const char *path, size_t len,
		    const void *node)
{
	struct conn *c = container_of(o, struct conn, watches);
	if (c->state != CONN_CLOSING)
		reply_event(c, fl.zxid, event_type, path, len);
}

/* One write op, as a request or inside a multi; its result goes to obuf. */
static int write_op_answer(struct request_path *p, struct conn *c, int32_t op,
			   struct jute_reader *r, bool with_stat)
{
	switch (op) {
	case ZK_OP_CREATE: case ZK_OP_CREATE2: case ZK_OP_CREATE_CONTAINER: case ZK_OP_CREATE_TTL: {
		struct create_request q;
		if (create_request_decode(r, op == ZK_OP_CREATE_TTL, &q) < 0)
			return -EBADMSG;
		acl_entries_free(q.acl, q.acl_count);
		fl.zxid++;
		note_create(q.path, q.path_len);
		set_value(q.data_len);
		jute_write_string(&c->obuf, q.path, q.path_len);
		if (with_stat && op != ZK_OP_CREATE)
			write_stat(c);
		return 0;
	}
	case ZK_OP_DELETE: case ZK_OP_CHECK: {
		struct delete_request q;	/* check: a path and a version too */
		if (delete_request_decode(r, &q) < 0)
			return -EBADMSG;
		fl.zxid += op == ZK_OP_DELETE;
		return 0;
	}
	case ZK_OP_SET_DATA: {
		struct set_data_request q;
		if (set_data_request_decode(r, &q) < 0)
			return -EBADMSG;
		fl.zxid++;
		set_value(q.data_len);
		write_stat(c);
		return 0;
	}
	default:
		return -EBADMSG;
	}
}

/* A setData's watches fire before its reply is begun, as the real server's
 * events leave before the reply (on the writer's own connection too). */
static int fire_watches(struct request_path *p, int32_t op, const uint8_t *body, uint32_t len)
{
	struct jute_reader r;
	struct set_data_request q;
	struct multi_header h;
	jute_reader_init(&r, body, len);
	if (op == ZK_OP_SET_DATA) {
		if (set_data_request_decode(&r, &q) < 0)
			return -EBADMSG;
		watch_trigger(p->watches, ZK_EVENT_NODE_DATA_CHANGED, q.path, (size_t)q.path_len, NULL,
			      deliver, NULL);
		return 0;
	}
	while (multi_header_decode(&r, &h) == 0 && !h.done) {
		if (h.type != ZK_OP_SET_DATA)
			return 0;	/* the rest is not read here: no watches of it */
		if (set_data_request_decode(&r, &q) < 0)
			return -EBADMSG;
		watch_trigger(p->watches, ZK_EVENT_NODE_DATA_CHANGED, q.path, (size_t)q.path_len, NULL,
			      deliver, NULL);
	}
	return 0;
}

static int multi_answer(struct request_path *p, struct conn *c, struct jute_reader *r)
{
	struct multi_header h;
	for (;;) {
		if (multi_header_decode(r, &h) < 0)
			return -EBADMSG;
		if (h.done)
			break;
		jute_write_int(&c->obuf, h.type);
		jute_write_bool(&c->obuf, false);
		jute_write_int(&c->obuf, 0);
		int err = write_op_answer(p, c, h.type, r, true);
		if (err < 0)
			return err;
	}
	jute_write_int(&c->obuf, -1);
	jute_write_bool(&c->obuf, true);
	jute_write_int(&c->obuf, -1);
	return 0;
}

static int read_answer(struct request_path *p, struct conn *c, int32_t op, struct jute_reader *r)
{
	struct path_watch_request q;
	if (path_watch_request_decode(r, &q) < 0)
		return -EBADMSG;
	if (q.watch) {
		uint8_t kind = op == ZK_OP_GET_CHILDREN || op == ZK_OP_GET_CHILDREN2 ? WATCH_CHILD
										: WATCH_DATA;
		if (!watch_has(p->watches, &c->watches, q.path, (size_t)q.path_len, kind) &&
		    watch_add(p->watches, &c->watches, q.path, (size_t)q.path_len, kind) < 0)
			return -ENOMEM;
	}
	if (op == ZK_OP_GET_DATA)
		jute_write_buffer(&c->obuf, fl.value_len < 0 ? NULL : value_bytes, fl.value_len);
	if (op == ZK_OP_GET_CHILDREN || op == ZK_OP_GET_CHILDREN2) {
		const struct jute_buf *names = children_names();
		if (names->error)
			return -ENOMEM;
		jute_write_int(&c->obuf, (int32_t)fl.names_count);
		jute_write_raw(&c->obuf, names->data, names->len);
	}
	if (op != ZK_OP_GET_CHILDREN)
		write_stat(c);
	return 0;
}

int floor_answer(struct request_path *p, struct conn *c, int32_t xid, int32_t op,
		 const uint8_t *body, uint32_t len)
{
	struct jute_reader r;
	jute_reader_init(&r, body, len);
	size_t start;
	int err;
	switch (op) {
	case ZK_OP_EXISTS: case ZK_OP_GET_DATA: case ZK_OP_GET_CHILDREN: case ZK_OP_GET_CHILDREN2:
		start = reply_begin(c, xid, fl.zxid, ZOK);
		err = read_answer(p, c, op, &r);
		break;
	case ZK_OP_CREATE: case ZK_OP_CREATE2: case ZK_OP_CREATE_CONTAINER: case ZK_OP_CREATE_TTL:
	case ZK_OP_DELETE: case ZK_OP_SET_DATA:
		if (op == ZK_OP_SET_DATA && fire_watches(p, op, body, len) < 0)
			return -EBADMSG;
		start = reply_begin(c, xid, fl.zxid + 1, ZOK);
		err = write_op_answer(p, c, op, &r, true);
		break;
	case ZK_OP_MULTI:
		if (fire_watches(p, op, body, len) < 0)
			return -EBADMSG;
		start = reply_begin(c, xid, fl.zxid + 1, ZOK);
		err = multi_answer(p, c, &r);
		break;
	case ZK_OP_SYNC: {
		struct path_request q;
		if (path_request_decode(&r, &q) < 0)
			return -EBADMSG;
		start = reply_begin(c, xid, fl.zxid, ZOK);
		jute_write_string(&c->obuf, q.path, q.path_len);
		err = 0;
		break;
	}
	default:
		return 0;
	}
	if (err < 0) {
		c->obuf.len = start;	/* nothing of a reply that was not made */
		return err;
	}
	reply_end(c, start);
	return 1;
}
