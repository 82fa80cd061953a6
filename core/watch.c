/* watch: see watch.h. */
#include "watch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

struct watch_path {
	struct watch_path *hash_next;
	struct watch_entry *entries;
	uint32_t path_len;
	char path[];
};

int watch_table_init(struct watch_table *t)
{
	memset(t, 0, sizeof(*t));
	int r = hash_key_random(&t->key);
	if (r < 0)
		return r;
	t->bucket_count = 256;
	t->buckets = calloc(t->bucket_count, sizeof(*t->buckets));
	return t->buckets ? 0 : -ENOMEM;
}

void watch_table_free(struct watch_table *t)
{
	for (size_t i = 0; t->buckets && i < t->bucket_count; i++) {
		struct watch_path *wp = t->buckets[i];
		while (wp) {
			struct watch_path *next = wp->hash_next;
			struct watch_entry *e = wp->entries;
			while (e) {
				struct watch_entry *en = e->path_next;
				free(e);
				e = en;
			}
			free(wp);
			wp = next;
		}
	}
	free(t->buckets);
	memset(t, 0, sizeof(*t));
}

static size_t slot_of(const struct watch_table *t, const char *path, size_t len)
{
	return hash_bytes(&t->key, path, len) & (t->bucket_count - 1);
}

static struct watch_path *path_find(const struct watch_table *t, const char *path, size_t len)
{
	for (struct watch_path *wp = t->buckets[slot_of(t, path, len)]; wp; wp = wp->hash_next)
		if (wp->path_len == len && memcmp(wp->path, path, len) == 0)
			return wp;
	return NULL;
}

static void grow(struct watch_table *t)
{
	size_t count = t->bucket_count * 2;
	struct watch_path **b = calloc(count, sizeof(*b));
	if (!b)
		return;	/* longer chains, still correct */
	for (size_t i = 0; i < t->bucket_count; i++) {
		struct watch_path *wp = t->buckets[i];
		while (wp) {
			struct watch_path *next = wp->hash_next;
			size_t s = hash_bytes(&t->key, wp->path, wp->path_len) & (count - 1);
			wp->hash_next = b[s];
			b[s] = wp;
			wp = next;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->bucket_count = count;
}

static void path_drop_if_empty(struct watch_table *t, struct watch_path *wp)
{
	if (wp->entries)
		return;
	struct watch_path **pp = &t->buckets[slot_of(t, wp->path, wp->path_len)];
	while (*pp != wp)
		pp = &(*pp)->hash_next;
	*pp = wp->hash_next;
	t->path_count--;
	free(wp);
}

static unsigned kind_count(uint8_t kinds)
{
	return (unsigned)__builtin_popcount(kinds);
}

/* Unlinks an entry from both lists and frees it; frees its path when empty. */
static void entry_remove(struct watch_table *t, struct watch_owner *o, struct watch_entry *e)
{
	struct watch_path *wp = e->wp;
	if (e->path_prev)
		e->path_prev->path_next = e->path_next;
	else
		wp->entries = e->path_next;
	if (e->path_next)
		e->path_next->path_prev = e->path_prev;
	if (e->conn_prev)
		e->conn_prev->conn_next = e->conn_next;
	else
		o->entries = e->conn_next;
	if (e->conn_next)
		e->conn_next->conn_prev = e->conn_prev;
	o->count -= kind_count(e->kinds);
	t->watch_count -= kind_count(e->kinds);
	if (e->kinds & WATCH_RECURSIVE)
		t->recursive_count--;
	free(e);
	path_drop_if_empty(t, wp);
}

int watch_add(struct watch_table *t, struct conn *c, struct watch_owner *o,
	      const char *path, size_t len, enum watch_kind kind)
{
	struct watch_path *wp = path_find(t, path, len);
	if (!wp) {
		if (t->path_count >= t->bucket_count)
			grow(t);
		wp = calloc(1, sizeof(*wp) + len + 1);
		if (!wp)
			return -ENOMEM;
		memcpy(wp->path, path, len);
		wp->path_len = (uint32_t)len;
		size_t s = slot_of(t, path, len);
		wp->hash_next = t->buckets[s];
		t->buckets[s] = wp;
		t->path_count++;
	}
	struct watch_entry *e;
	for (e = wp->entries; e; e = e->path_next)
		if (e->conn == c)
			break;
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e) {
			path_drop_if_empty(t, wp);
			return -ENOMEM;
		}
		e->wp = wp;
		e->conn = c;
		e->path_next = wp->entries;
		if (wp->entries)
			wp->entries->path_prev = e;
		wp->entries = e;
		e->conn_next = o->entries;
		if (o->entries)
			o->entries->conn_prev = e;
		o->entries = e;
	}
	if (!(e->kinds & kind)) {
		e->kinds |= (uint8_t)kind;
		o->count++;
		t->watch_count++;
		if (kind == WATCH_RECURSIVE)
			t->recursive_count++;
	}
	return 0;
}

