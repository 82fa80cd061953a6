/* request: a connection's queue of requests, and the rule that keeps a
 * session's view consistent: replies leave in request order, and a read runs
 * only once every earlier request of its session is done (so it sees its own
 * writes, and none of the later ones).
 *
 * Writes are prepped as soon as they arrive (pipelined); their replies leave
 * when their txn is applied. Reads wait in the queue behind unfinished writes
 * with a copy of their body. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "list.h"
#include "prep.h"
#include "txn.h"

struct conn;
struct server;

enum request_state {
	REQUEST_WAITING,	/* a read behind an unfinished write */
	REQUEST_IN_FLIGHT,	/* a write whose txn is not applied yet */
	REQUEST_DONE,		/* reply known: err, or results of the txn */
};

struct request {
	struct request *next;
	struct conn *conn;
	int32_t xid;
	int32_t op;
	int32_t asked_op;		/* op as the client sent it (op may change: a
					 * reconfig is answered as a getData) */
	enum request_state state;
	int32_t err;
	uint64_t received_ms;
	struct txn *txn;		/* in flight or done: its txn */
	struct txn_result *results;	/* done writes: one per txn op */
	struct multi_failure multi_failure;	/* a multi that failed its checks */
	uint8_t *body;			/* waiting reads: a copy of the request body */
	uint32_t frame_bytes;		/* what it holds of the connection's budget */
	uint32_t body_len;
	/* A write refused by prep is decided against the tree plus the txns
	 * still on their way (say NODEEXISTS for a create not yet applied):
	 * its reply waits until those are applied, the zxid handed out last
	 * when it was decided, so the client never reads a state older than
	 * the one its answer came from (ZooKeeper's error txns go through the
	 * pipeline for the same reason). 0 when nothing was on its way. */
	int64_t barrier;
	struct request *barrier_prev, *barrier_next;	/* the server's list of them */
	bool barrier_listed;
	/* Sent to the leader (forward.c), waiting for its txn to come back. */
	bool forwarded;
	uint64_t forward_seq;
	struct list_node fwd_node;	/* on the server's list until its answer is matched */
};

/* Handles one request frame (header and body) of an established connection.
 * Returns 0, or -EBADMSG when the request does not parse or is not allowed
 * (the caller closes the connection), or -ENOMEM. */
int request_receive(struct conn *c, const uint8_t *frame, uint32_t len);

/* True when the connection holds as many queued requests (count or bytes:
 * waiting reads keep their body, in-flight writes their data) as it may:
 * reading stops until replies drain. */
bool request_queue_full(const struct conn *c);

/* Emits what is ready at the head of the connection's queue. */
void request_pump(struct conn *c);

/* A txn has been applied: completes its request, if it still has one. */
void request_txn_applied(struct server *srv, struct txn *t, struct txn_result *results);

/* A txn will never be applied (the log failed): its client gets an error. */
void request_txn_abandoned(struct server *srv, struct txn *t, int err);

/* After each applied txn: replies of refused writes whose barrier it
 * passed leave (the waiting reads behind them see exactly that state). The
 * list is in barrier order, so this costs nothing when none is due. */
void request_barriers_passed(struct server *srv);
/* The log failed (err an errno), or a new leader's log replaced txns
 * (ECONNRESET): a refused write waiting for txns that will never apply
 * was decided on a state that may never exist; its connection is closed
 * (outcome unknown to the client, as for writes in flight). */
void request_barriers_abandoned(struct server *srv, int err);

/* Frees a connection's queue (the connection is going away). In-flight txns
 * go on without it. */
void request_queue_drop(struct conn *c);

/* Adds a watch for the connection, within session.max_watches; past it the
 * connection is closed and -ECONNABORTED returned. */
int request_add_watch(struct conn *c, const char *path, size_t len, uint8_t kind);
/* Queues a watch event on the connection. */
void request_send_event(struct conn *c, int64_t zxid, int event_type, const char *path, size_t len);

/* A request of op (xid, received at received_ms, monotonic) was answered:
 * the server's latency statistics and the connection's (cons) count it. */
void request_note_reply(struct conn *c, int32_t op, int32_t xid, uint64_t received_ms);

/* Queues a header-only reply carrying err. */
void reply_error(struct conn *c, int32_t xid, int32_t err);

/* Writes a reply header {xid, zxid, err} and returns the frame's start, for reply_end(). */
size_t reply_begin(struct conn *c, int32_t xid, int64_t zxid, int32_t err);
void reply_end(struct conn *c, size_t start);
