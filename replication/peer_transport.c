/* peer_transport: see peer_transport.h. */
#include "peer_transport.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <liburing.h>
#include <openssl/crypto.h>

#include "common.h"
#include "log.h"
#include "peer_message.h"
#include "resolve.h"
#include "sockaddr.h"

#define LISTEN_BACKLOG 64
#define RESOLVE_POLL_MS 10	/* how often a lookup on its way is asked whether it is done */

/* ---- outgoing connections ---- */

static void on_connect(struct loop_op *op, int res, uint32_t flags);
static void out_trim(struct peer *p);
static void on_send(struct loop_op *op, int res, uint32_t flags);
static void on_watch(struct loop_op *op, int res, uint32_t flags);
static void out_established(struct peer *p);
static void out_authenticate(struct peer *p);
static bool peer_tls_send(struct peer *p);

/* Closes the fd once no ring operation uses it any more. */
static void peer_settle(struct peer *p)
{
	if (p->closing && p->ops == 0 && p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
		p->closing = false;
	}
}

/* The connection failed or dropped: close it, and wait before the next. */
static void peer_drop(struct peer *p)
{
	if (p->fd < 0 || p->closing)
		return;
	bool was_up = p->up;
	p->up = false;
	p->closing = true;
	p->resolved = false;	/* a name is looked up again for the next connection */
	if (p->tls) {
		/* records of out's frames went, or some of them: the frames are
		 * gone with the connection, as those in the kernel's buffers */
		if (was_up && p->tls_tx_sent > 0)
			p->out_sent = p->out.len;
		p->tls_tx.len = p->tls_tx_sent = 0;	/* the buffer stays: a send may read it */
		tls_conn_free(p->tls);
		p->tls = NULL;
	}
	out_trim(p);		/* a frame cut short goes again whole */
	shutdown(p->fd, SHUT_RDWR);
	p->retry_at_ms = loop_now_ms() + p->backoff_ms;
	p->backoff_ms = p->backoff_ms * 2 > p->t->o.backoff_max_ms ? p->t->o.backoff_max_ms
								 : p->backoff_ms * 2;
	peer_settle(p);
	if (was_up && p->t->o.on_peer_down)
		p->t->o.on_peer_down(p->t->o.ctx, p->id);
}

/* A peer named by a host name is looked up again for every connection (an
 * address that changed is followed), in the background: 1 when p->sa is
 * ready, 0 while the lookup is on its way or failed (retried later). */
static int peer_resolve(struct peer *p)
{
	if (!p->named || p->resolved)
		return 1;
	int r = 0;
	if (!p->resolver.busy)
		r = resolver_start(&p->resolver, p->host, p->port);
	if (r == 0)
		r = resolver_poll(&p->resolver, p->pick, &p->sa, &p->sa_len);
	if (r == 0) {
		p->retry_at_ms = loop_now_ms() + RESOLVE_POLL_MS;
		return 0;
	}
	if (r < 0) {
		p->connect_failures++;
		if (log_limit_allow(&p->t->resolve_log, loop_now_ms()))
			log_warning("peer %llu at %s: cannot look up %s: %s; again in %u ms",
				    (unsigned long long)p->id, p->address, p->host,
				    r == -ENOENT ? "no such host name" : strerror(-r), p->backoff_ms);
		p->retry_at_ms = loop_now_ms() + p->backoff_ms;
		p->backoff_ms = p->backoff_ms * 2 > p->t->o.backoff_max_ms ? p->t->o.backoff_max_ms
									 : p->backoff_ms * 2;
		return 0;
	}
	p->resolved = true;
	return 1;
}

static void peer_connect(struct peer *p)
{
	if (p->fd >= 0 || p->t->closing)
		return;
	if (!peer_resolve(p))
		return;
	p->fd = socket(p->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->fd < 0) {
		p->connect_failures++;
		p->retry_at_ms = loop_now_ms() + p->backoff_ms;
		return;
	}
	int one = 1;
	setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct io_uring_sqe *sqe = loop_sqe(p->t->loop, &p->connect_op);
	io_uring_prep_connect(sqe, p->fd, (struct sockaddr *)&p->sa, p->sa_len);
	p->connecting = true;
	p->ops++;
}

