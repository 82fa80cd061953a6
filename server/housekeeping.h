/* housekeeping: what the server does on its own, from the timer: the
 * leader expires sessions not heard from within their timeout and deletes
 * empty containers and expired TTL nodes (each a txn, as a client's
 * request would be); every server sends the leader the sessions its
 * clients were heard from; and once a minute the log's group commit is
 * reported. */
#pragma once

#include <stdint.h>

#include "request_path.h"

struct housekeeping {
	uint64_t next_reap_ms;
	uint64_t next_report_ms;
	uint64_t reported_fsyncs, reported_entries;
};

void housekeeping_init(struct housekeeping *h, uint64_t now_ms, const struct server_config *cfg);
/* One timer tick (now_ms: the loop's clock). */
void housekeeping_tick(struct housekeeping *h, struct request_path *p, uint64_t now_ms);
