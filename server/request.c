/* request: see request.h. */
#include "request.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"

struct request *request_new(struct conn *c, int32_t xid, int32_t op, uint32_t frame_bytes,
			    uint64_t now_ms)
{
	struct request *rq = calloc(1, sizeof(*rq));
	if (!rq)
		return NULL;
	rq->conn = c;
	rq->xid = xid;
	rq->op = rq->asked_op = op;
	rq->frame_bytes = frame_bytes;
	rq->received_ms = now_ms;
	return rq;
}

int request_keep_body(struct request *rq, const uint8_t *body, uint32_t len)
{
	ASSERT(!rq->body);
	rq->body = malloc(len ? len : 1);
	if (!rq->body)
		return -ENOMEM;
	memcpy(rq->body, body, len);
	rq->body_len = len;
	return 0;
}

void request_free(struct request *rq)
{
	ASSERT(!list_linked(&rq->queue_node) && !list_linked(&rq->barrier_node) &&
	       !list_linked(&rq->fwd_node));
	if (rq->state == REQUEST_IN_FLIGHT && rq->txn)
		rq->txn->request = NULL;	/* the txn goes on, unanswered */
	else if (rq->txn)
		txn_free(rq->txn);
	free(rq->multi_failure.op_types);
	free(rq->results);
	free(rq->body);
	free(rq->fwd_body);
	free(rq->audit_path);
	free(rq);
}

void request_queue_append(struct conn *c, struct request *rq)
{
	ASSERT(rq->conn == c);
	list_push_back(&c->queue, &rq->queue_node);
	c->queue_bytes += rq->frame_bytes;
	conn_account(c);
}

struct request *request_queue_head(const struct conn *c)
{
	return list_first_entry(&c->queue, struct request, queue_node);
}

void request_queue_remove(struct conn *c, struct request *rq)
{
	ASSERT(c->queue_bytes >= rq->frame_bytes);
	list_remove(&c->queue, &rq->queue_node);
	c->queue_bytes -= rq->frame_bytes;
	conn_account(c);
}

void request_barrier_hold(struct list *barriers, struct request *rq, int64_t zxid)
{
	struct list_node *last = list_last(barriers);
	ASSERT(!last || list_entry(last, struct request, barrier_node)->barrier <= zxid);
	rq->barrier = zxid;
	list_push_back(barriers, &rq->barrier_node);
}

void request_barrier_release(struct list *barriers, struct request *rq)
{
	if (list_linked(&rq->barrier_node))
		list_remove(barriers, &rq->barrier_node);
}
