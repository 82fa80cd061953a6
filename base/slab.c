/* slab: size classes carved from aligned slabs (slab.h). Owns the slabs
 * and their free lists; what is in a chunk is the caller's. */
#include "slab.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "assertions.h"

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_ASAN 1
#endif
#endif

#ifdef SLAB_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#define IS_POISONED(p) __asan_address_is_poisoned(p)
/* LeakSanitizer scans the heap, not our mappings: what only a chunk points
 * to (a node's data buffer) would look leaked. */
#include <sanitizer/lsan_interface.h>
#define SCAN_FOR_POINTERS(p, n) __lsan_register_root_region(p, n)
#define STOP_SCANNING(p, n) __lsan_unregister_root_region(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#define IS_POISONED(p) ((void)(p), 0)
#define SCAN_FOR_POINTERS(p, n) ((void)(p), (void)(n))
#define STOP_SCANNING(p, n) ((void)(p), (void)(n))
#endif

/* At the start of each slab; the chunks follow it. */
struct slab {
	struct slab *prev, *next;	/* on its class's partial list */
	void *free;			/* freed chunks, each holding the next's address */
	uint32_t chunk_bytes;
	uint32_t capacity;		/* chunks that fit after this header */
	uint32_t live;
	uint32_t carved;		/* chunks ever taken from the fresh space, in order */
};

#define SLAB_HEADER_BYTES \
	((sizeof(struct slab) + SLAB_CHUNK_ALIGN - 1) / SLAB_CHUNK_ALIGN * SLAB_CHUNK_ALIGN)

_Static_assert((SLAB_BYTES & (SLAB_BYTES - 1)) == 0, "a slab's size is a power of two");
_Static_assert(SLAB_BATCH_BYTES % SLAB_BYTES == 0 &&
	       (SLAB_BATCH_BYTES & (SLAB_BATCH_BYTES - 1)) == 0, "a batch is whole slabs");
_Static_assert(SLAB_CHUNK_MAX % SLAB_CHUNK_ALIGN == 0, "the largest class is a whole class");
_Static_assert(SLAB_CHUNK_ALIGN >= sizeof(void *), "a free chunk holds the next one's address");
_Static_assert(SLAB_HEADER_BYTES + 4 * SLAB_CHUNK_MAX <= SLAB_BYTES,
	       "a slab holds a few of the largest chunks");

/* Class i serves sizes 8i+1 .. 8i+8. */
static size_t class_of(size_t size)
{
	return (size - 1) / SLAB_CHUNK_ALIGN;
}

static struct slab *slab_of(const void *chunk)
{
	return (struct slab *)((uintptr_t)chunk & ~(uintptr_t)(SLAB_BYTES - 1));
}

static char *first_chunk(struct slab *s)
{
	return (char *)s + SLAB_HEADER_BYTES;
}

static bool has_free_chunk(const struct slab *s)
{
	return s->free || s->carved < s->capacity;
}

static void partial_push(struct slab **head, struct slab *s)
{
	ASSERT(!s->prev && !s->next && *head != s);
	s->next = *head;
	if (*head)
		(*head)->prev = s;
	*head = s;
}

static void partial_remove(struct slab **head, struct slab *s)
{
	ASSERT(s->prev ? s->prev->next == s : *head == s);
	if (s->prev)
		s->prev->next = s->next;
	else
		*head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
}

struct slab_refs slab_refs;

/* The process's one address range for slabs (slab.h: "References"), and
 * the big chunks' table. */
static struct {
	size_t top;		/* bytes from the base carved into slabs */
	size_t writable;	/* bytes from the base made writable (whole batches) */
	uint32_t *free_slabs;	/* slabs given back, by number: reused first */
	size_t free_count;
	uint32_t big_count;	/* entries of slab_refs.big in use or free */
	uint32_t big_capacity;
	uint32_t big_free;	/* 1 + the first free entry's index; 0: none */
} region;

/* Reserves the range: address space only (no access, no commit charge),
 * aligned to a batch so that each batch can be a huge page. The most it
 * can get, down to SLAB_REGION_MIN_BYTES, where a process (or a limit on
 * its address space) leaves less. The free slabs' numbers get an array
 * reserved as big as the most there can be, its pages touched as used. */
