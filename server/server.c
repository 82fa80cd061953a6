/* server: see server.h. */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "forward.h"
#include "listener.h"
#include "membership.h"
#include "log.h"
#include "request.h"
#include "session.h"

#include <systemd/sd-daemon.h>

#define RING_ENTRIES 4096
#define SHUTDOWN_GRACE_MS 5000

static void arm_timer(struct server *srv);

void server_conn_dirty(struct server *srv, struct conn *c)
{
	if (c->dirty)
		return;
	c->dirty = true;
	c->dirty_next = srv->dirty;
	srv->dirty = c;
}

int server_submit(struct server *srv, struct txn *t)
{
	return commit_submit(&srv->commit, t);
}

static void deliver_event(void *ctx, struct watch_owner *o, int event_type, const char *path,
			  size_t len, const void *node)
{
	struct server *srv = ctx;
	struct conn *c = container_of(o, struct conn, watches);
	const struct znode *n = node;
	/* An event tells of the node: it needs READ on it, as the read would. */
	if (c->state != CONN_CLOSING && auth_allowed(&c->auth, n->acl, ZK_PERM_READ))
		request_send_event(c, srv->applying_zxid, event_type, path, len);
}

/* txn_apply() tells us of every change; watches turn some into events. They
 * are queued on their connections now, so they leave before the reply of any
 * later request that observes the change. */
static void on_node_event(void *ctx, int event_type, const struct znode *node, const char *path,
			  size_t len)
{
	struct server *srv = ctx;
	watch_trigger(&srv->watches, event_type, path, len, node, deliver_event, srv);
}

/* The commit step hands us each committed txn, in zxid order. */
static void on_committed(void *ctx, struct txn *t)
{
	struct server *srv = ctx;
	struct txn_result *results = calloc(t->op_count, sizeof(*results));

	if (!t->request && t->origin && t->origin == srv->commit.self)
		forward_match(srv, t);
	if (t->request_op == ZK_OP_CLOSE_SESSION) {
		/* The session is about to go: its connection must not point at it.
		 * Unless its own client asked (and waits for the answer), the
		 * leader expired it: the connection goes too. */
		struct session *s = session_lookup(&srv->state.sessions, t->session_id);
		if (s && s->conn && !s->closing && s->conn->state != CONN_CLOSING)
			conn_close(s->conn, LOG_DEBUG, "its session expired (the leader ended it)");
		if (s && s->conn)
			s->conn->session = NULL;
		if (s)
			s->conn = NULL;
	}
	srv->state.local_now_ms = srv->now_ms;
	srv->applying_zxid = t->zxid;
	int r = results ? txn_apply(&srv->state, t, results) : -ENOMEM;
	if (r < 0) {
		/* The state may now differ from the log: serving on would be wrong. */
		log_full(LOG_CRIT, &(struct log_fields){ .zxid = t->zxid },
			 "cannot apply txn 0x%llx: %s; stopping", (unsigned long long)t->zxid,
			 strerror(-r));
		srv->exit_status = EXIT_FAILURE;
		server_request_stop(srv);
		free(results);
		if (t->request)
			t->request->txn = NULL;
		txn_free(t);
		return;
	}
	prep_retire(&srv->prep, t->prep_seq);
	/* debug, as "created" is: at info, session churn would flood the journal */
	if (t->request_op == ZK_OP_CLOSE_SESSION && !srv->recovering)
		log_event(LOG_DEBUG, { .message_id = LOG_MSGID_SESSION_CLOSED, .session_id = t->session_id,
				      .zxid = t->zxid },
			  "session 0x%llx ended", (unsigned long long)t->session_id);
	request_txn_applied(srv, t, results);
	request_barriers_passed(srv);
}

/* The log failed before this txn was durable: it will never apply. */
static void on_abandoned(void *ctx, struct txn *t, int err)
{
	struct server *srv = ctx;
	prep_retire(&srv->prep, t->prep_seq);
	if (t->request_op == ZK_OP_CLOSE_SESSION) {
		struct session *s = session_lookup(&srv->state.sessions, t->session_id);
		if (s) {
			s->closing = false;	/* expiry tries again */
			session_requeue(&srv->state.sessions, s);
		}
	}
	request_txn_abandoned(srv, t, err);
	request_barriers_abandoned(srv, err);
}

