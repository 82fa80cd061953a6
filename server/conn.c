/* conn: see conn.h. */
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bytes.h"
#include "log.h"
#include "session.h"
#include "sockaddr.h"

#define RBUF_INITIAL_BYTES 4096u

static void conn_on_recv(struct loop_op *op, int res, uint32_t flags);
static void conn_on_send(struct loop_op *op, int res, uint32_t flags);
static void conn_process_input(struct conn *c);

static uint64_t next_conn_id = 1;

/* Posts a receive into the free end of the buffer. Only here, with no
 * receive in flight, may the buffer be compacted or moved: the kernel writes
 * into it while one is. */
static void arm_recv(struct conn *c)
{
	if (c->recv_armed || c->state == CONN_CLOSING || c->close_after_flush || c->paused)
		return;
	if (c->rstart == c->rlen) {
		c->rstart = c->rlen = 0;
	} else if (c->rstart > 0 && (c->rcap - c->rlen < c->rcap / 4 || c->rneed > c->rcap - c->rstart)) {
		memmove(c->rbuf, c->rbuf + c->rstart, c->rlen - c->rstart);
		c->rlen -= c->rstart;
		c->rstart = 0;
	}
	uint32_t limit = c->hub->cfg->max_frame_bytes + 4;
	uint32_t want = c->rcap;
	if (c->rneed > want)
		want = c->rneed;		/* a frame bigger than the buffer */
	if (c->rlen == c->rcap && want == c->rcap) {
		if (c->rcap >= limit) {
			/* Full of whole frames we cannot take yet: wait. */
			c->paused = true;
			if (list_linked(&c->partial_node))
				list_remove(&c->hub->partial, &c->partial_node);
			return;
		}
		want = c->rcap * 2 > limit ? limit : c->rcap * 2;
	}
	if (want > c->rcap) {
		uint8_t *p = realloc(c->rbuf, want);
		if (!p) {
			conn_close(c, LOG_WARNING, "out of memory for the receive buffer");
			return;
		}
		c->rbuf = p;
		c->rcap = want;
	}
	ASSERT(c->rlen < c->rcap);
	struct io_uring_sqe *sqe = loop_sqe(c->hub->loop, &c->recv_op);
	io_uring_prep_recv(sqe, c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
	c->recv_armed = true;
	c->ops_in_flight++;
}

struct conn *conn_new(struct conn_hub *hub, int fd, const struct sockaddr_storage *peer)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->rbuf = malloc(RBUF_INITIAL_BYTES);
	if (!c->rbuf) {
		free(c);
		return NULL;
	}
	c->rcap = RBUF_INITIAL_BYTES;
	c->hub = hub;
	c->fd = fd;
	c->id = next_conn_id++;
	c->peer = *peer;
	sockaddr_text(peer, c->peer_text, sizeof(c->peer_text));
	auth_identities_init(&c->auth, peer);
	watch_owner_init(&c->watches);
	list_init(&c->queue);
	c->state = CONN_NEW;
	c->accepted_ms = hub->now_ms;
	list_push_back(&hub->fresh, &c->fresh_node);
	hub->open++;
	c->established_wall_ms = (uint64_t)loop_wall_ms();
	conn_reset_stats(c);
	c->recv_op.complete = conn_on_recv;
	c->send_op.complete = conn_on_send;
	arm_recv(c);
	return c;
}

void conn_reset_stats(struct conn *c)
{
	c->received = c->sent = 0;
	c->last_op = CONN_NO_OP;
	c->last_cxid = c->last_zxid = -1;
	c->last_response_wall_ms = 0;
	c->last_latency_ms = c->min_latency_ms = c->max_latency_ms = 0;
	c->total_latency_ms = c->latency_count = 0;
}

void conn_close(struct conn *c, int prio, const char *reason)
{
	if (c->state == CONN_CLOSING)
		return;
	if (reason)
		log_full(prio, &(struct log_fields){ .session_id = c->session ? c->session->id : 0 },
			 "connection %llu from %s closed: %s", (unsigned long long)c->id,
			 c->peer_text, reason);
	c->state = CONN_CLOSING;
	c->hub->handlers.closed(c->hub->handlers.ctx, c);
	ASSERT(list_empty(&c->queue) && list_empty(&c->watches.entries) && !c->session);
	if (list_linked(&c->fresh_node))
		list_remove(&c->hub->fresh, &c->fresh_node);
	if (list_linked(&c->partial_node))
		list_remove(&c->hub->partial, &c->partial_node);
	ASSERT(c->hub->open > 0);
	c->hub->open--;
	conn_account(c);	/* a closing connection holds nothing for the budget */
	if (c->handed_over) {
		/* Not shut down: that would end the other process's stream. */
		if (c->recv_armed)
			io_uring_prep_cancel(loop_sqe(c->hub->loop, NULL), &c->recv_op, 0);
		return;
	}
	/* Pending receive and send complete (with 0 or an error) once the socket
	 * is shut down; the connection is freed when the last one has. */
	shutdown(c->fd, SHUT_RDWR);
}

