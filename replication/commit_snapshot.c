/* commit_snapshot: the commit step's snapshots. One is taken when enough
 * was logged since the last (a forked child writes the state on
 * copy-on-write memory, see storage/snapshot.c); when it is published
 * raft is told and what it makes redundant goes (older snapshots beyond
 * storage.keep_snapshots, log segments before the oldest kept one). A
 * leader's snapshot, received whole (snapshot_transfer.c), is installed
 * here too: it becomes this server's state. */
#include "commit.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "log.h"
#include "raft_conf.h"

int commit_snapshot_meta(struct commit *c, struct snapshot_meta *m)
{
	uint64_t applied = c->applied_index;
	memset(m, 0, sizeof(*m));
	m->index = applied;
	m->term = commit_term_of(c, applied);
	if (c->conf_index <= applied) {
		m->conf_index = c->conf_index;
		m->conf_len = c->conf_len;
		m->conf = malloc(c->conf_len ? c->conf_len : 1);
		if (!m->conf)
			return -ENOMEM;
		memcpy(m->conf, c->conf, c->conf_len);
		return 0;
	}
	/* A configuration change is on its way: the snapshot holds the
	 * committed one. */
	struct raft_buffer buf;
	if (raft_configuration_encode(&c->raft.configuration_committed, &buf) != 0)
		return -ENOMEM;
	m->conf_index = c->raft.configuration_committed_index;
	m->conf_len = (uint32_t)buf.len;
	m->conf = malloc(buf.len ? buf.len : 1);
	if (m->conf)
		memcpy(m->conf, buf.base, buf.len);
	raft_free(buf.base);
	return m->conf ? 0 : -ENOMEM;
}

/* The archive's own bound: its newest archive_keep_snapshots snapshots
 * and the log from the oldest of them on. */
static void archive_retain(struct commit *c)
{
	int err;
	uint64_t oldest = snapshot_purge(c->archive_dir, c->archive_keep_snapshots, NULL, &err,
					 &c->reclaim);
	int r = oldest ? wal_purge_dir(c->archive_dir, oldest, &c->reclaim) : 0;
	if (r < 0)
		log_warning("%s: cannot remove archived log segments before index %llu: %s",
			    c->archive_dir, (unsigned long long)oldest, strerror(-r));
}

/* Drops what the newest snapshot makes redundant: older snapshots beyond
 * the kept count, log segments before the oldest kept snapshot (archived
 * first, when storage.archive_dir is set). The unlinks and the directory
 * fsyncs go on the ring (reclaim.h): an unlink that frees 200 MB of blocks
 * must not stall the loop. While the last purge's are still on their
 * way, this one waits (it would find the same files): the timer runs it
 * once they are done. Returns the oldest kept snapshot's index, or 0. */
static uint64_t purge_redundant(struct commit *c)
{
	if (c->reclaim.failed > c->reclaim_failed_seen) {
		log_warning("cannot delete %llu purged files (snapshots or log segments): %s",
			    (unsigned long long)(c->reclaim.failed - c->reclaim_failed_seen),
			    strerror(-c->reclaim.last_error));
		c->reclaim_failed_seen = c->reclaim.failed;
	}
	c->purge_pending = !reclaim_idle(&c->reclaim);
	if (c->purge_pending)
		return 0;
	int archive_err = 0;
	uint64_t oldest = snapshot_purge(c->data_dir, c->keep_snapshots, c->archive_dir, &archive_err,
					 &c->reclaim);
	if (oldest && archive_err == 0)
		archive_err = wal_purge(&c->wal, oldest, &c->reclaim);
	if (archive_err < 0)
		log_warning("cannot archive into %s: %s; the files not archived stay in %s",
			    c->archive_dir, strerror(-archive_err), c->data_dir);
	else if (c->archive_dir)
		archive_retain(c);
	return oldest;
}

/* A child finished writing a snapshot: tell raft, then drop what it makes
 * redundant. */