static bool region_reserve(void)
{
	for (size_t len = SLAB_REGION_BYTES; len >= SLAB_REGION_MIN_BYTES; len /= 2) {
		size_t map_len = len + SLAB_BATCH_BYTES;
		char *m = mmap(NULL, map_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (m == MAP_FAILED)
			continue;
		uint32_t *free_slabs = mmap(NULL, len / SLAB_BYTES * sizeof(uint32_t), PROT_READ | PROT_WRITE,
					    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (free_slabs == MAP_FAILED) {
			(void)munmap(m, map_len);
			continue;
		}
		char *b = (char *)(((uintptr_t)m + SLAB_BATCH_BYTES - 1) & ~(uintptr_t)(SLAB_BATCH_BYTES - 1));
		if (b > m)
			(void)munmap(m, (size_t)(b - m));
		if (b + len < m + map_len)
			(void)munmap(b + len, (size_t)(m + map_len - (b + len)));
		slab_refs.base = b;
		slab_refs.len = len;
		region.free_slabs = free_slabs;
		return true;
	}
	return false;
}

/* SLAB_BYTES of zeroed memory from the range, aligned to their size, or
 * NULL when the range is used up (or cannot be had). A slab given back
 * first; else the next of the current batch, a batch made writable (and
 * advised for huge pages, as the shipped unit asks them for malloc's heap:
 * a snapshot's fork() then copies one page table entry per 2 MiB of
 * nodes, not 512) when the last is used up. */
static void *region_take_slab(void)
{
	if (region.free_count)
		return slab_refs.base + (size_t)region.free_slabs[--region.free_count] * SLAB_BYTES;
	if (!slab_refs.base && !region_reserve())
		return NULL;
	if (region.top == region.writable) {
		if (slab_refs.len - region.writable < SLAB_BATCH_BYTES)
			return NULL;
		char *b = slab_refs.base + region.writable;
		if (mprotect(b, SLAB_BATCH_BYTES, PROT_READ | PROT_WRITE) != 0)
			return NULL;
		/* A kernel without transparent huge pages refuses: small pages then. */
		(void)madvise(b, SLAB_BATCH_BYTES, MADV_HUGEPAGE);
		region.writable += SLAB_BATCH_BYTES;
	}
	char *s = slab_refs.base + region.top;
	region.top += SLAB_BYTES;
	return s;
}

/* Gives a slab's pages back to the system (the address range stays the
 * process's, zero-filled when it is taken again). */
static void region_give_slab(void *s)
{
	(void)madvise(s, SLAB_BYTES, MADV_DONTNEED);
	region.free_slabs[region.free_count++] = (uint32_t)(((char *)s - slab_refs.base) / SLAB_BYTES);
}

static void give_back_slab(struct slab_pool *p, struct slab *s)
{
	STOP_SCANNING(s, SLAB_BYTES);
	region_give_slab(s);
	/* a chunk of a slab given back is caught as freed, as in any other */
	POISON(s, SLAB_BYTES);
	p->held_bytes -= SLAB_BYTES;
}

/* A big chunk: calloc'd, with its entry's index in slab_refs.big in the
 * 8 bytes before it (for slab_ref()). */
#define BIG_HEADER_BYTES 8

static void *big_alloc(size_t size)
{
	if (!region.big_free && region.big_count == region.big_capacity) {
		uint64_t capacity = region.big_capacity ? (uint64_t)region.big_capacity * 2 : 64;
		if (capacity > SLAB_REF_BIG_MAX)
			return NULL;
		void **big = realloc(slab_refs.big, (size_t)capacity * sizeof(*big));
		if (!big)
			return NULL;
		slab_refs.big = big;
		region.big_capacity = (uint32_t)capacity;
	}
	char *m = calloc(1, BIG_HEADER_BYTES + size);
	if (!m)
		return NULL;
	uint32_t i;
	if (region.big_free) {
		i = region.big_free - 1;
		region.big_free = (uint32_t)((uintptr_t)slab_refs.big[i] >> 1);
	} else {
		i = region.big_count++;
	}
	memcpy(m, &i, sizeof(i));
	slab_refs.big[i] = m + BIG_HEADER_BYTES;
	return m + BIG_HEADER_BYTES;
}

static void big_free(void *chunk)
{
	char *m = (char *)chunk - BIG_HEADER_BYTES;
	uint32_t i;
	memcpy(&i, m, sizeof(i));
	ASSERT(i < region.big_count && !((uintptr_t)slab_refs.big[i] & 1));
	/* a free entry holds the next free one's (1 + index), shifted, and 1 */
	slab_refs.big[i] = (void *)(((uintptr_t)region.big_free << 1) | 1);
	region.big_free = i + 1;
	free(m);
}

uint32_t slab_big_ref(const void *chunk, const void *at)
{
	uint32_t i;
	memcpy(&i, (const char *)chunk - BIG_HEADER_BYTES, sizeof(i));
	ASSERT(i < region.big_count && !((uintptr_t)slab_refs.big[i] & 1));
	ASSERT((const char *)at >= (const char *)chunk && (uintptr_t)at % SLAB_CHUNK_ALIGN == 0);
	slab_refs.big[i] = (void *)at;
	return SLAB_REF_BIG + i;
}

/* A slab with every chunk fresh; all but its header poisoned. */
static struct slab *slab_new(size_t chunk_bytes)
{
	struct slab *s = region_take_slab();
	if (!s)
		return NULL;
	UNPOISON(s, SLAB_BYTES);
	SCAN_FOR_POINTERS(s, SLAB_BYTES);
	*s = (struct slab){
		.chunk_bytes = (uint32_t)chunk_bytes,
		.capacity = (uint32_t)((SLAB_BYTES - SLAB_HEADER_BYTES) / chunk_bytes),
	};
	POISON(first_chunk(s), SLAB_BYTES - SLAB_HEADER_BYTES);
	return s;
}

/* A slab of class c with a free chunk (on the class's partial list), or NULL. */
static struct slab *class_slab(struct slab_pool *p, size_t c)
{
	struct slab *s = p->classes[c].partial;
	if (s)
		return s;
	s = p->classes[c].empty;
	if (s) {
		p->classes[c].empty = NULL;
	} else {
		s = slab_new((c + 1) * SLAB_CHUNK_ALIGN);
		if (!s)
			return NULL;
		p->held_bytes += SLAB_BYTES;
	}
	partial_push(&p->classes[c].partial, s);
	return s;
}

static void *alloc_chunk(struct slab_pool *p, size_t size)
{
	size_t c = class_of(size);
	struct slab *s = class_slab(p, c);
	if (!s)
		return NULL;
	char *chunk;
	if (s->free) {
		chunk = s->free;
		UNPOISON(chunk, sizeof(void *));
		memcpy(&s->free, chunk, sizeof(void *));
		POISON(chunk, s->chunk_bytes);
	} else {
		chunk = first_chunk(s) + (size_t)s->carved * s->chunk_bytes;
		s->carved++;
	}
	s->live++;
	if (!has_free_chunk(s))
		partial_remove(&p->classes[c].partial, s);
	UNPOISON(chunk, size);
	memset(chunk, 0, size);
	return chunk;
}

/* s has no live chunk left (and is on no list): kept as its class's empty
 * slab, fresh again, or given back. */
static void retire_slab(struct slab_pool *p, size_t c, struct slab *s)
{
	if (!p->classes[c].empty) {
		s->free = NULL;
		s->carved = 0;
		p->classes[c].empty = s;
		return;
	}
	give_back_slab(p, s);
}

static void free_chunk(struct slab_pool *p, char *chunk, size_t size)
{
	size_t c = class_of(size);
	struct slab *s = slab_of(chunk);
	size_t offset = (size_t)(chunk - first_chunk(s));
	ASSERT(s->chunk_bytes == (c + 1) * SLAB_CHUNK_ALIGN);
	ASSERT(offset % s->chunk_bytes == 0 && offset / s->chunk_bytes < s->carved);
	ASSERT(s->live > 0);
	ASSERT(!IS_POISONED(chunk));	/* not freed twice (seen under ASan only) */

	bool was_full = !has_free_chunk(s);
	UNPOISON(chunk, sizeof(void *));
	memcpy(chunk, &s->free, sizeof(void *));
	s->free = chunk;
	POISON(chunk, s->chunk_bytes);
	s->live--;
	if (s->live == 0) {
		if (!was_full)
			partial_remove(&p->classes[c].partial, s);
		retire_slab(p, c, s);
	} else if (was_full) {
		partial_push(&p->classes[c].partial, s);
	}
}

void slab_init(struct slab_pool *p)
{
	memset(p, 0, sizeof(*p));
}

void *slab_alloc(struct slab_pool *p, size_t size)
{
	ASSERT(size > 0);
	void *chunk;
	if (size > SLAB_CHUNK_MAX) {
		chunk = big_alloc(size);
		if (chunk)
			p->held_bytes += size;
	} else {
		chunk = alloc_chunk(p, size);
	}
	if (chunk)
		p->allocated_bytes += size;
	return chunk;
}

void slab_free(struct slab_pool *p, void *ptr, size_t size)
{
	if (!ptr)
		return;
	ASSERT(size > 0 && p->allocated_bytes >= size);
	p->allocated_bytes -= size;
	if (size > SLAB_CHUNK_MAX) {
		big_free(ptr);
		p->held_bytes -= size;
		return;
	}
	free_chunk(p, ptr, size);
}

void slab_destroy(struct slab_pool *p)
{
	ASSERT(p->allocated_bytes == 0);
	for (size_t c = 0; c < SLAB_CLASS_COUNT; c++) {
		ASSERT(!p->classes[c].partial);
		struct slab *s = p->classes[c].empty;
		if (s) {
			give_back_slab(p, s);
			p->classes[c].empty = NULL;
		}
	}
	ASSERT(p->held_bytes == 0);
}
