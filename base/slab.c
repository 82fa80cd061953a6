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

/* SLAB_BATCH_BYTES of fresh pages, aligned to their size, or NULL.
 * Straight from the kernel: posix_memalign would cost a page of its header
 * and a gap of about SLAB_BYTES a slab (measured: RSS 12% above calloc's).
 * Twice the size is mapped and the highest aligned part kept: mappings are
 * placed top-down, so the next batch lands just below this one and the
 * kernel merges them into one mapping. Huge pages are asked for, as the
 * shipped unit asks them for malloc's heap (glibc.malloc.hugetlb=1): a
 * snapshot's fork() then copies one page table entry per 2 MiB of nodes,
 * not 512. */
static void *map_batch(void)
{
	size_t len = 2 * (size_t)SLAB_BATCH_BYTES;
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	uintptr_t end = (uintptr_t)m + len;
	char *b = (char *)((end - SLAB_BATCH_BYTES) & ~(uintptr_t)(SLAB_BATCH_BYTES - 1));
	/* Trimming fails only at the mapping limit; the batch is whole
	 * either way (only unused address space stays reserved). */
	if (b > m)
		(void)munmap(m, (size_t)(b - m));
	if (b + SLAB_BATCH_BYTES < m + len)
		(void)munmap(b + SLAB_BATCH_BYTES, (size_t)(m + len - (b + SLAB_BATCH_BYTES)));
	/* A kernel without transparent huge pages refuses: small pages then. */
	(void)madvise(b, SLAB_BATCH_BYTES, MADV_HUGEPAGE);
	return b;
}

/* The next SLAB_BYTES of the current batch (a new one when it is used up),
 * or NULL. */
static void *take_from_batch(struct slab_pool *p)
{
	if (!p->batch_left_bytes) {
		p->batch_next = map_batch();
		if (!p->batch_next)
			return NULL;
		p->batch_left_bytes = SLAB_BATCH_BYTES;
	}
	char *s = p->batch_next;
	p->batch_next += SLAB_BYTES;
	p->batch_left_bytes -= SLAB_BYTES;
	return s;
}

static void unmap(void *start, size_t len)
{
	/* Only the kernel's mapping limit (vm.max_map_count) refuses, when
	 * the hole would split a mapping in two: the address range then
	 * stays mapped, never used again, but its pages go back. */
	if (munmap(start, len) != 0) {
		ASSERT(errno == ENOMEM);
		(void)madvise(start, len, MADV_DONTNEED);
	}
}

static void unmap_slab(struct slab_pool *p, struct slab *s)
{
	UNPOISON(s, SLAB_BYTES);
	STOP_SCANNING(s, SLAB_BYTES);
	unmap(s, SLAB_BYTES);
	p->held_bytes -= SLAB_BYTES;
}

/* A slab with every chunk fresh; all but its header poisoned. */
static struct slab *slab_new(struct slab_pool *p, size_t chunk_bytes)
{
	struct slab *s = take_from_batch(p);
	if (!s)
		return NULL;
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
		s = slab_new(p, (c + 1) * SLAB_CHUNK_ALIGN);
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
	unmap_slab(p, s);
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
		chunk = calloc(1, size);
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
		free(ptr);
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
			unmap_slab(p, s);
			p->classes[c].empty = NULL;
		}
	}
	ASSERT(p->held_bytes == 0);
	if (p->batch_left_bytes)
		unmap(p->batch_next, p->batch_left_bytes);
	p->batch_next = NULL;
	p->batch_left_bytes = 0;
}
