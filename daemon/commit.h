/* commit: the step between a prepped txn and its application.
 *
 * A txn goes in with commit_submit(), gets its zxid, and comes out through
 * the on_committed callback, in zxid order, once it is committed. Today the
 * commit is in memory: txns submitted during one turn of the event loop are
 * committed together at the end of the turn (commit_flush()). The durability
 * work puts the Raft log and the write-ahead log under this same interface:
 * nothing above it changes. */
#pragma once

#include <stdint.h>

#include "txn.h"

struct commit {
	struct txn *head, *tail;	/* submitted, not yet committed */
	uint32_t queued;
	int64_t last_zxid;		/* the last zxid handed out */
	uint64_t txns_committed;
	uint64_t batches_committed;
	void (*on_committed)(void *ctx, struct txn *t);
	void *ctx;
};

void commit_init(struct commit *c, int64_t last_zxid,
		 void (*on_committed)(void *ctx, struct txn *t), void *ctx);
/* Takes ownership of t and sets t->zxid. Returns 0 or a negative errno
 * (the txn is then still the caller's). */
int commit_submit(struct commit *c, struct txn *t);
/* Commits what was submitted; on_committed runs for each txn, in order,
 * and owns it from then on. */
void commit_flush(struct commit *c);
/* Frees what was never committed (at shutdown). */
void commit_free(struct commit *c);
