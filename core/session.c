/* session: see session.h. */
#include "session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "tree.h"

#define SESSION_INITIAL_BUCKETS 256

static uint64_t hash_of(const struct hash_table *t, const struct hash_node *n)
{
	return hash_u64((uint64_t)container_of(n, struct session, hash_node)->id);
}

int session_table_init(struct session_table *t, uint8_t server_id, uint64_t wall_ms)
{
	memset(t, 0, sizeof(*t));
	int r = hash_table_init(&t->by_id, SESSION_INITIAL_BUCKETS, hash_of);
	if (r < 0)
		return r;
	/* As ZooKeeper: the time in ms in bits 8..55 (so ids differ from one
	 * start to the next), the server id in the top byte. */
	t->next_id = (int64_t)(((wall_ms << 24) >> 8) | ((uint64_t)server_id << 56));
	return 0;
}

void session_table_free(struct session_table *t)
{
	if (t->by_id.buckets) {
		hash_table_for_each_safe(&t->by_id, n, tmp)
			free(container_of(n, struct session, hash_node));
		hash_table_free(&t->by_id);
	}
	free(t->heap);
	memset(t, 0, sizeof(*t));
}

struct session *session_lookup(const struct session_table *t, int64_t id)
{
	for (struct hash_node *n = hash_table_bucket(&t->by_id, hash_u64((uint64_t)id)); n;
	     n = n->next) {
		struct session *s = container_of(n, struct session, hash_node);
		if (s->id == id)
			return s;
	}
	return NULL;
}

static bool heap_less(const struct session_heap_entry *a, const struct session_heap_entry *b)
{
	return a->deadline_ms < b->deadline_ms;
}

static int heap_push(struct session_table *t, uint64_t deadline_ms, int64_t id)
{
	if (t->heap_len == t->heap_cap) {
		size_t cap = t->heap_cap ? t->heap_cap * 2 : 64;
		struct session_heap_entry *h = realloc(t->heap, cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		t->heap = h;
		t->heap_cap = cap;
	}
	size_t i = t->heap_len++;
	t->heap[i] = (struct session_heap_entry){ deadline_ms, id };
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!heap_less(&t->heap[i], &t->heap[parent]))
			break;
		struct session_heap_entry tmp = t->heap[i];
		t->heap[i] = t->heap[parent];
		t->heap[parent] = tmp;
		i = parent;
	}
	return 0;
}

static void heap_pop(struct session_table *t)
{
	t->heap[0] = t->heap[--t->heap_len];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < t->heap_len && heap_less(&t->heap[l], &t->heap[m]))
			m = l;
		if (r < t->heap_len && heap_less(&t->heap[r], &t->heap[m]))
			m = r;
		if (m == i)
			break;
		struct session_heap_entry tmp = t->heap[i];
		t->heap[i] = t->heap[m];
		t->heap[m] = tmp;
		i = m;
	}
}

struct session *session_add(struct session_table *t, int64_t id, uint32_t timeout_ms,
			    const uint8_t password[ZK_PASSWORD_BYTES], uint64_t now_ms)
{
	struct session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->id = id;
	s->timeout_ms = timeout_ms;
	list_init(&s->ephemerals);
	memcpy(s->password, password, ZK_PASSWORD_BYTES);
	session_touch(s, now_ms);
	if (heap_push(t, s->deadline_ms, id) < 0) {
		free(s);
		return NULL;
	}
	hash_table_insert(&t->by_id, &s->hash_node, hash_u64((uint64_t)id));
	return s;
}

void session_remove(struct session_table *t, struct session *s)
{
	ASSERT(list_empty(&s->ephemerals));
	hash_table_remove(&t->by_id, &s->hash_node, hash_u64((uint64_t)s->id));
	free(s);	/* its heap entry finds no session and is dropped lazily */
}

int64_t session_next_id(struct session_table *t)
{
	/* Ids imported from ZooKeeper (corrald import-zookeeper) follow the
	 * same scheme from ZooKeeper's clock: never hand one out again. */
	while (session_lookup(t, t->next_id))
		t->next_id++;
	return t->next_id++;
}

struct session *session_next_expired(struct session_table *t, uint64_t now_ms)
{
	while (t->heap_len > 0 && session_expires_at(t, t->heap[0].deadline_ms) <= now_ms) {
		int64_t id = t->heap[0].id;
		struct session *s = session_lookup(t, id);
		if (!s) {
			heap_pop(t);
			continue;
		}
		if (session_expires_at(t, s->deadline_ms) > now_ms) {
			/* Touched since queued: move it to its real deadline. The pop
			 * then push cannot fail for lack of room. */
			uint64_t d = s->deadline_ms;
			heap_pop(t);
			heap_push(t, d, id);
			continue;
		}
		heap_pop(t);
		return s;
	}
	return NULL;
}

int session_requeue(struct session_table *t, struct session *s)
{
	return heap_push(t, s->deadline_ms, s->id);
}

void session_link_ephemeral(struct session *s, struct znode *n)
{
	ASSERT(znode_owner(n) == s->id);
	list_push_front(&s->ephemerals, znode_owner_node(n));
}

void session_unlink_ephemeral(struct session *s, struct znode *n)
{
	ASSERT(znode_owner(n) == s->id);
	list_remove(&s->ephemerals, znode_owner_node(n));
}

struct znode *session_next_ephemeral(const struct session *s, const struct znode *n)
{
	struct list_node *next = list_next(&s->ephemerals, znode_owner_node((struct znode *)n));
	return next ? znode_of_owner_node(next) : NULL;
}