void watch_remove_owner(struct watch_table *t, struct watch_owner *o)
{
	while (o->entries)
		entry_remove(t, o, o->entries);
}

bool watch_has(const struct watch_table *t, struct conn *c, const char *path, size_t len,
	       uint8_t kinds)
{
	struct watch_path *wp = path_find(t, path, len);
	for (struct watch_entry *e = wp ? wp->entries : NULL; e; e = e->path_next)
		if (e->conn == c)
			return (e->kinds & kinds) != 0;
	return false;
}

static void entry_drop_kinds(struct watch_table *t, struct watch_owner *o, struct watch_entry *e,
			     uint8_t kinds)
{
	uint8_t gone = e->kinds & kinds;
	e->kinds &= (uint8_t)~gone;
	o->count -= kind_count(gone);
	t->watch_count -= kind_count(gone);
	if (gone & WATCH_RECURSIVE)
		t->recursive_count--;
	if (!e->kinds)
		entry_remove(t, o, e);
}

bool watch_remove(struct watch_table *t, struct conn *c, struct watch_owner *o,
		  const char *path, size_t len, uint8_t kinds)
{
	struct watch_path *wp = path_find(t, path, len);
	for (struct watch_entry *e = wp ? wp->entries : NULL; e; e = e->path_next) {
		if (e->conn != c)
			continue;
		if (!(e->kinds & kinds))
			return false;
		entry_drop_kinds(t, o, e, kinds);
		return true;
	}
	return false;
}

/* The kinds on the event's own path that an event fires, and of those the
 * one-shot ones it consumes. */
static uint8_t kinds_fired_on_path(int event_type)
{
	switch (event_type) {
	case ZK_EVENT_NODE_CREATED:
	case ZK_EVENT_NODE_DATA_CHANGED:
		return WATCH_DATA | WATCH_EXIST | WATCH_PERSISTENT | WATCH_RECURSIVE;
	case ZK_EVENT_NODE_DELETED:
		return WATCH_ONE_SHOT | WATCH_PERSISTENT | WATCH_RECURSIVE;
	case ZK_EVENT_NODE_CHILDREN_CHANGED:
		return WATCH_CHILD | WATCH_PERSISTENT;
	}
	return 0;
}

static void trigger_path(struct watch_table *t, int event_type, const char *wpath, size_t wlen,
			 uint8_t fires, const char *path, size_t len, const void *node,
			 watch_deliver_fn deliver, void *ctx)
{
	struct watch_path *wp = path_find(t, wpath, wlen);
	struct watch_entry *e = wp ? wp->entries : NULL;
	while (e) {
		struct watch_entry *next = e->path_next;
		uint8_t hit = e->kinds & fires;
		if (hit) {
			struct conn *c = e->conn;
			struct watch_owner *o = conn_watch_owner(c);
			if (hit & WATCH_ONE_SHOT)
				entry_drop_kinds(t, o, e, hit & WATCH_ONE_SHOT);	/* may free wp */
			if (o->stamp != t->trigger_stamp) {
				o->stamp = t->trigger_stamp;
				deliver(ctx, c, event_type, path, len, node);
			}
		}
		e = next;
	}
}

void watch_trigger(struct watch_table *t, int event_type, const char *path, size_t len,
		   const void *node, watch_deliver_fn deliver, void *ctx)
{
	uint8_t fires = kinds_fired_on_path(event_type);
	if (!fires || t->watch_count == 0)
		return;
	t->trigger_stamp++;
	trigger_path(t, event_type, path, len, fires, path, len, node, deliver, ctx);

	/* Recursive watches of the ancestors see the subtree's node events. */
	if (t->recursive_count == 0 || event_type == ZK_EVENT_NODE_CHILDREN_CHANGED)
		return;
	size_t alen = len;
	while (alen > 1) {
		const char *slash = memrchr(path, '/', alen);
		alen = slash == path ? 1 : (size_t)(slash - path);
		trigger_path(t, event_type, path, alen, WATCH_RECURSIVE, path, len, node, deliver, ctx);
	}
}

const char *watch_entry_path(const struct watch_entry *e)
{
	return e->wp->path;
}

const struct watch_path *watch_path_next(const struct watch_path *wp)
{
	return wp->hash_next;
}

const char *watch_path_text(const struct watch_path *wp)
{
	return wp->path;
}

const struct watch_entry *watch_path_entries(const struct watch_path *wp)
{
	return wp->entries;
}
