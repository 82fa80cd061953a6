/* commit: see commit.h. Snapshots are in commit_snapshot.c, startup in
 * commit_open.c. */
#include "commit.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "raft_conf.h"
#include "txn_codec.h"

/* A standalone server: a one-voter raft sends nothing and is always ready. */
static void alone_send(void *ctx, struct raft_message *m, unsigned n)
{
	log_warning("raft wants to send %u messages, but this server has no peers", n);
}

static int alone_install_snapshot(void *ctx, struct raft_snapshot_metadata *m,
				  struct raft_buffer *chunk)
{
	raft_free(chunk->base);
	chunk->base = NULL;
	return -EIO;	/* only a leader sends snapshots, and nobody else leads here */
}

static void alone_after_step(void *ctx)
{
}

static bool alone_can_prep(void *ctx)
{
	return true;
}

static bool alone_leader_reachable(void *ctx, raft_id leader)
{
	return true;
}

static bool alone_peer_up(void *ctx, raft_id id)
{
	return false;
}

const struct commit_peers commit_alone = {
	.send = alone_send,
	.install_snapshot = alone_install_snapshot,
	.after_step = alone_after_step,
	.can_prep = alone_can_prep,
	.leader_reachable = alone_leader_reachable,
	.peer_up = alone_peer_up,
	.own_timer = false,
};

void commit_attach_peers(struct commit *c, const struct commit_peers *peers)
{
	c->peers = peers;
}

/* Remembers that entries from index on have term (terms change rarely). */
int commit_note_term(struct commit *c, uint64_t index, uint64_t term)
{
	if (c->term_run_count && c->term_runs[c->term_run_count - 1].term == term)
		return 0;
	ASSERT(!c->term_run_count || c->term_runs[c->term_run_count - 1].start <= index);
	if (c->term_run_count == c->term_run_cap) {
		size_t cap = c->term_run_cap ? c->term_run_cap * 2 : 8;
		void *p = realloc(c->term_runs, cap * sizeof(*c->term_runs));
		if (!p)
			return -ENOMEM;
		c->term_runs = p;
		c->term_run_cap = cap;
	}
	c->term_runs[c->term_run_count].start = index;
	c->term_runs[c->term_run_count].term = term;
	c->term_run_count++;
	return 0;
}

uint64_t commit_term_of(const struct commit *c, uint64_t index)
{
	uint64_t term = 0;
	for (size_t i = 0; i < c->term_run_count && c->term_runs[i].start <= index; i++)
		term = c->term_runs[i].term;
	return term;
}

int commit_note_configuration(struct commit *c, uint64_t index, const void *data, uint32_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	free(c->conf);
	c->conf = copy;
	c->conf_len = len;
	c->conf_index = index;
	return 0;
}

static struct txn *queue_first(struct commit *c)
{
	return list_first_entry(&c->queue, struct txn, commit_node);
}

static struct txn *queue_last(struct commit *c)
{
	struct list_node *n = list_last(&c->queue);
	return n ? list_entry(n, struct txn, commit_node) : NULL;
}

void commit_queue_push(struct commit *c, struct txn *t)
{
	/* zxids only grow along the queue: it is applied in that order */
	ASSERT(!queue_last(c) || queue_last(c)->zxid < t->zxid);
	list_push_back(&c->queue, &t->commit_node);
}

static void abandon_all(struct commit *c, int err)
{
	struct txn *t;
	while ((t = queue_first(c))) {
		list_remove(&c->queue, &t->commit_node);
		c->on_abandoned(c->ctx, t, err);
	}
}

static void apply_committed(struct commit *c)
{
	if (c->apply_paused)
		return;
	raft_index commit_index = raft_commit_index(&c->raft);
	/* The leader's word (ensemble.c) can be ahead of what raft learned. */
	if (c->known_commit > commit_index && c->known_commit_term == raft_current_term(&c->raft))
		commit_index = c->known_commit;
	if (commit_index > c->applied_index)
		c->applied_index = commit_index;
	bool any = false;
	struct txn *t;
	while ((t = queue_first(c)) && (raft_index)t->zxid <= commit_index) {
		list_remove(&c->queue, &t->commit_node);
		if ((uint64_t)t->zxid <= c->rebuilt_index) {
			/* already in the snapshot the state was rebuilt from */
			c->on_abandoned(c->ctx, t, ECONNRESET);
			continue;
		}
		c->txns_committed++;
		any = true;
		c->on_committed(c->ctx, t);
	}
	if (any) {
		c->batches_committed++;
		commit_snapshot_if_due(c, loop_now_ms());
	}
}

