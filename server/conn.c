/* conn: see conn.h. */
#include "conn.h"
#include "forward.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "fourletter.h"
#include "listener.h"
#include "log.h"
#include "proto.h"
#include "records.h"
#include "request.h"
#include "server.h"
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
	struct server *srv = c->srv;
	if (c->recv_armed || c->state == CONN_CLOSING || c->close_after_flush || c->paused)
		return;
	if (c->rstart == c->rlen) {
		c->rstart = c->rlen = 0;
	} else if (c->rstart > 0 && (c->rcap - c->rlen < c->rcap / 4 || c->rneed > c->rcap - c->rstart)) {
		memmove(c->rbuf, c->rbuf + c->rstart, c->rlen - c->rstart);
		c->rlen -= c->rstart;
		c->rstart = 0;
	}
	uint32_t limit = srv->cfg->max_frame_bytes + 4;
	uint32_t want = c->rcap;
	if (c->rneed > want)
		want = c->rneed;		/* a frame bigger than the buffer */
	if (c->rlen == c->rcap && want == c->rcap) {
		if (c->rcap >= limit) {
			/* Full of whole frames we cannot take yet: wait. */
			c->paused = true;
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
	struct io_uring_sqe *sqe = loop_sqe(&srv->loop, &c->recv_op);
	io_uring_prep_recv(sqe, c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
	c->recv_armed = true;
	c->ops_in_flight++;
}

int conn_start(struct server *srv, int fd, const struct sockaddr_storage *peer)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->rbuf = malloc(RBUF_INITIAL_BYTES);
	if (!c->rbuf) {
		free(c);
		return -ENOMEM;
	}
	c->rcap = RBUF_INITIAL_BYTES;
	c->srv = srv;
	c->fd = fd;
	c->id = next_conn_id++;
	c->peer = *peer;
	sockaddr_text(peer, c->peer_text, sizeof(c->peer_text));
	auth_identities_init(&c->auth, peer);
	watch_owner_init(&c->watches);
	c->state = CONN_NEW;
	c->established_wall_ms = (uint64_t)loop_wall_ms();
	conn_reset_stats(c);
	c->recv_op.complete = conn_on_recv;
	c->send_op.complete = conn_on_send;
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->conn_count++;
	arm_recv(c);
	return 0;
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

static void conn_detach_session(struct conn *c)
{
	if (c->session && c->session->conn == c)
		c->session->conn = NULL;
	c->session = NULL;
	free(c->ro_session);
	c->ro_session = NULL;
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
	conn_detach_session(c);
	request_queue_drop(c);
	watch_remove_owner(&c->srv->watches, &c->watches);
	/* Pending receive and send complete (with 0 or an error) once the socket
	 * is shut down; the connection is freed when the last one has. */
	shutdown(c->fd, SHUT_RDWR);
	listener_conn_closed(c->srv, c);
}

/* Frees a closed connection once the ring holds nothing of it. */
bool conn_reap(struct conn *c)
{
	struct server *srv = c->srv;
	if (c->state != CONN_CLOSING || c->ops_in_flight > 0 || c->dirty)
		return false;
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->conn_count--;
	close(c->fd);
	auth_identities_free(&c->auth);
	free(c->rbuf);
	jute_buf_free(&c->obuf);
	jute_buf_free(&c->wbuf);
	free(c);
	return true;
}

void conn_close_after_flush(struct conn *c)
{
	c->close_after_flush = true;
	server_conn_dirty(c->srv, c);
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
		struct io_uring_sqe *sqe = loop_sqe(&c->srv->loop, &c->send_op);
		io_uring_prep_send(sqe, c->fd, c->wbuf.data + c->woff, c->wbuf.len - c->woff,
				   MSG_NOSIGNAL);
		c->send_armed = true;
		c->ops_in_flight++;
		return;
	}
	if (c->close_after_flush && !c->queue_head)
		conn_close(c, LOG_DEBUG, "closed after its last reply");
}

static void conn_on_send(struct loop_op *op, int res, uint32_t flags)
{
	struct conn *c = (struct conn *)((char *)op - offsetof(struct conn, send_op));
	c->ops_in_flight--;
	c->send_armed = false;
	if (c->state == CONN_CLOSING)
		return;
	if (res < 0) {
		conn_close(c, LOG_DEBUG, strerror(-res));
		return;
	}
	c->woff += (size_t)res;
	if (c->woff == c->wbuf.len) {
		c->wbuf.len = 0;
		c->woff = 0;
		/* Give back the memory a burst of replies took. */
		if (c->wbuf.cap > 1u << 20)
			jute_buf_free(&c->wbuf);
	}
	conn_flush(c);
}

static void conn_on_recv(struct loop_op *op, int res, uint32_t flags)
{
	struct conn *c = (struct conn *)((char *)op - offsetof(struct conn, recv_op));
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
	conn_process_input(c);
	arm_recv(c);
}

static void write_connect_response(struct conn *c, int32_t timeout_ms, int64_t session_id,
				   const uint8_t *password)
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
	server_conn_dirty(c->srv, c);
}

