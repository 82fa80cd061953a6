/* write: requests that become txns. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct auth_identities;
struct conn;
struct request;
struct server;
struct session;
struct txn;

/* True for the ops write.c preps. */
bool write_op(int32_t op);
/* Decodes and preps one: 0 with *ret_txn (or with none: a failed multi, whose
 * answer is in rq), a ZooKeeper error for the reply, -EBADMSG or PREP_ENOMEM. */
int write_prep(struct server *srv, struct session *s, const struct auth_identities *ids,
	       struct request *rq, int32_t op, const uint8_t *body, uint32_t len,
	       struct txn **ret_txn);
/* Queues the reply of a finished write (or its error). */
void write_reply(struct conn *c, struct request *rq);
