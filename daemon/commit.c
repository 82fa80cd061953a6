/* commit: see commit.h. */
#include "commit.h"
#include "commit_internal.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "log.h"
#include "snapshot_transfer.h"
#include "sockaddr.h"
#include "txn_codec.h"


/* Remembers that entries from index on have term (terms change rarely). */
int commit_note_term_run(struct commit *c, uint64_t index, uint64_t term)
{
	if (c->term_run_count && c->term_runs[c->term_run_count - 1].term == term)
		return 0;
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

int commit_note_term(struct commit *c, uint64_t index, uint64_t term)
{
	return commit_note_term_run(c, index, term);
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

void commit_queue_unpush(struct commit *c, struct txn *t)
{
	struct txn *prev = NULL;
	for (struct txn *k = c->head; k && k != t; k = k->next)
		prev = k;
	if (c->tail != t)
		return;
	if (prev)
		prev->next = NULL;
	else
		c->head = NULL;
	c->tail = prev;
	c->queued--;
}

void commit_queue_push(struct commit *c, struct txn *t)
{
	t->next = NULL;
	if (c->tail)
		c->tail->next = t;
	else
		c->head = t;
	c->tail = t;
	c->queued++;
}

static void snapshot_start_if_due(struct commit *c, uint64_t now_ms);
static void apply_committed(struct commit *c);

void commit_apply(struct commit *c)
{
	apply_committed(c);
}

void commit_on_snapshot_exit(struct loop_op *op, int res, uint32_t flags);

static void apply_committed(struct commit *c)
{
	raft_index commit_index = raft_commit_index(&c->raft);
	/* The leader's word (ensemble.c) can be ahead of what raft learned. */
	if (c->announced_commit > commit_index && c->announced_term == raft_current_term(&c->raft))
		commit_index = c->announced_commit;
	if (commit_index > c->applied_index)
		c->applied_index = commit_index;
	bool any = false;
	while (c->head && (raft_index)c->head->zxid <= commit_index) {
		struct txn *t = c->head;
		c->head = t->next;
		if (!c->head)
			c->tail = NULL;
		c->queued--;
		c->txns_committed++;
		t->next = NULL;
		any = true;
		c->on_committed(c->ctx, t);
	}
	if (any) {
		c->batches_committed++;
		snapshot_start_if_due(c, loop_now_ms());
	}
}

static void abandon_all(struct commit *c, int err)
{
	while (c->head) {
		struct txn *t = c->head;
		c->head = t->next;
		c->queued--;
		t->next = NULL;
		c->on_abandoned(c->ctx, t, err);
	}
	c->tail = NULL;
}

static void log_failed(struct commit *c, int err);

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
	struct txn *keep_tail = NULL, *t = c->head;
	while (t && t->zxid < (int64_t)index) {
		keep_tail = t;
		t = t->next;
	}
	if (keep_tail)
		keep_tail->next = NULL;
	else
		c->head = NULL;
	c->tail = keep_tail;
	while (t) {
		struct txn *next = t->next;
		t->next = NULL;
		c->queued--;
		c->txns_truncated++;
		c->on_abandoned(c->ctx, t, ECONNRESET);
		t = next;
	}
	if (c->last_zxid >= (int64_t)index)
		c->last_zxid = (int64_t)index - 1;
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
				r = commit_note_term_run(c, index, e->term);
			if (r == 0 && e->type == RAFT_CHANGE)
				r = commit_note_configuration(c, index, e->buf.base, (uint32_t)e->buf.len);
			if (r == 0 && c->ensemble)
				r = entry_cache_append(&c->entries, index, e->term, (uint8_t)e->type,
						       e->buf.base, (uint32_t)e->buf.len);
			if (r == 0 && e->type == RAFT_COMMAND &&
			    !(c->tail && c->tail->zxid >= (int64_t)index)) {
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
		/* libraft 0.22.1 records a configuration change received in
		 * AppendEntries at the index of the batch's first entry, not its
		 * own (replicationAppend passes `index` for every entry): when the
		 * change is not first, its commit would never be recognized
		 * (RAFT_CONFIGURATION matches on the index). Put it right. */
		if (last_change && last_change != first &&
		    c->raft.configuration_uncommitted_index == first)
			c->raft.configuration_uncommitted_index = last_change;
	}
	if ((u->flags & RAFT_UPDATE_MESSAGES) && u->messages.n > 0) {
		if (c->ensemble)
			ensemble_send(c, u->messages.batch, u->messages.n);
		else
			log_warning("raft wants to send %u messages, but this server has no peers",
				    u->messages.n);
	}
	if (u->flags & RAFT_UPDATE_SNAPSHOT) {
		int r = ensemble_install_snapshot(c, &u->snapshot.metadata, &u->snapshot.chunk);
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
	struct raft_buffer cb = { .base = c->conf, .len = c->conf_len };
	raft_configuration_init(&e.configuration.conf);
	if (raft_configuration_decode(&cb, &e.configuration.conf) != 0)
		return -EBADMSG;
	e.configuration.index = c->conf_index;
	c->conf_fired_index = c->conf_index;
	int r = commit_step(c, &e);
	if (r == 0 && c->on_configuration)
		c->on_configuration(c->ctx);
	return r;
}

int commit_step(struct commit *c, struct raft_event *e)
{
	struct raft_update u;
	memset(&u, 0, sizeof(u));
	e->time = loop_now_ms() + c->raft_clock_ahead_ms;
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
	if (c->ensemble)
		ensemble_after_step(c);
	return r;
}

static int step(struct commit *c, struct raft_event *e)
{
	return commit_step(c, e);
}

void commit_fail(struct commit *c, int err)
{
	log_failed(c, err);
}

static void log_failed(struct commit *c, int err)
{
	if (c->failed)
		return;
	c->failed = err;
	log_full(LOG_CRIT, NULL,
		 "the write-ahead log failed (%s): no more writes are accepted; reads go on. "
		 "Restart corrald once the disk is sound", strerror(err));
	abandon_all(c, err);
}

void commit_on_durable(void *ctx, uint64_t index)
{
	struct commit *c = ctx;
	struct raft_event e = { .type = RAFT_PERSISTED_ENTRIES };
	if (index <= c->snapshot_index && c->ensemble)
		return;		/* written before a leader's snapshot replaced it */
	e.persisted_entries.index = index;
	int r = step(c, &e);
	if (r < 0)
		log_failed(c, -r);
}

void commit_on_wal_failed(void *ctx, int err)
{
	log_failed(ctx, err);
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
	r = step(c, &e);
	c->submit_batch = NULL;
	jute_buf_free(&b);	/* the log has its copy */
	if (r == -EAGAIN) {
		/* raft refused it before anything was logged (leadership is being
		 * handed over): the txn is the caller's again. */
		commit_queue_unpush(c, t);
		return -EAGAIN;
	}
	if (r < 0) {
		/* raft or the log could not take an entry it had room for: the
		 * pending changes already published can no longer be trusted, so
		 * the log stops; the txn is abandoned with everything in flight. */
		log_failed(c, -r);
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
	int r = step(c, &e);
	c->submit_batch = NULL;
	raft_free(buf.base);
	if (r == -EAGAIN)
		return r;
	if (r < 0) {
		log_failed(c, -r);
		return r;
	}
	c->last_zxid = (int64_t)index;
	*ret_index = index;
	return 0;
}

int commit_transfer(struct commit *c, raft_id id)
{
	if (!c->raft_ready || raft_state(&c->raft) != RAFT_LEADER)
		return -EAGAIN;
	struct raft_event e = { .type = RAFT_TRANSFER };
	e.transfer.server_id = id;
	return step(c, &e);
}

void commit_flush(struct commit *c)
{
	if (c->wal_open)
		wal_flush(&c->wal);
}

/* A child finished writing a snapshot: tell raft, then drop what it makes
 * redundant (older snapshots beyond the kept count, log segments before the
 * oldest kept snapshot). */
static void snapshot_published(struct commit *c)
{
	struct snapshot_meta *m = &c->snapshot_writing;
	struct raft_buffer cb = { .base = m->conf, .len = m->conf_len };
	struct raft_event e = { .type = RAFT_SNAPSHOT };
	raft_configuration_init(&e.snapshot.metadata.configuration);
	if (raft_configuration_decode(&cb, &e.snapshot.metadata.configuration) == 0) {
		e.snapshot.metadata.index = m->index;
		e.snapshot.metadata.term = m->term;
		e.snapshot.metadata.configuration_index = m->conf_index;
		e.snapshot.trailing = c->snapshot_trailing;
		int r = step(c, &e);
		if (r < 0)
			log_warning("raft did not take the snapshot at index %llu: %s",
				    (unsigned long long)m->index, strerror(-r));
	}
	c->snapshot_index = m->index;
	c->snapshots_taken++;
	if (m->index + 1 > c->snapshot_trailing)
		entry_cache_trim(&c->entries, m->index + 1 - c->snapshot_trailing);
	uint64_t oldest = snapshot_purge(c->data_dir, c->keep_snapshots);
	if (oldest)
		wal_purge(&c->wal, oldest);
	log_info("snapshot at index %llu written in %llu ms (the fork paused the server %llu us); "
		 "kept %u, log before index %llu removed",
		 (unsigned long long)m->index, (unsigned long long)(loop_now_ms() - c->snapshot_started_ms),
		 (unsigned long long)c->snapshot_fork_us, c->keep_snapshots,
		 (unsigned long long)oldest);
}

static void snapshot_check(struct commit *c, uint64_t now_ms)
{
	if (c->snapshot_pid && c->snapshot_pidfd >= 0)
		return;		/* its exit arrives on the ring: on_snapshot_exit */
	if (c->snapshot_pid) {
		int status;
		pid_t p = waitpid(c->snapshot_pid, &status, WNOHANG);
		if (p == 0)
			return;
		c->snapshot_pid = 0;
		if (p > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			snapshot_published(c);
		} else {
			log_warning("writing the snapshot at index %llu failed (status %d); retrying later",
				    (unsigned long long)c->snapshot_writing.index, status);
			c->snapshot_retry_ms = now_ms + 10000;
		}
		free(c->snapshot_writing.conf);
		memset(&c->snapshot_writing, 0, sizeof(c->snapshot_writing));
		return;
	}
	snapshot_start_if_due(c, now_ms);
}

/* Starts a snapshot when enough has been logged since the last one and none
 * is being written. Called on the timer and after every committed batch, so
 * a busy server snapshots on time. */
static void snapshot_start_if_due(struct commit *c, uint64_t now_ms)
{
	if (c->snapshot_pid || !c->raft_ready || c->failed)
		return;
	raft_index applied = c->applied_index;
	/* At least snapshot_entries, and at least half the tree: writing a
	 * snapshot costs a pass over every node (the child's CPU and disk, and a
	 * fork that copies page tables), so a big tree is not rewritten every
	 * few hundred milliseconds under load; at most two nodes written per
	 * txn, and a restart replays at most half a tree's worth of log. */
	uint64_t entries = c->snapshot_entries;
	if (entries && c->state->tree.node_count / 2 > entries)
		entries = c->state->tree.node_count / 2;
	bool due = (entries && applied - c->snapshot_index >= entries) ||
		   (c->snapshot_log_bytes &&
		    c->wal.bytes_written - c->snapshot_bytes_mark >= c->snapshot_log_bytes);
	if (!due || applied <= c->snapshot_index || now_ms < c->snapshot_retry_ms)
		return;
	c->snapshot_bytes_mark = c->wal.bytes_written;
	/* The state is exactly the commit index's: every step applies what it
	 * commits (handle_update), and txns still on their way (c->head) touch
	 * nothing before they commit. So a server that never goes idle still
	 * takes its snapshots. */
	struct snapshot_meta *m = &c->snapshot_writing;
	m->index = applied;
	m->term = commit_term_of(c, applied);
	if (c->conf_index <= applied) {
		m->conf_index = c->conf_index;
		m->conf_len = c->conf_len;
		m->conf = malloc(c->conf_len ? c->conf_len : 1);
		if (!m->conf)
			return;
		memcpy(m->conf, c->conf, c->conf_len);
	} else {
		/* A configuration change is on its way: the snapshot holds the
		 * committed one. */
		struct raft_buffer buf;
		if (raft_configuration_encode(&c->raft.configuration_committed, &buf) != 0)
			return;
		m->conf_index = c->raft.configuration_committed_index;
		m->conf_len = (uint32_t)buf.len;
		m->conf = malloc(buf.len ? buf.len : 1);
		if (m->conf)
			memcpy(m->conf, buf.base, buf.len);
		raft_free(buf.base);
		if (!m->conf)
			return;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = snapshot_start(c->data_dir, &c->meta.identity, c->state, m);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	c->snapshot_fork_us = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 +
					 (t1.tv_nsec - t0.tv_nsec) / 1000);
	c->snapshot_started_ms = now_ms;
	if (pid < 0) {
		log_warning("cannot start a snapshot: %s", strerror((int)-pid));
		free(m->conf);
		m->conf = NULL;
		c->snapshot_retry_ms = now_ms + 10000;
		return;
	}
	c->snapshot_pid = pid;
	/* Learn of the child's exit as it happens (else the timer looks). */
	int fd = pidfd_open(pid, 0);
	if (fd >= 0) {
		c->snapshot_pidfd = fd;
		struct io_uring_sqe *sqe = loop_sqe(c->loop, &c->snapshot_exit_op);
		io_uring_prep_poll_add(sqe, fd, POLLIN);
	}
}

void commit_on_snapshot_exit(struct loop_op *op, int res, uint32_t flags)
{
	struct commit *c = (struct commit *)((char *)op - offsetof(struct commit, snapshot_exit_op));
	(void)res;
	(void)flags;
	close(c->snapshot_pidfd);
	c->snapshot_pidfd = -1;
	if (c->raft_ready && !c->failed)
		snapshot_check(c, loop_now_ms());
}

void commit_tick(struct commit *c, uint64_t now_ms)
{
	if (!c->raft_ready || c->failed)
		return;
	snapshot_check(c, now_ms);
	if (wal_prepare_spare(&c->wal) == 0 && c->refusing_for_space) {
		c->refusing_for_space = false;
		log_notice("%s: there is room for the log again; writes resume", c->wal.dir);
	}
	if (c->ensemble || now_ms < c->next_timeout)
		return;		/* an ensemble's raft has its own timer (ensemble.c) */
	struct raft_event e = { .type = RAFT_TIMEOUT };
	int r = step(c, &e);
	if (r < 0)
		log_failed(c, -r);
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
	if (!c->ensemble)
		return true;
	/* While leadership is handed over, raft takes no entries. */
	return c->raft_ready && raft_state(&c->raft) == RAFT_LEADER && c->leader_ready &&
	       raft_transferee(&c->raft) == 0;
}

bool commit_leader_reachable(struct commit *c)
{
	raft_id leader = commit_leader(c);
	if (!leader)
		return false;
	/* A link not made yet (made on the first message) does not count:
	 * only one that dropped under this leader. */
	return leader == c->self || !c->ensemble || c->lost_leader != leader ||
	       c->lost_leader_term != raft_current_term(&c->raft) ||
	       peer_transport_up(&c->peers, leader);
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
	while (c->head) {
		struct txn *t = c->head;
		c->head = t->next;
		txn_free(t);
	}
	entry_cache_free(&c->entries);
	snapshot_transfer_stop(c);
	if (c->raft_ready)
		raft_close(&c->raft, NULL);
	if (c->wal_open)
		wal_close(&c->wal);
	if (c->data_dir && c->lock_fd >= 0)
		close(c->lock_fd);
	free(c->data_dir);
	memset(c, 0, sizeof(*c));
	c->lock_fd = -1;
}
