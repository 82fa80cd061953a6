/* commit_open: starting the commit step: a new data directory bootstrapped
 * (a one-server cluster, an ensemble from its member list, or a server
 * that waits to be added), the newest snapshot loaded, the log read back
 * and its txns queued, raft started from what was found. See commit.h. */
#include "commit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "log.h"
#include "raft_conf.h"
#include "sockaddr.h"
#include "txn_codec.h"

#define ENSEMBLE_MAX_INFLIGHT_ENTRIES 4096

static void snapshot_skipped(const char *file, const char *reason)
{
	log_warning("%s: %s; trying an older snapshot", file, reason);
}

struct recovery {
	struct commit *c;
	void (*progress)(void *ctx, uint64_t entries, uint64_t index);
	uint64_t last_progress_ms;
	struct raft_entry *entries;
	unsigned n, cap;
	char *why;
	size_t why_size;
};

static int recover_entry(void *ctx, uint64_t index, uint64_t term, uint8_t type,
			 const uint8_t *data, uint32_t len)
{
	struct recovery *rv = ctx;
	struct commit *c = rv->c;
	if (index <= c->snapshot_index)
		return 0;	/* in the snapshot already */
	if (rv->n == 0 && index != c->snapshot_index + 1) {
		snprintf(rv->why, rv->why_size, "the log resumes at index %llu but the snapshot ends at %llu",
			 (unsigned long long)index, (unsigned long long)c->snapshot_index);
		return -EBADMSG;
	}
	int r0 = commit_note_term(c, index, term);
	if (r0 == 0 && type == RAFT_CHANGE)
		r0 = commit_note_configuration(c, index, data, len);
	if (r0 == 0)
		r0 = entry_cache_append(&c->entries, index, term, type, data, len);
	entry_cache_bound(&c->entries, index);	/* the log's: durable */
	if (r0 < 0)
		return r0;
	if (rv->n == rv->cap) {
		unsigned cap = rv->cap ? rv->cap * 2 : 1024;
		struct raft_entry *e = realloc(rv->entries, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		rv->entries = e;
		rv->cap = cap;
	}
	struct raft_entry *e = &rv->entries[rv->n];
	memset(e, 0, sizeof(*e));
	e->term = term;
	e->type = type;
	if (type == RAFT_CHANGE) {
		/* raft decodes configurations from the start entries. */
		if (!raft_conf_valid(data, len))
			return -EBADMSG;
		e->buf.base = raft_malloc(len ? len : 1);
		if (!e->buf.base)
			return -ENOMEM;
		memcpy(e->buf.base, data, len);
		e->buf.len = len;
		e->batch = e->buf.base;
	} else if (type == RAFT_COMMAND) {
		struct txn *t;
		int r = txn_decode(data, len, &t);
		if (r < 0)
			return r;
		t->zxid = (int64_t)index;
		commit_queue_push(rv->c, t);
		rv->c->recovered_txns++;
	}
	rv->n++;
	if (rv->progress && (rv->n & 0xffff) == 0) {
		uint64_t now = loop_now_ms();
		if (now - rv->last_progress_ms >= 1000) {
			rv->last_progress_ms = now;
			rv->progress(rv->c->ctx, rv->n, index);
		}
	}
	return 0;
}

/* A member's address in raft's configuration: "PEER;CLIENT", both
 * "host:port" (reconfig adds ";ELECTIONPORT", membership.c). Raft only
 * stores it; the peer part is where the others connect, the client part
 * goes into /zookeeper/config. */
static void member_address(const struct listen_address *peer, const struct listen_address *client,
			   char *out, size_t size)
{
	char p[96], cl[96];
	sockaddr_format(peer->host, peer->port, p, sizeof(p));
	sockaddr_format(client->host, client->port, cl, sizeof(cl));
	snprintf(out, size, "%s;%s", p, cl);
}

/* The initial configuration: this one server, or the ensemble's members. */
static int initial_configuration(const struct commit_options *o, struct raft_buffer *buf)
{
	struct raft_configuration conf;
	int r = 0;
	raft_configuration_init(&conf);
	if (!o->ensemble) {
		r = raft_configuration_add(&conf, o->server_id, SINGLE_SERVER_ADDRESS, RAFT_VOTER);
	} else {
		for (size_t i = 0; i < o->ensemble->member_count && r == 0; i++) {
			const struct ensemble_member *m = &o->ensemble->members[i];
			char address[200];
			member_address(&m->peer, &m->client, address, sizeof(address));
			r = raft_configuration_add(&conf, m->id, address,
						   m->observer ? RAFT_STANDBY : RAFT_VOTER);
		}
	}
	if (r == 0)
		r = raft_configuration_encode(&conf, buf);
	raft_configuration_close(&conf);
	return r;
}

unsigned commit_election_seed(uint32_t server_id)
{
	unsigned seed;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
		return seed;
	/* No entropy yet (early boot): the clock's nanoseconds differ between
	 * members started together far more than their pids do. */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned)ts.tv_nsec ^ (unsigned)ts.tv_sec * 2654435761u ^
	       (unsigned)getpid() * 40503u ^ server_id;
}

