/* prep: turns a write request into a txn, or into the error it must fail with.
 *
 * Prep checks a request against the tree plus the changes still in flight
 * (pending.c), so pipelined writes see each other, and decides every effect:
 * the final path with its sequential suffix, the new versions, the ACL with
 * "auth" expanded. The order of its checks decides which error a client sees;
 * it is ZooKeeper's (PrepRequestProcessor). A multi's ops are checked one
 * after the other against the changes of the ops before them; if one fails,
 * none is applied. */
#pragma once

#include <stdint.h>

#include "auth.h"
#include "log.h"
#include "namespace_stats.h"
#include "pending.h"
#include "records.h"
#include "state.h"
#include "txn.h"

struct prep {
	struct state *state;
	struct pending pending;
	uint64_t next_seq;
	uint8_t server_id;
	bool extended_types;	/* containers and TTL nodes allowed */
	bool x509_acls;		/* the x509 scheme is known (a TLS port is configured) */
	bool sasl_acls;		/* the sasl scheme is known (a SASL mechanism is configured) */
	/* ZooKeeper's enforceQuota: a create or setData past a quota's hard
	 * limit is refused with QUOTAEXCEEDED (quota.c); off, it is logged. */
	bool enforce_quota;
	struct log_limit quota_log;
	/* Writes refused with QUOTAEXCEEDED, per namespace of their path
	 * (ZooKeeper's quota_exceeded_error_per_namespace). */
	struct namespace_stats quota_refused;
	int64_t now_ms;		/* the time of the request being prepped (quota_log's clock) */
	/* The server is past its memory budget: a write that would grow the
	 * tree (a create, a setData with more data than the node has, in a
	 * multi too) is refused with SYSTEMERROR once it passed every other
	 * check; deletes and the rest go on. */
	bool refuse_growth;
	/* What the state may hold (state_memory_bytes) before growing writes
	 * are refused between two checks of the budget: the budget less what
	 * the connections held at the last one; 0 = no limit. */
	uint64_t state_room_bytes;
	uint64_t refused_growth;	/* how many were refused so (mntr) */
};

int prep_init(struct prep *p, struct state *state, uint8_t server_id);
void prep_free(struct prep *p);

/* The write requests. Each returns 0 with either *ret_txn (prepped: its
 * changes are pending from now on) or *ret_err, the ZooKeeper error the
 * reply carries (refused: nothing pending); or -ENOMEM, when nothing is
 * prepped either. ids: the connection's identities for permission checks;
 * NULL for the server's own requests (allowed everything). */
int prep_create(struct prep *p, const struct session *s, const struct auth_identities *ids,
		int32_t op, const struct create_request *req, int64_t time_ms,
		struct txn **ret_txn, int32_t *ret_err);
int prep_delete(struct prep *p, const struct session *s, const struct auth_identities *ids,
		const struct delete_request *req, int64_t time_ms, struct txn **ret_txn,
		int32_t *ret_err);
int prep_set_data(struct prep *p, const struct session *s, const struct auth_identities *ids,
		  const struct set_data_request *req, int64_t time_ms, struct txn **ret_txn,
		  int32_t *ret_err);
int prep_set_acl(struct prep *p, const struct session *s, const struct auth_identities *ids,
		 const struct set_acl_request *req, int64_t time_ms, struct txn **ret_txn,
		 int32_t *ret_err);
/* deleteContainer: the reaper's (and a client's) delete of an empty container or expired TTL node. */
int prep_delete_container(struct prep *p, const struct session *s, const char *path, size_t len,
			  int64_t time_ms, struct txn **ret_txn, int32_t *ret_err);
/* Session txns are never refused: 0 with *ret_txn, or a negative errno. */
int prep_create_session(struct prep *p, uint32_t timeout_ms, int64_t time_ms, struct txn **ret_txn);
int prep_close_session(struct prep *p, int64_t session_id, int64_t time_ms, struct txn **ret_txn);

/* The outcome of a multi that failed its checks: no txn, the reply lists
 * every op (ZOK before the failed one, its error, RUNTIMEINCONSISTENCY after). */
struct multi_failure {
	uint32_t op_count;
	uint32_t failed_index;
	int32_t err;
	int32_t *op_types;	/* malloc'd, op_count entries */
};

/* multi: decodes the ops from r. Returns 0 with one of: *ret_txn; a failure
 * in *ret_failure (op_count > 0: the reply lists every op); *ret_err =
 * ZMARSHALLINGERROR (an op a multi may not hold: the whole request is
 * answered with it). Or returns -EBADMSG (the request does not parse: the
 * connection goes) or -ENOMEM. */
int prep_multi(struct prep *p, const struct session *s, const struct auth_identities *ids,
	       struct jute_reader *r, int64_t time_ms, struct txn **ret_txn,
	       struct multi_failure *ret_failure, int32_t *ret_err);

/* A write that prep refused: what its reply says. */
struct prep_refusal {
	int32_t err;			/* the ZooKeeper error, or ZOK for a failed multi */
	bool plain;			/* answered header-only, not as the op's reply */
	struct multi_failure multi;	/* a multi that failed its checks (op_count > 0) */
};

/* A client's write request, its record still encoded (create, create2,
 * createContainer, createTTL, delete, setData, setACL, deleteContainer,
 * multi; not closeSession, which the server handles): decodes and preps it.
 * Returns 0 with *ret_txn, or with *ret_txn NULL and the refusal in *ret
 * (ret->multi.op_types is the caller's to free; an op that is none of
 * these is refused with ZUNIMPLEMENTED); or -EBADMSG (the record does not
 * parse: the connection goes) or -ENOMEM. */
int prep_request(struct prep *p, const struct session *s, const struct auth_identities *ids,
		 int32_t op, const uint8_t *body, uint32_t len, int64_t time_ms,
		 struct txn **ret_txn, struct prep_refusal *ret);

/* Forgets the pending changes of every txn prepped up to and including seq. */
void prep_retire(struct prep *p, uint64_t seq);
