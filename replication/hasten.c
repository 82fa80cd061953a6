/* hasten: see hasten.h. */
#include "hasten.h"

void hasten_start(struct hasten *h, const uint64_t *voters, unsigned n, uint64_t self,
		  uint64_t lost, uint32_t election_timeout_ms, uint64_t now_ms)
{
	uint32_t rank = 0, ranks = 0;
	bool voter = false;
	for (unsigned i = 0; i < n; i++) {
		if (voters[i] == lost)
			continue;
		ranks++;
		if (voters[i] == self)
			voter = true;
		else if (voters[i] < self)
			rank++;
	}
	hasten_stop(h);
	if (!voter || !now_ms)
		return;
	h->since_ms = now_ms;
	h->lost = lost;
	h->rank = rank;
	h->ranks = ranks;
	/* a step is the heartbeat interval: a pre-vote and a vote round trip,
	 * with the term and vote made durable, fit in it many times over */
	h->step_ms = election_timeout_ms / 10 > 10 ? election_timeout_ms / 10 : 10;
	h->window_ms = 2 * election_timeout_ms;
}

bool hasten_due(struct hasten *h, uint64_t now_ms)
{
	if (!h->since_ms)
		return false;
	if (now_ms < h->since_ms)
		return false;
	uint64_t elapsed = now_ms - h->since_ms;
	if (elapsed > h->window_ms) {
		hasten_stop(h);
		return false;
	}
	uint64_t due = (uint64_t)h->step_ms * (1 + h->rank + (uint64_t)h->turns * h->ranks);
	if (elapsed < due)
		return false;
	/* the next turn after now: turns missed (a late tick) are not made up */
	uint64_t slot = elapsed / h->step_ms - 1;
	h->turns = (uint32_t)((slot - h->rank) / h->ranks + 1);
	return true;
}

void hasten_stop(struct hasten *h)
{
	*h = (struct hasten){ 0 };
}
