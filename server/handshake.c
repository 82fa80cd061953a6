/* handshake: see handshake.h. */
#include "handshake.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "commit.h"
#include "forward.h"
#include "log.h"
#include "proto.h"
#include "records.h"
#include "reply.h"
#include "request.h"
#include "server_config.h"
#include "session.h"
#include "state.h"

static uint32_t negotiate_timeout(const struct server_config *cfg, int32_t asked)
{
	uint32_t t = asked < 0 ? 0 : (uint32_t)asked;
	if (t < cfg->min_session_timeout_ms)
		t = cfg->min_session_timeout_ms;
	if (t > cfg->max_session_timeout_ms)
		t = cfg->max_session_timeout_ms;
	return t;
}

/* An ensemble member that knows no leader, with ensemble.read_only on (the
 * condition status_read_only() reports). */
static bool read_only_mode(const struct request_path *p)
{
	return p->cfg->in_ensemble && p->cfg->read_only && !commit_leader(p->commit);
}

/* Read-only mode (ZooKeeper's readonlymode.enabled): a server cut off from
 * the quorum serves clients that asked for it (canBeReadOnly) with a
 * session of its own, never replicated: reads from its state, writes
 * refused with NOTREADONLY. When a leader is known again these
 * connections are closed; the clients find a read-write server. */