/* The kernel reads a send's buffer when it runs, which may be later: the
 * frames being sent (out) are never touched until it completes; new ones
 * gather in queue and move over, whole, when out is done. */
static void peer_pump(struct peer *p)
{
	if (!p->up || p->sending || p->closing)
		return;
	if (p->tls) {
		/* out's frames leave as records: the next ones are encrypted
		 * when all of the last ones' records are sent */
		if (p->tls_tx_sent == p->tls_tx.len) {
			p->tls_tx.len = p->tls_tx_sent = 0;
			if (p->out.len == 0) {
				if (p->queue.len == 0)
					return;
				struct jute_buf tmp = p->out;
				p->out = p->queue;
				p->queue = tmp;
				p->queue.len = 0;
			}
			if (tls_conn_write(p->tls, p->out.data, p->out.len) < 0) {
				log_warning("peer %llu at %s: TLS cannot encrypt (out of memory?); "
					    "closed", (unsigned long long)p->id, p->address);
				peer_drop(p);
				peer_settle(p);
				return;
			}
		}
		peer_tls_send(p);
		return;
	}
	if (p->out_sent == p->out.len) {
		if (p->queue.len == 0)
			return;
		struct jute_buf tmp = p->out;
		p->out = p->queue;
		p->queue = tmp;
		p->queue.len = 0;
		p->out_sent = 0;
	}
	struct io_uring_sqe *sqe = loop_sqe(p->t->loop, &p->send_op);
	io_uring_prep_send(sqe, p->fd, p->out.data + p->out_sent, p->out.len - p->out_sent,
			   MSG_NOSIGNAL);
	p->sending = true;
	p->ops++;
}

/* The connection may carry frames: from now on the only thing it receives
 * is its end. */
static void out_established(struct peer *p)
{
	p->stage = OUT_PLAIN;
	p->up = true;
	p->connects++;
	p->backoff_ms = p->t->o.backoff_min_ms;
	p->out_sent = 0;
	if (p->tls)
		log_debug("peer %llu at %s: %s, %s", (unsigned long long)p->id, p->address,
			  tls_conn_version(p->tls), tls_conn_cipher(p->tls));
	/* Nothing is ever sent back on this connection: a recv that completes
	 * means the other side closed it (or broke the rules: with TLS, an
	 * alert that refuses us), so a restarted peer is noticed at once, not
	 * at the next failed send. */
	if (!p->receiving) {
		struct io_uring_sqe *sqe = loop_sqe(p->t->loop, &p->watch_op);
		io_uring_prep_recv(sqe, p->fd, &p->watch_byte, 1, 0);
		p->receiving = true;
		p->ops++;
	}
	peer_pump(p);
}

/* Sends what is left of the handshake's message in hs_out. */
static void out_send_handshake(struct peer *p)
{
	if (p->sending || p->hs_out_sent == p->hs_out_len)
		return;
	struct io_uring_sqe *sqe = loop_sqe(p->t->loop, &p->send_op);
	io_uring_prep_send(sqe, p->fd, p->hs_out + p->hs_out_sent, p->hs_out_len - p->hs_out_sent,
			   MSG_NOSIGNAL);
	p->sending = true;
	p->ops++;
}

/* Optional mode (peer_auth or TLS): the other side closed the connection
 * at our first message, having sent nothing (a member that does not speak
 * it): *plain_next, so the next connection goes without, at once; true.
 * false when that is not the case (the caller refuses). */
static bool out_fallback(struct peer *p, int res, bool optional, size_t received,
			 const char *what, const char *key, bool *plain_next)
{
	if (!optional || received > 0 || (res != 0 && res != -ECONNRESET))
		return false;
	log_info("peer %llu at %s closed the connection at our %s: connecting without (%s: "
		 "optional)", (unsigned long long)p->id, p->address, what, key);
	*plain_next = true;
	p->backoff_ms = p->t->o.backoff_min_ms;
	peer_drop(p);
	peer_settle(p);
	return true;
}