void commit_apply_committed(struct commit *c)
{
	apply_committed(c);
}

void commit_pause_apply(struct commit *c)
{
	c->apply_paused = true;
}

void commit_learn_commit(struct commit *c, uint64_t term, uint64_t index)
{
	if (c->known_commit_term != term || index > c->known_commit) {
		c->known_commit_term = term;
		c->known_commit = index;
		apply_committed(c);
	}
}

void commit_fail(struct commit *c, int err)
{
	if (c->failed)
		return;
	c->failed = err;
	log_full(LOG_CRIT, NULL,
		 "the write-ahead log failed (%s): no more writes are accepted; reads go on. "
		 "Restart corrald once the disk is sound", strerror(err));
	abandon_all(c, err);
}

/* Forgets the terms of index and after. */
static void terms_truncate(struct commit *c, uint64_t index)
{
	while (c->term_run_count && c->term_runs[c->term_run_count - 1].start >= index)
		c->term_run_count--;
}

/* A new leader's entries replace ours from index on: the log is cut there
 * and the txns from there on will never be applied. */
static int truncate_from(struct commit *c, uint64_t index)
{
	log_notice("the leader's log differs from ours from index %llu on (ours ends at %llu): "
		   "removing ours from there", (unsigned long long)index,
		   (unsigned long long)c->wal.last_index);
	int r = wal_truncate(&c->wal, index, commit_term_of(c, index - 1));
	if (r < 0)
		return r;
	terms_truncate(c, index);
	entry_cache_truncate(&c->entries, index);
	if (c->conf_index >= index) {
		/* The configuration in force is the last committed one. */
		struct raft_buffer buf;
		if (raft_configuration_encode(&c->raft.configuration_committed, &buf) == 0) {
			free(c->conf);
			c->conf = malloc(buf.len ? buf.len : 1);
			if (c->conf)
				memcpy(c->conf, buf.base, buf.len);
			c->conf_len = c->conf ? (uint32_t)buf.len : 0;
			c->conf_index = c->raft.configuration_committed_index;
			raft_free(buf.base);
		}
	}
	/* Keep the txns before index; the rest go, in order. */
	struct list gone;
	list_init(&gone);
	struct txn *t;
	while ((t = queue_last(c)) && t->zxid >= (int64_t)index) {
		list_remove(&c->queue, &t->commit_node);
		list_push_front(&gone, &t->commit_node);
	}
	struct list_node *n;
	while ((n = list_pop_front(&gone))) {
		c->txns_truncated++;
		c->on_abandoned(c->ctx, list_entry(n, struct txn, commit_node), ECONNRESET);
	}
	if (c->last_zxid >= (int64_t)index)
		c->last_zxid = (int64_t)index - 1;
	return 0;
}

/* The log cannot give index to server to: one line (raft asks again until
 * the snapshot is there), and the next snapshot (wanted now) leaves raft
 * without it, so raft sends that server the snapshot instead. */
static void entry_unreadable(struct commit *c, uint64_t index, raft_id to, int err)
{
	size_t n = sizeof(c->unreadable) / sizeof(c->unreadable[0]), k;
	for (k = 0; k < n && c->unreadable[k].server != to; k++)
		;
	if (k == n) {	/* a server not seen yet, in the slot of index's */
		k = index % n;
		c->unreadable[k].server = to;
		c->unreadable[k].index = 0;
	}
	if (c->unreadable[k].index != index)
		log_warning("entry %llu for server %llu is neither in memory nor readable from the "
			    "log (%s): it gets a snapshot instead", (unsigned long long)index,
			    (unsigned long long)to, strerror(-err));
	c->unreadable[k].index = index;
	if (index > c->snapshot_cut_index)
		c->snapshot_cut_index = index;
	commit_snapshot_request(c, index);
}

