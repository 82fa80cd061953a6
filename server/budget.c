/* budget: see budget.h. */
#include "budget.h"

#include "log.h"
#include "slab.h"
#include "prep.h"
#include "server_config.h"

#define MIB(x) ((double)(x) / 1048576.0)

uint64_t budget_limit(const struct server_config *cfg)
{
	/* The tree's nodes are in one address range (base/slab.h): past it a
	 * create already in the log would find no room. 1/16 of it is left
	 * for what the state counts beside them and a tick's overshoot. */
	uint64_t range = slab_range_bytes() / 16 * 15;
	return cfg->memory_budget_bytes < range ? cfg->memory_budget_bytes : range;
}

void budget_check(struct memory_budget *b, const struct server_config *cfg, struct prep *prep,
		  uint64_t state_bytes, uint64_t client_bytes)
{
	b->state_bytes = state_bytes;
	b->client_bytes = client_bytes;
	uint64_t used = budget_used(b), limit = budget_limit(cfg);
	/* Back under with some room (1/16), so a tree at the edge does not
	 * flap between refusing and taking writes every tick. */
	bool over = b->over ? used > limit - limit / 16 : used > limit;
	if (over && !b->over) {
		b->times_over++;
		log_event(LOG_WARNING, { .message_id = LOG_MSGID_MEMORY_BUDGET },
			  "memory budget exceeded: %.1f MiB of %.1f MiB (memory.budget_bytes; state "
			  "%.1f, connections %.1f): writes that grow the tree get SYSTEMERROR until "
			  "it is back under; reads, deletes and pings go on",
			  MIB(used), MIB(limit), MIB(state_bytes), MIB(client_bytes));
	} else if (!over && b->over) {
		log_event(LOG_NOTICE, { .message_id = LOG_MSGID_MEMORY_BUDGET },
			  "memory budget: back under, %.1f MiB of %.1f MiB; writes are taken again "
			  "(%llu refused meanwhile)", MIB(used), MIB(limit),
			  (unsigned long long)prep->refused_growth);
	}
	b->over = over;
	prep->refuse_growth = over;
	prep->state_room_bytes = limit > client_bytes ? limit - client_bytes : 1;
}