/* Receives what is left of the acceptor's CHALLENGE. */
static void out_recv_challenge(struct peer *p)
{
	struct io_uring_sqe *sqe = loop_sqe(p->t->loop, &p->watch_op);
	io_uring_prep_recv(sqe, p->fd, p->hs_in + p->hs_in_len, sizeof(p->hs_in) - p->hs_in_len, 0);
	p->receiving = true;
	p->ops++;
}

/* ---- TLS, outgoing (ensemble.tls) ---- */

/* The TLS connection to p failed: one log line (at most so many a minute). */
static void out_tls_refuse(struct peer *p, const char *why)
{
	struct peer_transport *t = p->t;
	t->tls_refused++;
	if (log_limit_allow(&t->auth_log, loop_now_ms()))
		log_warning("peer %llu at %s refused: %s; closed", (unsigned long long)p->id,
			    p->address, why);
	peer_drop(p);
	peer_settle(p);
}

/* Hands OpenSSL's records for p to the kernel, one send at a time (the
 * kernel reads tls_tx until it completes). false: p was dropped. */
static bool peer_tls_send(struct peer *p)
{
	if (p->sending)
		return true;
	if (p->tls_tx_sent == p->tls_tx.len) {
		p->tls_tx_sent = 0;
		if (tls_conn_take_all(p->tls, &p->tls_tx) < 0) {
			log_warning("peer %llu at %s: out of memory for TLS records; closed",
				    (unsigned long long)p->id, p->address);
			peer_drop(p);
			peer_settle(p);
			return false;
		}
		if (p->tls_tx.len == 0)
			return true;
	}
	struct io_uring_sqe *sqe = loop_sqe(p->t->loop, &p->send_op);
	io_uring_prep_send(sqe, p->fd, p->tls_tx.data + p->tls_tx_sent,
			   p->tls_tx.len - p->tls_tx_sent, MSG_NOSIGNAL);
	p->sending = true;
	p->ops++;
	return true;
}

/* The handshake as far as what was received takes it: records out, a
 * recv for more, or the connection established once all is sent. */
static void out_tls_step(struct peer *p)
{
	char why[300];
	int r = tls_conn_handshake(p->tls, why, sizeof(why));
	if (r < 0 && r != -EAGAIN) {
		out_tls_refuse(p, why);
		return;
	}
	if (!peer_tls_send(p))
		return;
	if (r == 0 && !p->sending) {
		out_established(p);
		return;
	}
	if (r == -EAGAIN && !p->receiving) {
		struct io_uring_sqe *sqe = loop_sqe(p->t->loop, &p->watch_op);
		io_uring_prep_recv(sqe, p->fd, p->tls_rx, PEER_TLS_RX_BYTES, 0);
		p->receiving = true;
		p->ops++;
	}
}

static void out_tls_start(struct peer *p)
{
	p->stage = OUT_TLS;
	p->started_ms = loop_now_ms();
	p->tls_rx_total = 0;
	p->tls_tx.len = p->tls_tx_sent = 0;
	if ((!p->tls_rx && !(p->tls_rx = malloc(PEER_TLS_RX_BYTES))) ||
	    tls_conn_new(p->t->o.tls_ctx, true, &p->tls) < 0 ||
	    tls_conn_expect_name(p->tls, p->host) < 0) {
		log_warning("peer %llu at %s: out of memory for TLS; closed",
			    (unsigned long long)p->id, p->address);
		peer_drop(p);
		peer_settle(p);
		return;
	}
	out_tls_step(p);
}