static void bad_input(struct conn *c, const char *what)
{
	c->srv->stats.bad_input_closed++;
	log_event(LOG_NOTICE, { .message_id = LOG_MSGID_BAD_INPUT,
				.session_id = c->session ? c->session->id : 0 },
		  "connection %llu from %s closed: %s", (unsigned long long)c->id, c->peer_text, what);
	conn_close(c, 0, NULL);
}

static uint32_t negotiate_timeout(const struct server_config *cfg, int32_t asked)
{
	uint32_t t = asked < 0 ? 0 : (uint32_t)asked;
	if (t < cfg->min_session_timeout_ms)
		t = cfg->min_session_timeout_ms;
	if (t > cfg->max_session_timeout_ms)
		t = cfg->max_session_timeout_ms;
	return t;
}

/* Read-only mode (ZooKeeper's readonlymode.enabled): a server cut off from
 * the quorum serves clients that asked for it (canBeReadOnly) with a
 * session of its own, never replicated: reads from its state, writes
 * refused with NOTREADONLY. When a leader is known again these
 * connections are closed; the clients find a read-write server. */
static void start_read_only(struct conn *c, const struct connect_request *req)
{
	struct server *srv = c->srv;
	struct session *s = calloc(1, sizeof(*s));
	if (!s) {
		conn_close(c, LOG_WARNING, "out of memory for a read-only session");
		return;
	}
	s->id = session_next_id(&srv->state.sessions);
	s->timeout_ms = negotiate_timeout(srv->cfg, req->timeout_ms);
	if (getrandom(s->password, sizeof(s->password), 0) != (ssize_t)sizeof(s->password))
		memset(s->password, 0, sizeof(s->password));
	s->conn = c;
	c->ro_session = s;
	c->session = s;
	c->read_only = true;
	c->state = CONN_ESTABLISHED;
	log_event(LOG_INFO, { .session_id = s->id },
		  "read-only session 0x%llx for connection %llu from %s: no quorum",
		  (unsigned long long)s->id, (unsigned long long)c->id, c->peer_text);
	write_connect_response(c, (int32_t)s->timeout_ms, s->id, s->password);
}

/* A cut-off member with ensemble.read_only, as ZooKeeper's read-only
 * server (which needs localSessionsEnabled to create sessions at all):
 * - a client that cannot be read-only is refused (it tries another server);
 * - a new session is a read-only one, this server's alone;
 * - a session with ephemeral nodes is refused: it is a global session in
 *   ZooKeeper's terms, which a read-only server never resumes (the client
 *   keeps it by finding a server of the quorum, or waits for one);
 * - any other session (one without ephemerals is a local session there,
 *   which the read-only server does not know) is answered expired: the
 *   client then starts a new, read-only one. */
static void connect_read_only(struct conn *c, const struct connect_request *req)
{
	struct server *srv = c->srv;
	if (!req->read_only) {
		conn_close(c, LOG_INFO, "this server is cut off from the quorum and serves only "
			   "read-only clients (ensemble.read_only)");
		return;
	}
	if (req->session_id == 0) {
		start_read_only(c, req);
		return;
	}
	const struct session *s = session_lookup(&srv->state.sessions, req->session_id);
	if (s && !s->closing && !list_empty(&s->ephemerals)) {
		log_event(LOG_INFO, { .session_id = s->id },
			  "connection %llu from %s closed: session 0x%llx has ephemeral nodes; a "
			  "server cut off from the quorum does not resume it", (unsigned long long)c->id,
			  c->peer_text, (unsigned long long)s->id);
		conn_close(c, 0, NULL);
		return;
	}
	log_event(LOG_INFO, { .message_id = LOG_MSGID_SESSION_EXPIRED, .session_id = req->session_id },
		  "connection %llu from %s: session 0x%llx cannot be resumed read-only; answering "
		  "expired (the client starts a read-only session)", (unsigned long long)c->id,
		  c->peer_text, (unsigned long long)req->session_id);
	write_connect_response(c, 0, 0, NULL);
	conn_close_after_flush(c);
}

