/* pending: see pending.h. */
#include "pending.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

struct pending_node {
	struct pending_node *hash_next;
	struct pending_node *older, *newer;
	uint64_t seq;		/* the last txn that changed it */
	struct node_view view;
	uint32_t path_len;
	char path[];
};

int pending_init(struct pending *p, struct tree *tree)
{
	memset(p, 0, sizeof(*p));
	p->tree = tree;
	p->bucket_count = 256;
	p->buckets = calloc(p->bucket_count, sizeof(*p->buckets));
	return p->buckets ? 0 : -ENOMEM;
}

void pending_free(struct pending *p)
{
	struct pending_node *n = p->oldest;
	while (n) {
		struct pending_node *next = n->newer;
		acl_unref(&p->tree->acls, n->view.acl);
		free(n);
		n = next;
	}
	free(p->buckets);
	memset(p, 0, sizeof(*p));
}

static size_t slot_of(const struct pending *p, const char *path, size_t len)
{
	return hash_bytes(&p->tree->key, path, len) & (p->bucket_count - 1);
}

static struct pending_node *pending_find(const struct pending *p, const char *path, size_t len)
{
	for (struct pending_node *n = p->buckets[slot_of(p, path, len)]; n; n = n->hash_next)
		if (n->path_len == len && memcmp(n->path, path, len) == 0)
			return n;
	return NULL;
}

void pending_lookup(const struct pending *p, const struct batch *b, const char *path, size_t len,
		    struct node_view *ret)
{
	for (uint32_t i = b ? b->count : 0; i-- > 0;) {
		if (b->items[i].len == len && memcmp(b->items[i].path, path, len) == 0) {
			*ret = b->items[i].view;
			return;
		}
	}
	struct pending_node *pn = pending_find(p, path, len);
	if (pn) {
		*ret = pn->view;
		return;
	}
	memset(ret, 0, sizeof(*ret));
	struct znode *n = tree_lookup(p->tree, path, len);
	if (!n)
		return;
	ret->exists = true;
	ret->version = n->version;
	ret->aversion = n->aversion;
	ret->child_creates = n->child_creates;
	ret->num_children = n->num_children;
	ret->owner = n->owner;
	ret->mtime = n->mtime;
	ret->acl = n->acl;
}

int batch_put(struct batch *b, const char *path, size_t len, const struct node_view *v)
{
	for (uint32_t i = 0; i < b->count; i++) {
		if (b->items[i].len == len && memcmp(b->items[i].path, path, len) == 0) {
			b->items[i].view = *v;
			return 0;
		}
	}
	if (b->count == b->cap) {
		uint32_t cap = b->cap ? b->cap * 2 : 4;
		struct batch_item *items = realloc(b->items, cap * sizeof(*items));
		if (!items)
			return -ENOMEM;
		b->items = items;
		b->cap = cap;
	}
	b->items[b->count++] = (struct batch_item){ .path = path, .len = len, .view = *v };
	return 0;
}

int batch_hold(struct batch *b, struct acl_table *acls, struct acl_list *l)
{
	b->acls = acls;
	if (b->held_count == b->held_cap) {
		uint32_t cap = b->held_cap ? b->held_cap * 2 : 4;
		struct acl_list **held = realloc(b->held, cap * sizeof(*held));
		if (!held) {
			acl_unref(acls, l);
			return -ENOMEM;
		}
		b->held = held;
		b->held_cap = cap;
	}
	b->held[b->held_count++] = l;
	return 0;
}

void batch_free(struct batch *b)
{
	for (uint32_t i = 0; i < b->held_count; i++)
		acl_unref(b->acls, b->held[i]);
	free(b->held);
	free(b->items);
	memset(b, 0, sizeof(*b));
}

static void list_unlink(struct pending *p, struct pending_node *n)
{
	if (n->older)
		n->older->newer = n->newer;
	else
		p->oldest = n->newer;
	if (n->newer)
		n->newer->older = n->older;
	else
		p->newest = n->older;
	n->older = n->newer = NULL;
}

static void list_append(struct pending *p, struct pending_node *n)
{
	n->older = p->newest;
	n->newer = NULL;
	if (p->newest)
		p->newest->newer = n;
	else
		p->oldest = n;
	p->newest = n;
}

static void grow(struct pending *p)
{
	size_t count = p->bucket_count * 2;
	struct pending_node **b = calloc(count, sizeof(*b));
	if (!b)
		return;	/* longer chains, still correct */
	for (struct pending_node *n = p->oldest; n; n = n->newer) {
		size_t s = hash_bytes(&p->tree->key, n->path, n->path_len) & (count - 1);
		n->hash_next = b[s];
		b[s] = n;
	}
	free(p->buckets);
	p->buckets = b;
	p->bucket_count = count;
}

int pending_publish(struct pending *p, const struct batch *b, uint64_t seq)
{
	struct pending_node **fresh = calloc(b->count ? b->count : 1, sizeof(*fresh));
	if (!fresh)
		return -ENOMEM;
	/* Allocate first, so that running out of memory changes nothing. */
	for (uint32_t i = 0; i < b->count; i++) {
		if (pending_find(p, b->items[i].path, b->items[i].len))
			continue;
		fresh[i] = malloc(sizeof(struct pending_node) + b->items[i].len + 1);
		if (!fresh[i]) {
			for (uint32_t k = 0; k < i; k++)
				free(fresh[k]);
			free(fresh);
			return -ENOMEM;
		}
	}
	if (p->count + b->count > p->bucket_count)
		grow(p);
	for (uint32_t i = 0; i < b->count; i++) {
		const struct batch_item *it = &b->items[i];
		struct pending_node *n = fresh[i];
		struct acl_list *old = NULL;
		if (!n) {
			n = pending_find(p, it->path, it->len);
			list_unlink(p, n);
			old = n->view.acl;
		} else {
			memcpy(n->path, it->path, it->len);
			n->path[it->len] = 0;
			n->path_len = (uint32_t)it->len;
			size_t slot = slot_of(p, n->path, n->path_len);
			n->hash_next = p->buckets[slot];
			p->buckets[slot] = n;
			p->count++;
		}
		n->view = it->view;
		if (n->view.acl)
			acl_ref(n->view.acl);
		acl_unref(&p->tree->acls, old);
		n->seq = seq;
		list_append(p, n);
	}
	free(fresh);
	return 0;
}

void pending_retire(struct pending *p, uint64_t seq)
{
	while (p->oldest && p->oldest->seq <= seq) {
		struct pending_node *n = p->oldest;
		list_unlink(p, n);
		struct pending_node **pp = &p->buckets[slot_of(p, n->path, n->path_len)];
		while (*pp != n)
			pp = &(*pp)->hash_next;
		*pp = n->hash_next;
		p->count--;
		acl_unref(&p->tree->acls, n->view.acl);
		free(n);
	}
}

static struct pending_node_ref ref_of(const struct pending_node *n)
{
	if (!n)
		return (struct pending_node_ref){ 0 };
	return (struct pending_node_ref){ .node = n, .view = &n->view, .path = n->path,
					  .path_len = n->path_len };
}

struct pending_node_ref pending_first(const struct pending *p)
{
	return ref_of(p->oldest);
}

struct pending_node_ref pending_next(struct pending_node_ref it)
{
	return ref_of(it.node ? it.node->newer : NULL);
}
