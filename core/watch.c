/* watch: see watch.h. */
#include "watch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static uint64_t path_hash(const struct watch_table *t, const char *path, size_t len)
{
	return hash_bytes(&t->key, path, len);
}

static uint64_t hash_of(const struct hash_table *paths, const struct hash_node *n)
{
	const struct watch_table *t = container_of(paths, struct watch_table, paths);
	const struct watch_path *wp = container_of(n, struct watch_path, hash_node);
	return path_hash(t, wp->path, wp->path_len);
}

int watch_table_init(struct watch_table *t)
{
	memset(t, 0, sizeof(*t));
	int r = hash_key_random(&t->key);
	if (r < 0)
		return r;
	return hash_table_init(&t->paths, 256, hash_of);
}

void watch_owner_init(struct watch_owner *o)
{
	list_init(&o->entries);
	o->count = 0;
	o->stamp = 0;
}

void watch_table_free(struct watch_table *t)
{
	hash_table_for_each_safe(&t->paths, n, tmp) {
		struct watch_path *wp = container_of(n, struct watch_path, hash_node);
		list_for_each_safe(&wp->entries, en, etmp) {
			struct watch_entry *e = list_entry(en, struct watch_entry, path_node);
			list_remove(&e->owner->entries, &e->owner_node);
			free(e);
		}
		free(wp);
	}
	hash_table_free(&t->paths);
	memset(t, 0, sizeof(*t));
}

static struct watch_path *path_find(const struct watch_table *t, const char *path, size_t len)
{
	for (struct hash_node *n = hash_table_bucket(&t->paths, path_hash(t, path, len)); n;
	     n = n->next) {
		struct watch_path *wp = container_of(n, struct watch_path, hash_node);
		if (wp->path_len == len && memcmp(wp->path, path, len) == 0)
			return wp;
	}
	return NULL;
}

static struct watch_entry *entry_find(const struct watch_path *wp, const struct watch_owner *o)
{
	if (!wp)
		return NULL;
	list_for_each(&wp->entries, n) {
		struct watch_entry *e = list_entry(n, struct watch_entry, path_node);
		if (e->owner == o)
			return e;
	}
	return NULL;
}

static void path_drop_if_empty(struct watch_table *t, struct watch_path *wp)
{
	if (!list_empty(&wp->entries))
		return;
	hash_table_remove(&t->paths, &wp->hash_node, path_hash(t, wp->path, wp->path_len));
	free(wp);
}

static unsigned kind_count(uint8_t kinds)
{
	return (unsigned)__builtin_popcount(kinds);
}

/* Unlinks an entry from both lists and frees it; frees its path when empty. */
static void entry_remove(struct watch_table *t, struct watch_entry *e)
{
	struct watch_path *wp = e->wp;
	struct watch_owner *o = e->owner;
	list_remove(&wp->entries, &e->path_node);
	list_remove(&o->entries, &e->owner_node);
	ASSERT(o->count >= kind_count(e->kinds) && t->watch_count >= kind_count(e->kinds));
	o->count -= kind_count(e->kinds);
	t->watch_count -= kind_count(e->kinds);
	if (e->kinds & WATCH_RECURSIVE)
		t->recursive_count--;
	free(e);
	path_drop_if_empty(t, wp);
}

int watch_add(struct watch_table *t, struct watch_owner *o, const char *path, size_t len,
	      enum watch_kind kind)
{
	struct watch_path *wp = path_find(t, path, len);
	if (!wp) {
		wp = calloc(1, sizeof(*wp) + len + 1);
		if (!wp)
			return -ENOMEM;
		memcpy(wp->path, path, len);
		wp->path_len = (uint32_t)len;
		list_init(&wp->entries);
		hash_table_insert(&t->paths, &wp->hash_node, path_hash(t, path, len));
	}
	struct watch_entry *e = entry_find(wp, o);
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e) {
			path_drop_if_empty(t, wp);
			return -ENOMEM;
		}
		e->wp = wp;
		e->owner = o;
		list_push_front(&wp->entries, &e->path_node);
		list_push_front(&o->entries, &e->owner_node);
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
	struct list_node *n;
	while ((n = list_first(&o->entries)))
		entry_remove(t, list_entry(n, struct watch_entry, owner_node));
	ASSERT(o->count == 0);
}

bool watch_has(const struct watch_table *t, const struct watch_owner *o, const char *path,
	       size_t len, uint8_t kinds)
{
	const struct watch_entry *e = entry_find(path_find(t, path, len), o);
	return e && (e->kinds & kinds) != 0;
}

static void entry_drop_kinds(struct watch_table *t, struct watch_entry *e, uint8_t kinds)
{
	uint8_t gone = e->kinds & kinds;
	e->kinds &= (uint8_t)~gone;
	e->owner->count -= kind_count(gone);
	t->watch_count -= kind_count(gone);
	if (gone & WATCH_RECURSIVE)
		t->recursive_count--;
	if (!e->kinds) {
		/* entry_remove() takes the kinds it still has off the counts */
		entry_remove(t, e);
	}
}

bool watch_remove(struct watch_table *t, struct watch_owner *o, const char *path, size_t len,
		  uint8_t kinds)
{
	struct watch_entry *e = entry_find(path_find(t, path, len), o);
	if (!e || !(e->kinds & kinds))
		return false;
	entry_drop_kinds(t, e, kinds);
	return true;
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
	if (!wp)
		return;
	/* Dropping the last one-shot entry frees wp: stop before touching it. */
	size_t left = wp->entries.length;
	struct list_node *n = list_first(&wp->entries);
	while (left-- > 0) {
		struct watch_entry *e = list_entry(n, struct watch_entry, path_node);
		struct list_node *next = left ? n->next : NULL;
		uint8_t hit = e->kinds & fires;
		if (hit) {
			struct watch_owner *o = e->owner;
			if (hit & WATCH_ONE_SHOT)
				entry_drop_kinds(t, e, hit & WATCH_ONE_SHOT);	/* may free e, wp */
			if (o->stamp != t->trigger_stamp) {
				o->stamp = t->trigger_stamp;
				deliver(ctx, o, event_type, path, len, node);
			}
		}
		n = next;
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