void conn_hand_over(struct conn *c)
{
	ASSERT(!c->send_armed);
	c->handed_over = true;
	conn_close(c, LOG_DEBUG, "handed over to a backup");
}

void conn_bad_input(struct conn *c, const char *what)
{
	c->hub->stats.bad_input_closed++;
	log_event(LOG_NOTICE, { .message_id = LOG_MSGID_BAD_INPUT,
				.session_id = c->session ? c->session->id : 0 },
		  "connection %llu from %s closed: %s", (unsigned long long)c->id, c->peer_text, what);
	conn_close(c, 0, NULL);
}

bool conn_done(const struct conn *c)
{
	return c->state == CONN_CLOSING && c->ops_in_flight == 0 && !list_linked(&c->dirty_node);
}

void conn_free(struct conn *c)
{
	ASSERT(conn_done(c) && !list_linked(&c->node));
	ASSERT(!list_linked(&c->fresh_node) && !list_linked(&c->partial_node) && c->held_bytes == 0);
	close(c->fd);
	auth_identities_free(&c->auth);
	free(c->rbuf);
	jute_buf_free(&c->obuf);
	jute_buf_free(&c->wbuf);
	free(c);
}

void conn_mark_dirty(struct conn *c)
{
	if (!list_linked(&c->dirty_node))
		list_push_back(&c->hub->dirty, &c->dirty_node);
	conn_account(c);
}

/* What a watch costs, all told (its entry, its share of the path's, the
 * tables): 1M watches took about 250 MB. */
#define WATCH_BYTES 256u

void conn_account(struct conn *c)
{
	uint64_t held = 0;
	c->watch_bytes = 0;
	if (c->state != CONN_CLOSING) {
		c->watch_bytes = (uint64_t)c->watches.count * WATCH_BYTES;
		held = (uint64_t)(c->rlen - c->rstart) + c->obuf.len + (c->wbuf.len - c->woff) +
		       c->queue_bytes + c->watch_bytes;
	}
	ASSERT(c->hub->held_bytes >= c->held_bytes);
	c->hub->held_bytes = c->hub->held_bytes - c->held_bytes + held;
	c->held_bytes = held;
}

bool conn_over_share(const struct conn *c)
{
	const struct conn_hub *h = c->hub;
	uint64_t share = h->cfg->memory_budget_bytes / 4 / (h->open ? h->open : 1);
	uint64_t floor = 2 * ((uint64_t)h->cfg->max_frame_bytes + 4);
	return c->held_bytes - c->watch_bytes > (share > floor ? share : floor);
}

void conn_close_after_flush(struct conn *c)
{
	c->close_after_flush = true;
	conn_mark_dirty(c);
}

void conn_flush(struct conn *c)
{
	if (c->state == CONN_CLOSING || c->send_armed)
		return;
	if (c->wbuf.len == 0 && c->obuf.len > 0) {
		struct jute_buf tmp = c->wbuf;
		c->wbuf = c->obuf;
		c->obuf = tmp;
		c->obuf.len = 0;
		c->woff = 0;
	}
	if (c->wbuf.len > c->woff) {
		struct io_uring_sqe *sqe = loop_sqe(c->hub->loop, &c->send_op);
		io_uring_prep_send(sqe, c->fd, c->wbuf.data + c->woff, c->wbuf.len - c->woff,
				   MSG_NOSIGNAL);
		c->send_armed = true;
		c->ops_in_flight++;
		return;
	}
	if (c->close_after_flush && list_empty(&c->queue))
		conn_close(c, LOG_DEBUG, "closed after its last reply");
}

static void conn_on_send(struct loop_op *op, int res, uint32_t flags)
{
	struct conn *c = container_of(op, struct conn, send_op);
	ASSERT(c->ops_in_flight > 0);
	c->ops_in_flight--;
	c->send_armed = false;
	if (c->state == CONN_CLOSING)
		return;
	if (res < 0) {
		conn_close(c, LOG_DEBUG, strerror(-res));
		return;
	}
	c->woff += (size_t)res;
	ASSERT(c->woff <= c->wbuf.len);
	if (c->woff == c->wbuf.len) {
		c->wbuf.len = 0;
		c->woff = 0;
		/* Give back the memory a burst of replies took. */
		if (c->wbuf.cap > 1u << 20)
			jute_buf_free(&c->wbuf);
	}
	conn_account(c);
	/* Waiting for its share of the budget to drain: it may read again. */
	if (c->paused && !conn_queue_full(c))
		conn_resume_reading(c);
	if (c->state != CONN_CLOSING)
		conn_flush(c);
}

