/* conn: see conn.h. */
#include "conn.h"
#include "sasl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bytes.h"
#include "log.h"
#include "session.h"
#include "sockaddr.h"
#include "tls.h"

#define RBUF_INITIAL_BYTES 4096u
/* One recv of a TLS connection's socket: a whole record of the largest
 * size and its header. */
#define TLS_IN_BYTES (16384u + 512u)

static void conn_on_recv(struct loop_op *op, int res, uint32_t flags);
static void conn_on_send(struct loop_op *op, int res, uint32_t flags);
static void conn_process_input(struct conn *c);
static void conn_bad_input_flush(struct conn *c, const char *what);

static uint64_t next_conn_id = 1;

/* Makes room at the free end of the receive buffer for a receive (or for
 * OpenSSL's plaintext): false when the connection is not to be read now.
 * Only here, with no receive in flight, may the buffer be compacted or
 * moved: the kernel writes into it while one is. */
static bool make_room(struct conn *c)
{
	if (c->recv_armed || c->state == CONN_CLOSING || c->close_after_flush || c->paused ||
	    c->hub->frozen)
		return false;
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
			return false;
		}
		want = c->rcap * 2 > limit ? limit : c->rcap * 2;
	}
	if (want > c->rcap) {
		uint8_t *p = realloc(c->rbuf, want);
		if (!p) {
			conn_close(c, LOG_WARNING, "out of memory for the receive buffer");
			return false;
		}
		c->rbuf = p;
		c->rcap = want;
	}
	ASSERT(c->rlen < c->rcap);
	return true;
}

/* The handshake just ended: the identity of the client's certificate. */
static int tls_established(struct conn *c)
{
	char *dn = NULL;
	int r = tls_conn_peer_dn(c->tls, &dn);
	if (r == -ENOENT) {
		log_debug("connection %llu from %s: %s %s, no client certificate",
			  (unsigned long long)c->id, c->peer_text, tls_conn_version(c->tls),
			  tls_conn_cipher(c->tls));
		return 0;
	}
	if (r == 0)
		r = auth_add_x509(&c->auth, dn, c->hub->cfg->x509_super_user);
	if (r == 0)
		log_debug("connection %llu from %s: %s %s, client certificate \"%s\"%s",
			  (unsigned long long)c->id, c->peer_text, tls_conn_version(c->tls),
			  tls_conn_cipher(c->tls), dn, c->auth.super ? " (super user)" : "");
	free(dn);
	return r;
}

/* Plaintext from OpenSSL into the receive buffer: 1 some came, 0 it needs
 * the socket's bytes, -1 the connection is closing. */
static int tls_pull(struct conn *c)
{
	char why[256];
	size_t n = 0;
	bool was_done = c->tls->handshake_done;
	int r = tls_conn_read(c->tls, c->rbuf + c->rlen, c->rcap - c->rlen, &n, why, sizeof(why));
	if (tls_conn_pending(c->tls) > 0)
		conn_mark_dirty(c);	/* the handshake's answer, an alert */
	if (!was_done && c->tls->handshake_done && tls_established(c) < 0) {
		conn_close(c, LOG_WARNING, "out of memory for the client certificate's identity");
		return -1;
	}
	if (r == -EAGAIN)
		return 0;
	if (r == -ECONNRESET) {
		conn_close(c, LOG_DEBUG, "closed by the client (TLS close_notify)");
		return -1;
	}
	if (r < 0) {
		conn_bad_input_flush(c, why);
		return -1;
	}
	c->rlen += (uint32_t)n;
	return 1;
}

/* Posts a receive of the socket: into the free end of the receive buffer,
 * or on the TLS port into tls_in once OpenSSL has no plaintext left (and
 * what it gave is handled first). */
static void arm_recv(struct conn *c)
{
	/* TLS, inside the input's handling (a reply resumed it): the outer
	 * call comes back here when it is done. */
	if (c->tls && c->in_input)
		return;
	while (make_room(c)) {
		struct io_uring_sqe *sqe;
		if (!c->tls) {
			sqe = loop_sqe(c->hub->loop, &c->recv_op);
			io_uring_prep_recv(sqe, c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
			c->recv_armed = true;
			c->ops_in_flight++;
			return;
		}
		int r = tls_pull(c);
		if (r < 0)
			return;
		if (r > 0) {
			conn_process_input(c);
			continue;
		}
		sqe = loop_sqe(c->hub->loop, &c->recv_op);
		io_uring_prep_recv(sqe, c->fd, c->tls_in, TLS_IN_BYTES, 0);
		c->recv_armed = true;
		c->ops_in_flight++;
		return;
	}
}

static struct conn *conn_alloc(struct conn_hub *hub, int fd, const struct sockaddr_storage *peer,
			       SSL_CTX *tls_ctx, uint64_t id)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->rbuf = malloc(RBUF_INITIAL_BYTES);
	if (tls_ctx && c->rbuf && !(c->tls_in = malloc(TLS_IN_BYTES)))
		c->rbuf = (free(c->rbuf), NULL);
	if (c->rbuf && c->tls_in && tls_conn_new(tls_ctx, false, &c->tls) < 0)
		c->rbuf = (free(c->rbuf), NULL);
	if (!c->rbuf) {
		free(c->tls_in);
		free(c);
		return NULL;
	}
	c->rcap = RBUF_INITIAL_BYTES;
	c->hub = hub;
	c->fd = fd;
	c->id = id;
	if (id >= next_conn_id)
		next_conn_id = id + 1;
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
	return c;
}