static void start_read_only(struct request_path *p, struct conn *c,
			    const struct connect_request *req)
{
	struct session *s = calloc(1, sizeof(*s));
	if (!s) {
		conn_close(c, LOG_WARNING, "out of memory for a read-only session");
		return;
	}
	s->id = session_next_id(&p->state->sessions);
	s->timeout_ms = negotiate_timeout(p->cfg, req->timeout_ms);
	list_init(&s->ephemerals);
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
	reply_connect(c, (int32_t)s->timeout_ms, s->id, s->password);
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
static void connect_read_only(struct request_path *p, struct conn *c,
			      const struct connect_request *req)
{
	if (!req->read_only) {
		conn_close(c, LOG_INFO, "this server is cut off from the quorum and serves only "
			   "read-only clients (ensemble.read_only)");
		return;
	}
	if (req->session_id == 0) {
		start_read_only(p, c, req);
		return;
	}
	const struct session *s = session_lookup(&p->state->sessions, req->session_id);
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
	reply_connect(c, 0, 0, NULL);
	conn_close_after_flush(c);
}

/* The request a new session waits as, the only one in the queue. */
static struct request *session_request(struct conn *c)
{
	struct request *rq = request_new(c, 0, ZK_OP_CREATE_SESSION, 0, c->hub->now_ms);
	if (!rq) {
		conn_close(c, LOG_WARNING, "out of memory creating a session");
		return NULL;
	}
	rq->state = REQUEST_IN_FLIGHT;
	c->session_requested_ms = c->hub->now_ms;
	return rq;
}

static void session_request_queue(struct conn *c, struct request *rq)
{
	ASSERT(list_empty(&c->queue));
	request_queue_append(c, rq);
	c->state = CONN_CONNECTING;
}

/* A follower: the leader creates the session; its txn comes back here. */
static void new_session_forwarded(struct request_path *p, struct conn *c,
				  const struct connect_request *req)
{
	struct request *rq = session_request(c);
	if (!rq)
		return;
	if (forward_request(p->forwarder, c, rq, ZK_OP_CREATE_SESSION, (const uint8_t *)"", 0,
			    negotiate_timeout(p->cfg, req->timeout_ms)) < 0) {
		request_free(rq);
		conn_close(c, LOG_INFO, "no room to send or park its session's creation");
		return;
	}
	session_request_queue(c, rq);
}

/* This server preps: a createSession txn. */
static void new_session(struct request_path *p, struct conn *c, const struct connect_request *req)
{
	if (commit_can_accept(p->commit, 4096) < 0) {
		conn_close(c, LOG_WARNING, "no new session: the log takes no writes");
		return;
	}
	struct txn *t;
	if (prep_create_session(p->prep, negotiate_timeout(p->cfg, req->timeout_ms),
				loop_wall_ms(), &t) < 0) {
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
	if (commit_submit(p->commit, t) < 0) {
		t->request = NULL;
		rq->txn = NULL;
		txn_free(t);
		conn_close(c, LOG_WARNING, "its session could not be created: the log takes no writes");
	}
}

static void resume_session(struct request_path *p, struct conn *c, const struct connect_request *req)
{
	struct session *s = session_lookup(&p->state->sessions, req->session_id);
	if (!s || s->closing || req->password_len != ZK_PASSWORD_BYTES ||
	    memcmp(s->password, req->password, ZK_PASSWORD_BYTES) != 0) {
		log_event(LOG_INFO, { .message_id = LOG_MSGID_SESSION_EXPIRED, .session_id = req->session_id },
			  "connection %llu from %s: session 0x%llx %s; answering expired",
			  (unsigned long long)c->id, c->peer_text, (unsigned long long)req->session_id,
			  !s || s->closing ? "is unknown or expired" : "given with a wrong password");
		reply_connect(c, 0, 0, NULL);
		conn_close_after_flush(c);
		return;
	}
	if (s->conn && s->conn != c)
		conn_close(s->conn, LOG_INFO, "its session moved to another connection");
	c->session = s;
	s->conn = c;
	/* As ZooKeeper, a resume negotiates the timeout again. The timeout is
	 * this server's to enforce; the replicated one stays as created. */
	s->timeout_ms = negotiate_timeout(p->cfg, req->timeout_ms);
	session_touch(s, c->hub->now_ms);
	c->state = CONN_ESTABLISHED;
	log_event(LOG_DEBUG, { .message_id = LOG_MSGID_SESSION_RESUMED, .session_id = s->id },
		  "session 0x%llx resumed on connection %llu from %s",
		  (unsigned long long)s->id, (unsigned long long)c->id, c->peer_text);
	reply_connect(c, (int32_t)s->timeout_ms, s->id, s->password);
}

void handshake_connect(struct request_path *p, struct conn *c, const uint8_t *frame, uint32_t len)
{
	struct connect_request req;
	struct jute_reader r;

	jute_reader_init(&r, frame, len);
	if (connect_request_decode(&r, &req) < 0) {
		conn_bad_input(c, "malformed ConnectRequest");
		return;
	}
	c->mirror_read_only = req.has_read_only;
	c->hub->stats.connect_requests++;
	if (req.last_zxid_seen > p->state->last_zxid) {
		/* The client has seen a newer state than ours: it must try another server. */
		log_info("connection %llu from %s closed: client has seen zxid 0x%llx, ours is 0x%llx",
			 (unsigned long long)c->id, c->peer_text,
			 (unsigned long long)req.last_zxid_seen, (unsigned long long)p->state->last_zxid);
		conn_close(c, 0, NULL);
		return;
	}
	if (p->commit->apply_paused) {
		/* Its state diverged from the leader's (digest_check.h): until
		 * it is rebuilt, nothing is answered from it. */
		conn_close(c, LOG_INFO, "this server's state diverged from the leader's; it is "
			   "rebuilding it");
		return;
	}
	if (p->cfg->in_ensemble && !commit_leader_reachable(p->commit)) {
		/* No leader, or one this server cannot reach (it may have died):
		 * the client is better served by another server, as a ZooKeeper
		 * follower refuses clients until it follows a leader. */
		if (read_only_mode(p))
			connect_read_only(p, c, &req);
		else
			conn_close(c, LOG_INFO, "this server knows no leader (it is cut off from the "
				   "quorum, or an election is under way)");
		return;
	}
	if (req.session_id != 0) {
		resume_session(p, c, &req);
		return;
	}
	if (p->state->sessions.by_id.count >= p->cfg->max_sessions) {
		conn_close(c, LOG_WARNING, "too many sessions (session.max_sessions)");
		return;
	}
	if (commit_can_prep(p->commit))
		new_session(p, c, &req);
	else
		new_session_forwarded(p, c, &req);
}

void handshake_session_created(struct request_path *p, struct conn *c, struct session *s,
			       int32_t err)
{
	if (c->state == CONN_CLOSING)
		return;
	if (err || !s) {
		conn_close(c, LOG_WARNING, "its session could not be created");
		return;
	}
	c->session = s;
	s->conn = c;
	session_touch(s, c->hub->now_ms);
	c->state = CONN_ESTABLISHED;
	reply_account(c, ZK_OP_CREATE_SESSION, -1, c->session_requested_ms, p->state->last_zxid,
		      true);
	log_event(LOG_DEBUG, { .message_id = LOG_MSGID_SESSION_CREATED, .session_id = s->id },
		  "session 0x%llx created for connection %llu from %s, timeout %u ms",
		  (unsigned long long)s->id, (unsigned long long)c->id, c->peer_text, s->timeout_ms);
	reply_connect(c, (int32_t)s->timeout_ms, s->id, s->password);
}