/* Connections with a write in flight, prepped here while this server led:
 * it no longer does, so whether those commit is the next leader's to say;
 * their clients see CONNECTIONLOSS (outcome unknown), as ZooKeeper's do. */
static void close_in_flight(struct server *srv, const char *why)
{
	for (struct conn *c = srv->conns; c; c = c->next) {
		if (c->state == CONN_CLOSING)
			continue;
		for (struct request *rq = c->queue_head; rq; rq = rq->next)
			if (rq->state == REQUEST_IN_FLIGHT) {
				conn_close(c, LOG_INFO, why);
				break;
			}
	}
}

/* A new leader gives every session a full timeout: the liveness its
 * predecessor knew did not come with the leadership. */
static void touch_all_sessions(struct server *srv)
{
	struct session_table *t = &srv->state.sessions;
	session_for_each(t, s)
		session_touch(s, srv->now_ms);
}

const char *server_mode(struct server *srv)
{
	struct commit *c = &srv->commit;
	if (!srv->cfg->in_ensemble)
		return "standalone";
	if (commit_state(c) == RAFT_LEADER)
		return "leader";
	if (!commit_leader(c))
		return server_read_only(srv) ? "read-only" : "looking";
	return commit_is_observer(c) ? "observer" : "follower";
}

bool server_read_only(struct server *srv)
{
	return srv->cfg->in_ensemble && srv->cfg->read_only && !commit_leader(&srv->commit);
}

/* Every client connection (not one still before its handshake). */
static void close_clients(struct server *srv, const char *why)
{
	for (struct conn *k = srv->conns; k; k = k->next)
		if (k->state == CONN_CONNECTING || k->state == CONN_ESTABLISHED)
			conn_close(k, LOG_INFO, why);
}

static void on_role(void *ctx)
{
	struct server *srv = ctx;
	struct commit *c = &srv->commit;
	bool prepping = commit_can_prep(c);
	raft_id leader = commit_leader(c);
	enum raft_state role = commit_state(c);
	srv->now_ms = loop_now_ms();
	/* Cut off from the quorum: it heard no leader for an election timeout
	 * and stands for election, or it led and lost its majority. As a
	 * ZooKeeper server going LOOKING, it closes its clients' connections:
	 * they find a server of the quorum (and with ensemble.read_only,
	 * clients that can be read-only come back here read-only), instead of
	 * staying on a server whose state no longer moves and which cannot
	 * tell the leader they are alive. */
	if (srv->cfg->in_ensemble && ((role == RAFT_CANDIDATE && srv->role_seen != RAFT_CANDIDATE) ||
			    (srv->role_seen == RAFT_LEADER && role != RAFT_LEADER && !leader)))
		close_clients(srv, role == RAFT_CANDIDATE
			      ? "this server lost the leader and stands for election"
			      : "this server stopped leading and knows no leader");
	if (role == RAFT_LEADER && srv->role_seen != RAFT_LEADER)
		srv->leading_since_ms = srv->now_ms;
	srv->role_seen = role;
	if (commit_state(c) != RAFT_LEADER)
		forward_drop_held(srv);
	if (srv->prepping && !prepping) {
		prep_retire(&srv->prep, UINT64_MAX);
		membership_drop(srv);
		close_in_flight(srv, "this server stopped leading with a write of this connection "
			        "in flight; its outcome is unknown to the client");
	}
	if (leader && !srv->leader_seen) {
		/* A quorum again: read-only sessions end; clients find read-write. */
		for (struct conn *k = srv->conns; k; k = k->next)
			if (k->read_only && k->state != CONN_CLOSING)
				conn_close(k, LOG_INFO, "a leader is known again: its read-only "
					   "session ends");
	}
	if (leader != srv->leader_seen) {
		if (!list_empty(&srv->fwd))
			forward_fail_all(srv, "the leader changed with a write of this connection on "
					 "its way; its outcome is unknown to the client");
		srv->leader_seen = leader;
	}
	if (!srv->prepping && prepping) {
		touch_all_sessions(srv);
		srv->prepping = true;
		forward_release_held(srv);
	}
	srv->prepping = prepping;
	service_notify_status(srv);
}

static void on_configuration(void *ctx)
{
	membership_committed(ctx);
}

static void on_frame(void *ctx, const struct peer_frame *f)
{
	struct server *srv = ctx;
	srv->now_ms = loop_now_ms();
	forward_receive(srv, f);
}