struct conn *conn_new(struct conn_hub *hub, int fd, const struct sockaddr_storage *peer,
		      SSL_CTX *tls_ctx)
{
	struct conn *c = conn_alloc(hub, fd, peer, tls_ctx, next_conn_id);
	if (c)
		arm_recv(c);
	return c;
}

struct conn *conn_adopt(struct conn_hub *hub, int fd, const struct sockaddr_storage *peer,
			uint64_t id)
{
	return conn_alloc(hub, fd, peer, NULL, id);
}

void conn_start(struct conn *c)
{
	if (c->state != CONN_NEW && list_linked(&c->fresh_node))
		list_remove(&c->hub->fresh, &c->fresh_node);
	if (c->obuf.len > 0)
		conn_mark_dirty(c);
	conn_process_input(c);
	arm_recv(c);
}

void conn_freeze(struct conn *c)
{
	ASSERT(c->hub->frozen);
	if (c->recv_armed)
		io_uring_prep_cancel(loop_sqe(c->hub->loop, NULL), &c->recv_op, 0);
	if (list_linked(&c->partial_node))
		list_remove(&c->hub->partial, &c->partial_node);
}

bool conn_quiescent(const struct conn *c)
{
	return c->state != CONN_CLOSING && !c->close_after_flush && list_empty(&c->queue) &&
	       !c->send_armed && !c->recv_armed && !list_linked(&c->dirty_node);
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
	if (reason && prio <= log_get_level())
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

/* A TLS handshake or record that failed: one line, as conn_bad_input(),
 * and the alert OpenSSL wrote goes out before the connection closes. */
static void conn_bad_input_flush(struct conn *c, const char *what)
{
	c->hub->stats.bad_input_closed++;
	log_event(LOG_NOTICE, { .message_id = LOG_MSGID_BAD_INPUT,
				.session_id = c->session ? c->session->id : 0 },
		  "connection %llu from %s closed: %s", (unsigned long long)c->id, c->peer_text, what);
	c->tls->failed = true;
	conn_close_after_flush(c);
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
	tls_conn_free(c->tls);
	free(c->tls_in);
	jute_buf_free(&c->tls_out);
	auth_identities_free(&c->auth);
	sasl_exchange_free(c->sasl);
	c->sasl = NULL;
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
		       (c->tls_out.len - c->tls_out_off) + c->queue_bytes + c->watch_bytes;
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

/* Encrypts the replies, then sends: what OpenSSL wrote goes out whole
 * before anything more is encrypted. */
static int tls_encrypt(struct conn *c)
{
	struct tls_conn *t = c->tls;
	int r = 0;
	if (!t->failed && c->wbuf.len > c->woff)
		r = tls_conn_write(t, c->wbuf.data + c->woff, c->wbuf.len - c->woff);
	if (r == 0 && !t->failed && c->obuf.len > 0)
		r = tls_conn_write(t, c->obuf.data, c->obuf.len);
	if (r < 0)
		return r;
	c->wbuf.len = c->woff = c->obuf.len = 0;
	if (c->wbuf.cap > 1u << 20)
		jute_buf_free(&c->wbuf);
	if (c->close_after_flush && list_empty(&c->queue) && !t->failed)
		tls_conn_shutdown(t);	/* close_notify */
	size_t pending = tls_conn_pending(t);
	c->tls_out.len = c->tls_out_off = 0;
	if (c->tls_out.cap > 1u << 20 && pending < 1u << 20)
		jute_buf_free(&c->tls_out);
	uint8_t *p = pending ? jute_buf_extend(&c->tls_out, pending) : NULL;
	if (pending && !p)
		return -ENOMEM;
	c->tls_out.len = tls_conn_take(t, p, pending);
	return 0;
}

static void tls_flush(struct conn *c)
{
	if (c->tls_out_off == c->tls_out.len && tls_encrypt(c) < 0) {
		conn_close(c, LOG_WARNING, "TLS: cannot encrypt the replies (out of memory)");
		return;
	}
	if (c->tls_out.len > c->tls_out_off) {
		struct io_uring_sqe *sqe = loop_sqe(c->hub->loop, &c->send_op);
		io_uring_prep_send(sqe, c->fd, c->tls_out.data + c->tls_out_off,
				   c->tls_out.len - c->tls_out_off, MSG_NOSIGNAL);
		c->send_armed = true;
		c->ops_in_flight++;
		return;
	}
	if (c->close_after_flush && list_empty(&c->queue)) {
		if (c->tls->failed)
			conn_close(c, 0, NULL);	/* its one line said why */
		else
			conn_close(c, LOG_DEBUG, "closed after its last reply");
	}
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
	if (c->tls) {
		tls_flush(c);
		return;
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
	if (c->tls) {
		c->tls_out_off += (size_t)res;
		ASSERT(c->tls_out_off <= c->tls_out.len);
	} else {
		c->woff += (size_t)res;
	}
	ASSERT(c->woff <= c->wbuf.len);
	if (!c->tls && c->woff == c->wbuf.len) {
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
	if (res == -ECANCELED && c->hub->frozen)
		return;		/* conn_freeze(): what it had is in the buffer */
	if (res < 0) {
		conn_close(c, LOG_DEBUG, strerror(-res));
		return;
	}
	if (c->tls) {
		if (tls_conn_feed(c->tls, c->tls_in, (size_t)res) < 0)
			conn_close(c, LOG_WARNING, "out of memory for TLS input");
		arm_recv(c);
		return;
	}
	c->rlen += (uint32_t)res;
	ASSERT(c->rlen <= c->rcap);
	if (c->hub->frozen)
		return;		/* kept unparsed for the next process */
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
		if (c->close_after_flush || c->hub->frozen)
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
