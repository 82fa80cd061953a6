/* request: one request of a client, from its frame to its reply, and the
 * connection's queue of them. The queue keeps a session's view consistent:
 * replies leave in request order, and a read runs only once every earlier
 * request of its session is done (so it sees its own writes, and none of
 * the later ones). Writes are prepped as soon as they arrive (pipelined);
 * their replies leave when their txn is applied. Reads wait in the queue
 * behind unfinished writes with a copy of their body.
 *
 * This file keeps the request and its lists (the connection's queue, the
 * server's barrier list); what a request does is dispatch.c's. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "list.h"
#include "prep.h"
#include "txn.h"

struct conn;

enum request_state {
	REQUEST_WAITING,	/* a read behind an unfinished write */
	REQUEST_IN_FLIGHT,	/* a write whose txn is not applied yet */
	REQUEST_DONE,		/* reply known: err, or results of the txn */
};

struct request {
	struct list_node queue_node;	/* its connection's queue */
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
	/* audit_log on: the path a write asked for and a create's flags (audit.h) */
	char *audit_path;
	int32_t audit_create_flags;
	/* A write refused by prep is decided against the tree plus the txns
	 * still on their way (say NODEEXISTS for a create not yet applied):
	 * its reply waits until those are applied, the zxid handed out last
	 * when it was decided, so the client never reads a state older than
	 * the one its answer came from (ZooKeeper's error txns go through the
	 * pipeline for the same reason). 0 when nothing was on its way. */
	int64_t barrier;
	struct list_node barrier_node;	/* the server's barrier list, while it holds */
	/* Sent to the leader (forward.c): its answer comes back through the
	 * log. On the forwarder's waiting list until that answer is matched,
	 * or on its parked list (parked) while it waits for a leader to be
	 * sent to (forward_park.c), with its FORWARD body to send then. */
	bool forwarded;
	bool parked;
	uint64_t forward_seq;		/* 0 until first sent */
	struct list_node fwd_node;
	uint8_t *fwd_body;
	uint32_t fwd_len;
	uint64_t park_deadline_ms;	/* parked: closed past this (its session's timeout) */
};

/* A request of c, not queued yet. NULL when out of memory. */
struct request *request_new(struct conn *c, int32_t xid, int32_t op, uint32_t frame_bytes,
			    uint64_t now_ms);
/* Keeps a copy of the body, for a request answered later as a read.
 * Returns 0 or -ENOMEM. */
int request_keep_body(struct request *rq, const uint8_t *body, uint32_t len);
/* Frees a request that is on no list. An in-flight txn goes on without it. */
void request_free(struct request *rq);

/* Its connection's queue: appended at the tail, answered from the head. */
void request_queue_append(struct conn *c, struct request *rq);
struct request *request_queue_head(const struct conn *c);
void request_queue_remove(struct conn *c, struct request *rq);

/* The barrier list: refused writes waiting for the txns decided before
 * them, in barrier order (barriers are zxids handed out, which only grow). */
void request_barrier_hold(struct list *barriers, struct request *rq, int64_t zxid);
void request_barrier_release(struct list *barriers, struct request *rq);
static inline bool request_barrier_holds(const struct request *rq, int64_t applied_zxid)
{
	return rq->barrier > applied_zxid;
}
