/* conn: one client connection as a transport: its socket on the ring,
 * framing (a 4-byte length, then as many bytes, within
 * client.max_frame_bytes), backpressure, replies sent once per loop turn,
 * and closing. What the frames mean is for the layers above: the
 * connection hands its first bytes, its ConnectRequest and every request
 * after it to its hub's handlers, and tells them when it closes. It holds
 * what they keep per connection (session, identities, watches, request
 * queue, the statistics cons shows), but never interprets it.
 *
 * Receives go into a per-connection buffer that grows to the largest frame
 * allowed and no further. Replies are appended to an output buffer (reply.c)
 * and sent once per loop turn, so many replies leave in one send(). While a
 * send is in flight its buffer is frozen and new replies gather in the
 * other one.
 *
 * A connection of the TLS port (client.tls) has a struct tls_conn: the
 * socket's bytes go into tls_in and through OpenSSL, whose plaintext fills
 * the receive buffer as above; replies are encrypted into tls_out, which
 * is what the ring sends. OpenSSL is asked for plaintext only while the
 * receive buffer has room, and the socket is read only when OpenSSL has
 * no more: what a client has sent and the server not yet taken is bounded
 * by one read of tls_in beside the receive buffer. The handshake must end,
 * and the ConnectRequest arrive, within client.handshake_timeout_ms. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "auth.h"
#include "jute.h"
#include "list.h"
#include "log.h"
#include "loop.h"
#include "server_config.h"
#include "summary.h"
#include "watch.h"

struct conn;
struct session;
struct ssl_ctx_st;
struct tls_conn;
struct sasl_exchange;

enum conn_state {
	CONN_NEW,		/* waiting for the ConnectRequest */
	CONN_CONNECTING,	/* createSession txn in flight */
	CONN_ESTABLISHED,
	CONN_CLOSING,
};

/* Where a connection's input goes (the server wires them). */
struct conn_handlers {
	/* The first four bytes of a connection that sent nothing before:
	 * true when they are a four-letter word (answered; the connection
	 * closes after the answer). */
	bool (*four_letter)(void *ctx, struct conn *c, const uint8_t word[4]);
	/* The ConnectRequest. */
	void (*connect)(void *ctx, struct conn *c, const uint8_t *frame, uint32_t len);
	/* A request of an established connection: 0, -EBADMSG (the frame does
	 * not parse, or is not allowed: the connection is closed as bad
	 * input) or -ENOMEM. */
	int (*request)(void *ctx, struct conn *c, const uint8_t *frame, uint32_t len);
	/* It closed: everything that refers to it goes (its queue, watches,
	 * its session's link to it). Runs once, before the socket is shut. */
	void (*closed)(void *ctx, struct conn *c);
	void *ctx;
};

/* What srvr, stat and mntr report of the clients (srst zeroes it). */
struct client_stats {
	uint64_t packets_received, packets_sent;
	uint64_t latency_min_ms, latency_max_ms, latency_total_ms, latency_count;
	uint64_t connections_accepted, connections_refused;
	uint64_t connect_requests;	/* ConnectRequests read (ZooKeeper's connection_request_count) */
	uint64_t bad_input_closed;
	uint64_t auth_failed;		/* auth and SASL requests refused */
	/* Sizes of the replies and events sent (mntr's client response sizes). */
	uint64_t responses, response_last_bytes, response_min_bytes, response_max_bytes;
	/* Latencies in ms, as ZooKeeper splits them: requests that were a txn
	 * (writes, session creation) and the others (reads, pings). */
	struct summary read_latency_ms, update_latency_ms;
};

/* What every connection shares; struct clients owns it (clients.c). */
struct conn_hub {
	struct loop *loop;
	const struct server_config *cfg;
	struct conn_handlers handlers;
	struct client_stats stats;
	struct list dirty;		/* connections with replies to send this turn */
	uint64_t now_ms;		/* the loop's clock, refreshed every turn */
	/* Deadlines a client controls (clients.c enforces them): */
	struct list fresh;		/* before the ConnectRequest, oldest first */
	struct list partial;		/* with a frame begun, in the order they began */
	size_t open;			/* connections not closing */
	/* What the connections hold (received, queued, unsent), for the
	 * memory budget: their sum, and how much each may hold before it
	 * waits (conn_over_share()). */
	uint64_t held_bytes;
	struct log_limit slow_log;	/* lines of clients closed for not reading */
	struct ssl_ctx_st *tls_ctx;	/* the TLS port's current SSL_CTX (tls.h), or NULL */
	/* A hand-over is under way (handover.h): no connection reads or parses
	 * more; what arrives stays in the receive buffers, unparsed. */
	bool frozen;
};

struct conn {
	struct list_node node;		/* all connections (clients.c) */
	struct list_node dirty_node;	/* hub->dirty */
	struct list_node fresh_node;	/* hub->fresh, until its ConnectRequest is read */
	struct list_node partial_node;	/* hub->partial, while a frame is begun */
	struct tls_conn *tls;		/* on the TLS port: its TLS (tls.h), else NULL */
	uint8_t *tls_in;		/* TLS: what one recv of the socket brought */
	struct jute_buf tls_out;	/* TLS: encrypted bytes, being sent */
	size_t tls_out_off;
	uint64_t accepted_ms;
	uint64_t partial_since_ms;
	uint64_t held_bytes;		/* as counted in hub->held_bytes */
	uint64_t watch_bytes;		/* of which its watches (estimated) */
	struct conn_hub *hub;
	int fd;
	uint64_t id;			/* for log lines */
	struct sockaddr_storage peer;
	char peer_text[64];
	enum conn_state state;

