/* peer_inbound: the connections other members open to this one: accepted,
 * authenticated (a shared secret's challenge, or TLS with the peer's
 * certificate naming it), then read for frames. See peer_transport.h. */
#include "peer_transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <liburing.h>

#include "common.h"
#include "log.h"
#include "peer_message.h"
#include "sockaddr.h"

#define RECV_CHUNK 65536
#define TLS_HANDSHAKE_RECORD 0x16	/* a ClientHello's first byte; as a frame's, a length over 350 MB */

static void on_recv(struct loop_op *op, int res, uint32_t flags);

static void inbound_settle(struct peer_inbound *in)
{
	if (!in->closing || in->ops)
		return;
	struct peer_transport *t = in->t;
	close(in->fd);
	for (struct peer_inbound **pp = &t->inbound; *pp; pp = &(*pp)->next)
		if (*pp == in) {
			*pp = in->next;
			break;
		}
	t->inbound_count--;
	tls_conn_free(in->tls);
	free(in->tls_rx);
	jute_buf_free(&in->tls_tx);
	free(in->buf);
	free(in);
}

/* Ends the connection; the caller then calls inbound_settle(), which frees
 * it once no ring operation uses it. */
static void inbound_close(struct peer_inbound *in)
{
	if (in->closing)
		return;
	in->closing = true;
	shutdown(in->fd, SHUT_RDWR);
}

/* Room in buf for what comes next (it grows up to a frame's bound and a
 * chunk). false: out of memory, the connection closed (in may be freed). */
static bool inbound_room(struct peer_inbound *in)
{
	size_t limit = in->t->o.max_frame_bytes + RECV_CHUNK;
	if (in->cap - in->len < RECV_CHUNK && in->cap < limit) {
		size_t cap = in->cap ? in->cap * 2 : RECV_CHUNK * 2;
		if (cap > limit)
			cap = limit;
		uint8_t *b = realloc(in->buf, cap);
		if (!b) {
			log_warning("peer connection: out of memory for its buffer; closed");
			inbound_close(in);
			inbound_settle(in);
			return false;
		}
		in->buf = b;
		in->cap = cap;
	}
	return true;
}

/* A recv: into buf, or with TLS into tls_rx (records, decrypted into buf). */
static void inbound_arm(struct peer_inbound *in)
{
	struct io_uring_sqe *sqe;
	if (in->tls) {
		sqe = loop_sqe(in->t->loop, &in->recv_op);
		io_uring_prep_recv(sqe, in->fd, in->tls_rx, PEER_TLS_RX_BYTES, 0);
		in->ops++;
		return;
	}
	if (!inbound_room(in))
		return;
	sqe = loop_sqe(in->t->loop, &in->recv_op);
	io_uring_prep_recv(sqe, in->fd, in->buf + in->len, in->cap - in->len, 0);
	in->ops++;
}

/* "address:port" of the other side of an accepted connection. */
static void inbound_name(const struct peer_inbound *in, char *out, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	snprintf(out, size, "?");
	if (getpeername(in->fd, (struct sockaddr *)&ss, &len) == 0)
		sockaddr_text(&ss, out, size);
}

/* A connection that failed the handshake: one log line (at most so many a
 * minute), and it is closed before any of its frames is heard. in may be
 * freed: the caller returns. */
static void inbound_refuse_counted(struct peer_inbound *in, const char *why, uint64_t *counter)
{
	struct peer_transport *t = in->t;
	(*counter)++;
	if (log_limit_allow(&t->auth_log, loop_now_ms())) {
		char from[96];
		inbound_name(in, from, sizeof(from));
		log_warning("peer connection from %s refused: %s; closed", from, why);
	}
	/* A TLS refusal: the alert OpenSSL wrote (a certificate of another
	 * CA, no certificate) is being sent; the connection closes after it,
	 * as a TLS peer expects, rather than cutting it off. Nothing more is
	 * read from it meanwhile. */
	if (in->tls && in->sending) {
		in->close_after_send = true;
		return;
	}
	inbound_close(in);
	inbound_settle(in);
}

static void inbound_refuse(struct peer_inbound *in, const char *why)
{
	inbound_refuse_counted(in, why, &in->t->auth_refused);
}

static void inbound_refuse_tls(struct peer_inbound *in, const char *why)
{
	inbound_refuse_counted(in, why, &in->t->tls_refused);
}

static void inbound_consume(struct peer_inbound *in, size_t n)
{
	memmove(in->buf, in->buf + n, in->len - n);
	in->len -= n;
}