static void conn_on_recv(struct loop_op *op, int res, uint32_t flags)
{
	struct conn *c = container_of(op, struct conn, recv_op);
	ASSERT(c->ops_in_flight > 0);
	c->ops_in_flight--;
	c->recv_armed = false;
	if (c->state == CONN_CLOSING)
		return;
	if (res == 0) {
		conn_close(c, LOG_DEBUG, "closed by the client");
		return;
	}
	if (res < 0) {
		conn_close(c, LOG_DEBUG, strerror(-res));
		return;
	}
	c->rlen += (uint32_t)res;
	ASSERT(c->rlen <= c->rcap);
	conn_process_input(c);
	arm_recv(c);
}

bool conn_queue_full(const struct conn *c)
{
	const struct server_config *cfg = c->hub->cfg;
	return c->queue.length >= cfg->max_outstanding_requests ||
	       c->queue_bytes >= cfg->max_output_bytes || conn_over_share(c);
}

/* A frame begun and not finished (begun; finished: one completed this
 * turn, so the one begun now is new) puts the connection on the hub's
 * partial list, with its deadline from now; a connection that is not read
 * (paused) is waiting for the server, not the client: off the list. */
static void track_partial(struct conn *c, bool begun, bool finished)
{
	struct conn_hub *h = c->hub;
	begun = begun && !c->paused && c->state == CONN_ESTABLISHED;
	if (list_linked(&c->partial_node) && (!begun || finished))
		list_remove(&h->partial, &c->partial_node);
	if (begun && !list_linked(&c->partial_node)) {
		c->partial_since_ms = h->now_ms;
		list_push_back(&h->partial, &c->partial_node);
	}
}

/* Hands the frames that arrived whole to the handlers, while the
 * connection takes them. */
static void conn_process_input(struct conn *c)
{
	const struct conn_handlers *h = &c->hub->handlers;

	/* Replies emitted while handling input may unblock this connection
	 * again; the outer call goes on parsing, an inner one must not. */
	if (c->in_input)
		return;
	c->in_input = true;
	bool begun = false, finished = false;
	while (c->state == CONN_NEW || c->state == CONN_ESTABLISHED) {
		if (c->close_after_flush)
			break;
		if (conn_queue_full(c)) {
			c->paused = true;
			break;
		}
		uint32_t avail = c->rlen - c->rstart;
		if (avail < 4) {
			begun = avail > 0;
			break;
		}
		if (c->state == CONN_NEW && h->four_letter(h->ctx, c, c->rbuf + c->rstart)) {
			c->rstart = c->rlen;	/* whatever followed the word is ignored */
			break;
		}
		int32_t len = (int32_t)load_be32(c->rbuf + c->rstart);
		uint32_t max = c->hub->cfg->max_frame_bytes;
		if (len < 0 || (uint32_t)len > max) {
			char what[96];
			snprintf(what, sizeof(what), "frame length %d outside 0..%u (client.max_frame_bytes)",
				 len, max);
			conn_bad_input(c, what);
			break;
		}
		if (avail - 4 < (uint32_t)len) {
			/* arm_recv() makes room for the whole frame. */
			c->rneed = (uint32_t)len + 4;
			begun = true;
			break;
		}
		finished = true;
		c->rneed = 0;
		const uint8_t *frame = c->rbuf + c->rstart + 4;
		c->rstart += 4 + (uint32_t)len;
		c->received++;
		c->hub->stats.packets_received++;

		if (c->state == CONN_NEW) {
			h->connect(h->ctx, c, frame, (uint32_t)len);
			if (c->state != CONN_NEW && list_linked(&c->fresh_node))
				list_remove(&c->hub->fresh, &c->fresh_node);
			continue;
		}
		int r = h->request(h->ctx, c, frame, (uint32_t)len);
		if (r == -EBADMSG)
			conn_bad_input(c, "malformed request");
		else if (r < 0)
			conn_close(c, LOG_WARNING, "out of memory handling a request");
	}
	c->in_input = false;
	if (c->state != CONN_CLOSING) {
		track_partial(c, begun, finished);
		conn_account(c);
	}
}

void conn_resume_reading(struct conn *c)
{
	if (c->state == CONN_CLOSING)
		return;
	c->paused = false;
	conn_process_input(c);
	arm_recv(c);
}
