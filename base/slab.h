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
 * Slabs are mapped from the kernel (mmap), not malloc'd, a huge page's
 * worth at a time (SLAB_BATCH_BYTES, advised MADV_HUGEPAGE, so a
 * snapshot's fork copies few page table entries); a batch's slabs not
 * handed out yet are not counted as held (they are resident when the
 * kernel gave a huge page). A slab whose last chunk is freed is unmapped,
 * except one kept empty per class (a create/delete at a slab's boundary
 * does not thrash), so freeing many objects of one size gives their
 * memory back for any other size.
 *
 * Single-threaded: one pool per thread (corrald's loop). The pool needs
 * nothing after fork(): a snapshot child reads the chunks it inherited.
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

/* The largest size served from slabs; bigger ones are calloc'd. */
#define SLAB_CHUNK_MAX 1024
/* Chunks are this far apart in size, and aligned to it. */
#define SLAB_CHUNK_ALIGN 8
/* A slab's size and alignment (a power of two). */
#define SLAB_BYTES (64 * 1024)
/* Slabs are mapped this many bytes at a time: a huge page's worth. */
#define SLAB_BATCH_BYTES (2 * 1024 * 1024)
#define SLAB_CLASS_COUNT (SLAB_CHUNK_MAX / SLAB_CHUNK_ALIGN)

struct slab;

struct slab_pool {
	struct {
		struct slab *partial;	/* slabs with both live and free chunks */
		struct slab *empty;	/* at most one slab kept with none live */
	} classes[SLAB_CLASS_COUNT];
	char *batch_next;		/* the mapped batch's slabs not handed out yet */
	size_t batch_left_bytes;
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