int commit_entry(struct commit *c, uint64_t index, raft_id to, struct wal_entry *ret,
		 bool *ret_owned)
{
	const struct cached_entry *e = entry_cache_get(&c->entries, index);
	*ret_owned = false;
	if (e) {
		*ret = (struct wal_entry){ .term = e->term, .type = e->type, .len = e->len,
					   .data = e->data };
		return 0;
	}
	int r = wal_read_entry(&c->wal, index, ret);
	uint64_t term = commit_term_of(c, index);
	if (r == 0 && term && ret->term != term) {
		free(ret->data);
		r = -ESTALE;	/* not the entry raft has at index */
	}
	if (r < 0) {
		entry_unreadable(c, index, to, r);
		return r;
	}
	*ret_owned = true;
	return 0;
}

/* Carries out what raft_step() asked for. Returns 0 or a negative errno. */
int commit_handle_update(struct commit *c, struct raft_update *u)
{
	if (u->flags & (RAFT_UPDATE_CURRENT_TERM | RAFT_UPDATE_VOTED_FOR)) {
		/* Durable before anything else happens, as Raft requires. */
		c->meta.term = raft_current_term(&c->raft);
		c->meta.voted_for = raft_voted_for(&c->raft);
		int r = datadir_meta_write(c->data_dir, &c->meta);
		if (r < 0)
			return r;
	}
	if (u->flags & RAFT_UPDATE_ENTRIES) {
		uint64_t first = u->entries.index;
		void *raft_owned = NULL;
		if (u->entries.n) {
			c->persisted_batch = u->entries.batch[0].batch;
			/* Neither submitted here nor received: raft's own entry (the
			 * barrier a new leader appends), whose batch is ours to free. */
			if (c->persisted_batch != c->received_batch &&
			    c->persisted_batch != c->submit_batch)
				raft_owned = c->persisted_batch;
		}
		if (u->entries.n && first <= c->wal.last_index) {
			int r = truncate_from(c, first);
			if (r < 0)
				return r;
		}
		uint64_t last_change = 0;
		for (unsigned i = 0; i < u->entries.n; i++) {
			const struct raft_entry *e = &u->entries.batch[i];
			uint64_t index = first + i;
			if (e->type == RAFT_CHANGE)
				last_change = index;
			int r = wal_append(&c->wal, index, e->term, (uint8_t)e->type, e->buf.base,
					   (uint32_t)e->buf.len);
			if (r == 0)
				r = commit_note_term(c, index, e->term);
			if (r == 0 && e->type == RAFT_CHANGE)
				r = commit_note_configuration(c, index, e->buf.base, (uint32_t)e->buf.len);
			if (r == 0)
				r = entry_cache_append(&c->entries, index, e->term, (uint8_t)e->type,
						       e->buf.base, (uint32_t)e->buf.len);
			if (r == 0 && e->type == RAFT_COMMAND &&
			    !(queue_last(c) && queue_last(c)->zxid >= (int64_t)index)) {
				/* The leader's entry, not one submitted here: its txn. */
				struct txn *t;
				r = txn_decode(e->buf.base, (uint32_t)e->buf.len, &t);
				if (r == 0) {
					t->zxid = (int64_t)index;
					commit_queue_push(c, t);
					if (c->last_zxid < (int64_t)index)
						c->last_zxid = (int64_t)index;
				} else if (r == -EBADMSG) {
					log_error("entry %llu from the leader holds no txn this server "
						  "can read", (unsigned long long)index);
				}
			}
			if (r < 0) {
				raft_free(raft_owned);
				return r;
			}
		}
		raft_free(raft_owned);
		entry_cache_bound(&c->entries, c->wal.durable_index);
		/* libraft 0.22.1 records a configuration change received in
		 * AppendEntries at the index of the batch's first entry, not its
		 * own (replicationAppend passes `index` for every entry): when the
		 * change is not first, its commit would never be recognized
		 * (RAFT_CONFIGURATION matches on the index). Put it right. */
		if (last_change && last_change != first &&
		    c->raft.configuration_uncommitted_index == first)
			c->raft.configuration_uncommitted_index = last_change;
	}
	if ((u->flags & RAFT_UPDATE_MESSAGES) && u->messages.n > 0)
		c->peers->send(c->peers->ctx, u->messages.batch, u->messages.n);
	if (u->flags & RAFT_UPDATE_SNAPSHOT) {
		int r = c->peers->install_snapshot(c->peers->ctx, &u->snapshot.metadata,
						   &u->snapshot.chunk);
		if (r < 0)
			return r;
	}
	if (u->flags & RAFT_UPDATE_TIMEOUT)
		c->next_timeout = raft_timeout(&c->raft);
	if (u->flags & RAFT_UPDATE_COMMIT_INDEX)
		apply_committed(c);
	return 0;
}

