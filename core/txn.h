/* txn: a transaction, the only way the state changes.
 *
 * A write request is prepped (prep.c) into a txn: the zxid, the leader's
 * clock and every effect already decided (final path with its sequential
 * suffix, new versions, the session's password). txn_apply() then depends on
 * nothing but the state and the txn, so the same log replayed anywhere
 * yields the same state. A txn holds one op, or several for multi (all or
 * nothing, one zxid). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "acl.h"
#include "list.h"
#include "proto.h"
#include "state.h"

enum txn_op_type {
	TXN_OP_CREATE = ZK_OP_CREATE,
	TXN_OP_DELETE = ZK_OP_DELETE,
	TXN_OP_SET_DATA = ZK_OP_SET_DATA,
	TXN_OP_SET_ACL = ZK_OP_SET_ACL,
	TXN_OP_CHECK = ZK_OP_CHECK,
	TXN_OP_CREATE_SESSION = ZK_OP_CREATE_SESSION,
	TXN_OP_CLOSE_SESSION = ZK_OP_CLOSE_SESSION,
	TXN_OP_ERROR = ZK_OP_ERROR,
};

struct txn_op {
	int32_t type;			/* enum txn_op_type */
	int32_t request_type;		/* the op the client asked for (multi replies) */
	int32_t err;			/* TXN_OP_ERROR: the code this op failed with */
	char *path;			/* NUL-terminated, final (sequential suffix included) */
	uint32_t path_len;
	/* Not in the log: the tree's hash of path, when prep looked it up
	 * (path_hashed), so that applying the op does not hash it again. */
	bool path_hashed;
	uint64_t path_hash;
	uint8_t *data;
	int32_t data_len;		/* -1 = null */
	struct acl_entry *acl;
	uint32_t acl_count;
	int64_t owner;			/* create: ephemeralOwner / container / TTL marker */
	int32_t version;		/* set_data: the new version; set_acl: the new aversion */
	int32_t parent_child_creates;	/* create: the parent's create counter afterwards */
	int64_t session_id;		/* create/close session */
	uint32_t timeout_ms;		/* create session */
	uint8_t password[ZK_PASSWORD_BYTES];
};

/* The code an error txn carries for a forwarded request that did not
 * parse: the server holding its connection closes it. (In the log: never
 * change the value.) */
#define TXN_ERR_MALFORMED (-100001)

struct request;

struct txn {
	struct list_node commit_node;	/* in the commit step's queue */
	int64_t zxid;			/* set by the commit step */
	int64_t time_ms;		/* the leader's wall clock at prep */
	int64_t session_id;		/* the session that asked, 0 for the server */
	int32_t request_op;		/* the request's opcode (ZK_OP_*) */
	uint64_t prep_seq;		/* prep's order, to retire pending changes */
	/* A write forwarded by another server of the ensemble: that server's
	 * id and its number for the request, so it finds whom to answer when
	 * the txn comes back to it through the log. 0 for the leader's own. */
	uint32_t origin;
	uint64_t origin_seq;
	uint32_t op_count;
	struct txn_op *ops;
	struct request *request;	/* who waits for the outcome; NULL if nobody */
};

/* What each op of an applied txn produced, for the reply. */
struct txn_result {
	int32_t err;
	struct zk_stat stat;		/* create, set_data, set_acl: the node afterwards */
};

struct txn *txn_new(uint32_t op_count);
void txn_free(struct txn *t);
/* Frees what one op owns and zeroes it. */
void txn_op_clear(struct txn_op *op);
/* A refusal carried through the log: every op (at least one) is
 * TXN_OP_ERROR, and ops[0].err says why. */
bool txn_is_error(const struct txn *t);

/* Applies a committed txn to the state and sets state->last_zxid. results has
 * op_count entries. Returns 0, or -ENOMEM, after which the state is unknown
 * and the server must stop (the caller does). */
int txn_apply(struct state *s, const struct txn *t, struct txn_result *results);
