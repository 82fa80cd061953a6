/* forward: an ensemble's writes travel from the server that holds the
 * client's connection to the leader, and their outcomes come back through
 * the log.
 *
 * A follower (or observer) sends each write, sync and new session of its
 * clients to the leader in a FORWARD frame numbered by a per-server
 * sequence, with the session and the connection's identities (ACL checks
 * are the leader's). The leader preps it as its own, and submits the txn
 * marked with the origin server and number; a request that fails is
 * submitted as an error txn, as ZooKeeper does, so that its answer, too,
 * comes after every earlier write of the session and carries a zxid the
 * follower has applied. The follower answers when the txn is applied there:
 * per-session FIFO holds because one leader orders one stream of frames
 * from each server.
 *
 * A frame can be lost only with its connection or its leader: when the
 * connection to the leader drops or another leader is elected, every
 * connection waiting for a forwarded request is closed (the client sees
 * CONNECTIONLOSS: outcome unknown), as a ZooKeeper follower does when it
 * loses its leader.
 *
 * The same channel carries session liveness: every half tick each server
 * sends the leader the sessions its clients were heard from (TOUCH), and
 * the leader's expiry covers every session of the ensemble. */
#pragma once

#include <stdint.h>

#include "peer_message.h"


struct conn;
struct request;
struct server;
struct txn;
struct txn_result;

/* Sends rq (op with body; for a new session, timeout_ms) to the leader and
 * lists it as waiting. Returns 0, or a negative errno (no leader, queue
 * full): the caller fails the request. */
int forward_request(struct conn *c, struct request *rq, int32_t op, const uint8_t *body,
		    uint32_t len, uint32_t timeout_ms);
/* Takes rq off the waiting list (its connection is going). */
void forward_unlist(struct server *srv, struct request *rq);
/* Before t is applied: when it answers one of this server's forwarded
 * requests, links the two (t->request). Requests forwarded before it that
 * never came back were lost: their connections are closed. */
void forward_match(struct server *srv, struct txn *t);
/* An applied txn answering a forwarded request: completes rq from it. */
void forward_complete(struct server *srv, struct request *rq, struct txn *t,
		      struct txn_result *results);
/* Closes every connection waiting for a forwarded request (why is logged). */
void forward_fail_all(struct server *srv, const char *why);

/* The leader: a frame from another server. */
void forward_receive(struct server *srv, const struct peer_frame *f);
/* The leader became ready: requests held while it was not are prepped. */
void forward_release_held(struct server *srv);
/* The leader stopped leading: held requests are dropped. */
void forward_drop_held(struct server *srv);
/* Every half tick: the sessions heard from go to the leader. */
void forward_touch(struct server *srv);