/* A recv of the handshake completed: records, or the connection's end. */
static void out_tls_recv(struct peer *p, int res)
{
	struct peer_transport *t = p->t;
	if (p->closing) {
		peer_settle(p);
		return;
	}
	/* a member without TLS closes at a ClientHello: speak plaintext */
	if (res <= 0 && out_fallback(p, res, t->o.tls_mode == PEER_TLS_OPTIONAL, p->tls_rx_total,
				     "TLS handshake", "ensemble.tls.mode", &p->tls_plain_next))
		return;
	if (res <= 0) {
		out_tls_refuse(p, p->tls_rx_total ? "it closed the connection during the TLS "
			       "handshake" : "it closed the connection at our TLS handshake (a "
			       "member without ensemble.tls?)");
		return;
	}
	p->tls_rx_total += (size_t)res;
	if (tls_conn_feed(p->tls, p->tls_rx, (size_t)res) < 0) {
		out_tls_refuse(p, "out of memory for TLS records");
		return;
	}
	out_tls_step(p);
}

/* A send of TLS records completed (res > 0). */
static void out_tls_sent(struct peer *p, int res)
{
	p->tls_tx_sent += (size_t)res;
	if (p->tls_tx_sent < p->tls_tx.len) {
		peer_tls_send(p);
		return;
	}
	if (!p->up) {
		if (!peer_tls_send(p))
			return;
		if (p->tls->handshake_done && !p->sending)
			out_established(p);
		return;
	}
	/* every record of out's frames is with the kernel: so are the frames */
	p->out_sent = p->out.len;
	out_trim(p);
	p->tls_tx.len = p->tls_tx_sent = 0;
	peer_pump(p);
}

static void out_authenticate(struct peer *p)
{
	struct peer_transport *t = p->t;
	p->stage = OUT_HELLO;
	p->hs_in_len = 0;
	p->hs_out_sent = 0;
	p->hs_out_len = PEER_AUTH_HELLO_BYTES;
	if (peer_auth_hello(&p->auth, t->o.cluster_tag, t->o.self, p->id, p->hs_out) < 0) {
		log_warning("peer %llu at %s: no random bytes for the handshake's nonce",
			    (unsigned long long)p->id, p->address);
		peer_drop(p);
		peer_settle(p);
		return;
	}
	out_send_handshake(p);
	out_recv_challenge(p);
}

/* The acceptor's CHALLENGE, whole: its proof checked, our RESPONSE sent. */
static void out_challenged(struct peer *p)
{
	struct peer_transport *t = p->t;
	char why[200];
	int r = -EPROTO;
	/* The CHALLENGE answers the HELLO, so the HELLO is out by now. */
	if (p->sending || p->hs_out_sent < p->hs_out_len)
		snprintf(why, sizeof(why), "it answered before our HELLO was out");
	else
		r = peer_auth_answer_challenge(&p->auth, t->secret, t->o.secret_len, p->hs_in,
					       p->hs_out, why, sizeof(why));
	if (r < 0) {
		t->auth_refused++;
		if (log_limit_allow(&t->auth_log, loop_now_ms()))
			log_warning("peer %llu at %s refused: %s; closed", (unsigned long long)p->id,
				    p->address, why);
		peer_drop(p);
		peer_settle(p);
		return;
	}
	p->stage = OUT_RESPONSE;
	p->hs_out_len = PEER_AUTH_RESPONSE_BYTES;
	p->hs_out_sent = 0;
	out_send_handshake(p);
}

/* A recv of the handshake completed (the CHALLENGE, or the connection's end). */
static void out_handshake_recv(struct peer *p, int res)
{
	struct peer_transport *t = p->t;
	if (p->closing) {
		peer_settle(p);
		return;
	}
	/* a member with no secret closes at a HELLO: speak without */
	if (res <= 0 && out_fallback(p, res, t->o.auth_optional, p->hs_in_len, "authentication",
				     "ensemble.peer_auth", &p->plain_next))
		return;
	if (res <= 0) {
		if (log_limit_allow(&t->auth_log, loop_now_ms())) {
			log_warning("peer %llu at %s closed the connection during authentication "
				    "(no ensemble.secret_file there, or another one)",
				    (unsigned long long)p->id, p->address);
		}
		peer_drop(p);
		peer_settle(p);
		return;
	}
	p->hs_in_len += (size_t)res;
	if (p->hs_in_len < sizeof(p->hs_in))
		out_recv_challenge(p);
	else if (p->stage == OUT_HELLO)
		out_challenged(p);
	else {
		/* nothing may come after the CHALLENGE */
		log_warning("peer %llu at %s sent more than its authentication; closed",
			    (unsigned long long)p->id, p->address);
		peer_drop(p);
		peer_settle(p);
	}
}

