/* session: see session.h. */
#include "session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "tree.h"

#define SESSION_INITIAL_BUCKETS 256

int session_table_init(struct session_table *t, uint8_t server_id, uint64_t wall_ms)
{
	memset(t, 0, sizeof(*t));
	t->bucket_count = SESSION_INITIAL_BUCKETS;
	t->buckets = calloc(t->bucket_count, sizeof(*t->buckets));
	if (!t->buckets)
		return -ENOMEM;
	/* As ZooKeeper: the time in ms in bits 8..55 (so ids differ from one
	 * start to the next), the server id in the top byte. */
	t->next_id = (int64_t)(((wall_ms << 24) >> 8) | ((uint64_t)server_id << 56));
	return 0;
}

void session_table_free(struct session_table *t)
{
	for (size_t i = 0; t->buckets && i < t->bucket_count; i++) {
		struct session *s = t->buckets[i];
		while (s) {
			struct session *next = s->hash_next;
			free(s);
			s = next;
		}
	}
	free(t->buckets);
	free(t->heap);
	memset(t, 0, sizeof(*t));
}

static size_t slot_of(const struct session_table *t, int64_t id)
{
	return hash_u64((uint64_t)id) & (t->bucket_count - 1);
}

struct session *session_lookup(const struct session_table *t, int64_t id)
{
	for (struct session *s = t->buckets[slot_of(t, id)]; s; s = s->hash_next)
		if (s->id == id)
			return s;
	return NULL;
}

static int table_grow(struct session_table *t)
{
	size_t count = t->bucket_count * 2;
	struct session **b = calloc(count, sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < t->bucket_count; i++) {
		struct session *s = t->buckets[i];
		while (s) {
			struct session *next = s->hash_next;
			size_t slot = hash_u64((uint64_t)s->id) & (count - 1);
			s->hash_next = b[slot];
			b[slot] = s;
			s = next;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->bucket_count = count;
	return 0;
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
	if (t->count >= t->bucket_count && table_grow(t) < 0)
		return NULL;
	struct session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->id = id;
	s->timeout_ms = timeout_ms;
	memcpy(s->password, password, ZK_PASSWORD_BYTES);
	session_touch(s, now_ms);
	if (heap_push(t, s->deadline_ms, id) < 0) {
		free(s);
		return NULL;
	}
	size_t slot = slot_of(t, id);
	s->hash_next = t->buckets[slot];
	t->buckets[slot] = s;
	t->count++;
	return s;
}

void session_remove(struct session_table *t, struct session *s)
{
	struct session **pp = &t->buckets[slot_of(t, s->id)];
	while (*pp != s)
		pp = &(*pp)->hash_next;
	*pp = s->hash_next;
	t->count--;
	free(s);	/* its heap entry finds no session and is dropped lazily */
}

int64_t session_next_id(struct session_table *t)
{
	return t->next_id++;
}

struct session *session_next_expired(struct session_table *t, uint64_t now_ms)
{
	while (t->heap_len > 0 && t->heap[0].deadline_ms <= now_ms) {
		int64_t id = t->heap[0].id;
		struct session *s = session_lookup(t, id);
		if (!s) {
			heap_pop(t);
			continue;
		}
		if (s->deadline_ms > now_ms) {
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
	n->owner_prev = NULL;
	n->owner_next = s->ephemerals;
	if (s->ephemerals)
		s->ephemerals->owner_prev = n;
	s->ephemerals = n;
	s->ephemeral_count++;
}

void session_unlink_ephemeral(struct session *s, struct znode *n)
{
	if (n->owner_prev)
		n->owner_prev->owner_next = n->owner_next;
	else
		s->ephemerals = n->owner_next;
	if (n->owner_next)
		n->owner_next->owner_prev = n->owner_prev;
	n->owner_next = n->owner_prev = NULL;
	s->ephemeral_count--;
}
