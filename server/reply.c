/* reply: see reply.h. */
#include "reply.h"

#include <stdio.h>

#include "log.h"
#include "proto.h"
#include "session.h"

size_t reply_begin(struct conn *c, int32_t xid, int64_t zxid, int32_t err)
{
	size_t start = c->obuf.len;
	jute_write_int(&c->obuf, 0);	/* length, patched by reply_end() */
	jute_write_int(&c->obuf, xid);
	jute_write_long(&c->obuf, zxid);
	jute_write_int(&c->obuf, err);
	return start;
}

void reply_end(struct conn *c, size_t start)
{
	struct client_stats *st = &c->hub->stats;
	ASSERT(start + 4 <= c->obuf.len || c->obuf.error);
	uint64_t bytes = c->obuf.len - start - 4;
	jute_patch_int(&c->obuf, start, (int32_t)bytes);
	c->sent++;
	st->packets_sent++;
	if (st->responses++ == 0 || bytes < st->response_min_bytes)
		st->response_min_bytes = bytes;
	if (bytes > st->response_max_bytes)
		st->response_max_bytes = bytes;
	st->response_last_bytes = bytes;
	conn_mark_dirty(c);
	if (c->obuf.error) {
		conn_close(c, LOG_WARNING, "out of memory for replies");
		return;
	}
	uint64_t queued = c->obuf.len + (c->wbuf.len - c->woff) + (c->tls_out.len - c->tls_out_off);
	/* The connections hold more than their part of the memory budget (a
	 * quarter): one that holds more than an even share of it goes. */
	const struct conn_hub *h = c->hub;
	uint64_t part = h->cfg->memory_budget_bytes / 4;
	bool over_budget = h->held_bytes > part && c->held_bytes > part / (h->open ? h->open : 1);
	if (queued > h->cfg->max_output_bytes || over_budget) {
		char why[192];
		if (over_budget)
			snprintf(why, sizeof(why), "it holds %llu bytes, over its share of the memory "
				 "budget, while connections hold %llu (memory.budget_bytes / 4)",
				 (unsigned long long)c->held_bytes, (unsigned long long)h->held_bytes);
		else
			snprintf(why, sizeof(why), "client is not reading its replies: %llu bytes "
				 "queued (client.max_output_bytes)", (unsigned long long)queued);
		if (log_limit_allow(&c->hub->slow_log, h->now_ms))
			log_event(LOG_WARNING, { .message_id = LOG_MSGID_SLOW_CLIENT,
						 .session_id = c->session ? c->session->id : 0 },
				  "connection %llu from %s closed: %s", (unsigned long long)c->id,
				  c->peer_text, why);
		conn_close(c, 0, NULL);
	}
}

void reply_error(struct conn *c, int32_t xid, int64_t zxid, int32_t err)
{
	reply_end(c, reply_begin(c, xid, zxid, err));
}

void reply_event(struct conn *c, int64_t zxid, int event_type, const char *path, size_t len)
{
	size_t start = reply_begin(c, ZK_XID_NOTIFICATION, zxid, ZOK);
	jute_write_int(&c->obuf, event_type);
	jute_write_int(&c->obuf, ZK_STATE_SYNC_CONNECTED);
	jute_write_string(&c->obuf, path, (int32_t)len);
	reply_end(c, start);
}

void reply_connect(struct conn *c, int32_t timeout_ms, int64_t session_id, const uint8_t *password)
{
	static const uint8_t zero_password[ZK_PASSWORD_BYTES];
	size_t start = c->obuf.len;
	jute_write_int(&c->obuf, 0);
	jute_write_int(&c->obuf, 0);	/* protocolVersion */
	jute_write_int(&c->obuf, timeout_ms);
	jute_write_long(&c->obuf, session_id);
	jute_write_buffer(&c->obuf, password ? password : zero_password, ZK_PASSWORD_BYTES);
	if (c->mirror_read_only)
		jute_write_bool(&c->obuf, c->read_only);
	jute_patch_int(&c->obuf, start, (int32_t)(c->obuf.len - start - 4));
	conn_mark_dirty(c);
}

void reply_account(struct conn *c, int32_t op, int32_t xid, uint64_t received_ms, int64_t zxid,
		   bool update)
{
	struct client_stats *st = &c->hub->stats;
	uint64_t ms = c->hub->now_ms - received_ms;
	/* As ZooKeeper's statistics: auth and SASL are answered before its
	 * request pipeline and count in neither. */
	if (op == ZK_OP_AUTH || op == ZK_OP_SASL)
		return;
	if (st->latency_count == 0 || ms < st->latency_min_ms)
		st->latency_min_ms = ms;
	if (ms > st->latency_max_ms)
		st->latency_max_ms = ms;
	st->latency_total_ms += ms;
	st->latency_count++;
	summary_add(update ? &st->update_latency_ms : &st->read_latency_ms, ms, c->hub->now_ms);

	c->last_op = op;
	if (xid >= 0)
		c->last_cxid = xid;
	c->last_zxid = zxid;
	c->last_response_wall_ms = (uint64_t)loop_wall_ms();
	c->last_latency_ms = ms;
	if (c->latency_count == 0 || ms < c->min_latency_ms)
		c->min_latency_ms = ms;
	if (ms > c->max_latency_ms)
		c->max_latency_ms = ms;
	c->total_latency_ms += ms;
	c->latency_count++;
}
