/* slab: a size-class allocator for many small objects of known size (the
 * tree's znodes), without malloc's per-block header.
 *
 * Sizes up to SLAB_CHUNK_MAX round up to a class (8 bytes apart); each
 * class carves chunks from slabs of SLAB_BYTES, aligned to SLAB_BYTES, so
 * a chunk's slab is its address masked: no header per chunk, and the
 * caller gives slab_free the size it gave slab_alloc (which tells the
 * class, and whether the chunk came from a slab at all: bigger sizes are
 * plain calloc/free).
 *
 * Slabs come from one address range the process reserves (mmap, no
 * access and no commit charge until used), made writable a huge page's
 * worth at a time (SLAB_BATCH_BYTES, advised MADV_HUGEPAGE, so a
 * snapshot's fork copies few page table entries); a batch's slabs not
 * handed out yet are not counted as held (they are resident when the
 * kernel gave a huge page). A slab whose last chunk is freed gives its
 * pages back (MADV_DONTNEED) and is the next slab any class takes, except
 * one kept empty per class (a create/delete at a slab's boundary does not
 * thrash), so freeing many objects of one size gives their memory back
 * for any other size.
 *
 * References: because every slab is in that one range, a chunk is named
 * in 32 bits (slab_ref(), slab_deref()): its offset in the range in units
 * of SLAB_CHUNK_ALIGN. A big chunk has an entry in a table instead, its
 * reference SLAB_REF_BIG + the entry's index. So whatever links chunks
 * (the tree's nodes: parent, siblings, children) takes half a pointer's
 * bytes, as the JVM's compressed references do. The range is
 * SLAB_REGION_BYTES (16 GiB; less where the process cannot reserve that
 * much): past it, slab_alloc fails as out of memory.
 *
 * Single-threaded: the range and the pools are used by one thread
 * (corrald's loop), no lock. Nothing is needed after fork(): a snapshot
 * child reads the chunks it inherited, and their references.
 * Under AddressSanitizer free chunks and a slab's unused space are
 * poisoned, so a use after free is caught as with malloc (but a freed
 * chunk is the first one reused: there is no quarantine), and the slabs
 * are scanned by the leak checker (what a chunk points to is reachable).
 *
 * The pool holds no pointer to itself and no slab points back to it: a
 * zeroed struct slab_pool is an initialised empty one, and it may be
 * moved (copied by value) at any time. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The largest size served from slabs; bigger ones are calloc'd. */
#define SLAB_CHUNK_MAX 1024
/* Chunks are this far apart in size, and aligned to it. */
#define SLAB_CHUNK_ALIGN 8
/* A slab's size and alignment (a power of two). */
#define SLAB_BYTES (64 * 1024)
/* Slabs are mapped this many bytes at a time: a huge page's worth. */
#define SLAB_BATCH_BYTES (2 * 1024 * 1024)
#define SLAB_CLASS_COUNT (SLAB_CHUNK_MAX / SLAB_CHUNK_ALIGN)
/* References below this are offsets in the range; from it, big chunks'. */
#define SLAB_REF_BIG UINT32_C(0x80000000)
#define SLAB_REF_BIG_MAX (UINT32_MAX - SLAB_REF_BIG)
/* The range reserved for slabs: every reference below SLAB_REF_BIG. */
#define SLAB_REGION_BYTES ((size_t)SLAB_REF_BIG * SLAB_CHUNK_ALIGN)
/* The least the range may be, where the process cannot reserve it all. */
#define SLAB_REGION_MIN_BYTES ((size_t)64 << 20)

struct slab;

struct slab_pool {
	struct {
		struct slab *partial;	/* slabs with both live and free chunks */
		struct slab *empty;	/* at most one slab kept with none live */
	} classes[SLAB_CLASS_COUNT];
	size_t held_bytes;		/* slabs in use or kept, and big chunks' sizes */
	size_t allocated_bytes;		/* handed out: the sizes given to slab_alloc */
};

void slab_init(struct slab_pool *p);
/* size (> 0) zeroed bytes, aligned to SLAB_CHUNK_ALIGN, or NULL when out
 * of memory. */
void *slab_alloc(struct slab_pool *p, size_t size);
/* Frees ptr (NULL is a no-op), which slab_alloc(p, size) returned: the
 * same size, or the chunk is taken for another class's (asserted). */
void slab_free(struct slab_pool *p, void *ptr, size_t size);
/* Gives every slab and the batch's rest back to the system. Everything allocated must have
 * been freed first (asserted: allocated_bytes is 0), big chunks included:
 * the pool does not know where those are. */
void slab_destroy(struct slab_pool *p);

/* Where references point: the range (base, len bytes: 0 until the first
 * slab) and the big chunks' table. slab.c's; read by the inline functions
 * below. */
struct slab_refs {
	char *base;
	size_t len;
	void **big;
};
extern struct slab_refs slab_refs;

uint32_t slab_big_ref(const void *chunk, const void *at);

/* The range's size: SLAB_REGION_BYTES, or what could be reserved. */
static inline size_t slab_range_bytes(void)
{
	return slab_refs.len ? slab_refs.len : SLAB_REGION_BYTES;
}

/* The reference of at (aligned to SLAB_CHUNK_ALIGN), an address inside
 * chunk, one slab_alloc returned and not freed: what the chunk's owner
 * links to (a node after what precedes it in its chunk). A slab's chunk
 * may have references to any of its addresses; a big chunk has one, which
 * names the at last given (so its owner gives the same one each time). */
static inline uint32_t slab_ref_at(const void *chunk, const void *at)
{
	uintptr_t offset = (uintptr_t)at - (uintptr_t)slab_refs.base;
	if (offset < slab_refs.len)
		return (uint32_t)(offset / SLAB_CHUNK_ALIGN);
	return slab_big_ref(chunk, at);
}

/* chunk's reference (0 for NULL). */
static inline uint32_t slab_ref(const void *chunk)
{
	return chunk ? slab_ref_at(chunk, chunk) : 0;
}

/* The chunk ref names (NULL for 0). */
static inline void *slab_deref(uint32_t ref)
{
	if (ref < SLAB_REF_BIG)
		return ref ? slab_refs.base + (size_t)ref * SLAB_CHUNK_ALIGN : NULL;
	return slab_refs.big[ref - SLAB_REF_BIG];
}