/* The cluster id a new data directory gets: an ensemble's from its name
 * (every member derives the same), a standalone server's at random. */
static int new_cluster_id(const struct ensemble_config *ensemble, uint8_t id[WAL_CLUSTER_ID_BYTES])
{
	if (ensemble) {
		uint8_t digest[SHA256_DIGEST_LENGTH];
		SHA256((const uint8_t *)ensemble->cluster_name, strlen(ensemble->cluster_name), digest);
		memcpy(id, digest, WAL_CLUSTER_ID_BYTES);
		return 0;
	}
	return getrandom(id, WAL_CLUSTER_ID_BYTES, 0) == WAL_CLUSTER_ID_BYTES ? 0 : -EIO;
}

int commit_restore_identity(const struct ensemble_config *ensemble, uint32_t server_id,
			    const struct listen_address *client_listen, struct wal_identity *ret_id,
			    uint8_t **ret_conf, uint32_t *ret_conf_len)
{
	struct raft_configuration conf;
	struct raft_buffer buf;
	char address[200] = SINGLE_SERVER_ADDRESS;
	int r = new_cluster_id(ensemble, ret_id->cluster_id);
	if (r < 0)
		return r;
	ret_id->server_id = server_id;
	if (ensemble)
		member_address(&ensemble->peer_listen, client_listen, address, sizeof(address));
	raft_configuration_init(&conf);
	r = raft_configuration_add(&conf, server_id, address, RAFT_VOTER);
	if (r == 0)
		r = raft_configuration_encode(&conf, &buf);
	raft_configuration_close(&conf);
	if (r != 0)
		return -ENOMEM;
	*ret_conf = malloc(buf.len ? buf.len : 1);
	if (*ret_conf)
		memcpy(*ret_conf, buf.base, buf.len);
	*ret_conf_len = (uint32_t)buf.len;
	raft_free(buf.base);
	return *ret_conf ? 0 : -ENOMEM;
}

static int bootstrap(struct commit *c, const struct commit_options *o, char *why, size_t why_size)
{
	struct raft_buffer buf;
	int r;

	memset(&c->meta, 0, sizeof(c->meta));
	r = new_cluster_id(o->ensemble, c->meta.identity.cluster_id);
	if (r < 0)
		return r;
	c->meta.identity.server_id = o->server_id;
	if (o->ensemble && !ensemble_config_self(o->ensemble)) {
		/* A server that joins later starts empty: the leader sends it
		 * the log (or a snapshot) once a member adds it. */
		c->meta.term = 0;
		r = datadir_meta_write(c->data_dir, &c->meta);
		if (r < 0)
			snprintf(why, why_size, "cannot set up %s: %s", c->data_dir, strerror(-r));
		return r;
	}
	c->meta.term = 1;
	r = initial_configuration(o, &buf);
	if (r != 0) {
		snprintf(why, why_size, "cannot build the initial configuration: %s", raft_strerror(r));
		return -ENOMEM;
	}
	r = wal_bootstrap(c->data_dir, &c->meta.identity, o->segment_bytes, 1, RAFT_CHANGE, buf.base,
			  (uint32_t)buf.len);
	raft_free(buf.base);
	if (r == 0)
		r = datadir_meta_write(c->data_dir, &c->meta);
	if (r < 0)
		snprintf(why, why_size, "cannot bootstrap %s: %s", c->data_dir, strerror(-r));
	return r;
}