static void inbound_send_challenge(struct peer_inbound *in)
{
	struct io_uring_sqe *sqe = loop_sqe(in->t->loop, &in->send_op);
	io_uring_prep_send(sqe, in->fd, in->hs_out + in->hs_out_sent,
			   sizeof(in->hs_out) - in->hs_out_sent, MSG_NOSIGNAL);
	in->ops++;
}

/* Hands OpenSSL's records (the handshake's) to the kernel, one send at a
 * time. */
static void inbound_tls_send(struct peer_inbound *in)
{
	if (in->sending)
		return;
	if (in->tls_tx_sent == in->tls_tx.len) {
		in->tls_tx_sent = 0;
		/* no memory: nothing sent, and the handshake times out */
		if (tls_conn_take_all(in->tls, &in->tls_tx) < 0 || in->tls_tx.len == 0)
			return;
	}
	struct io_uring_sqe *sqe = loop_sqe(in->t->loop, &in->send_op);
	io_uring_prep_send(sqe, in->fd, in->tls_tx.data + in->tls_tx_sent,
			   in->tls_tx.len - in->tls_tx_sent, MSG_NOSIGNAL);
	in->sending = true;
	in->ops++;
}

static void on_inbound_send(struct loop_op *op, int res, uint32_t flags)
{
	struct peer_inbound *in =
		(struct peer_inbound *)((char *)op - offsetof(struct peer_inbound, send_op));
	(void)flags;
	in->ops--;
	in->sending = false;
	if (res <= 0 || in->closing || in->t->closing || in->close_after_send) {
		inbound_close(in);
		inbound_settle(in);
		return;
	}
	if (in->tls) {
		in->tls_tx_sent += (size_t)res;
		inbound_tls_send(in);
		return;
	}
	in->hs_out_sent += (size_t)res;
	if (in->hs_out_sent < sizeof(in->hs_out))
		inbound_send_challenge(in);
}

/* The first bytes of an accepted connection: a HELLO (answered with our
 * CHALLENGE), or the first frame of a server that does not authenticate. */
static int inbound_first(struct peer_inbound *in)
{
	struct peer_transport *t = in->t;
	char why[200];
	if (in->len < 4)
		return 0;
	bool hello = peer_auth_is_hello(in->buf, in->len);
	if (!hello && (!t->secret || t->o.auth_optional)) {
		in->stage = IN_FRAMES;
		return 1;
	}
	if (!hello) {
		inbound_refuse(in, "it does not authenticate (a member without "
			       "ensemble.secret_file, or not a member)");
		return -1;
	}
	if (!t->secret) {
		inbound_refuse(in, "it authenticates with a shared secret, and this server has "
			       "none (ensemble.secret_file)");
		return -1;
	}
	if (in->len < PEER_AUTH_HELLO_BYTES)
		return 0;
	if (peer_auth_answer_hello(&in->auth, t->o.cluster_tag, t->o.self, t->secret,
				   t->o.secret_len, in->buf, in->hs_out, why, sizeof(why)) < 0) {
		inbound_refuse(in, why);
		return -1;
	}
	inbound_consume(in, PEER_AUTH_HELLO_BYTES);
	in->stage = IN_RESPONSE;
	in->hs_out_sent = 0;
	inbound_send_challenge(in);
	return 1;
}

/* The first byte of an accepted connection on a TLS port: a ClientHello's
 * record (TLS begins, with what was received fed to it), or plaintext
 * (refused when TLS is required). 1 when the caller goes on, 0 when more
 * must come, -1 when refused (in may be freed). */
static int inbound_tls_first(struct peer_inbound *in)
{
	struct peer_transport *t = in->t;
	if (in->len < 1)
		return 0;
	if (in->buf[0] != TLS_HANDSHAKE_RECORD) {
		if (t->o.tls_mode != PEER_TLS_REQUIRED)
			return 1;
		inbound_refuse_tls(in, "it does not speak TLS (ensemble.tls.mode is required here)");
		return -1;
	}
	if (!(in->tls_rx = malloc(PEER_TLS_RX_BYTES)) ||
	    tls_conn_new(t->o.tls_ctx, false, &in->tls) < 0 ||
	    tls_conn_feed(in->tls, in->buf, in->len) < 0) {
		log_warning("peer connection: out of memory for TLS; closed");
		inbound_close(in);
		inbound_settle(in);
		return -1;
	}
	in->len = 0;
	in->stage = IN_TLS;
	return 1;
}

/* The handshake's part of what an accepted connection sent: 1 when frames
 * may follow (the handshake's bytes consumed), 0 when more must come, -1
 * when the connection was refused (in may be freed). */
