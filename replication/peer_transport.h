/* peer_transport: TCP between the servers of an ensemble, on the io_uring
 * loop, carrying peer_message frames.
 *
 * Each server listens on its peer address and keeps one outgoing connection
 * to every other member; it sends only on its outgoing connections and
 * receives only on the ones it accepted (the frame names its sender), so
 * the two directions never contend. An outgoing connection is made on
 * demand and, when it fails or drops, again after a backoff that doubles
 * from backoff_min_ms to backoff_max_ms (reset by a connection that works).
 * What waits to be sent is bounded by max_queue_bytes per peer: past it a
 * message is dropped and counted (Raft resends what matters). Whole frames
 * only: a frame cut by a dropped connection is sent again whole on the next.
 * A frame that does not decode, or comes from another ensemble (cluster
 * tag), closes that one connection, with one log line; the others go on. At most max_inbound accepted connections are
 * open at once (each may buffer up to max_frame_bytes): past that a new one
 * is closed at once, with a log line.
 *
 * With a secret (options.secret), every connection begins with peer_auth's
 * handshake: the connector sends only once the acceptor proved the secret,
 * the acceptor hears frames only once the connector did, and only frames
 * that name the server it authenticated. A connection that fails it, or
 * does not finish it in PEER_AUTH_TIMEOUT_MS, is closed with one log line
 * (at most so many a minute), before any message reaches raft. With
 * auth_optional, connections that do not authenticate are heard too, and a
 * member that closes a connection instead of answering its HELLO (one with
 * no secret) is spoken to without on the next: the window of a rolling
 * enablement (README, Peer authentication). Without a secret, a HELLO is
 * refused with a line that says so.
 *
 * With TLS (options.tls_ctx, ensemble.tls), every connection is mutual
 * TLS (tls_engine.h) instead of peer_auth's handshake: the connector
 * requires the acceptor's certificate to name the host of the member's
 * peer address it dialed (hostname verification), the acceptor requires a
 * certificate of the CA, and hears frames only from the one member whose
 * peer host that certificate names (the first frame's sender, then only
 * it). The acceptor tells a ClientHello (its first byte, 0x16, would be a
 * frame length far over max_frame_bytes) from plaintext: required refuses
 * plaintext; optional hears it too, and a connector whose ClientHello is
 * answered by a close (a member without TLS) dials that member in
 * plaintext next time. Refusals, and handshakes not finished in
 * PEER_AUTH_TIMEOUT_MS, close the connection with one log line (at most so
 * many a minute) before anything reaches raft. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <raft.h>

#include "jute.h"
#include "log.h"
#include "loop.h"
#include "peer_auth.h"
#include "peer_message.h"
#include "resolve.h"
#include "tls_engine.h"

#define PEER_AUTH_TIMEOUT_MS 5000	/* a connection's handshake, at most */
#define PEER_TLS_RX_BYTES 17408		/* a TLS record, whole, and its header */

/* ensemble.tls.mode: whether peer connections run TLS. */
enum peer_tls_mode {
	PEER_TLS_OFF,		/* plaintext (or peer_auth's handshake) */
	PEER_TLS_OPTIONAL,	/* dials TLS, falls back; accepts TLS and plaintext */
	PEER_TLS_REQUIRED,	/* every connection TLS, both ways */
};

struct peer_transport;

struct peer {
	struct peer_transport *t;
	raft_id id;
	char address[280];		/* "host:port", as configured */
	char host[256];			/* its host: numeric, or a name */
	uint16_t port;
	bool named;			/* host is a name: looked up for every connection */
	bool resolved;			/* sa holds the name's address for this connection */
	unsigned pick;			/* which of the name's addresses (the next after a failure) */
	struct resolver resolver;
	struct sockaddr_storage sa;
	socklen_t sa_len;

	int fd;				/* the outgoing connection, or -1 */
	bool connecting, up, sending, closing;
	int ops;			/* its ring operations still to complete */
	struct jute_buf queue;		/* whole frames waiting */
	struct jute_buf out;		/* whole frames being sent (the kernel reads them) */
	size_t out_sent;		/* bytes of out already on this connection */
	uint32_t backoff_ms;
	uint64_t retry_at_ms;		/* no connection attempt before */
	struct loop_op connect_op, send_op, watch_op;
	uint8_t watch_byte;		/* a recv that ends when the other side closes */

	/* The handshake of the connection being made (peer_auth.h, or TLS). */
	enum { OUT_PLAIN, OUT_HELLO, OUT_RESPONSE, OUT_TLS } stage;
	bool plain_next;		/* optional: the last HELLO went unanswered */
	bool tls_plain_next;		/* tls optional: the last ClientHello went unanswered */
	bool receiving;			/* watch_op is armed */
	struct tls_conn *tls;		/* this connection's TLS, or NULL */
	uint8_t *tls_rx;		/* PEER_TLS_RX_BYTES: what the handshake receives */
	size_t tls_rx_total;		/* bytes received in the handshake */
	struct jute_buf tls_tx;		/* records being sent (the kernel reads them) */
	size_t tls_tx_sent;
	uint64_t started_ms;		/* when the connection's handshake began */
	struct peer_auth auth;
	uint8_t hs_in[PEER_AUTH_CHALLENGE_BYTES];
	size_t hs_in_len;
	uint8_t hs_out[PEER_AUTH_HELLO_BYTES];	/* HELLO, then RESPONSE */
	size_t hs_out_len, hs_out_sent;

	uint64_t frames_sent, frames_dropped, connects, connect_failures;
};