/* Sets c up from the options, before anything is read from disk. */
static int init_commit(struct commit *c, const struct commit_options *o)
{
	memset(c, 0, sizeof(*c));
	c->lock_fd = -1;
	c->loop = o->loop;
	c->snapshot_pidfd = -1;
	c->snapshot_exit_op.complete = commit_on_snapshot_exit;
	reclaim_init(&c->reclaim, c->loop);
	c->on_committed = o->on_committed;
	c->on_abandoned = o->on_abandoned;
	c->reset_state = o->reset_state;
	c->on_configuration = o->on_configuration;
	c->on_catch_up_ended = o->on_catch_up_ended;
	c->ctx = o->ctx;
	c->proposal_last_bytes = c->proposal_min_bytes = c->proposal_max_bytes = -1;
	c->self = o->server_id;
	c->peers = &commit_alone;
	list_init(&c->queue);
	/* An ensemble's leader sends entries from memory (the entry cache). */
	entry_cache_init(&c->entries, o->ensemble != NULL);
	c->entries.budget = o->ensemble ? o->ensemble->entry_cache_bytes : 0;
	c->state = o->state;
	c->snapshot_entries = o->snapshot_entries;
	c->snapshot_log_bytes = o->snapshot_log_bytes;
	c->keep_snapshots = o->keep_snapshots ? o->keep_snapshots : 1;
	c->archive_keep_snapshots = o->archive_keep_snapshots ? o->archive_keep_snapshots : 1;
	c->data_dir = strdup(o->data_dir);
	if (!c->data_dir)
		return -ENOMEM;
	if (o->archive_dir && !(c->archive_dir = strdup(o->archive_dir)))
		return -ENOMEM;
	return 0;
}

/* A data directory without raft.meta: bootstraps it, unless the log or a
 * snapshot is there (then raft.meta was lost, or a restore or import into
 * the directory itself stopped between its snapshot and raft.meta, which
 * it writes last). Starting over wrote a new cluster's raft.meta and log
 * into it and then stopped on the snapshot as another cluster's (a
 * standalone server's identity is random), or took the snapshot with a log
 * that does not lead to it (an ensemble's identity comes from its name). */
static int bootstrap_new(struct commit *c, const struct commit_options *o, char *why,
			 size_t why_size)
{
	char walseg[4200], snap[4200];
	uint64_t snap_index;
	snprintf(walseg, sizeof(walseg), "%s/wal/0000000000000001.seg", o->data_dir);
	if (access(walseg, F_OK) == 0) {
		snprintf(why, why_size, "%s/raft.meta is missing but the log exists: "
			 "the directory is incomplete", o->data_dir);
		return -EBADMSG;
	}
	int r = snapshot_find(o->data_dir, UINT64_MAX, snap, sizeof(snap), &snap_index);
	if (r == 0) {
		snprintf(why, why_size, "%s/raft.meta is missing but a snapshot exists (%.2000s): "
			 "the directory is incomplete (a restore or import-zookeeper into it that "
			 "did not finish?); restore or import again into an empty directory",
			 o->data_dir, snap);
		return -EBADMSG;
	}
	if (r != -ENOENT) {
		snprintf(why, why_size, "%s/snap: %s", o->data_dir, strerror(-r));
		return r;
	}
	if (o->ensemble && !ensemble_config_self(o->ensemble))
		log_notice("data directory %s is new, and server %u is not among the members: "
			   "waiting to be added to the ensemble", o->data_dir, o->ensemble->id);
	else if (o->ensemble)
		log_notice("data directory %s is new: bootstrapping the ensemble of %zu servers "
			   "\"%s\"", o->data_dir, o->ensemble->member_count, o->ensemble->cluster_name);
	else
		log_notice("data directory %s is new: bootstrapping a one-server cluster",
			   o->data_dir);
	return bootstrap(c, o, why, why_size);
}