static int inbound_handshake(struct peer_inbound *in)
{
	char why[200];
	if (in->stage == IN_FIRST && in->t->o.tls_ctx) {
		int r = inbound_tls_first(in);
		if (r <= 0)
			return r;
		if (in->tls)
			return 1;
	}
	if (in->stage == IN_FIRST) {
		int r = inbound_first(in);
		if (r <= 0)
			return r;
	}
	if (in->stage == IN_RESPONSE) {
		if (in->len < PEER_AUTH_RESPONSE_BYTES)
			return 0;
		if (peer_auth_check_response(&in->auth, in->t->secret, in->t->o.secret_len, in->buf,
					     why, sizeof(why)) < 0) {
			inbound_refuse(in, why);
			return -1;
		}
		inbound_consume(in, PEER_AUTH_RESPONSE_BYTES);
		in->stage = IN_FRAMES;
		in->authenticated = true;
		in->peer_id = in->auth.connector;
		log_debug("peer connection from server %llu: authenticated",
			  (unsigned long long)in->peer_id);
	}
	return 1;
}

/* With TLS, the connection's first frame names its sender: the member
 * whose peer host its certificate names, or it is refused. 0 or -1 (in may
 * be freed). */
static int inbound_tls_sender(struct peer_inbound *in, raft_id from)
{
	char why[400];
	struct peer *p = peer_transport_find(in->t, from);
	if (!p || !tls_conn_peer_names(in->tls, p->host)) {
		if (!p)
			snprintf(why, sizeof(why), "its frames are from server %llu, not a member here",
				 (unsigned long long)from);
		else
			snprintf(why, sizeof(why), "its certificate does not name server %llu (the "
				 "host of its peer address %s), whose frames it sends",
				 (unsigned long long)from, p->address);
		inbound_refuse_tls(in, why);
		return -1;
	}
	in->authenticated = true;
	in->peer_id = from;
	log_debug("peer connection from server %llu: TLS (%s, %s)", (unsigned long long)from,
		  tls_conn_version(in->tls), tls_conn_cipher(in->tls));
	return 0;
}

/* The whole frames at the front of buf, each to raft (or on_frame), the
 * rest kept. 0, or -1 when the connection was closed (in may be freed). */
static int inbound_frames(struct peer_inbound *in)
{
	struct peer_transport *t = in->t;
	size_t off = 0;
	for (;;) {
		struct peer_frame f;
		struct raft_message m;
		char why[256];
		ssize_t n = peer_frame_decode(in->buf + off, in->len - off, t->o.max_frame_bytes, &f,
					      why, sizeof(why));
		if (n > 0 && (uint32_t)(f.from >> 32) != t->o.cluster_tag) {
			snprintf(why, sizeof(why), "server %llu of another ensemble (tag %08x, ours %08x)",
				 (unsigned long long)(f.from & 0xffffffff), (unsigned)(f.from >> 32),
				 t->o.cluster_tag);
			n = -EBADMSG;
		}
		f.from &= 0xffffffff;
		if (n > 0 && in->tls && !in->authenticated && inbound_tls_sender(in, f.from) < 0)
			return -1;
		if (n > 0 && in->authenticated && f.from != in->peer_id) {
			snprintf(why, sizeof(why), "a frame from server %llu on the connection that "
				 "authenticated server %llu", (unsigned long long)f.from,
				 (unsigned long long)in->peer_id);
			n = -EBADMSG;
		}
		if (n > 0 && f.type < PEER_FRAME_CORRAL &&
		    peer_message_from_frame(&f, &m, why, sizeof(why)) < 0)
			n = -EBADMSG;
		if (n > 0 && f.type >= PEER_FRAME_CORRAL && !t->o.on_frame) {
			snprintf(why, sizeof(why), "frame type %u is not known here", f.type);
			n = -EBADMSG;
		}
		if (n == 0)
			break;
		if (n < 0) {
			char from[96];
			inbound_name(in, from, sizeof(from));
			log_warning("peer connection from %s: %s; closed", from, why);
			t->frames_refused++;
			inbound_close(in);
			inbound_settle(in);
			return -1;
		}
		off += (size_t)n;
		t->frames_received++;
		if (f.type >= PEER_FRAME_CORRAL)
			t->o.on_frame(t->o.ctx, &f);
		else
			t->o.on_message(t->o.ctx, &m);
		if (in->closing || t->closing)
			break;
	}
	memmove(in->buf, in->buf + off, in->len - off);
	in->len -= off;
	if (in->closing || t->closing) {
		inbound_close(in);
		inbound_settle(in);
		return -1;
	}
	return 0;
}

/* Records received (len bytes in tls_rx, 0 for those fed already): the
 * handshake advanced and its records sent, then what they carry decrypted
 * into buf and its frames heard, until OpenSSL needs more. */