static void on_connect(struct loop_op *op, int res, uint32_t flags)
{
	struct peer *p = (struct peer *)((char *)op - offsetof(struct peer, connect_op));
	(void)flags;
	p->ops--;
	p->connecting = false;
	if (res < 0 || p->closing || p->t->closing) {
		if (res < 0) {
			p->connect_failures++;
			p->pick++;	/* a name's next address, if it has several */
			log_debug("peer %llu at %s: connect: %s; again in %u ms",
				  (unsigned long long)p->id, p->address, strerror(-res), p->backoff_ms);
		}
		peer_drop(p);
		peer_settle(p);
		return;
	}
	if (p->t->o.tls_ctx && !p->tls_plain_next) {
		out_tls_start(p);
		return;
	}
	p->tls_plain_next = false;
	if (p->t->secret && !p->plain_next) {
		out_authenticate(p);
		return;
	}
	p->plain_next = false;
	out_established(p);
}

static void on_watch(struct loop_op *op, int res, uint32_t flags)
{
	struct peer *p = (struct peer *)((char *)op - offsetof(struct peer, watch_op));
	(void)flags;
	p->ops--;
	p->receiving = false;
	if (p->stage == OUT_TLS && !p->up) {
		out_tls_recv(p, res);
		return;
	}
	if (p->stage != OUT_PLAIN && !p->up) {
		out_handshake_recv(p, res);
		return;
	}
	if (!p->closing)
		log_debug("peer %llu at %s: the connection %s", (unsigned long long)p->id, p->address,
			  res == 0 ? "was closed by the other side" : res < 0 ? strerror(-res)
								       : "received data");
	peer_drop(p);
	peer_settle(p);
}

/* Drops the whole frames at the front of out that are sent; what is left
 * goes first, from its start, on the next connection. */
static void out_trim(struct peer *p)
{
	size_t off = 0;
	while (p->out_sent - off >= 4) {
		uint32_t n;
		memcpy(&n, p->out.data + off, 4);
		size_t frame = (size_t)be32toh(n) + 4;
		if (p->out_sent - off < frame)
			break;
		off += frame;
		p->frames_sent++;
	}
	if (off) {
		memmove(p->out.data, p->out.data + off, p->out.len - off);
		p->out.len -= off;
	}
	p->out_sent = 0;
}

static void on_send(struct loop_op *op, int res, uint32_t flags)
{
	struct peer *p = (struct peer *)((char *)op - offsetof(struct peer, send_op));
	(void)flags;
	p->ops--;
	p->sending = false;
	if (res > 0 && !p->closing && p->tls) {
		out_tls_sent(p, res);
		return;
	}
	if (res > 0 && !p->closing && p->stage != OUT_PLAIN && !p->up) {
		p->hs_out_sent += (size_t)res;
		if (p->hs_out_sent < p->hs_out_len)
			out_send_handshake(p);
		else if (p->stage == OUT_RESPONSE)
			out_established(p);
		return;
	}
	if (res <= 0 || p->closing) {
		if (!p->closing)
			log_debug("peer %llu at %s: send: %s", (unsigned long long)p->id, p->address,
				  res < 0 ? strerror(-res) : "nothing sent");
		peer_drop(p);
		peer_settle(p);
		return;
	}
	p->out_sent += (size_t)res;
	if (p->out_sent == p->out.len)
		out_trim(p);
	peer_pump(p);
}

