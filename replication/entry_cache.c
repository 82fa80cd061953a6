/* entry_cache: see entry_cache.h. */
#include "entry_cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void entry_cache_init(struct entry_cache *c, bool keep)
{
	memset(c, 0, sizeof(*c));
	c->keep = keep;
}

static void drop(struct entry_cache *c, struct cached_entry *e)
{
	c->bytes -= e->len + ENTRY_CACHE_OVERHEAD;
	free(e->data);
	e->data = NULL;
}

void entry_cache_free(struct entry_cache *c)
{
	for (size_t i = 0; i < c->count; i++)
		drop(c, &c->e[c->off + i]);
	free(c->e);
	bool keep = c->keep;
	uint64_t budget = c->budget;
	memset(c, 0, sizeof(*c));
	c->keep = keep;
	c->budget = budget;
}

uint64_t entry_cache_last(const struct entry_cache *c)
{
	return c->count ? c->first + c->count - 1 : 0;
}

int entry_cache_append(struct entry_cache *c, uint64_t index, uint64_t term, uint8_t type,
		       const void *data, uint32_t len)
{
	if (!c->keep)
		return 0;
	if (c->count && index != c->first + c->count)
		return -EINVAL;
	if (c->off + c->count == c->cap) {
		if (c->off > c->count) {
			/* More dropped at the front than held: slide down. */
			memmove(c->e, c->e + c->off, c->count * sizeof(*c->e));
			c->off = 0;
		} else {
			size_t cap = c->cap ? c->cap * 2 : 1024;
			struct cached_entry *e = realloc(c->e, cap * sizeof(*e));
			if (!e)
				return -ENOMEM;
			c->e = e;
			c->cap = cap;
		}
	}
	uint8_t *copy = NULL;
	if (len) {
		copy = malloc(len);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, data, len);
	}
	if (!c->count) {
		c->first = index;
		c->off = 0;
	}
	c->e[c->off + c->count] = (struct cached_entry){ .term = term, .type = type, .len = len,
							  .data = copy };
	c->count++;
	c->bytes += len + ENTRY_CACHE_OVERHEAD;
	return 0;
}

void entry_cache_truncate(struct entry_cache *c, uint64_t index)
{
	while (c->count && entry_cache_last(c) >= index) {
		drop(c, &c->e[c->off + c->count - 1]);
		c->count--;
	}
}

void entry_cache_trim(struct entry_cache *c, uint64_t index)
{
	while (c->count && c->first < index) {
		drop(c, &c->e[c->off]);
		c->off++;
		c->count--;
		c->first++;
	}
}

void entry_cache_bound(struct entry_cache *c, uint64_t max_index)
{
	if (c->budget && c->bytes > c->budget && c->count && c->first <= max_index) {
		uint64_t to = c->first;
		uint64_t bytes = c->bytes;
		while (bytes > c->budget && to <= max_index && to <= entry_cache_last(c)) {
			bytes -= c->e[c->off + (to - c->first)].len + ENTRY_CACHE_OVERHEAD;
			to++;
		}
		entry_cache_trim(c, to);
	}
}

const struct cached_entry *entry_cache_get(const struct entry_cache *c, uint64_t index)
{
	if (!c->count || index < c->first || index > entry_cache_last(c))
		return NULL;
	return &c->e[c->off + (index - c->first)];
}