/* A configuration entry is committed: raft must be told (it takes the
 * decoded configuration). */
static int fire_configuration(struct commit *c)
{
	if (!c->conf || c->conf_index <= c->conf_fired_index ||
	    c->conf_index > raft_commit_index(&c->raft))
		return 0;
	struct raft_event e = { .type = RAFT_CONFIGURATION };
	if (raft_conf_decode(c->conf, c->conf_len, &e.configuration.conf) < 0)
		return -EBADMSG;
	e.configuration.index = c->conf_index;
	c->conf_fired_index = c->conf_index;
	int r = commit_step(c, &e);
	if (r == 0 && c->on_configuration)
		c->on_configuration(c->ctx);
	return r;
}

/* A new voter's first catch-up round carries the whole tree (a snapshot,
 * when the log no longer starts at the beginning): over libraft's 5 s for a
 * big one. So a round may last COMMIT_SNAPSHOT_INSTALL_MS while the
 * connection to the server is up, COMMIT_CATCH_UP_UNREACHABLE_MS while it is
 * not: a server that is not up is refused that soon, and one whose
 * connection drops (its snapshot's transfer would start over) too. Raft
 * compares the round's age with the limit on its steps, so the limit is set
 * before each one. */
static bool catch_up_running(struct commit *c)
{
	int status;
	return raft_state(&c->raft) == RAFT_LEADER &&
	       raft_catch_up(&c->raft, c->catching_up, &status) == 0 &&
	       status == RAFT_CATCH_UP_RUNNING;
}

static void pace_catch_up(struct commit *c)
{
	if (catch_up_running(c))
		raft_set_max_catch_up_round_duration(&c->raft,
						     c->peers->peer_up(c->peers->ctx, c->catching_up) ?
						     COMMIT_SNAPSHOT_INSTALL_MS :
						     COMMIT_CATCH_UP_UNREACHABLE_MS);
}

/* After a step: a catch-up that raft no longer runs is over, forgotten
 * here and told (a staged reconfig goes on at once, not on a timer). */
static void check_catch_up(struct commit *c)
{
	if (catch_up_running(c))
		return;
	c->catching_up = 0;
	if (c->on_catch_up_ended)
		c->on_catch_up_ended(c->ctx);
}

int commit_step(struct commit *c, struct raft_event *e)
{
	struct raft_update u;
	memset(&u, 0, sizeof(u));
	e->time = loop_now_ms() + c->raft_clock_ahead_ms;
	if (c->catching_up)
		pace_catch_up(c);
	int r = raft_step(&c->raft, e, &u);
	if (r != 0)
		return r == RAFT_NOMEM ? -ENOMEM : r == RAFT_NOTLEADER ? -EAGAIN
		     : r == RAFT_CANTCHANGE ? -EBUSY : r == RAFT_BADID ? -ENOENT : -EIO;
	r = commit_handle_update(c, &u);
	if (r == 0 && c->installed_pending) {
		/* The leader's snapshot is ours now: raft takes its configuration. */
		struct raft_event pe = { .type = RAFT_PERSISTED_SNAPSHOT };
		c->installed_pending = false;
		pe.persisted_snapshot.metadata = c->installed;
		pe.persisted_snapshot.offset = 0;
		pe.persisted_snapshot.last = true;
		r = commit_step(c, &pe);
		if (r == 0 && c->on_configuration)
			c->on_configuration(c->ctx);
	}
	if (r == 0)
		r = fire_configuration(c);
	if (c->catching_up)
		check_catch_up(c);
	c->peers->after_step(c->peers->ctx);
	return r;
}