/* An accepted connection from another server. */
struct peer_inbound {
	struct peer_transport *t;
	int fd;
	bool closing;
	int ops;
	uint8_t *buf;
	size_t len, cap;
	struct loop_op recv_op;
	struct peer_inbound *next;

	/* The handshake: what is expected next, and whom it proved to be. */
	enum { IN_FIRST, IN_RESPONSE, IN_TLS, IN_FRAMES } stage;
	bool authenticated;
	raft_id peer_id;		/* when authenticated: the only sender heard */
	uint64_t accepted_ms;
	struct peer_auth auth;
	uint8_t hs_out[PEER_AUTH_CHALLENGE_BYTES];
	size_t hs_out_sent;
	struct loop_op send_op;

	/* TLS: records received (tls_rx), and the handshake's to send. */
	struct tls_conn *tls;
	uint8_t *tls_rx;
	struct jute_buf tls_tx;
	size_t tls_tx_sent;
	bool sending;
	/* Refused while OpenSSL's alert was on its way: closed once it is
	 * sent, so that the stranger learns why. */
	bool close_after_send;
};

struct peer_transport_options {
	raft_id self;
	/* Sent in every frame (the high half of its sender field) and required
	 * of every frame received: a server of another ensemble whose address
	 * this one took over is refused, not heard (its RequestVotes would
	 * upset elections here). */
	uint32_t cluster_tag;
	const char *listen;		/* "host:port" of this server's peer address */
	/* The ensemble's shared secret (NULL: none, connections unauthenticated),
	 * and whether connections that do not authenticate are heard too. */
	const uint8_t *secret;
	size_t secret_len;
	bool auth_optional;
	/* TLS (ensemble.tls): the SSL_CTX of both roles (its certificate names
	 * this member, it verifies the others'; the caller keeps it alive),
	 * or NULL; and the mode. */
	struct ssl_ctx_st *tls_ctx;
	enum peer_tls_mode tls_mode;
	size_t max_queue_bytes;		/* per peer */
	size_t max_frame_bytes;
	uint32_t backoff_min_ms, backoff_max_ms;
	unsigned max_inbound;		/* accepted connections at once; more are closed */
	/* A message arrived. It is the callee's: hand it to raft_step() or free
	 * it with peer_message_release(). */
	void (*on_message)(void *ctx, struct raft_message *m);
	/* A frame of corral's own type arrived (body valid during the call);
	 * NULL: such frames are refused as unknown. */
	void (*on_frame)(void *ctx, const struct peer_frame *f);
	/* The outgoing connection to id dropped: frames already handed to the
	 * kernel may never have arrived. Optional. */
	void (*on_peer_down)(void *ctx, raft_id id);
	void *ctx;
};

struct peer_transport {
	struct loop *loop;
	struct peer_transport_options o;
	int listen_fd;
	char listen_name[80];		/* as bound: the real port when 0 was asked */
	bool accepting;
	struct loop_op accept_op;
	struct peer **peers;		/* each its own allocation: it never moves */
	size_t peer_count;
	struct peer_inbound *inbound;
	unsigned inbound_count;
	bool closing;
	struct log_limit resolve_log;	/* failed lookups, logged at most so often */
	uint8_t *secret;		/* the transport's copy of o.secret */
	struct log_limit auth_log;	/* refused handshakes, logged at most so often */

	uint64_t frames_received, frames_refused, inbound_refused;
	uint64_t auth_refused;		/* connections that failed the handshake, both ways */
	uint64_t tls_refused;		/* connections that failed TLS or its names, both ways */
};

/* Binds and listens on o->listen, and starts accepting. Returns 0 or a
 * negative errno with a sentence in why. */
int peer_transport_init(struct peer_transport *t, struct loop *loop,
			const struct peer_transport_options *o, char *why, size_t why_size);
/* Adds a member to send to (its host numeric, or a name looked up for every
 * connection). Returns 0, -EINVAL (address not "host:port"),
 * -EEXIST or -ENOMEM. */
int peer_transport_add(struct peer_transport *t, raft_id id, const char *address);
/* Queues m for the member m->server_id, connecting if needed. Returns 0,
 * -ENOENT (not a member), -ENOBUFS (its queue is full: dropped), -ENOMEM. */
int peer_transport_send(struct peer_transport *t, const struct raft_message *m);
/* Queues a frame of corral's own type for member to, as peer_transport_send(). */
int peer_transport_send_frame(struct peer_transport *t, raft_id to, uint16_t type,
			      const void *body, size_t len);
/* Bytes waiting to be sent to id (for senders that pace themselves). */
size_t peer_transport_queued(struct peer_transport *t, raft_id id);
/* Whether the outgoing connection to id is established. */
bool peer_transport_up(struct peer_transport *t, raft_id id);
/* Connection attempts whose backoff has passed; call from the loop's timer. */
void peer_transport_tick(struct peer_transport *t, uint64_t now_ms);
/* Closes every connection and the listener. Returns true once every ring
 * operation has completed (run the loop until it does), then frees. */
bool peer_transport_close(struct peer_transport *t);

/* Shared by the transport's own files (peer_transport.c, the outgoing
 * connections; peer_inbound.c, the incoming ones) only: */
struct peer *peer_transport_find(struct peer_transport *t, raft_id id);
/* Accepts on t->listen_fd (again, once a multishot accept ended). */
void peer_inbound_accept(struct peer_transport *t);
/* Refuses the incoming connections that took too long to authenticate,
 * and closes those whose alert has had its time to go out. */
void peer_inbound_tick(struct peer_transport *t, uint64_t now_ms);
void peer_inbound_close_all(struct peer_transport *t);
