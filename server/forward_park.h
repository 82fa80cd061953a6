/* forward_park: what a follower's forwarder (forward.h) does when its
 * leader changes or steps down: which forwarded requests it still waits
 * for, which it sends again, which connections it must close.
 *
 * A request sent to a leader has one of three fates when that leader
 * goes. A leader stepping down for a planned restart drains
 * (forward_leader.h): it answers FORWARD_REFUSED to what it will never
 * log, and FORWARD_DRAINED says which of this server's requests it took,
 * all committed: those stay waiting (their answers come through the log
 * whoever leads next), the others are parked and sent to the next leader.
 * Without that word (the leader was killed, cut off, or is of an earlier
 * version), the requests' outcome is unknown: their connections close
 * (CONNECTIONLOSS) once the connection to that leader drops, or an
 * election timeout after the leader changed, unless their answers came
 * back through the log first. Meanwhile nothing is sent (a later request
 * must not overtake one whose fate is not known): new ones are parked. */
#pragma once

#include <stdint.h>

#include "forward.h"
#include "peer_message.h"

/* A FORWARD_REFUSED or FORWARD_DRAINED frame. True when it was one. */
bool forward_receive(struct forwarder *f, const struct peer_frame *fr);
/* rq numbered seq was certainly not logged by from (refused): parked. */
void forward_refused(struct forwarder *f, raft_id from, uint64_t seq);
/* The leader this server knows changed from old (0: none). */
void forward_leader_changed(struct forwarder *f, raft_id old, uint64_t now_ms);
/* The connection to member id dropped. */
void forward_peer_down(struct forwarder *f, raft_id id);
/* From the timer: deadlines (orphans, parked requests), and sends what
 * can be sent. */
void forward_tick(struct forwarder *f, uint64_t now_ms);
