/* budget: the server-wide memory budget (memory.budget_bytes) for what
 * clients make the server hold: the state (nodes, their data and paths,
 * sessions) and what connections hold (bytes received and not yet
 * handled, queued requests, replies not yet sent, and their watches).
 *
 * Rules keep it: a connection holding more than its share (a quarter of
 * the budget divided among the open connections, at least two of the
 * largest frames) is not read until it drains (conn.c); when the
 * connections together hold more than a quarter of the budget, one that
 * holds more than an even share of that quarter is closed as its next
 * reply is queued (reply.c); and while everything
 * counted is over the budget, writes that would grow the tree are refused
 * with SYSTEMERROR (prep's refuse_growth) while reads, deletes, pings and
 * session ends go on. Checked every timer tick (crossing the budget, either
 * way, is logged once), and between ticks by prep itself: a growing write
 * is refused as soon as the state passes the budget less what the
 * connections held at the last tick, so a burst of writes cannot overshoot
 * it by a tick's worth. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct prep;
struct server_config;

struct memory_budget {
	uint64_t state_bytes;		/* tree and sessions, as last counted */
	uint64_t client_bytes;		/* what connections hold, their watches too */
	bool over;
	uint64_t times_over;		/* how often it went over (mntr) */
};

/* The budget in force: memory.budget_bytes, but at most 15/16 of the
 * address range the tree's nodes live in (base/slab.h: 16 GiB). */
uint64_t budget_limit(const struct server_config *cfg);
/* Counts again and sets prep's refuse_growth and state_room_bytes; logs
 * when it crosses. */
void budget_check(struct memory_budget *b, const struct server_config *cfg, struct prep *prep,
		  uint64_t state_bytes, uint64_t client_bytes);
/* Everything counted. */
static inline uint64_t budget_used(const struct memory_budget *b)
{
	return b->state_bytes + b->client_bytes;
}