static void on_peer_down(void *ctx, raft_id id)
{
	struct server *srv = ctx;
	if (id == commit_leader(&srv->commit) && !list_empty(&srv->fwd))
		forward_fail_all(srv, "the connection to the leader dropped with a write of this "
				 "connection on its way; its outcome is unknown to the client");
}

/* A leader's snapshot is about to replace the state: nothing may point into
 * the old one. Clients are closed (their view would jump); they reconnect. */
static int reset_state(void *ctx)
{
	struct server *srv = ctx;
	for (struct conn *c = srv->conns; c; c = c->next)
		if (c->state != CONN_CLOSING)
			conn_close(c, LOG_INFO, "this server is installing the leader's snapshot");
	forward_fail_all(srv, "this server is installing the leader's snapshot");
	prep_retire(&srv->prep, UINT64_MAX);
	struct state_listener listener = srv->state.listener;
	state_free(&srv->state);
	int r = state_init(&srv->state, (uint8_t)srv->cfg->ensemble.id, (uint64_t)loop_wall_ms());
	srv->state.listener = listener;
	srv->state.local_now_ms = loop_now_ms();
	return r;
}

static void on_recovery_progress(void *ctx, uint64_t entries, uint64_t index)
{
	service_notify_recovery(entries, index);
}

static void expire_sessions(struct server *srv)
{
	struct session *s;
	/* While the log takes no writes, a session cannot be closed: it waits
	 * (and its clients, who cannot write either, are told why by the log). */
	if (srv->commit.failed || srv->commit.refusing_for_space || !commit_can_prep(&srv->commit))
		return;		/* only the leader expires sessions */
	while ((s = session_next_expired(&srv->state.sessions, srv->now_ms))) {
		if (s->closing)
			continue;
		log_event(LOG_INFO, { .message_id = LOG_MSGID_SESSION_EXPIRED, .session_id = s->id },
			  "session 0x%llx expired after %u ms without a packet",
			  (unsigned long long)s->id, s->timeout_ms);
		if (s->conn)
			conn_close(s->conn, LOG_DEBUG, "its session expired");
		struct txn *t = NULL;
		if (commit_can_accept(&srv->commit, 4096) < 0 ||
		    prep_close_session(&srv->prep, s->id, loop_wall_ms(), &t) < 0) {
			session_requeue(&srv->state.sessions, s);
			break;
		}
		if (server_submit(srv, t) < 0) {
			/* not taken (leadership is moving): later, by whoever leads */
			txn_free(t);
			session_requeue(&srv->state.sessions, s);
			break;
		}
		s->closing = true;
	}
}

/* Containers whose last child went and TTL nodes left unchanged past their
 * ttl are deleted by the server, as ZooKeeper's ContainerManager does: a
 * deleteContainer txn each, at most container_max_per_minute a minute. */
static void reap_nodes(struct server *srv)
{
	const struct server_config *cfg = srv->cfg;
	struct tree *tree = &srv->state.tree;
	int64_t now = loop_wall_ms();
	uint64_t budget = (uint64_t)cfg->container_max_per_minute *
			  cfg->container_check_interval_ms / 60000u;
	if (budget == 0)
		budget = 1;
	if (tree->reapable_count == 0 || !commit_can_prep(&srv->commit))
		return;
	tree_for_each_node(tree, n) {
		if (budget == 0)
			return;
		if (n->owner >= 0 || n->num_children > 0)
			continue;
		bool container = n->owner == ZNODE_OWNER_CONTAINER;
		int64_t ttl = n->owner & ~ZNODE_OWNER_TTL_MASK;
		if (container ? n->child_creates == 0 : now - n->mtime <= ttl)
			continue;
		struct txn *t;
		int32_t err;
		if (commit_can_accept(&srv->commit, n->path_len + 4096) < 0)
			return;
		if (prep_delete_container(&srv->prep, NULL, n->path, n->path_len, now, &t, &err) < 0)
			return;
		if (err)
			continue;	/* already going, or changed meanwhile */
		if (server_submit(srv, t) < 0) {
			txn_free(t);
			return;
		}
		budget--;
	}
}