static void inbound_tls_recv(struct peer_inbound *in, size_t len)
{
	char why[300];
	if (tls_conn_feed(in->tls, in->tls_rx, len) < 0) {
		inbound_refuse_tls(in, "out of memory for its TLS records");
		return;
	}
	for (;;) {
		size_t n = 0;
		if (!inbound_room(in))
			return;
		int r = tls_conn_read(in->tls, in->buf + in->len, in->cap - in->len, &n, why,
				      sizeof(why));
		if (in->stage == IN_TLS)
			inbound_tls_send(in);
		if (in->tls->handshake_done)
			in->stage = IN_FRAMES;
		if (r == -EAGAIN)
			break;
		if (r == -ECONNRESET) {
			inbound_close(in);
			inbound_settle(in);
			return;
		}
		if (r < 0) {
			inbound_refuse_tls(in, why);
			return;
		}
		in->len += n;
		if (inbound_frames(in) < 0)
			return;
	}
	inbound_arm(in);
}

static void on_recv(struct loop_op *op, int res, uint32_t flags)
{
	struct peer_inbound *in =
		(struct peer_inbound *)((char *)op - offsetof(struct peer_inbound, recv_op));
	struct peer_transport *t = in->t;
	(void)flags;
	in->ops--;
	if (res <= 0 || in->closing || t->closing) {
		inbound_close(in);
		inbound_settle(in);
		return;
	}
	if (in->tls) {
		inbound_tls_recv(in, (size_t)res);
		return;
	}
	in->len += (size_t)res;
	if (in->stage != IN_FRAMES) {
		int r = inbound_handshake(in);
		if (r < 0)
			return;
		if (in->tls) {
			inbound_tls_recv(in, 0);
			return;
		}
		if (r == 0 || in->len == 0) {
			inbound_arm(in);
			return;
		}
	}
	if (inbound_frames(in) < 0)
		return;
	inbound_arm(in);
}

static void on_accept(struct loop_op *op, int res, uint32_t flags);
void peer_inbound_accept(struct peer_transport *t)
{
	t->accept_op.complete = on_accept;
	struct io_uring_sqe *sqe = loop_sqe(t->loop, &t->accept_op);
	io_uring_prep_multishot_accept(sqe, t->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	t->accepting = true;
}

static void on_accept(struct loop_op *op, int res, uint32_t flags)
{
	struct peer_transport *t =
		(struct peer_transport *)((char *)op - offsetof(struct peer_transport, accept_op));
	if (!(flags & IORING_CQE_F_MORE))
		t->accepting = false;	/* re-armed by peer_transport_tick() */
	if (res < 0)
		return;
	if (t->closing) {
		close(res);
		return;
	}
	if (t->inbound_count >= t->o.max_inbound) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char from[96] = "?";
		if (getpeername(res, (struct sockaddr *)&ss, &len) == 0)
			sockaddr_text(&ss, from, sizeof(from));
		log_warning("peer connection from %s refused: %u open already (the most at once)",
			    from, t->inbound_count);
		t->inbound_refused++;
		close(res);
		return;
	}
	struct peer_inbound *in = calloc(1, sizeof(*in));
	if (!in) {
		close(res);
		return;
	}
	in->t = t;
	in->fd = res;
	in->recv_op.complete = on_recv;
	in->send_op.complete = on_inbound_send;
	in->accepted_ms = loop_now_ms();
	in->next = t->inbound;
	t->inbound = in;
	t->inbound_count++;
	inbound_arm(in);
}

void peer_inbound_tick(struct peer_transport *t, uint64_t now_ms)
{
	for (struct peer_inbound *in = t->inbound, *next; in; in = next) {
		next = in->next;
		if (in->close_after_send) {
			/* its alert has had a handshake's time to go out */
			if (now_ms - in->accepted_ms >= 2 * PEER_AUTH_TIMEOUT_MS) {
				inbound_close(in);
				inbound_settle(in);
			}
			continue;
		}
		bool tls = in->stage == IN_TLS || (in->stage == IN_FIRST && t->o.tls_ctx);
		bool waiting = tls || in->stage == IN_RESPONSE || (in->stage == IN_FIRST && t->secret);
		if (!waiting || in->closing || now_ms - in->accepted_ms < PEER_AUTH_TIMEOUT_MS)
			continue;
		if (tls)
			inbound_refuse_tls(in, "it did not finish its TLS handshake in "
					   STRINGIFY(PEER_AUTH_TIMEOUT_MS) " ms");
		else
			inbound_refuse(in, "it did not finish its authentication in "
				       STRINGIFY(PEER_AUTH_TIMEOUT_MS) " ms");
	}
}

void peer_inbound_close_all(struct peer_transport *t)
{
	for (struct peer_inbound *in = t->inbound, *next; in; in = next) {
		next = in->next;
		inbound_close(in);
		inbound_settle(in);
	}
}