/* The request a new session waits as, the only one in the queue. */
static struct request *session_request(struct conn *c)
{
	struct request *rq = calloc(1, sizeof(*rq));
	if (!rq) {
		conn_close(c, LOG_WARNING, "out of memory creating a session");
		return NULL;
	}
	rq->conn = c;
	rq->op = rq->asked_op = ZK_OP_CREATE_SESSION;
	rq->state = REQUEST_IN_FLIGHT;
	rq->received_ms = c->session_requested_ms = c->srv->now_ms;
	return rq;
}

static void session_request_queue(struct conn *c, struct request *rq)
{
	c->queue_head = c->queue_tail = rq;
	c->queue_len = 1;
	c->state = CONN_CONNECTING;
}

static void handle_connect(struct conn *c, const uint8_t *frame, uint32_t len)
{
	struct server *srv = c->srv;
	struct connect_request req;
	struct jute_reader r;

	jute_reader_init(&r, frame, len);
	if (connect_request_decode(&r, &req) < 0) {
		bad_input(c, "malformed ConnectRequest");
		return;
	}
	c->mirror_read_only = req.has_read_only;
	if (req.last_zxid_seen > srv->state.last_zxid) {
		/* The client has seen a newer state than ours: it must try another server. */
		log_info("connection %llu from %s closed: client has seen zxid 0x%llx, ours is 0x%llx",
			 (unsigned long long)c->id, c->peer_text,
			 (unsigned long long)req.last_zxid_seen, (unsigned long long)srv->state.last_zxid);
		conn_close(c, 0, NULL);
		return;
	}

	if (srv->cfg->in_ensemble && !commit_leader_reachable(&srv->commit)) {
		/* No leader, or one this server cannot reach (it may have died):
		 * the client is better served by another server, as a ZooKeeper
		 * follower refuses clients until it follows a leader. */
		if (server_read_only(srv)) {
			connect_read_only(c, &req);
			return;
		}
		conn_close(c, LOG_INFO, "this server knows no leader (it is cut off from the "
			   "quorum, or an election is under way)");
		return;
	}
	if (req.session_id == 0 && !commit_can_prep(&srv->commit)) {
		if (srv->state.sessions.by_id.count >= srv->cfg->max_sessions) {
			conn_close(c, LOG_WARNING, "too many sessions (session.max_sessions)");
			return;
		}
		struct request *rq = session_request(c);
		if (!rq)
			return;
		if (forward_request(c, rq, ZK_OP_CREATE_SESSION, (const uint8_t *)"", 0,
				    negotiate_timeout(srv->cfg, req.timeout_ms)) < 0) {
			free(rq);
			conn_close(c, LOG_INFO, "no leader to create its session");
			return;
		}
		session_request_queue(c, rq);
		return;
	}
	if (req.session_id == 0) {
		if (commit_can_accept(&srv->commit, 4096) < 0) {
			conn_close(c, LOG_WARNING, "no new session: the log takes no writes");
			return;
		}
		if (srv->state.sessions.by_id.count >= srv->cfg->max_sessions) {
			conn_close(c, LOG_WARNING, "too many sessions (session.max_sessions)");
			return;
		}
		struct txn *t;
		int r2 = prep_create_session(&srv->prep, negotiate_timeout(srv->cfg, req.timeout_ms),
					     loop_wall_ms(), &t);
		if (r2 < 0) {
			conn_close(c, LOG_WARNING, "out of memory creating a session");
			return;
		}
		struct request *rq = session_request(c);
		if (!rq) {
			txn_free(t);
			return;
		}
		rq->txn = t;
		t->request = rq;
		session_request_queue(c, rq);
		c->pending_session_id = t->session_id;
		if (server_submit(srv, t) < 0) {
			t->request = NULL;
			rq->txn = NULL;
			txn_free(t);
			conn_close(c, LOG_WARNING, "its session could not be created: the log takes no writes");
			return;
		}
		return;
	}

	struct session *s = session_lookup(&srv->state.sessions, req.session_id);
	if (!s || s->closing || req.password_len != ZK_PASSWORD_BYTES ||
	    memcmp(s->password, req.password, ZK_PASSWORD_BYTES) != 0) {
		log_event(LOG_INFO, { .message_id = LOG_MSGID_SESSION_EXPIRED, .session_id = req.session_id },
			  "connection %llu from %s: session 0x%llx %s; answering expired",
			  (unsigned long long)c->id, c->peer_text, (unsigned long long)req.session_id,
			  !s || s->closing ? "is unknown or expired" : "given with a wrong password");
		write_connect_response(c, 0, 0, NULL);
		conn_close_after_flush(c);
		return;
	}
	if (s->conn && s->conn != c)
		conn_close(s->conn, LOG_INFO, "its session moved to another connection");
	c->session = s;
	s->conn = c;
	/* As ZooKeeper, a resume negotiates the timeout again. The timeout is
	 * this server's to enforce; the replicated one stays as created. */
	s->timeout_ms = negotiate_timeout(srv->cfg, req.timeout_ms);
	session_touch(s, srv->now_ms);
	c->state = CONN_ESTABLISHED;
	log_event(LOG_DEBUG, { .message_id = LOG_MSGID_SESSION_RESUMED, .session_id = s->id },
		  "session 0x%llx resumed on connection %llu from %s",
		  (unsigned long long)s->id, (unsigned long long)c->id, c->peer_text);
	write_connect_response(c, (int32_t)s->timeout_ms, s->id, s->password);
}