/* Once a minute, when there were writes: how well group commit batches. */
static void report_group_commit(struct server *srv)
{
	const struct wal *w = &srv->commit.wal;
	if (srv->now_ms < srv->next_report_ms)
		return;
	srv->next_report_ms = srv->now_ms + 60000;
	uint64_t syncs = w->batches - srv->reported_fsyncs;
	uint64_t entries = w->records_written - srv->reported_entries;
	srv->reported_fsyncs = w->batches;
	srv->reported_entries = w->records_written;
	if (syncs)
		log_info("log: %llu entries in %llu fdatasyncs in the last minute, %.1f per fdatasync",
			 (unsigned long long)entries, (unsigned long long)syncs,
			 (double)entries / (double)syncs);
}

static void on_timer(struct loop_op *op, int res, uint32_t flags)
{
	struct server *srv = (struct server *)((char *)op - offsetof(struct server, timer_op));
	srv->timer_armed = false;
	srv->now_ms = loop_now_ms();
	if (srv->stopping) {
		service_watchdog_tick(&srv->service, srv->now_ms);
		if (srv->now_ms >= srv->stop_deadline_ms) {
			log_warning("%u connections still sending at shutdown; closing them",
				    srv->conn_count);
			loop_stop(&srv->loop);
			return;
		}
		arm_timer(srv);
		return;
	}
	service_watchdog_tick(&srv->service, srv->now_ms);
	commit_tick(&srv->commit, srv->now_ms);
	expire_sessions(srv);
	forward_touch(srv);
	if (srv->now_ms >= srv->next_reap_ms) {
		reap_nodes(srv);
		srv->next_reap_ms = srv->now_ms + srv->cfg->container_check_interval_ms;
	}
	report_group_commit(srv);
	listeners_rearm(srv);
	arm_timer(srv);
}

static void arm_timer(struct server *srv)
{
	uint32_t period_ms = srv->cfg->tick_time_ms / 2;
	if (period_ms < 10)
		period_ms = 10;
	if (period_ms > 1000)
		period_ms = 1000;
	if (srv->service.watchdog_interval_ms && period_ms > srv->service.watchdog_interval_ms / 4)
		period_ms = (uint32_t)(srv->service.watchdog_interval_ms / 4) + 1;
	srv->timer_ts.tv_sec = period_ms / 1000;
	srv->timer_ts.tv_nsec = (long long)(period_ms % 1000) * 1000000;
	struct io_uring_sqe *sqe = loop_sqe(&srv->loop, &srv->timer_op);
	io_uring_prep_timeout(sqe, &srv->timer_ts, 0, 0);
	srv->timer_armed = true;
}

/* Once per loop turn, before waiting: commit what was prepped (which applies
 * it and queues replies), send what gathered, free closed connections. */
static void before_wait(void *ctx)
{
	struct server *srv = ctx;

	srv->now_ms = loop_now_ms();
	commit_flush(&srv->commit);
	while (srv->dirty) {
		struct conn *c = srv->dirty;
		srv->dirty = c->dirty_next;
		c->dirty = false;
		conn_flush(c);
	}
	for (struct conn *c = srv->conns, *next; c; c = next) {
		next = c->next;
		if (c->state == CONN_CLOSING)
			conn_reap(c);
	}
	/* A leader lets what it prepped commit; a follower cannot wait for
	 * that (its leader may be gone). */
	if (srv->stopping && (list_empty(&srv->commit.queue) || !srv->prepping) && !srv->conns &&
	    (!srv->cfg->in_ensemble || ensemble_close(&srv->ensemble)))
		loop_stop(&srv->loop);
}

