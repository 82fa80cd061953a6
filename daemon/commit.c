/* commit: see commit.h. */
#include "commit.h"

#include <string.h>

void commit_init(struct commit *c, int64_t last_zxid,
		 void (*on_committed)(void *ctx, struct txn *t), void *ctx)
{
	memset(c, 0, sizeof(*c));
	c->last_zxid = last_zxid;
	c->on_committed = on_committed;
	c->ctx = ctx;
}

int commit_submit(struct commit *c, struct txn *t)
{
	t->zxid = ++c->last_zxid;
	t->next = NULL;
	if (c->tail)
		c->tail->next = t;
	else
		c->head = t;
	c->tail = t;
	c->queued++;
	return 0;
}

void commit_flush(struct commit *c)
{
	if (!c->head)
		return;
	c->batches_committed++;
	while (c->head) {
		struct txn *t = c->head;
		c->head = t->next;
		if (!c->head)
			c->tail = NULL;
		c->queued--;
		c->txns_committed++;
		t->next = NULL;
		c->on_committed(c->ctx, t);
	}
}

void commit_free(struct commit *c)
{
	while (c->head) {
		struct txn *t = c->head;
		c->head = t->next;
		txn_free(t);
	}
	c->tail = NULL;
	c->queued = 0;
}