/* Locks the data directory and reads its raft.meta (bootstrapping a new
 * one), which must be this server's. */
static int open_data_dir(struct commit *c, const struct commit_options *o, char *why,
			 size_t why_size)
{
	int r = datadir_lock(o->data_dir, why, why_size);
	if (r < 0)
		return r;
	c->lock_fd = r;

	r = datadir_meta_read(o->data_dir, &c->meta, why, why_size);
	if (r == -ENOENT)
		r = bootstrap_new(c, o, why, why_size);
	if (r < 0)
		return r;
	if (c->meta.identity.server_id != o->server_id) {
		snprintf(why, why_size, "data directory %s belongs to server %llu, this is server %llu",
			 o->data_dir, (unsigned long long)c->meta.identity.server_id,
			 (unsigned long long)o->server_id);
		return -EXDEV;
	}
	return 0;
}

/* A crash while a snapshot was being written leaves its temp file, up to a
 * snapshot's size: nothing will ever finish it. */
static int remove_unfinished_snapshots(const struct commit_options *o, char *why,
				       size_t why_size)
{
	unsigned removed;
	int r = snapshot_remove_temp_files(o->data_dir, &removed);
	if (r < 0) {
		snprintf(why, why_size, "%s/snap: cannot remove unfinished snapshots: %s", o->data_dir,
			 strerror(-r));
		return r;
	}
	if (removed)
		log_notice("%s/snap: removed %u unfinished snapshot file%s (a crash while one was "
			   "being written)", o->data_dir, removed, removed == 1 ? "" : "s");
	/* And the files a purge had renamed, not yet unlinked (reclaim.h). */
	const char *dirs[] = { o->data_dir, o->archive_dir };
	for (size_t k = 0; k < 2 && dirs[k]; k++) {
		for (int sub = 0; sub < 2; sub++) {
			char dir[4200];
			snprintf(dir, sizeof(dir), "%s/%s", dirs[k], sub ? "wal" : "snap");
			r = reclaim_remove_leftovers(dir);
			if (r > 0)
				log_notice("%s: removed %d purged file%s a crash left", dir, r,
					   r == 1 ? "" : "s");
			else if (r < 0)
				log_warning("%s: cannot remove purged files: %s", dir, strerror(-r));
		}
	}
	return 0;
}

/* Loads the newest readable snapshot into c->state, if there is one. */
static int load_snapshot(struct commit *c, const struct commit_options *o, uint64_t started,
			 char *why, size_t why_size)
{
	struct snapshot_meta snap;
	int r = snapshot_load_newest(o->data_dir, &c->meta.identity, c->state, &snap, why, why_size,
				     snapshot_skipped);
	if (r == 0) {
		c->snapshot_index = snap.index;
		c->conf = snap.conf;
		c->conf_len = snap.conf_len;
		c->conf_index = snap.conf_index;
		r = commit_note_term(c, snap.index, snap.term);
		log_info("loaded the snapshot at index %llu (%zu nodes, %zu sessions) in %llu ms",
			 (unsigned long long)snap.index, c->state->tree.nodes.count,
			 c->state->sessions.by_id.count, (unsigned long long)(loop_now_ms() - started));
	} else if (r == -ENOENT) {
		r = 0;
	}
	return r;
}

/* Reads the log after the snapshot: its entries collect in rv (raft's
 * start entries), its txns are queued. */