int peer_transport_add(struct peer_transport *t, raft_id id, const char *address)
{
	for (size_t i = 0; i < t->peer_count; i++)
		if (t->peers[i]->id == id)
			return -EEXIST;
	struct sockaddr_storage ss;
	socklen_t len;
	char host[256];
	uint16_t port;
	if (sockaddr_split(address, false, host, sizeof(host), &port) < 0)
		return -EINVAL;
	bool named = sockaddr_from_host(host, port, &ss, &len) < 0;
	/* Each peer is its own allocation: ring operations point into it, so
	 * it never moves. */
	struct peer **peers = realloc(t->peers, (t->peer_count + 1) * sizeof(*peers));
	if (!peers)
		return -ENOMEM;
	t->peers = peers;
	struct peer *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	t->peers[t->peer_count++] = p;
	p->t = t;
	p->id = id;
	snprintf(p->address, sizeof(p->address), "%s", address);
	snprintf(p->host, sizeof(p->host), "%s", host);
	p->port = port;
	p->named = named;
	if (!named) {
		p->sa = ss;
		p->sa_len = len;
	}
	p->fd = -1;
	p->backoff_ms = t->o.backoff_min_ms;
	p->connect_op.complete = on_connect;
	p->send_op.complete = on_send;
	p->watch_op.complete = on_watch;
	return 0;
}

/* The sender field of our frames: our id, our ensemble's tag above it. */
static raft_id sender(const struct peer_transport *t)
{
	return (raft_id)t->o.cluster_tag << 32 | (t->o.self & 0xffffffff);
}

struct peer *peer_transport_find(struct peer_transport *t, raft_id id)
{
	for (size_t i = 0; i < t->peer_count; i++)
		if (t->peers[i]->id == id)
			return t->peers[i];
	return NULL;
}

/* The frame just appended to p's queue (from before) goes out, or is
 * dropped when the queue is over its bound. */
static int queued(struct peer_transport *t, struct peer *p, size_t before, int r)
{
	if (r < 0) {
		p->queue.len = before;
		p->queue.error = 0;
		return r;
	}
	if (p->queue.len + p->out.len - p->out_sent > t->o.max_queue_bytes &&
	    (before > 0 || p->out.len > p->out_sent)) {
		p->queue.len = before;
		p->frames_dropped++;
		return -ENOBUFS;
	}
	if (p->fd < 0 && loop_now_ms() >= p->retry_at_ms)
		peer_connect(p);
	peer_pump(p);
	return 0;
}

int peer_transport_send(struct peer_transport *t, const struct raft_message *m)
{
	struct peer *p = peer_transport_find(t, m->server_id);
	if (!p)
		return -ENOENT;
	size_t before = p->queue.len;
	return queued(t, p, before, peer_message_encode(m, sender(t), &p->queue));
}

int peer_transport_send_frame(struct peer_transport *t, raft_id to, uint16_t type,
			      const void *body, size_t len)
{
	struct peer *p = peer_transport_find(t, to);
	if (!p)
		return -ENOENT;
	size_t before = p->queue.len;
	return queued(t, p, before, peer_frame_encode(type, sender(t), body, len, &p->queue));
}

size_t peer_transport_queued(struct peer_transport *t, raft_id id)
{
	struct peer *p = peer_transport_find(t, id);
	return p ? p->queue.len + p->out.len - p->out_sent : 0;
}

bool peer_transport_up(struct peer_transport *t, raft_id id)
{
	struct peer *p = peer_transport_find(t, id);
	return p && p->up;
}

/* ---- the whole ---- */

