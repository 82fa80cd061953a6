/* conn: one client connection: its socket I/O on the ring, framing, the
 * handshake (new session, resume, expired answer, and on a member cut off
 * from the quorum ZooKeeper's read-only server's), limits, closing, and the
 * connection's statistics that cons shows.
 *
 * Receives go into a per-connection buffer that grows to the largest frame
 * allowed and no further. Replies are appended to an output buffer and sent
 * once per loop turn, so many replies leave in one send(). While a send is in
 * flight its buffer is frozen and new replies gather in the other one. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "auth.h"
#include "jute.h"
#include "loop.h"
#include "watch.h"

struct server;
struct session;
struct request;

enum conn_state {
	CONN_NEW,		/* waiting for the ConnectRequest */
	CONN_CONNECTING,	/* createSession txn in flight */
	CONN_ESTABLISHED,
	CONN_CLOSING,
};

struct conn {
	struct conn *next, *prev;	/* server's list */
	struct conn *dirty_next;
	bool dirty;
	struct server *srv;
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
	bool in_input;			/* conn_process_input() is on the stack */

	uint8_t *rbuf;
	uint32_t rlen, rcap, rstart;
	uint32_t rneed;			/* bytes the partial frame at rstart needs */

	struct jute_buf obuf;		/* replies gathering */
	struct jute_buf wbuf;		/* being sent */
	size_t woff;
	bool close_after_flush;

	struct session *session;
	bool touched;			/* heard from since the last TOUCH to the leader */
	bool read_only;			/* a read-only session, served without a quorum */
	struct session *ro_session;	/* its session: this server's alone */
	bool mirror_read_only;		/* the client sent the readOnly byte */
	int64_t pending_session_id;	/* CONN_CONNECTING: the session being created */
	uint64_t session_requested_ms;	/* CONN_CONNECTING: since when */

	struct watch_owner watches;
	struct auth_identities auth;

	struct request *queue_head, *queue_tail;
	uint32_t queue_len;
	uint64_t queue_bytes;		/* frame bytes of the queued requests */
	uint64_t received, sent;
	uint64_t last_zxid_sent;
	/* What cons shows of it, ZooKeeper's statistics per connection
	 * (request.c keeps them, crst resets them). */
	uint64_t established_wall_ms;
	int32_t last_op;		/* ZK_OP_*, or CONN_NO_OP ("NA") */
	int64_t last_cxid;		/* -1: none yet */
	int64_t last_zxid;		/* -1: none yet */
	uint64_t last_response_wall_ms;
	uint64_t last_latency_ms, min_latency_ms, max_latency_ms, total_latency_ms, latency_count;
};

#define CONN_NO_OP INT32_MIN

/* Takes ownership of fd (an accepted socket). Returns 0 or a negative errno. */
int conn_start(struct server *srv, int fd, const struct sockaddr_storage *peer);

/* Closes now: outstanding replies are dropped. reason is logged at level
 * prio (LOG_DEBUG for ordinary disconnects), NULL logs nothing. */
void conn_close(struct conn *c, int prio, const char *reason);
/* Closes once everything queued has been sent. */
void conn_close_after_flush(struct conn *c);
/* Frees a closed connection once the ring holds nothing of it; true if freed. */
bool conn_reap(struct conn *c);
/* Sends what gathered in obuf (called once per loop turn). */
void conn_flush(struct conn *c);
/* Re-arms receiving after backpressure eased. */
void conn_resume_reading(struct conn *c);
/* Zeroes the connection's statistics (packets, last operation, latencies). */
void conn_reset_stats(struct conn *c);

/* The createSession txn of this connection was applied (or failed: err). */
void conn_session_created(struct conn *c, struct session *s, int err);