static void snapshot_published(struct commit *c)
{
	struct snapshot_meta *m = &c->snapshot_writing;
	struct raft_event e = { .type = RAFT_SNAPSHOT };
	unsigned trailing = c->snapshot_trailing;
	if (c->snapshot_cut_index && m->index >= c->snapshot_cut_index) {
		if (m->index - c->snapshot_cut_index < trailing)
			trailing = (unsigned)(m->index - c->snapshot_cut_index);
		c->snapshot_cut_index = 0;
	}
	if (raft_conf_decode(m->conf, m->conf_len, &e.snapshot.metadata.configuration) == 0) {
		e.snapshot.metadata.index = m->index;
		e.snapshot.metadata.term = m->term;
		e.snapshot.metadata.configuration_index = m->conf_index;
		e.snapshot.trailing = trailing;
		int r = commit_step(c, &e);
		if (r < 0)
			log_warning("raft did not take the snapshot at index %llu: %s",
				    (unsigned long long)m->index, strerror(-r));
	}
	c->snapshot_index = m->index;
	c->snapshots_taken++;
	uint64_t now_ms = loop_now_ms();
	summary_add(&c->snapshot_ms, now_ms - c->snapshot_started_ms, now_ms);
	if (m->index + 1 > trailing)
		entry_cache_trim(&c->entries, m->index + 1 - trailing);
	uint64_t oldest = purge_redundant(c);
	log_info("snapshot at index %llu written in %llu ms (the fork paused the server %llu us); "
		 "kept %u, log before index %llu removed",
		 (unsigned long long)m->index, (unsigned long long)(loop_now_ms() - c->snapshot_started_ms),
		 (unsigned long long)c->snapshot_fork_us, c->keep_snapshots,
		 (unsigned long long)oldest);
}

void commit_snapshot_check(struct commit *c, uint64_t now_ms)
{
	if (c->purge_pending && reclaim_idle(&c->reclaim))
		purge_redundant(c);
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
	commit_snapshot_if_due(c, now_ms);
}

/* Starts a snapshot when enough has been logged since the last one and none
 * is being written. Called on the timer and after every committed batch, so
 * a busy server snapshots on time. */
void commit_snapshot_request(struct commit *c, uint64_t min_index)
{
	if (min_index > c->snapshot_wanted_index)
		c->snapshot_wanted_index = min_index;
	commit_snapshot_if_due(c, loop_now_ms());
}