int peer_transport_init(struct peer_transport *t, struct loop *loop,
			const struct peer_transport_options *o, char *why, size_t why_size)
{
	memset(t, 0, sizeof(*t));
	t->loop = loop;
	t->o = *o;
	t->listen_fd = -1;
	t->resolve_log.what = "failed lookups of peer names";
	t->auth_log.what = "peer connections refused at authentication";
	struct sockaddr_storage ss;
	socklen_t len;
	char host[256];
	uint16_t port;
	if (sockaddr_split(o->listen, true, host, sizeof(host), &port) < 0) {
		snprintf(why, why_size, "peer address %s is not host:port", o->listen);
		return -EINVAL;
	}
	/* at start-up, before the loop serves anyone: a name may be looked up here */
	int r = resolve_now(host, port, true, &ss, &len);
	if (r < 0) {
		snprintf(why, why_size, "peer address %s: %s", o->listen,
			 r == -ENOENT ? "no such host name (or no IPv4/IPv6 address for it)"
				      : "the name could not be looked up now");
		return r;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0) {
		snprintf(why, why_size, "socket(): %s", strerror(errno));
		return -errno;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		int e = errno;
		snprintf(why, why_size, "cannot listen on %s: %s", o->listen, strerror(e));
		close(fd);
		return -e;
	}
	len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	sockaddr_text(&ss, t->listen_name, sizeof(t->listen_name));
	if (o->secret) {
		t->secret = malloc(o->secret_len);
		if (!t->secret) {
			snprintf(why, why_size, "out of memory");
			close(fd);
			return -ENOMEM;
		}
		memcpy(t->secret, o->secret, o->secret_len);
		t->o.secret = NULL;	/* t->secret is the one used */
	}
	t->listen_fd = fd;
	peer_inbound_accept(t);
	return 0;
}

void peer_transport_tick(struct peer_transport *t, uint64_t now_ms)
{
	if (t->closing)
		return;
	log_limit_tick(&t->resolve_log, now_ms);
	log_limit_tick(&t->auth_log, now_ms);
	peer_inbound_tick(t, now_ms);
	if (!t->accepting && t->listen_fd >= 0)
		peer_inbound_accept(t);
	for (size_t i = 0; i < t->peer_count; i++) {
		struct peer *p = t->peers[i];
		if (p->fd >= 0 && p->tls && !p->up && !p->closing &&
		    now_ms - p->started_ms >= PEER_AUTH_TIMEOUT_MS)
			out_tls_refuse(p, "it did not finish the TLS handshake in "
				       STRINGIFY(PEER_AUTH_TIMEOUT_MS) " ms");
		if (p->fd < 0 && (p->queue.len > 0 || p->out.len > 0) && now_ms >= p->retry_at_ms)
			peer_connect(p);
	}
}

bool peer_transport_close(struct peer_transport *t)
{
	if (!t->closing) {
		t->closing = true;
		if (t->listen_fd >= 0) {
			shutdown(t->listen_fd, SHUT_RDWR);	/* ends the multishot accept */
			close(t->listen_fd);
			t->listen_fd = -1;
		}
		for (size_t i = 0; i < t->peer_count; i++) {
			struct peer *p = t->peers[i];
			if (p->fd >= 0 && !p->closing) {
				p->up = false;
				p->closing = true;
				shutdown(p->fd, SHUT_RDWR);
			}
			peer_settle(p);
		}
		peer_inbound_close_all(t);
	}
	bool busy = t->accepting || t->inbound != NULL;
	for (size_t i = 0; i < t->peer_count; i++) {
		peer_settle(t->peers[i]);
		busy = busy || t->peers[i]->ops > 0 || t->peers[i]->fd >= 0;
	}
	if (busy)
		return false;
	for (size_t i = 0; i < t->peer_count; i++) {
		resolver_cancel(&t->peers[i]->resolver);
		tls_conn_free(t->peers[i]->tls);
		free(t->peers[i]->tls_rx);
		jute_buf_free(&t->peers[i]->tls_tx);
		jute_buf_free(&t->peers[i]->queue);
		jute_buf_free(&t->peers[i]->out);
		free(t->peers[i]);
	}
	free(t->peers);
	t->peers = NULL;
	if (t->secret) {
		OPENSSL_cleanse(t->secret, t->o.secret_len);
		free(t->secret);
		t->secret = NULL;
	}
	t->peer_count = 0;
	return true;
}