void conn_session_created(struct conn *c, struct session *s, int err)
{
	if (c->state == CONN_CLOSING)
		return;
	if (err || !s) {
		conn_close(c, LOG_WARNING, "its session could not be created");
		return;
	}
	c->session = s;
	s->conn = c;
	session_touch(s, c->srv->now_ms);
	c->state = CONN_ESTABLISHED;
	request_note_reply(c, ZK_OP_CREATE_SESSION, -1, c->session_requested_ms);
	log_event(LOG_DEBUG, { .message_id = LOG_MSGID_SESSION_CREATED, .session_id = s->id },
		  "session 0x%llx created for connection %llu from %s, timeout %u ms",
		  (unsigned long long)s->id, (unsigned long long)c->id, c->peer_text, s->timeout_ms);
	write_connect_response(c, (int32_t)s->timeout_ms, s->id, s->password);
}

static void conn_process_input(struct conn *c)
{
	struct server *srv = c->srv;

	/* Replies emitted while handling input may unblock this connection
	 * again; the outer call goes on parsing, an inner one must not. */
	if (c->in_input)
		return;
	c->in_input = true;
	while (c->state == CONN_NEW || c->state == CONN_ESTABLISHED) {
		if (c->close_after_flush)
			break;
		if (request_queue_full(c)) {
			c->paused = true;
			break;
		}
		uint32_t avail = c->rlen - c->rstart;
		if (avail < 4)
			break;
		if (c->state == CONN_NEW && four_letter_word_handle(c, c->rbuf + c->rstart)) {
			c->rstart = c->rlen;	/* whatever followed the word is ignored */
			break;
		}
		uint32_t be;
		memcpy(&be, c->rbuf + c->rstart, 4);
		int32_t len = (int32_t)be32toh(be);
		if (len < 0 || (uint32_t)len > srv->cfg->max_frame_bytes) {
			char what[96];
			snprintf(what, sizeof(what), "frame length %d outside 0..%u (client.max_frame_bytes)",
				 len, srv->cfg->max_frame_bytes);
			bad_input(c, what);
			break;
		}
		if (avail - 4 < (uint32_t)len) {
			/* arm_recv() makes room for the whole frame. */
			c->rneed = (uint32_t)len + 4;
			break;
		}
		c->rneed = 0;
		const uint8_t *frame = c->rbuf + c->rstart + 4;
		c->rstart += 4 + (uint32_t)len;
		c->received++;
		srv->stats.packets_received++;

		if (c->state == CONN_NEW) {
			handle_connect(c, frame, (uint32_t)len);
			continue;
		}
		if (c->session) {
			session_touch(c->session, srv->now_ms);
			c->touched = true;
		}
		int r = request_receive(c, frame, (uint32_t)len);
		if (r == -EBADMSG)
			bad_input(c, "malformed request");
		else if (r < 0)
			conn_close(c, LOG_WARNING, "out of memory handling a request");
	}
	c->in_input = false;
}

void conn_resume_reading(struct conn *c)
{
	if (c->state == CONN_CLOSING)
		return;
	c->paused = false;
	conn_process_input(c);
	arm_recv(c);
}
