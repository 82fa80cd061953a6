/* dispatch: a client's requests through the server, after the handshake.
 * Each request frame is decoded and sent, by its opcode, to what serves it
 * (a table from op to handler): a read answered at once or queued behind
 * the session's unfinished writes, a write prepped into a txn (or, on a
 * follower, forwarded to the leader), a sync through the log, a reconfig,
 * a transferLeader, the super user's close of another session (corral's
 * opcode ZK_OP_CORRAL_CLOSE_SESSION {long sessionId}: header-only answer,
 * APIERROR where txns are not prepared: ask the leader), or an unsupported
 * op. The connection's queue then
 * gives the replies back in order (the pump), as txns are applied and
 * barriers pass. Nothing here knows the server: what it uses is in
 * struct request_path. */
#pragma once

#include <stdint.h>

#include "conn.h"
#include "request_path.h"
#include "txn.h"

#define ZK_OP_CORRAL_CLOSE_SESSION 5003

/* A request frame of an established connection (its request handler):
 * 0, -EBADMSG (it does not parse, or is not allowed: the caller closes the
 * connection) or -ENOMEM. */
int dispatch_request(struct request_path *p, struct conn *c, const uint8_t *frame, uint32_t len);
/* Emits what is ready at the head of c's queue, and reads c again when
 * its queue has room. */
void dispatch_pump(struct request_path *p, struct conn *c);
/* A txn was applied (results: one per op, taken): completes its request,
 * if it still has one, then replies whose barrier it passed leave. */
void dispatch_txn_applied(struct request_path *p, struct txn *t, struct txn_result *results);
/* A txn will never be applied: the log failed (err an errno), or a new
 * leader's log replaced it (ECONNRESET). Its client, and those of refused
 * writes that waited for it, get a lost connection (outcome unknown). */
void dispatch_txn_abandoned(struct request_path *p, struct txn *t, int err);
/* c closed (its closed handler): its queue, watches and session link go. */
void dispatch_conn_closed(struct request_path *p, struct conn *c);