static int read_log(struct commit *c, const struct commit_options *o, struct recovery *rv,
		    struct wal_recovery *rec, uint64_t started, char *why, size_t why_size)
{
	int r = wal_recover(o->data_dir, &c->meta.identity, c->snapshot_index, recover_entry, rv,
			    rec, why, why_size);
	if (r < 0)
		return r;
	if (rec->torn_tail_cut)
		log_warning("%s: the log ended in a torn write at offset %llu (a crash mid-write); "
			    "cut there", rec->torn_file, (unsigned long long)rec->torn_offset);
	log_info("read the log: %llu entries, index %llu..%llu, %llu txns, in %llu ms",
		 (unsigned long long)rec->records, (unsigned long long)rec->first_index,
		 (unsigned long long)rec->last_index, (unsigned long long)c->recovered_txns,
		 (unsigned long long)(loop_now_ms() - started));
	return 0;
}

/* Opens the log for appending after what was read back. */
static int open_log(struct commit *c, const struct commit_options *o,
		    const struct wal_recovery *rec, char *why, size_t why_size)
{
	int r = wal_open(&c->wal, o->data_dir, &c->meta.identity, rec, o->segment_bytes, o->loop,
			 why, why_size);
	if (r < 0)
		return r;
	c->wal_open = true;
	/* From here a start without a segment is a log gone missing. Not made
	 * (a full disk on the first start of this version): the server runs,
	 * unguarded until a later start makes it. */
	if ((r = datadir_mark_log_started(o->data_dir)) < 0)
		log_warning("%s/log.started: %s: a later start with no log segment will not be "
			    "refused", o->data_dir, strerror(-r));
	c->wal.archive_dir = c->archive_dir;
	c->wal.on_durable = commit_on_durable;
	c->wal.on_failed = commit_on_wal_failed;
	c->wal.ctx = c;
#ifdef CORRAL_FAULT_INJECTION
	c->wal.fault_fsync_countdown = o->fault_fsync_countdown;
#endif
	c->last_zxid = (int64_t)rec->last_index;
	if (rec->last_index < c->snapshot_index) {
		/* A leader's snapshot came after the last entry this log holds. */
		wal_skip_to(&c->wal, c->snapshot_index + 1, commit_term_of(c, c->snapshot_index));
		c->last_zxid = (int64_t)c->snapshot_index;
	}
	return 0;
}

/* Creates the raft instance, with an ensemble's timeouts. */
static int init_raft(struct commit *c, const struct commit_options *o, char *why,
		     size_t why_size)
{
	char self_address[200] = SINGLE_SERVER_ADDRESS;
	if (o->ensemble)
		member_address(&o->ensemble->peer_listen, o->client_listen, self_address,
			       sizeof(self_address));
	int r = raft_init(&c->raft, NULL, NULL, o->server_id, self_address);
	if (r != 0) {
		snprintf(why, why_size, "raft_init: %s", raft_strerror(r));
		return -ENOMEM;
	}
	c->raft_ready = true;
	/* libraft formats a trace message (snprintf) at every step whenever a
	 * tracer is set, even one that prints nothing: 15% of corrald's
	 * instructions under a write load (callgrind). NULL skips the
	 * formatting; LIBRAFT_TRACE in the environment keeps libraft's own
	 * tracer for debugging. */
	if (!getenv("LIBRAFT_TRACE"))
		c->raft.tracer = NULL;
	raft_seed(&c->raft, commit_election_seed(o->server_id));
	if (o->ensemble) {
		raft_set_election_timeout(&c->raft, o->ensemble->election_timeout_ms);
		raft_set_heartbeat_timeout(&c->raft, o->ensemble->election_timeout_ms / 10);
		raft_set_install_snapshot_timeout(&c->raft, COMMIT_SNAPSHOT_INSTALL_MS);
		raft_set_max_catch_up_round_duration(&c->raft, COMMIT_CATCH_UP_UNREACHABLE_MS);
		raft_set_pre_vote(&c->raft, true);
		/* libraft lets 32 entries be unacknowledged by a follower at
		 * once: with a follower's write+fdatasync per round, that capped
		 * an ensemble's writes at 32 per round trip (setData on the leader:
		 * every follower batch was exactly 32 entries). The log is
		 * batched by the WAL; the peer queue is bounded in bytes. */
		raft_set_max_inflight_entries(&c->raft, ENSEMBLE_MAX_INFLIGHT_ENTRIES);
		c->snapshot_trailing = c->snapshot_entries < 8192 ? (unsigned)c->snapshot_entries : 8192;
	}
	return 0;
}

