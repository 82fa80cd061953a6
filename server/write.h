/* write: requests that become txns. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "prep.h"

struct conn;
struct request;

/* True for the ops write.c preps. */
bool write_op(int32_t op);

/* Decodes and preps one write request. Returns 0 with *ret_txn, or with
 * *ret_txn NULL and the refusal in *ret (ret->multi.op_types is the
 * caller's to free); or -EBADMSG (it does not parse: the connection goes)
 * or -ENOMEM. */
int write_prep(struct prep *prep, struct session *s, const struct auth_identities *ids,
	       int32_t op, const uint8_t *body, uint32_t len, int64_t now_ms,
	       struct txn **ret_txn, struct prep_refusal *ret);
/* Queues the reply of a finished write (or its error; applied_zxid: the
 * state's, for an answer without a txn). */
void write_reply(struct conn *c, struct request *rq, int64_t applied_zxid);