int server_init(struct server *srv, struct server_config *cfg, char *why, size_t why_size)
{
	int r;

	memset(srv, 0, sizeof(*srv));
	list_init(&srv->fwd);
	srv->cfg = cfg;
	r = loop_init(&srv->loop, RING_ENTRIES, why, why_size);
	if (r < 0)
		return r;
	srv->loop_ready = true;
	srv->loop.before_wait = before_wait;
	srv->loop.ctx = srv;
	r = state_init(&srv->state, (uint8_t)cfg->ensemble.id, (uint64_t)loop_wall_ms());
	if (r == 0)
		r = prep_init(&srv->prep, &srv->state, (uint8_t)cfg->ensemble.id);
	if (r == 0)
		r = watch_table_init(&srv->watches);
	if (r < 0) {
		snprintf(why, why_size, "cannot set up the state: %s", strerror(-r));
		server_free(srv);
		return r;
	}
	srv->state.listener = (struct state_listener){ .node_event = on_node_event, .ctx = srv };
	struct commit_options co = {
		.data_dir = cfg->data_dir,
		.state = &srv->state,
		.snapshot_entries = cfg->snapshot_entries,
		.snapshot_log_bytes = cfg->snapshot_log_bytes,
		.keep_snapshots = cfg->keep_snapshots,
		.server_id = cfg->ensemble.id,
		.segment_bytes = cfg->segment_bytes,
		.loop = &srv->loop,
		.ensemble = cfg->in_ensemble ? &cfg->ensemble : NULL,
		.client_listen = cfg->listen_count ? &cfg->listen[0] : NULL,
		.on_committed = on_committed,
		.on_abandoned = on_abandoned,
		.reset_state = reset_state,
		.on_configuration = on_configuration,
		.progress = on_recovery_progress,
		.ctx = srv,
	};
#ifdef CORRAL_FAULT_INJECTION
	const char *fault = getenv("CORRAL_FAULT_FSYNC_FAIL_AT");
	co.fault_fsync_countdown = fault ? strtoull(fault, NULL, 10) : 0;
#endif
	srv->now_ms = loop_now_ms();
	srv->state.local_now_ms = srv->now_ms;
	srv->recovering = true;
	sd_notify(0, "STATUS=recovering: reading the log");
	r = commit_open(&srv->commit, &co, why, why_size);
	srv->recovering = false;
	if (r == 0 && cfg->in_ensemble) {
		struct ensemble_callbacks cb = {
			.on_role = on_role, .on_frame = on_frame, .on_peer_down = on_peer_down, .ctx = srv,
		};
		r = ensemble_open(&srv->ensemble, &srv->commit, &cfg->ensemble, &cb, why, why_size);
	}
	if (r < 0) {
		server_free(srv);
		return r;
	}
	srv->timer_op.complete = on_timer;
	srv->now_ms = srv->started_ms = loop_now_ms();
	srv->next_reap_ms = srv->now_ms + cfg->container_check_interval_ms;
	srv->prep.extended_types = cfg->extended_types;
	srv->prepping = commit_can_prep(&srv->commit);
	srv->leader_seen = commit_leader(&srv->commit);
	srv->role_seen = commit_state(&srv->commit);
	/* Forwarded requests are numbered from the wall clock, so a restarted
	 * server's numbers are above those of its earlier run: a txn of that
	 * run, still in the log, never answers a request of this one. */
	srv->fwd_next_seq = (uint64_t)loop_wall_ms() << 20;
	membership_refresh(srv);
	return 0;
}

int server_listen(struct server *srv)
{
	char why[256];
	int r = listeners_open(srv, why, sizeof(why));
	if (r < 0) {
		log_error("%s", why);
		return r;
	}
	arm_timer(srv);
	service_watchdog_start(&srv->service);
	service_notify_ready(srv);
	return 0;
}

int server_run(struct server *srv)
{
	int r = loop_run(&srv->loop);
	if (r < 0) {
		log_error("event loop failed: %s", strerror(-r));
		return r;
	}
	return 0;
}

void server_request_stop(struct server *srv)
{
	if (srv->stopping)
		return;
	srv->stopping = true;
	service_notify_stopping();
	srv->stop_deadline_ms = loop_now_ms() + SHUTDOWN_GRACE_MS;
	listeners_close(srv);
	/* Writes already prepped still commit and are answered; then each
	 * connection closes once its replies are out. */
	for (struct conn *c = srv->conns; c; c = c->next)
		if (c->state != CONN_CLOSING)
			conn_close_after_flush(c);
}

void server_free(struct server *srv)
{
	struct conn *c = srv->conns;
	while (c) {
		struct conn *next = c->next;
		if (c->state != CONN_CLOSING)
			conn_close(c, 0, NULL);
		c->ops_in_flight = 0;	/* the ring goes away with us */
		c->dirty = false;
		conn_reap(c);
		c = next;
	}
	forward_drop_held(srv);
	membership_drop(srv);
	ensemble_free(&srv->ensemble);
	commit_free(&srv->commit);
	watch_table_free(&srv->watches);
	prep_free(&srv->prep);
	state_free(&srv->state);
	free(srv->listeners);
	free(srv->per_address);
	if (srv->loop_ready)
		loop_free(&srv->loop);
	memset(srv, 0, sizeof(*srv));
}
