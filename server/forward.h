/* forward: the follower's half of forwarding (forward_leader.h has the
 * leader's). A follower (or observer) sends each write, sync and new
 * session of its clients to the leader in a FORWARD frame numbered by a
 * per-server sequence, with the session and the connection's identities
 * (ACL checks are the leader's). The answer comes back through the log: a
 * txn marked with this server's id and the number, applied here like every
 * txn; the request waits on the forwarder's list until then. Per-session
 * FIFO holds because one leader orders one stream of frames from each
 * server.
 *
 * A frame can be lost only with its connection or its leader: when the
 * connection to the leader drops, or another leader is elected and the
 * old one does not say within an election timeout what became of them
 * (forward_park.h), every connection waiting for a forwarded request is
 * closed (the client sees CONNECTIONLOSS: outcome unknown), as a
 * ZooKeeper follower does when it loses its leader; a txn that comes back
 * after later ones were matched means the earlier were lost, and their
 * connections are closed too.
 *
 * A request certainly not in any leader's log waits on the parked list
 * instead of being sent: sent while no leader is usable (none known, one
 * draining, or the fate of requests sent to the previous one still
 * unknown), or refused by a leader stepping down (FORWARD_REFUSED). Parked
 * requests are sent, in their order and before any later one, once a
 * leader is usable; past their session's timeout their connections close.
 *
 * The same channel carries session liveness: every half tick each server
 * sends the leader the sessions its clients were heard from (TOUCH), and
 * the leader's expiry covers every session of the ensemble. */
#pragma once

#include <stdint.h>

#include "clients.h"
#include "commit.h"
#include "ensemble.h"
#include "forward_leader.h"
#include "list.h"
#include "request.h"
#include "server_config.h"

struct forwarder {
	struct list waiting;		/* struct request, in sequence order */
	struct list parked;		/* struct request, in the order to send them */
	size_t parked_bytes;
	uint64_t next_seq;		/* from the wall clock at start */
	uint64_t forwarded, lost;	/* requests sent, and lost with a leader (mntr) */
	uint64_t parked_total;		/* requests parked, sent later (mntr) */
	/* Waiting requests up to certain_seq are committed (a draining
	 * leader said so, FORWARD_DRAINED): a leader change leaves them
	 * waiting; by certain_index applied they are all back. */
	uint64_t certain_seq, certain_index;
	/* The leader, draining: nothing more is sent to it (until another
	 * leads, or none). */
	raft_id drained;
	/* The leader the requests above certain_seq were sent to, no longer
	 * this server's: until orphan_deadline_ms it may tell their fate. */
	raft_id orphaned_by;
	uint64_t orphan_deadline_ms;
	uint64_t next_touch_ms;
	struct commit *commit;
	struct ensemble *ensemble;
	struct forward_leader *leader;	/* this server's, when it leads before it is ready */
	struct clients *clients;	/* whose sessions were heard from (TOUCH) */
	const struct server_config *cfg;
};

void forwarder_init(struct forwarder *f, struct commit *commit, struct ensemble *ensemble,
		    struct forward_leader *leader, struct clients *clients,
		    const struct server_config *cfg);
/* Sends rq (op with body; for a new session, timeout_ms) of connection c
 * to the leader and lists it as waiting, or parks it. Returns 0, or a
 * negative errno (out of memory, too many parked): the caller fails the
 * request. */
int forward_request(struct forwarder *f, struct conn *c, struct request *rq, int32_t op,
		    const uint8_t *body, uint32_t len, uint32_t timeout_ms);
/* Takes rq off the waiting or parked list, if it is on one (its
 * connection is going). */
void forward_unlist(struct forwarder *f, struct request *rq);
/* Parks rq, certainly not logged, in its place: after the requests sent
 * before it, before those never sent. Returns 0 or -EAGAIN (too many). */
int forward_park(struct forwarder *f, struct request *rq);
/* Whether a request may be sent now: a leader is known and usable. */
bool forward_leader_usable(struct forwarder *f);
/* Sends the parked requests, in order, while the leader is usable. */
void forward_flush(struct forwarder *f);
/* Closes the connections of waiting requests numbered above seq. */
void forward_fail_above(struct forwarder *f, uint64_t seq, const char *why);
/* Before t is applied: when it answers one of this server's forwarded
 * requests, links the two (t->request). Requests forwarded before it that
 * never came back were lost: their connections are closed. */
void forward_match(struct forwarder *f, struct txn *t);
/* An applied txn answering a forwarded request: completes rq from it (its
 * state, error or results; the caller pumps its queue). Returns 0, or
 * -EBADMSG when the leader found the request malformed, -ENOMEM: the
 * caller closes the connection. t and results are taken. */
int forward_complete(struct request *rq, struct txn *t, struct txn_result *results);
/* Closes every connection waiting for a forwarded request, sent or parked
 * (why is logged). */
void forward_fail_all(struct forwarder *f, const char *why);
/* From the timer: every half tick, the sessions heard from go to the leader. */
void forward_touch(struct forwarder *f, uint64_t now_ms);
