/* hasten: when a leader crashes, its followers stand for election in turn.
 *
 * A crashed leader's kernel closes its peer links at once, so every follower
 * learns of the crash within a round trip, long before raft's election
 * timeout. Standing at once would be quick but all together: both survivors
 * of a three-server ensemble would ask for votes in the same instant and
 * split them. Raft's randomized timeout avoids that by waiting (half an
 * election timeout on average, and a follower that still knows the leader
 * refuses every vote until its own timer runs out). Instead, the voters that
 * remain take turns a step (the heartbeat interval) apart, in the order of
 * their ids: turn k of this member comes at step * (1 + rank + k * ranks)
 * after the link dropped. The first turn waits a step so that a leader that
 * is alive (only the link dropped) is heard again first: a member that hears
 * from the leader takes no turn. A turn is one pre-vote round (which changes
 * no term when refused); a member whose log is behind is refused, and the
 * next one in turn wins. Turns stop when a leader is known again or after
 * two election timeouts, after which raft's own randomized timers rule as
 * before. Only timing changes; the votes and raft's safety are raft's. */
#ifndef CORRAL_HASTEN_H
#define CORRAL_HASTEN_H

#include <stdbool.h>
#include <stdint.h>

struct hasten {
	uint64_t since_ms;	/* when the leader's link dropped; 0: no turns */
	uint64_t lost;		/* the leader whose link dropped */
	uint32_t rank;		/* this member's place among the remaining voters */
	uint32_t ranks;		/* how many voters remain */
	uint32_t step_ms;
	uint32_t window_ms;
	uint32_t turns;		/* turns taken */
	uint64_t heard_mark;	/* the caller's: what tells it the leader was heard since */
};

/* The link to leader `lost` dropped at now_ms. voters: the ids of the
 * configuration's voters (lost among them). A member that is not a voter
 * gets no turns. */
void hasten_start(struct hasten *h, const uint64_t *voters, unsigned n, uint64_t self,
		  uint64_t lost, uint32_t election_timeout_ms, uint64_t now_ms);
/* True when a turn of this member has come since the last call: the caller
 * makes raft's election timer run out now. Past the window, turns stop. */
bool hasten_due(struct hasten *h, uint64_t now_ms);
void hasten_stop(struct hasten *h);
static inline bool hasten_active(const struct hasten *h)
{
	return h->since_ms != 0;
}

#endif