void commit_on_durable(void *ctx, uint64_t index)
{
	struct commit *c = ctx;
	struct raft_event e = { .type = RAFT_PERSISTED_ENTRIES };
	if (index <= c->snapshot_index)
		return;		/* written before a leader's snapshot replaced it */
	e.persisted_entries.index = index;
	int r = commit_step(c, &e);
	if (r < 0)
		commit_fail(c, -r);
}

void commit_on_wal_failed(void *ctx, int err)
{
	commit_fail(ctx, err);
}

int commit_can_accept(struct commit *c, uint32_t bytes)
{
	if (c->failed)
		return -EIO;
	int r = wal_reserve(&c->wal, bytes);
	if (r == -ENOSPC && !c->refusing_for_space) {
		c->refusing_for_space = true;
		log_warning("%s: no room for another log segment; refusing writes until there is",
			    c->wal.dir);
	}
	return r;
}

int commit_submit(struct commit *c, struct txn *t)
{
	struct jute_buf b = { 0 };
	if (c->failed)
		return -EIO;
	if (!commit_can_prep(c))
		return -EAGAIN;
	txn_encode(&b, t);
	if (b.error) {
		jute_buf_free(&b);
		return -ENOMEM;
	}
	/* Room was checked before prep (commit_can_accept), with a bound on
	 * the encoded size; a segment is made here if the estimate was short. */
	int r;
	struct raft_entry entry = {
		.term = raft_current_term(&c->raft),
		.type = RAFT_COMMAND,
		.buf = { .base = b.data, .len = b.len },
		.batch = b.data,	/* libraft wants one; the buffer stays ours */
	};
	struct raft_event e = { .type = RAFT_SUBMIT };
	e.submit.entries = &entry;
	e.submit.n = 1;
	raft_index index = raft_last_index(&c->raft) + 1;
	t->zxid = (int64_t)index;
	commit_queue_push(c, t);
	c->submit_batch = b.data;
	r = commit_step(c, &e);
	c->submit_batch = NULL;
	jute_buf_free(&b);	/* the log has its copy */
	if (r == -EAGAIN) {
		/* raft refused it before anything was logged (leadership is being
		 * handed over): the txn is the caller's again. */
		ASSERT(queue_last(c) == t);
		list_remove(&c->queue, &t->commit_node);
		return -EAGAIN;
	}
	if (r < 0) {
		/* raft or the log could not take an entry it had room for: the
		 * pending changes already published can no longer be trusted, so
		 * the log stops; the txn is abandoned with everything in flight. */
		commit_fail(c, -r);
		return 0;
	}
	c->last_zxid = (int64_t)index;
	/* srvr's and mntr's proposal sizes, as ZooKeeper's leader counts them. */
	c->proposal_last_bytes = (int64_t)entry.buf.len;
	if (c->proposal_min_bytes < 0 || c->proposal_last_bytes < c->proposal_min_bytes)
		c->proposal_min_bytes = c->proposal_last_bytes;
	if (c->proposal_last_bytes > c->proposal_max_bytes)
		c->proposal_max_bytes = c->proposal_last_bytes;
	return 0;
}

int commit_change(struct commit *c, const struct raft_configuration *conf, uint64_t *ret_index)
{
	struct raft_buffer buf;
	if (c->failed)
		return -EIO;
	if (!commit_can_prep(c))
		return -EAGAIN;
	if (raft_configuration_encode(conf, &buf) != 0)
		return -ENOMEM;
	struct raft_entry entry = {
		.term = raft_current_term(&c->raft),
		.type = RAFT_CHANGE,
		.buf = buf,
		.batch = buf.base,
	};
	struct raft_event e = { .type = RAFT_SUBMIT };
	e.submit.entries = &entry;
	e.submit.n = 1;
	raft_index index = raft_last_index(&c->raft) + 1;
	c->submit_batch = buf.base;
	int r = commit_step(c, &e);
	c->submit_batch = NULL;
	raft_free(buf.base);
	if (r == -EAGAIN)
		return r;
	if (r < 0) {
		commit_fail(c, -r);
		return r;
	}
	c->last_zxid = (int64_t)index;
	*ret_index = index;
	return 0;
}

