/* entry_cache: the recent Raft log entries, kept in memory for the leader to
 * send to followers.
 *
 * libraft's event API asks its user for the entries of every AppendEntries
 * it sends (the message names the range; the entries are the user's to
 * fill), so an ensemble member keeps the entries it logs here, the newest
 * within a budget in bytes (ensemble.entry_cache_bytes): once over it, the
 * oldest that are durable in the log go (entry_cache_bound). An entry asked
 * for and no longer here is read back from the log on disk (ensemble.c,
 * storage/wal_reader.c); a follower further behind than the log gets the
 * snapshot instead. A standalone server has nobody to send to and keeps
 * nothing. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cached_entry {
	uint64_t term;
	uint8_t type;		/* enum raft_entry_type */
	uint32_t len;
	uint8_t *data;		/* malloc'd, len bytes (NULL when 0) */
};

struct entry_cache {
	bool keep;		/* false: appends keep nothing (a standalone server) */
	struct cached_entry *e;	/* e[off .. off+count) are indexes first.. */
	size_t off, count, cap;
	uint64_t first;		/* index of e[off] */
	uint64_t bytes;		/* held: payload + ENTRY_CACHE_OVERHEAD per entry */
	uint64_t budget;	/* entry_cache_bound's bound in bytes; 0: none */
};

/* What an entry costs besides its payload: its slot, its allocation's header. */
#define ENTRY_CACHE_OVERHEAD (sizeof(struct cached_entry) + 16)

/* An empty cache; keep says whether it keeps what is appended. */
void entry_cache_init(struct entry_cache *c, bool keep);
void entry_cache_free(struct entry_cache *c);
/* Appends the entry at index (copied). index must follow the last one held,
 * or the cache must be empty. Returns 0, -EINVAL or -ENOMEM. */
int entry_cache_append(struct entry_cache *c, uint64_t index, uint64_t term, uint8_t type,
		       const void *data, uint32_t len);
/* Drops index and everything after it. */
void entry_cache_truncate(struct entry_cache *c, uint64_t index);
/* Drops everything before index. */
void entry_cache_trim(struct entry_cache *c, uint64_t index);
/* Drops the oldest entries, never one after max_index (not durable yet),
 * while more than the budget is held. */
void entry_cache_bound(struct entry_cache *c, uint64_t max_index);
/* The entry at index, or NULL when not held. */
const struct cached_entry *entry_cache_get(const struct entry_cache *c, uint64_t index);
/* The last index held, or 0. */
uint64_t entry_cache_last(const struct entry_cache *c);