	struct loop_op recv_op;
	struct loop_op send_op;
	unsigned ops_in_flight;
	bool recv_armed;
	bool send_armed;
	bool paused;			/* backpressure: not reading */
	bool in_input;			/* input is being handled (conn_process_input) */

	uint8_t *rbuf;
	uint32_t rlen, rcap, rstart;
	uint32_t rneed;			/* bytes the partial frame at rstart needs */

	struct jute_buf obuf;		/* replies gathering */
	struct jute_buf wbuf;		/* being sent */
	size_t woff;
	bool close_after_flush;
	bool handed_over;		/* its socket went to another process (backup.c, handover.c) */
	bool stored;			/* its socket is in systemd's fd store too (handover.h) */

	/* The client's, kept by the layers above: */
	struct session *session;
	bool touched;			/* heard from since the last TOUCH to the leader */
	bool read_only;			/* a read-only session, served without a quorum */
	struct session *ro_session;	/* its session: this server's alone */
	bool mirror_read_only;		/* the client sent the readOnly byte */
	int64_t pending_session_id;	/* CONN_CONNECTING: the session being created */
	uint64_t session_requested_ms;	/* CONN_CONNECTING: since when */
	struct watch_owner watches;
	struct auth_identities auth;
	struct sasl_exchange *sasl;	/* its SASL exchange (sasl.h), NULL before one */
	struct list queue;		/* its requests in order (struct request, request.h) */
	uint64_t queue_bytes;		/* frame bytes of the queued requests */

	/* What cons shows of it, ZooKeeper's statistics per connection
	 * (reply.c keeps them, crst resets them). */
	uint64_t received, sent;
	uint64_t established_wall_ms;
	int32_t last_op;		/* ZK_OP_*, or CONN_NO_OP ("NA") */
	int64_t last_cxid;		/* -1: none yet */
	int64_t last_zxid;		/* -1: none yet */
	uint64_t last_response_wall_ms;
	uint64_t last_latency_ms, min_latency_ms, max_latency_ms, total_latency_ms, latency_count;
};

#define CONN_NO_OP INT32_MIN

/* A connection on fd (an accepted socket, now owned), receiving already;
 * over TLS when tls_ctx is not NULL. NULL when out of memory (fd is then
 * still the caller's). */
struct conn *conn_new(struct conn_hub *hub, int fd, const struct sockaddr_storage *peer,
		      struct ssl_ctx_st *tls_ctx);
/* A connection taken over from the previous process (handover.c): on fd,
 * with the id it had there, not receiving until conn_start(). NULL when
 * out of memory (fd is then still the caller's). */
struct conn *conn_adopt(struct conn_hub *hub, int fd, const struct sockaddr_storage *peer,
			uint64_t id);
/* An adopted connection, its state restored: what it had received is
 * parsed, what it had not sent is sent, and it receives. */
void conn_start(struct conn *c);
/* The hub is frozen (a hand-over): the connection's receive is cancelled
 * (what it brings is kept unparsed); its replies still go out. */
void conn_freeze(struct conn *c);
/* Whether a frozen connection holds nothing in flight: no request
 * waiting, no send or receive on the ring. */
bool conn_quiescent(const struct conn *c);
/* Whether it is closed and the ring holds nothing of it: it may be freed. */
bool conn_done(const struct conn *c);
/* The socket now belongs to another process (a backup child, which ends
 * it): the connection closes here without shutting the socket down, and
 * its receive is cancelled so it is freed at once. */
void conn_hand_over(struct conn *c);
/* Frees a connection that is done (conn_done()). */
void conn_free(struct conn *c);

/* Closes now: outstanding replies are dropped. reason is logged at level
 * prio (LOG_DEBUG for ordinary disconnects), NULL logs nothing. */
void conn_close(struct conn *c, int prio, const char *reason);
/* Closes once everything queued has been sent. */
void conn_close_after_flush(struct conn *c);
/* Closes a connection that sent what cannot be taken, with one log line
 * (counted in the stats: mntr's corral_bad_input_closed). */
void conn_bad_input(struct conn *c, const char *what);

/* It has replies to send: it joins the hub's dirty list. */
void conn_mark_dirty(struct conn *c);
/* Sends what gathered (once per loop turn, for the dirty ones). */
void conn_flush(struct conn *c);
/* Whether it holds as much as it may: as many queued requests (count or
 * bytes: waiting reads keep their body, writes in flight their data), or
 * more than its share of the memory budget (conn_over_share()). It is not
 * read until that drains. */
bool conn_queue_full(const struct conn *c);
/* Whether it holds more than its share of the memory budget: a quarter of
 * memory.budget_bytes divided among the open connections, and never less
 * than two of the largest frames. Its watches do not count here (they do
 * not drain by waiting), only in what reply.c closes connections for. */
bool conn_over_share(const struct conn *c);
/* Counts again what it holds (after its queue or buffers changed). */
void conn_account(struct conn *c);
/* Reads again (backpressure eased, or its queue drained). */
void conn_resume_reading(struct conn *c);
/* Zeroes the connection's statistics (packets, last operation, latencies). */
void conn_reset_stats(struct conn *c);