/* Frees the start entries read from the log (their configurations' copies
 * and the array). */
static void free_start_entries(struct recovery *rv)
{
	for (unsigned i = 0; i < rv->n; i++)
		if (rv->entries[i].batch)
			raft_free(rv->entries[i].batch);
	free(rv->entries);
	rv->entries = NULL;
}

/* Starts raft from the snapshot and the log's entries: the update it
 * answers with goes to *u. The start entries are gone when this returns,
 * whatever it returns. */
static int start_raft(struct commit *c, struct recovery *rv, struct raft_update *u, char *why,
		      size_t why_size)
{
	struct raft_event e = { .type = RAFT_START };
	struct raft_snapshot_metadata meta;
	e.start.term = c->meta.term;
	e.start.voted_for = c->meta.voted_for;
	e.start.metadata = NULL;
	e.start.start_index = 1;
	if (c->snapshot_index) {
		/* raft takes the configuration it is given: decode a copy. */
		memset(&meta, 0, sizeof(meta));
		if (raft_conf_decode(c->conf, c->conf_len, &meta.configuration) < 0) {
			snprintf(why, why_size, "the snapshot at index %llu holds an unreadable configuration",
				 (unsigned long long)c->snapshot_index);
			free_start_entries(rv);
			return -EBADMSG;
		}
		meta.index = c->snapshot_index;
		meta.term = commit_term_of(c, c->snapshot_index);
		meta.configuration_index = c->conf_index;
		e.start.metadata = &meta;
		e.start.start_index = c->snapshot_index + 1;
	}
	e.start.entries = rv->entries;
	e.start.n_entries = rv->n;
	/* Replaying the log applies every txn in it: a single voter's log is
	 * all committed, which raft confirms by moving the commit index. */
	memset(u, 0, sizeof(*u));
	e.time = loop_now_ms();
	int r = raft_step(&c->raft, &e, u);
	if (r != 0) {
		/* raft frees the start entries when it fails. */
		free(rv->entries);
		rv->entries = NULL;
		snprintf(why, why_size, "raft could not start from the log: %s", raft_errmsg(&c->raft));
		return -EIO;
	}
	free_start_entries(rv);
	return 0;
}

int commit_open(struct commit *c, const struct commit_options *o, char *why, size_t why_size)
{
	struct recovery rv = { .c = c, .why = why, .why_size = why_size, .progress = o->progress,
			       .last_progress_ms = loop_now_ms() };
	struct wal_recovery rec;
	struct raft_update u;
	int r;

	r = init_commit(c, o);
	if (r == 0)
		r = open_data_dir(c, o, why, why_size);
	if (r == 0)
		r = datadir_log_check(o->data_dir, why, why_size);
	if (r == 0)
		r = remove_unfinished_snapshots(o, why, why_size);
	if (r < 0)
		return r;

	uint64_t started = loop_now_ms();
	r = load_snapshot(c, o, started, why, why_size);
	if (r < 0)
		return r;
	r = read_log(c, o, &rv, &rec, started, why, why_size);
	if (r == 0)
		r = open_log(c, o, &rec, why, why_size);
	if (r == 0)
		r = init_raft(c, o, why, why_size);
	if (r < 0) {
		free_start_entries(&rv);
		return r;
	}
	r = start_raft(c, &rv, &u, why, why_size);
	if (r < 0)
		return r;
	r = commit_handle_update(c, &u);
	if (r < 0) {
		snprintf(why, why_size, "raft could not start from the log: %s", raft_errmsg(&c->raft));
		return r;
	}
	if (o->ensemble)
		return 0;	/* what is committed of the log, the leader will say */
	if (!list_empty(&c->queue)) {
		snprintf(why, why_size, "raft did not commit the log it started from (commit index %llu, "
			 "log up to %llu)", (unsigned long long)raft_commit_index(&c->raft),
			 (unsigned long long)rec.last_index);
		return -EIO;
	}
	return 0;
}