int commit_catch_up(struct commit *c, raft_id id)
{
	if (!c->raft_ready || raft_state(&c->raft) != RAFT_LEADER)
		return -EAGAIN;
	struct raft_event e = { .type = RAFT_CATCH_UP };
	e.catch_up.server_id = id;
	int r = commit_step(c, &e);
	if (r == 0)
		c->catching_up = id;
	return r;
}

int commit_catch_up_status(struct commit *c, raft_id id)
{
	int status;
	if (!c->raft_ready || raft_state(&c->raft) != RAFT_LEADER ||
	    raft_catch_up(&c->raft, id, &status) != 0)
		return -EAGAIN;
	return status;
}

int commit_transfer(struct commit *c, raft_id id)
{
	if (!c->raft_ready || raft_state(&c->raft) != RAFT_LEADER)
		return -EAGAIN;
	struct raft_event e = { .type = RAFT_TRANSFER };
	e.transfer.server_id = id;
	return commit_step(c, &e);
}

bool commit_candidate_by_transfer(struct commit *c)
{
	return c->raft_ready && raft_state(&c->raft) == RAFT_CANDIDATE &&
	       c->raft.candidate_state.disrupt_leader;
}

void commit_flush(struct commit *c)
{
	if (c->wal_open)
		wal_flush(&c->wal);
}

void commit_tick(struct commit *c, uint64_t now_ms)
{
	if (!c->raft_ready || c->failed)
		return;
	commit_snapshot_check(c, now_ms);
	if (wal_prepare_spare(&c->wal) == 0 && c->refusing_for_space) {
		c->refusing_for_space = false;
		log_notice("%s: there is room for the log again; writes resume", c->wal.dir);
	}
	if (c->peers->own_timer || now_ms < c->next_timeout)
		return;
	struct raft_event e = { .type = RAFT_TIMEOUT };
	int r = commit_step(c, &e);
	if (r < 0)
		commit_fail(c, -r);
}

enum raft_state commit_state(struct commit *c)
{
	return c->raft_ready ? raft_state(&c->raft) : RAFT_UNAVAILABLE;
}

raft_id commit_leader(struct commit *c)
{
	raft_id id = 0;
	const char *address = NULL;
	if (c->raft_ready && raft_state(&c->raft) == RAFT_LEADER)
		return c->self;	/* also while handing leadership over */
	if (c->raft_ready)
		raft_leader(&c->raft, &id, &address);
	return id;
}

bool commit_can_prep(struct commit *c)
{
	return c->raft_ready && c->peers->can_prep(c->peers->ctx);
}

bool commit_leader_reachable(struct commit *c)
{
	raft_id leader = commit_leader(c);
	return leader && (leader == c->self || c->peers->leader_reachable(c->peers->ctx, leader));
}

bool commit_is_observer(struct commit *c)
{
	if (!c->raft_ready)
		return false;
	for (unsigned i = 0; i < c->raft.configuration.n; i++)
		if (c->raft.configuration.servers[i].id == c->self)
			return c->raft.configuration.servers[i].role != RAFT_VOTER;
	return false;
}

void commit_free(struct commit *c)
{
	if (c->snapshot_pid > 0) {
		/* Let a snapshot being written finish: it is published whole or not. */
		int status;
		waitpid(c->snapshot_pid, &status, 0);
	}
	if (c->snapshot_pidfd >= 0)
		close(c->snapshot_pidfd);
	free(c->snapshot_writing.conf);
	free(c->conf);
	free(c->term_runs);
	struct txn *t;
	while (c->queue.head.next && (t = queue_first(c))) {
		list_remove(&c->queue, &t->commit_node);
		txn_free(t);
	}
	entry_cache_free(&c->entries);
	reclaim_free(&c->reclaim);
	if (c->raft_ready)
		raft_close(&c->raft, NULL);
	if (c->wal_open)
		wal_close(&c->wal);
	if (c->data_dir && c->lock_fd >= 0)
		close(c->lock_fd);
	free(c->data_dir);
	free(c->archive_dir);
	memset(c, 0, sizeof(*c));
	c->lock_fd = -1;
}
