/* pending: see pending.h. */
#include "pending.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_of(const struct hash_table *t, const struct hash_node *hn)
{
	(void)t;
	return container_of(hn, struct pending_node, hash_node)->hash;
}

int pending_init(struct pending *p, struct tree *tree)
{
	memset(p, 0, sizeof(*p));
	p->tree = tree;
	list_init(&p->by_seq);
	return hash_table_init(&p->nodes, 256, hash_of);
}

static void node_drop(struct pending *p, struct pending_node *n)
{
	list_remove(&p->by_seq, &n->seq_node);
	hash_table_remove(&p->nodes, &n->hash_node, n->hash);
	acl_unref(&p->tree->acls, n->view.acl);
	free(n);
}

void pending_free(struct pending *p)
{
	struct list_node *ln;
	while ((ln = list_first(&p->by_seq)))
		node_drop(p, list_entry(ln, struct pending_node, seq_node));
	hash_table_free(&p->nodes);
	memset(p, 0, sizeof(*p));
}

static struct pending_node *pending_find(const struct pending *p, const char *path, size_t len,
					 uint64_t hash)
{
	for (struct hash_node *hn = hash_table_bucket(&p->nodes, hash); hn; hn = hn->next) {
		struct pending_node *n = container_of(hn, struct pending_node, hash_node);
		if (n->hash == hash && n->path_len == len && memcmp(n->path, path, len) == 0)
			return n;
	}
	return NULL;
}

uint64_t pending_lookup(const struct pending *p, const struct batch *b, const char *path,
			size_t len, struct node_view *ret)
{
	uint64_t hash = tree_path_hash(p->tree, path, len);
	for (uint32_t i = b ? b->count : 0; i-- > 0;) {
		const struct batch_item *it = &b->items[i];
		if (it->hash == hash && it->len == len && memcmp(it->path, path, len) == 0) {
			*ret = it->view;
			return hash;
		}
	}
	struct pending_node *pn = pending_find(p, path, len, hash);
	if (pn) {
		*ret = pn->view;
		return hash;
	}
	memset(ret, 0, sizeof(*ret));
	struct znode *n = tree_lookup_hashed(p->tree, path, len, hash);
	if (!n)
		return hash;
	ret->exists = true;
	ret->version = znode_version(n);
	ret->aversion = znode_aversion(n);
	ret->child_creates = znode_child_creates(n);
	ret->num_children = znode_num_children(n);
	ret->owner = znode_owner(n);
	ret->mtime = znode_mtime(n);
	ret->acl = znode_acl(n);
	return hash;
}

int batch_put(struct batch *b, const char *path, size_t len, uint64_t hash,
	      const struct node_view *v)
{
	for (uint32_t i = 0; i < b->count; i++) {
		const struct batch_item *it = &b->items[i];
		if (it->hash == hash && it->len == len && memcmp(it->path, path, len) == 0) {
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
	b->items[b->count++] =
		(struct batch_item){ .path = path, .len = len, .hash = hash, .view = *v };
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

int pending_publish(struct pending *p, struct batch *b, uint64_t seq)
{
	/* Allocate first, so that running out of memory changes nothing. A
	 * path already pending keeps its node. */
	for (uint32_t i = 0; i < b->count; i++) {
		struct batch_item *it = &b->items[i];
		it->fresh = NULL;
		it->found = pending_find(p, it->path, it->len, it->hash);
		if (it->found)
			continue;
		it->fresh = malloc(sizeof(struct pending_node) + it->len + 1);
		if (!it->fresh) {
			for (uint32_t k = 0; k < i; k++) {
				free(b->items[k].fresh);
				b->items[k].fresh = NULL;
			}
			return -ENOMEM;
		}
	}
	for (uint32_t i = 0; i < b->count; i++) {
		struct batch_item *it = &b->items[i];
		struct pending_node *n = it->fresh;
		struct acl_list *old = NULL;
		it->fresh = NULL;
		if (!n) {
			n = it->found;
			list_remove(&p->by_seq, &n->seq_node);
			old = n->view.acl;
		} else {
			memcpy(n->path, it->path, it->len);
			n->path[it->len] = 0;
			n->path_len = (uint32_t)it->len;
			n->hash = it->hash;
			n->seq_node.next = n->seq_node.prev = NULL;
			hash_table_insert(&p->nodes, &n->hash_node, n->hash);
		}
		n->view = it->view;
		if (n->view.acl)
			acl_ref(n->view.acl);
		acl_unref(&p->tree->acls, old);
		/* by_seq stays in publishing order: retiring takes a prefix. */
		ASSERT(list_empty(&p->by_seq) ||
		       list_entry(list_last(&p->by_seq), struct pending_node, seq_node)->seq <= seq);
		n->seq = seq;
		list_push_back(&p->by_seq, &n->seq_node);
	}
	return 0;
}

void pending_retire(struct pending *p, uint64_t seq)
{
	struct pending_node *n;
	while ((n = list_first_entry(&p->by_seq, struct pending_node, seq_node)) && n->seq <= seq)
		node_drop(p, n);
}