void commit_snapshot_if_due(struct commit *c, uint64_t now_ms)
{
	if (c->snapshot_pid || !c->raft_ready || c->failed || c->apply_paused)
		return;
	raft_index applied = c->applied_index;
	/* At least snapshot_entries, and at least half the tree: writing a
	 * snapshot costs a pass over every node (the child's CPU and disk, and a
	 * fork that copies page tables), so a big tree is not rewritten every
	 * few hundred milliseconds under load; at most two nodes written per
	 * txn, and a restart replays at most half a tree's worth of log. */
	uint64_t entries = c->snapshot_entries;
	if (entries && c->state->tree.nodes.count / 2 > entries)
		entries = c->state->tree.nodes.count / 2;
	bool due = (entries && applied - c->snapshot_index >= entries) ||
		   (c->snapshot_log_bytes &&
		    c->wal.bytes_written - c->snapshot_bytes_mark >= c->snapshot_log_bytes);
	bool wanted = c->snapshot_wanted_index && applied >= c->snapshot_wanted_index;
	if (wanted)
		c->snapshot_wanted_index = 0;
	else if (!due || applied <= c->snapshot_index || now_ms < c->snapshot_retry_ms)
		return;
	c->snapshot_bytes_mark = c->wal.bytes_written;
	/* The state is exactly the commit index's: every step applies what it
	 * commits (handle_update), and txns still on their way (c->head) touch
	 * nothing before they commit. So a server that never goes idle still
	 * takes its snapshots. */
	struct snapshot_meta *m = &c->snapshot_writing;
	if (commit_snapshot_meta(c, m) < 0)
		return;
	m->keep_cached = c->snapshot_for_stop;
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

/* The entries since the last snapshot at which a stop writes one first:
 * replaying fewer at the next start costs less than the snapshot. */
#define STOP_SNAPSHOT_ENTRIES 10000

bool commit_snapshot_before_stop(struct commit *c)
{
	if (c->snapshot_pid) {
		/* The process would wait for it at exit anyway: serve meanwhile. */
		log_info("a snapshot is being written: stopping once it is");
		return true;
	}
	if (!c->raft_ready || c->failed || c->apply_paused)
		return false;
	if (c->applied_index <= c->snapshot_index ||
	    c->applied_index - c->snapshot_index < STOP_SNAPSHOT_ENTRIES)
		return false;
	uint64_t since = c->applied_index - c->snapshot_index;
	c->snapshot_for_stop = true;	/* the next start reads it: kept in the page cache */
	commit_snapshot_request(c, c->applied_index);
	if (!commit_snapshot_busy(c))
		return false;
	log_info("%llu entries since the last snapshot: writing one before stopping, so the next "
		 "start replays few (clients are served meanwhile)", (unsigned long long)since);
	return true;
}

bool commit_snapshot_busy(struct commit *c)
{
	if (c->snapshot_pid)
		return true;
	/* One wanted but not started: it starts now, or it cannot (then
	 * nothing is being written). */
	if (c->snapshot_wanted_index)
		commit_snapshot_if_due(c, loop_now_ms());
	return c->snapshot_pid != 0;
}

void commit_on_snapshot_exit(struct loop_op *op, int res, uint32_t flags)
{
	struct commit *c = container_of(op, struct commit, snapshot_exit_op);
	(void)res;
	(void)flags;
	close(c->snapshot_pidfd);
	c->snapshot_pidfd = -1;
	if (c->raft_ready && !c->failed)
		commit_snapshot_check(c, loop_now_ms());
}

int commit_rebuild(struct commit *c, const char *path, uint64_t index)
{
	char why[512];
	if (!c->apply_paused || index < c->applied_index)
		return -ESTALE;
	if (c->reset_state && c->reset_state(c->ctx) < 0)
		return -ENOMEM;
	struct snapshot_meta snap;
	int r = snapshot_load_file(path, &c->meta.identity, c->state, &snap, why, sizeof(why));
	if (r == 0 && snap.index != index)
		r = -EBADMSG;
	if (r < 0) {
		log_error("the leader's snapshot at index %llu does not load: %s",
			  (unsigned long long)index, r == -EBADMSG ? "another index" : why);
		return r;
	}
	free(snap.conf);
	c->rebuilt_index = index;
	c->applied_index = index;
	c->apply_paused = false;
	c->rebuilds++;
	log_notice("rebuilt the state from the leader's snapshot at index %llu (%zu nodes, "
		   "%zu sessions)", (unsigned long long)index, c->state->tree.nodes.count,
		   c->state->sessions.by_id.count);
	commit_apply_committed(c);
	commit_snapshot_request(c, c->applied_index);
	return 0;
}

/* RAFT_UPDATE_SNAPSHOT: a leader's snapshot, received whole at path,
 * becomes this server's newest snapshot and its state. */
int commit_install_snapshot(struct commit *c, const struct raft_snapshot_metadata *meta,
			    const char *from)
{
	char to[4200], why[512];
	snapshot_path(c->data_dir, meta->index, to, sizeof(to));
	if (rename(from, to) < 0)
		return -errno;
	int dfd = open(to, O_RDONLY | O_CLOEXEC);
	if (dfd >= 0) {
		char dir[4200];
		snprintf(dir, sizeof(dir), "%s/snap", c->data_dir);
		close(dfd);
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	/* Everything this server had after its old snapshot is superseded. */
	struct list_node *n;
	while ((n = list_pop_front(&c->queue))) {
		c->txns_truncated++;
		c->on_abandoned(c->ctx, list_entry(n, struct txn, commit_node), ECONNRESET);
	}
	if (c->reset_state && c->reset_state(c->ctx) < 0)
		return -ENOMEM;
	struct snapshot_meta snap;
	int r = snapshot_load_newest(c->data_dir, &c->meta.identity, c->state, &snap, why,
				     sizeof(why), NULL);
	if (r < 0 || snap.index != meta->index) {
		log_error("the leader's snapshot at index %llu does not load: %s",
			  (unsigned long long)meta->index, r < 0 ? why : "another one is newer");
		if (r == 0)
			free(snap.conf);
		return r < 0 ? r : -EBADMSG;
	}
	free(c->conf);
	c->conf = snap.conf;
	c->conf_len = snap.conf_len;
	c->conf_index = snap.conf_index;
	c->conf_fired_index = snap.conf_index;
	c->snapshot_index = snap.index;
	c->term_run_count = 0;
	commit_note_term(c, snap.index, snap.term);
	entry_cache_truncate(&c->entries, 0);
	wal_skip_to(&c->wal, snap.index + 1, snap.term);
	c->last_zxid = (int64_t)snap.index;
	c->applied_index = snap.index;
	c->installed = *meta;
	c->installed_pending = true;
	if (c->apply_paused) {
		/* A diverged state (digest_check) replaced by raft's own transfer
		 * of the leader's snapshot: it is the leader's now. */
		c->apply_paused = false;
		c->rebuilt_index = snap.index;
		c->rebuilds++;
	}
	log_notice("installed the leader's snapshot at index %llu (%zu nodes, %zu sessions)",
		   (unsigned long long)snap.index, c->state->tree.nodes.count,
		   c->state->sessions.by_id.count);
	return 0;
}
