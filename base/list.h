/* list: the intrusive doubly linked list every queue and set of corrald
 * uses (connections, request queues, forwarded requests, a session's
 * ephemerals, a watch's entries, the commit queue).
 *
 * A node is embedded in its object; a list has a sentinel head and its
 * length. A node that is on no list has NULL links, and the functions
 * assert it: inserting a node that is on a list, or removing one that is
 * not, stops the server (assertions.h) instead of corrupting two lists. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "assertions.h"
#include "common.h"

struct list_node {
	struct list_node *next, *prev;	/* NULL when on no list */
};

struct list {
	struct list_node head;
	size_t length;
};

static inline void list_init(struct list *l)
{
	l->head.next = l->head.prev = &l->head;
	l->length = 0;
}

static inline bool list_empty(const struct list *l)
{
	return l->length == 0;
}

static inline bool list_linked(const struct list_node *n)
{
	return n->next != NULL;
}

static inline void list_link_between(struct list *l, struct list_node *prev, struct list_node *n,
				     struct list_node *next)
{
	ASSERT(!list_linked(n));
	n->prev = prev;
	n->next = next;
	prev->next = n;
	next->prev = n;
	l->length++;
}

static inline void list_push_back(struct list *l, struct list_node *n)
{
	list_link_between(l, l->head.prev, n, &l->head);
}

static inline void list_push_front(struct list *l, struct list_node *n)
{
	list_link_between(l, &l->head, n, l->head.next);
}

static inline void list_remove(struct list *l, struct list_node *n)
{
	ASSERT(list_linked(n));
	ASSERT(l->length > 0);
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = NULL;
	l->length--;
}

static inline struct list_node *list_first(const struct list *l)
{
	return l->length ? l->head.next : NULL;
}

static inline struct list_node *list_last(const struct list *l)
{
	return l->length ? l->head.prev : NULL;
}

/* The node after n, or NULL at the end. */
static inline struct list_node *list_next(const struct list *l, const struct list_node *n)
{
	return n->next == &l->head ? NULL : n->next;
}

static inline struct list_node *list_pop_front(struct list *l)
{
	struct list_node *n = list_first(l);
	if (n)
		list_remove(l, n);
	return n;
}

#define list_entry(node, type, member) container_of(node, type, member)

/* The entry of the first node, or NULL. */
#define list_first_entry(l, type, member) \
	((l)->length ? list_entry((l)->head.next, type, member) : (type *)NULL)

/* Iterates the nodes of l; the loop's body must not remove n (see _safe). */
#define list_for_each(l, n) \
	for (struct list_node *n = (l)->head.next; n != &(l)->head; n = n->next)

/* Iterates the nodes of l; the body may remove n (not the node after it). */
#define list_for_each_safe(l, n, tmp) \
	for (struct list_node *n = (l)->head.next, *tmp = n->next; n != &(l)->head; \
	     n = tmp, tmp = n->next)
