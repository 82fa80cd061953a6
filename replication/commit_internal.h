/* commit_internal: what commit.c shares with commit_open.c (starting up),
 * and nothing else includes. */
#pragma once

#include "commit.h"

/* The address raft records for a standalone server. */
#define SINGLE_SERVER_ADDRESS "127.0.0.1:0"

/* Entries from index on have term (kept as runs: terms change rarely). */
int commit_note_term_run(struct commit *c, uint64_t index, uint64_t term);
uint64_t commit_term_of(const struct commit *c, uint64_t index);
/* The latest configuration entry, kept encoded. */
int commit_note_configuration(struct commit *c, uint64_t index, const void *data, uint32_t len);
void commit_queue_push(struct commit *c, struct txn *t);
/* Takes back t, the last one pushed. */
void commit_queue_unpush(struct commit *c, struct txn *t);
/* Carries out what raft_step() asked for. */
int commit_handle_update(struct commit *c, struct raft_update *u);
void commit_on_durable(void *ctx, uint64_t index);
void commit_on_wal_failed(void *ctx, int err);
void commit_on_snapshot_exit(struct loop_op *op, int res, uint32_t flags);
