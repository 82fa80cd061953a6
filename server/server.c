/* server: see server.h. */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "conn.h"
#include "dispatch.h"
#include "forward_park.h"
#include "fourletter.h"
#include "handshake.h"
#include "log.h"
#include "reply.h"
#include "request.h"
#include "sasl.h"
#include "session.h"
#include "tls.h"

#define RING_ENTRIES 4096
#define SHUTDOWN_GRACE_MS 5000

static void arm_timer(struct server *srv);

/* The loop's clock, as the parts read it this turn. */
static uint64_t clock_now(struct server *srv)
{
	return srv->clients.hub.now_ms = loop_now_ms();
}

/* ---- connections' input: where the hub's handlers lead ---- */

static bool on_four_letter(void *ctx, struct conn *c, const uint8_t word[4])
{
	struct server *srv = ctx;
	return four_letter_word_handle(&srv->status, c, word);
}

static void on_connect(void *ctx, struct conn *c, const uint8_t *frame, uint32_t len)
{
	struct server *srv = ctx;
	handshake_connect(&srv->path, c, frame, len);
}

static int on_request(void *ctx, struct conn *c, const uint8_t *frame, uint32_t len)
{
	struct server *srv = ctx;
	return dispatch_request(&srv->path, c, frame, len);
}

static void on_conn_closed(void *ctx, struct conn *c)
{
	struct server *srv = ctx;
	dispatch_conn_closed(&srv->path, c);
	if (c->stored && !c->handed_over && srv->hooks.conn_unstored)
		srv->hooks.conn_unstored(srv->hooks.ctx, c->id);
}

/* ---- applying committed txns ---- */

struct event_source {
	int64_t zxid;
};

static void deliver_event(void *ctx, struct watch_owner *o, int event_type, const char *path,
			  size_t len, const void *node)
{
	const struct event_source *src = ctx;
	struct conn *c = container_of(o, struct conn, watches);
	const struct znode *n = node;
	/* An event tells of the node: it needs READ on it, as the read would. */
	if (c->state != CONN_CLOSING && auth_allowed(&c->auth, znode_acl(n), ZK_PERM_READ))
		reply_event(c, src->zxid, event_type, path, len);
}

/* txn_apply() tells us of every change; watches turn some into events. They
 * are queued on their connections now, so they leave before the reply of any
 * later request that observes the change. */
static void on_node_event(void *ctx, int64_t zxid, int event_type, const struct znode *node,
			  const char *path, size_t len)
{
	struct server *srv = ctx;
	struct event_source src = { .zxid = zxid };
	/* A change applied, as ZooKeeper's DataTree counts it: path and data. */
	if (event_type == ZK_EVENT_NODE_CREATED || event_type == ZK_EVENT_NODE_DATA_CHANGED)
		namespace_stats_add(&srv->clients.writes, path, len,
				    (int64_t)len + (node->data_len > 0 ? node->data_len : 0));
	else if (event_type == ZK_EVENT_NODE_DELETED)
		namespace_stats_add(&srv->clients.writes, path, len, (int64_t)len);
	watch_trigger(&srv->watches, event_type, path, len, node, deliver_event, &src);
}

/* A closeSession is about to apply: its connection must not point at the
 * session. Unless its own client asked (and waits for the answer), the
 * leader expired it: the connection goes too. */
static void session_ending(struct server *srv, int64_t session_id)
{
	struct session *s = session_lookup(&srv->state.sessions, session_id);
	if (!s)
		return;
	if (s->conn && !s->closing && s->conn->state != CONN_CLOSING)
		conn_close(s->conn, LOG_DEBUG, "its session expired (the leader ended it)");
	if (s->conn)
		s->conn->session = NULL;
	s->conn = NULL;
}

/* The state may now differ from the log: serving on would be wrong. */
static void apply_failed(struct server *srv, struct txn *t, int err)
{
	log_full(LOG_CRIT, &(struct log_fields){ .zxid = t->zxid },
		 "cannot apply txn 0x%llx: %s; stopping", (unsigned long long)t->zxid, strerror(-err));
	srv->exit_status = EXIT_FAILURE;
	server_request_stop(srv);
	if (t->request)
		t->request->txn = NULL;
	txn_free(t);
}

/* The commit step hands us each committed txn, in zxid order. */
static void on_committed(void *ctx, struct txn *t)
{
	struct server *srv = ctx;
	struct txn_result *results = calloc(t->op_count, sizeof(*results));

	if (!t->request && t->origin && t->origin == srv->commit.self)
		forward_match(&srv->forwarder, t);
	if (t->request_op == ZK_OP_CLOSE_SESSION) {
		session_ending(srv, t->session_id);
		if (!srv->recovering)
			audit_session_ending(srv->cfg, session_lookup(&srv->state.sessions,
								       t->session_id), t->zxid);
	}
	srv->state.local_now_ms = srv->clients.hub.now_ms;
	int r = results ? txn_apply(&srv->state, t, results) : -ENOMEM;
	if (r < 0) {
		free(results);
		apply_failed(srv, t, r);
		return;
	}
	prep_retire(&srv->prep, t->prep_seq);
	if (!srv->recovering)
		digest_check_fault(&srv->digest, t);
	/* debug, as "created" is: at info, session churn would flood the journal */
	if (t->request_op == ZK_OP_CLOSE_SESSION && !srv->recovering)
		log_event(LOG_DEBUG, { .message_id = LOG_MSGID_SESSION_CLOSED, .session_id = t->session_id,
				      .zxid = t->zxid },
			  "session 0x%llx ended", (unsigned long long)t->session_id);
	dispatch_txn_applied(&srv->path, t, results);
	if (!srv->recovering)
		digest_check_applied(&srv->digest, srv->clients.hub.now_ms);
}

/* The log failed before this txn was durable, or a new leader's log
 * replaced it: it will never apply. */
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
	dispatch_txn_abandoned(&srv->path, t, err);
}

/* ---- the ensemble: roles and frames ---- */

/* Connections with a write in flight, prepped here while this server led:
 * it no longer does, so whether those commit is the next leader's to say;
 * their clients see CONNECTIONLOSS (outcome unknown), as ZooKeeper's do. */
static void close_in_flight(struct server *srv, const char *why)
{
	clients_for_each(&srv->clients, c) {
		if (c->state == CONN_CLOSING)
			continue;
		list_for_each(&c->queue, n)
			if (list_entry(n, struct request, queue_node)->state == REQUEST_IN_FLIGHT) {
				conn_close(c, LOG_INFO, why);
				break;
			}
	}
}

/* Every client connection (not one still before its handshake). */
static void close_clients(struct server *srv, const char *why)
{
	clients_for_each(&srv->clients, c)
		if (c->state == CONN_CONNECTING || c->state == CONN_ESTABLISHED)
			conn_close(c, LOG_INFO, why);
}

/* A new leader gives every session a full timeout: the liveness its
 * predecessor knew did not come with the leadership. */
static void touch_all_sessions(struct server *srv)
{
	session_for_each(&srv->state.sessions, s)
		session_touch(s, srv->clients.hub.now_ms);
}

/* Cut off from the quorum: it heard no leader for an election timeout and
 * stands for election, or it led and lost its majority. As a ZooKeeper
 * server going LOOKING, it closes its clients' connections: they find a
 * server of the quorum (and with ensemble.read_only, clients that can be
 * read-only come back here read-only), instead of staying on a server
 * whose state no longer moves and which cannot tell the leader they are
 * alive. */
static void role_changed(struct server *srv, enum raft_state role, raft_id leader)
{
	/* A candidate by transfer stands at once, the old leader's
	 * followers with it: the clients stay (handover.h), unless it is
	 * still standing an election timeout later (on_timer). A server
	 * handing its clients over keeps them too: they are frozen and go to
	 * the next process, which holds them until it knows a leader. */
	bool by_transfer = role == RAFT_CANDIDATE && commit_candidate_by_transfer(&srv->commit);
	srv->transfer_candidacy_until_ms = by_transfer
		? srv->clients.hub.now_ms + srv->cfg->ensemble.election_timeout_ms : 0;
	if (((role == RAFT_CANDIDATE && srv->role_seen != RAFT_CANDIDATE) ||
	     (srv->role_seen == RAFT_LEADER && role != RAFT_LEADER && !leader)) &&
	    !by_transfer && !srv->handing_over)
		close_clients(srv, role == RAFT_CANDIDATE
			      ? "this server lost the leader and stands for election"
			      : "this server stopped leading and knows no leader");
	if (role == RAFT_LEADER && srv->role_seen != RAFT_LEADER)
		srv->status.leading_since_ms = srv->clients.hub.now_ms;
	/* Requests held for this leader's first commit (its own and its
	 * followers') are dropped only when it stops leading: the followers
	 * then fail theirs (the leader changed), and leader_changed fails
	 * this server's. A call for another reason (this leader becoming
	 * ready) must keep them, to be released. */
	if (role != RAFT_LEADER) {
		backup_stop(&srv->backup);
		forward_leader_drop(&srv->forward_leader);
	}
	srv->role_seen = role;
	/* ZooKeeper's election_time: from knowing no leader to knowing one. */
	struct server_status *st = &srv->status;
	if (!leader && !st->looking_since_ms) {
		st->looking_since_ms = srv->clients.hub.now_ms;
		st->looking_count++;
	}
	else if (leader && st->looking_since_ms) {
		summary_add(&st->election_ms, srv->clients.hub.now_ms - st->looking_since_ms,
			    srv->clients.hub.now_ms);
		st->looking_since_ms = 0;
	}
}

static void leader_changed(struct server *srv, raft_id leader)
{
	if (leader && !srv->leader_seen) {
		/* A quorum again: read-only sessions end; clients find read-write. */
		clients_for_each(&srv->clients, c)
			if (c->read_only && c->state != CONN_CLOSING)
				conn_close(c, LOG_INFO, "a leader is known again: its read-only "
					   "session ends");
	}
	if (leader != srv->leader_seen) {
		raft_id old = srv->leader_seen;
		srv->leader_seen = leader;
		forward_leader_changed(&srv->forwarder, old, srv->clients.hub.now_ms);
	}
}

static void on_role(void *ctx)
{
	struct server *srv = ctx;
	struct commit *c = &srv->commit;
	bool prepping = commit_can_prep(c);
	clock_now(srv);
	role_changed(srv, commit_state(c), commit_leader(c));
	if (srv->prepping && !prepping) {
		prep_retire(&srv->prep, UINT64_MAX);
		membership_drop(&srv->membership);
		close_in_flight(srv, "this server stopped leading with a write of this connection "
				"in flight; its outcome is unknown to the client");
	}
	leader_changed(srv, commit_leader(c));
	if (!srv->prepping && prepping) {
		touch_all_sessions(srv);
		srv->prepping = true;
		forward_leader_release(&srv->forward_leader);
	}
	srv->prepping = prepping;
	if (srv->hooks.role_changed)
		srv->hooks.role_changed(srv->hooks.ctx, srv);
}

static void on_configuration(void *ctx)
{
	struct server *srv = ctx;
	membership_committed(&srv->membership);
}

static void on_catch_up_ended(void *ctx)
{
	struct server *srv = ctx;
	membership_catch_up_ended(&srv->membership);
}

static void on_frame(void *ctx, const struct peer_frame *f)
{
	struct server *srv = ctx;
	uint64_t now = clock_now(srv);
	if (!digest_check_receive(&srv->digest, f, now) && !forward_receive(&srv->forwarder, f))
		forward_leader_receive(&srv->forward_leader, f, now);
}

static void on_peer_down(void *ctx, raft_id id)
{
	struct server *srv = ctx;
	forward_peer_down(&srv->forwarder, id);
}

/* This server's own request, held for it as a leader not yet ready and
 * dropped unprepped when it stopped leading: sent to the next one. */
static void on_own_refused(void *ctx, uint64_t seq)
{
	struct server *srv = ctx;
	forward_refused(&srv->forwarder, srv->commit.self, seq);
}

/* The state diverged from the leader's (digest_check): nothing more is
 * answered from it. */
static void on_diverged(void *ctx)
{
	struct server *srv = ctx;
	close_clients(srv, "this server's state diverged from the leader's; it rebuilds it");
	forward_fail_all(&srv->forwarder, "this server's state diverged from the leader's");
}

/* A leader's snapshot is about to replace the state: nothing may point into
 * the old one. Clients are closed (their view would jump); they reconnect. */
static int reset_state(void *ctx)
{
	struct server *srv = ctx;
	clients_for_each(&srv->clients, c)
		if (c->state != CONN_CLOSING)
			conn_close(c, LOG_INFO, "this server is installing the leader's snapshot");
	forward_fail_all(&srv->forwarder, "this server is installing the leader's snapshot");
	prep_retire(&srv->prep, UINT64_MAX);
	struct state_listener listener = srv->state.listener;
	state_free(&srv->state);
	int r = state_init(&srv->state, (uint8_t)srv->cfg->ensemble.id, (uint64_t)loop_wall_ms());
	srv->state.sessions.expiry_interval_ms = srv->cfg->tick_time_ms;
	srv->state.listener = listener;
	srv->state.local_now_ms = loop_now_ms();
	return r;
}

static void on_recovery_progress(void *ctx, uint64_t entries, uint64_t index)
{
	struct server *srv = ctx;
	if (srv->hooks.recovery_progress)
		srv->hooks.recovery_progress(srv->hooks.ctx, entries, index);
}

/* ---- the loop: timer and end of turn ---- */

static void on_timer(struct loop_op *op, int res, uint32_t flags)
{
	struct server *srv = container_of(op, struct server, timer_op);
	uint64_t now = clock_now(srv);
	if (srv->hooks.tick)
		srv->hooks.tick(srv->hooks.ctx, now);
	if (srv->stopping) {
		if (now >= srv->stop_deadline_ms) {
			log_warning("%zu connections still sending at shutdown; closing them",
				    srv->clients.all.length);
			loop_stop(&srv->loop);
			return;
		}
		arm_timer(srv);
		return;
	}
	commit_tick(&srv->commit, now);
	membership_tick(&srv->membership);
	if (srv->transfer_candidacy_until_ms && now >= srv->transfer_candidacy_until_ms) {
		srv->transfer_candidacy_until_ms = 0;
		if (commit_state(&srv->commit) == RAFT_CANDIDATE)
			close_clients(srv, "this server was handed leadership and stands for "
				      "election still");
	}
	digest_check_tick(&srv->digest, now);
	clients_tick(&srv->clients, now);
	budget_check(&srv->budget, srv->cfg, &srv->prep, state_memory_bytes(&srv->state),
		     srv->clients.hub.held_bytes);
	housekeeping_tick(&srv->housekeeping, &srv->path, now);
	backup_tick(&srv->backup, now);
	listeners_rearm(&srv->listeners);
	listeners_rearm(&srv->tls_listeners);
	arm_timer(srv);
}

static void arm_timer(struct server *srv)
{
	uint32_t period_ms = srv->cfg->tick_time_ms / 2;
	if (period_ms < 10)
		period_ms = 10;
	if (period_ms > 1000)
		period_ms = 1000;
	if (srv->hooks.max_tick_ms && period_ms > srv->hooks.max_tick_ms)
		period_ms = srv->hooks.max_tick_ms;
	srv->timer_ts.tv_sec = period_ms / 1000;
	srv->timer_ts.tv_nsec = (long long)(period_ms % 1000) * 1000000;
	struct io_uring_sqe *sqe = loop_sqe(&srv->loop, &srv->timer_op);
	io_uring_prep_timeout(sqe, &srv->timer_ts, 0, 0);
}

/* A member's held connections (handover_hold.h): served once it knows a
 * reachable leader (itself only once it is ready to write) and has applied
 * up to the image's zxid, or closed at the deadline. */
static void release_held(struct server *srv)
{
	struct commit *c = &srv->commit;
	bool leader = commit_leader_reachable(c) &&
		      (commit_leader(c) != c->self || srv->prepping);
	struct handover_result res;
	size_t n = srv->hold.count;
	if (handover_hold_check(&srv->hold, &srv->path, leader, srv->clients.hub.now_ms, &res))
		handover_log_result(&res, n);
}

/* Handing over as the leader, once its own writes are answered: the
 * leadership goes to the most up-to-date follower first (raft's transfer),
 * so the others follow it at once instead of standing for election when
 * this process is gone (which closes their clients). Whether this process
 * may leave: another leads, or an election timeout has passed. */
static bool leadership_handed_on(struct server *srv)
{
	struct commit *c = &srv->commit;
	if (!srv->cfg->in_ensemble)
		return true;
	uint64_t now = srv->clients.hub.now_ms;
	if (!srv->leadership_handed_ms) {
		if (commit_state(c) != RAFT_LEADER)
			return true;
		srv->leadership_handed_ms = now ? now : 1;
		/* what it prepped is applied: the followers hear what it took */
		forward_leader_announce_drained(&srv->forward_leader);
		int r = commit_transfer(c, 0);
		if (r < 0) {
			log_info("leadership not handed on (%s): the others elect a leader",
				 strerror(-r));
			return true;
		}
		log_info("handing leadership on before handing the clients over");
		return false;
	}
	return commit_state(c) != RAFT_LEADER ||
	       now >= srv->leadership_handed_ms + srv->cfg->ensemble.election_timeout_ms;
}

static void stop_when_snapshot_written(struct server *srv);

/* Once per loop turn, after waiting: the time the turn's completions see.
 * A request that wakes an idle server touches its session now, not at the
 * time the loop went to sleep (up to a timer period before: sessions
 * expired that much early). */
static void after_wait(void *ctx)
{
	clock_now(ctx);
}

/* Once per loop turn, before waiting: commit what was prepped (which applies
 * it and queues replies), send what gathered, free closed connections. */
static void before_wait(void *ctx)
{
	struct server *srv = ctx;

	clock_now(srv);
	commit_flush(&srv->commit);
	clients_flush(&srv->clients);
	/* A leader lets what it prepped commit; a follower cannot wait for
	 * that (its leader may be gone). */
	if (srv->hold.active && !srv->stopping)
		release_held(srv);
	stop_when_snapshot_written(srv);
	if (srv->handing_over && list_empty(&srv->commit.queue) && handover_ready(&srv->clients) &&
	    leadership_handed_on(srv) &&
	    (!srv->cfg->in_ensemble || ensemble_close(&srv->ensemble)))
		loop_stop(&srv->loop);
	else if (srv->stopping && (list_empty(&srv->commit.queue) || !srv->prepping) &&
	    list_empty(&srv->clients.all) &&
	    (!srv->cfg->in_ensemble || ensemble_close(&srv->ensemble)))
		loop_stop(&srv->loop);
}

/* ---- setting up ---- */

/* What the request path and the four-letter words see of the server. */
static void wire_views(struct server *srv)
{
	bool ensemble = srv->cfg->in_ensemble;
	srv->path = (struct request_path){
		.cfg = srv->cfg,
		.state = &srv->state,
		.prep = &srv->prep,
		.commit = &srv->commit,
		.watches = &srv->watches,
		.clients = &srv->clients,
		.forwarder = ensemble ? &srv->forwarder : NULL,
		.membership = &srv->membership,
		.backup = &srv->backup,
	};
	list_init(&srv->path.barriers);
	srv->status = (struct server_status){
		.cfg = srv->cfg,
		.state = &srv->state,
		.commit = &srv->commit,
		.ensemble = ensemble ? &srv->ensemble : NULL,
		.watches = &srv->watches,
		.clients = &srv->clients,
		.forwarder = ensemble ? &srv->forwarder : NULL,
		.forward_leader = ensemble ? &srv->forward_leader : NULL,
		.budget = &srv->budget,
		.backup = &srv->backup,
		.prep = &srv->prep,
		.http = &srv->admin.stats,
		.digest = &srv->digest,
		.started_ms = srv->clients.hub.now_ms,
	};
}

/* The replicated state, prep, the watches and the clients: nothing read yet. */
static int init_parts(struct server *srv, char *why, size_t why_size)
{
	struct server_config *cfg = srv->cfg;
	static const struct conn_handlers handlers = {
		.four_letter = on_four_letter, .connect = on_connect, .request = on_request,
		.closed = on_conn_closed,
	};
	struct conn_handlers h = handlers;
	h.ctx = srv;
	int r = loop_init(&srv->loop, RING_ENTRIES, why, why_size);
	if (r < 0)
		return r;
	srv->loop_ready = true;
	srv->loop.before_wait = before_wait;
	srv->loop.after_wait = after_wait;
	srv->loop.ctx = srv;
	r = state_init(&srv->state, (uint8_t)cfg->ensemble.id, (uint64_t)loop_wall_ms());
	srv->state.sessions.expiry_interval_ms = cfg->tick_time_ms;
	if (r == 0)
		r = prep_init(&srv->prep, &srv->state, (uint8_t)cfg->ensemble.id);
	if (r == 0)
		r = watch_table_init(&srv->watches);
	if (r == 0)
		r = clients_init(&srv->clients, &srv->loop, cfg, &h);
	if (r < 0) {
		snprintf(why, why_size, "cannot set up the state: %s", strerror(-r));
		return r;
	}
	srv->state.listener = (struct state_listener){ .node_event = on_node_event, .ctx = srv };
	srv->prep.extended_types = cfg->extended_types;
	srv->prep.x509_acls = cfg->tls_listen_count > 0;
	srv->prep.sasl_acls = cfg->sasl_users || cfg->sasl_keytab;
	srv->prep.enforce_quota = cfg->enforce_quota;
	membership_init(&srv->membership, &srv->commit, &srv->state, cfg);
	forward_leader_init(&srv->forward_leader, &srv->prep, &srv->state, &srv->commit,
			    &srv->membership, &srv->ensemble, cfg);
	srv->forward_leader.own_refused = on_own_refused;
	srv->forward_leader.ctx = srv;
	forwarder_init(&srv->forwarder, &srv->commit, &srv->ensemble, &srv->forward_leader,
		       &srv->clients, cfg);
	digest_check_init(&srv->digest, &srv->state, &srv->commit,
			  cfg->in_ensemble ? &srv->ensemble : NULL, on_diverged, srv);
	clock_now(srv);
	wire_views(srv);
	return 0;
}

/* Reads the log (the state as it was) and, in an ensemble, joins it. */
static int open_log(struct server *srv, char *why, size_t why_size)
{
	struct server_config *cfg = srv->cfg;
	struct commit_options co = {
		.data_dir = cfg->data_dir,
		.state = &srv->state,
		.snapshot_entries = cfg->snapshot_entries,
		.snapshot_log_bytes = cfg->snapshot_log_bytes,
		.keep_snapshots = cfg->keep_snapshots,
		.archive_dir = cfg->archive_dir,
		.archive_keep_snapshots = cfg->archive_keep_snapshots,
		.server_id = cfg->ensemble.id,
		.segment_bytes = cfg->segment_bytes,
		.loop = &srv->loop,
		.ensemble = cfg->in_ensemble ? &cfg->ensemble : NULL,
		.client_listen = cfg->listen_count ? &cfg->listen[0] : NULL,
		.on_committed = on_committed,
		.on_abandoned = on_abandoned,
		.reset_state = reset_state,
		.on_configuration = on_configuration,
		.on_catch_up_ended = on_catch_up_ended,
		.progress = on_recovery_progress,
		.ctx = srv,
	};
#ifdef CORRAL_FAULT_INJECTION
	const char *fault = getenv("CORRAL_FAULT_FSYNC_FAIL_AT");
	co.fault_fsync_countdown = fault ? strtoull(fault, NULL, 10) : 0;
#endif
	srv->state.local_now_ms = clock_now(srv);
	srv->recovering = true;
	int r = commit_open(&srv->commit, &co, why, why_size);
	srv->recovering = false;
	if (r == 0 && cfg->in_ensemble) {
		struct ensemble_callbacks cb = {
			.on_role = on_role, .on_frame = on_frame, .on_peer_down = on_peer_down, .ctx = srv,
		};
		r = ensemble_open(&srv->ensemble, &srv->commit, &cfg->ensemble, &cb, why, why_size);
	}
	return r;
}

int server_init(struct server *srv, struct server_config *cfg, const struct server_hooks *hooks,
		char *why, size_t why_size)
{
	memset(srv, 0, sizeof(*srv));
	srv->cfg = cfg;
	if (hooks)
		srv->hooks = *hooks;
	int r = init_parts(srv, why, why_size);
	if (r == 0)
		r = open_log(srv, why, why_size);
	if (r < 0) {
		server_free(srv);
		return r;
	}
	srv->timer_op.complete = on_timer;
	uint64_t now = clock_now(srv);
	srv->status.started_ms = now;
	housekeeping_init(&srv->housekeeping, now, cfg);
	srv->prepping = commit_can_prep(&srv->commit);
	srv->leader_seen = commit_leader(&srv->commit);
	if (cfg->in_ensemble && !srv->leader_seen) {
		srv->status.looking_since_ms = now;
		srv->status.looking_count++;
	}
	srv->role_seen = commit_state(&srv->commit);
	membership_refresh(&srv->membership);
	return 0;
}

/* SASL (auth.sasl): the mechanisms this process serves. */
static int setup_sasl(const struct server_config *cfg, char *why, size_t why_size)
{
	struct sasl_settings s = {
		.users = cfg->sasl_users, .users_len = cfg->sasl_users_len,
		.keytab = cfg->sasl_keytab, .principal = cfg->sasl_principal,
	};
	const char *what = "out of memory";
	int r = sasl_setup(&s, &what);
	if (r < 0) {
		snprintf(why, why_size, "SASL: %s", what);
		return r;
	}
	if (sasl_enabled())
		log_info("SASL: %s%s%s", cfg->sasl_users ? "DIGEST-MD5" : "",
			 cfg->sasl_users && cfg->sasl_keytab ? " and " : "",
			 cfg->sasl_keytab ? "GSSAPI" : "");
	return 0;
}

/* The TLS port (client.tls.listen): its SSL_CTX, then its sockets. They
 * are always the configured ones: systemd passes the plaintext port only. */
static int listen_tls(struct server *srv, char *why, size_t why_size)
{
	const struct server_config *cfg = srv->cfg;
	if (cfg->tls_listen_count == 0)
		return 0;
	int r = tls_context_new(cfg, &srv->clients.hub.tls_ctx, why, why_size);
	if (r == -ENOMEM)
		snprintf(why, why_size, "out of memory for the TLS context");
	if (r < 0)
		return r;
	char ktls[128];
	tls_kernel_probe(ktls, sizeof(ktls));
	log_info("TLS port: certificate %s, client certificates %s; records encrypted by OpenSSL "
		 "over the ring's buffers (kernel TLS not used: %s)", cfg->tls_certificate,
		 cfg->tls_client_auth == TLS_CLIENT_AUTH_REQUIRED ? "required"
		 : cfg->tls_client_auth == TLS_CLIENT_AUTH_OPTIONAL ? "optional" : "not asked for",
		 ktls);
	srv->tls_listeners.accepted = clients_accept_tls;
	srv->tls_listeners.ctx = &srv->clients;
	return listeners_open(&srv->tls_listeners, &srv->loop, cfg->tls_listen, cfg->tls_listen_count,
			      NULL, 0, NULL, 0, why, why_size);
}

void server_tls_reload(struct server *srv)
{
	char why[512];
	SSL_CTX *ctx = NULL;
	if (srv->tls_listeners.count == 0)
		return;
	int r = tls_context_new(srv->cfg, &ctx, why, sizeof(why));
	if (r < 0) {
		log_error("reload: TLS: %s; new TLS connections keep the previous certificate and settings",
			  r == -ENOMEM ? "out of memory" : why);
		return;
	}
	/* The open connections' SSLs hold their own references to the old one. */
	tls_context_free(srv->clients.hub.tls_ctx);
	srv->clients.hub.tls_ctx = ctx;
	log_notice("reload: TLS certificate %s and key read again; new TLS connections use them",
		   srv->cfg->tls_certificate);
}

int server_listen(struct server *srv, const int *adopted, size_t adopted_count, int *kept,
		  size_t kept_count)
{
	char why[512];
	const struct server_config *cfg = srv->cfg;
	srv->listeners.accepted = clients_accept;
	srv->listeners.ctx = &srv->clients;
	int r = setup_sasl(cfg, why, sizeof(why));
	if (r == 0)
		r = listeners_open(&srv->listeners, &srv->loop, cfg->listen, cfg->listen_count,
				   adopted, adopted_count, kept, kept_count, why, sizeof(why));
	if (r == 0)
		r = listen_tls(srv, why, sizeof(why));
	if (r < 0) {
		log_error("%s", why);
		return r;
	}
	r = admin_http_start(&srv->admin, &srv->loop, cfg, &srv->status, why, sizeof(why));
	if (r < 0) {
		log_error("%s", why);
		return r;
	}
	/* the budget counted before the first client is served, not a tick later */
	budget_check(&srv->budget, srv->cfg, &srv->prep, state_memory_bytes(&srv->state),
		     srv->clients.hub.held_bytes);
	arm_timer(srv);
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

/* Stops taking clients: the listeners close, the grace period begins. */
static bool begin_stop(struct server *srv)
{
	if (srv->stopping)
		return false;
	srv->stopping = true;
	if (srv->hooks.stopping)
		srv->hooks.stopping(srv->hooks.ctx);
	srv->stop_deadline_ms = loop_now_ms() + SHUTDOWN_GRACE_MS;
	listeners_close(&srv->listeners);
	listeners_close(&srv->tls_listeners);
	return true;
}

/* A stop waits for a snapshot at most this long (then it goes on; the
 * process still lets the snapshot finish before it exits). */
#define STOP_SNAPSHOT_WAIT_MS 30000

/* Whether the stop of kind waits for a snapshot first (it is started). */
static bool snapshot_first(struct server *srv, int kind)
{
	if (srv->stopping || srv->stop_after_snapshot)
		return srv->stop_after_snapshot != STOP_NONE;
	if (!commit_snapshot_before_stop(&srv->commit))
		return false;
	srv->stop_after_snapshot = kind;
	srv->stop_snapshot_deadline_ms = loop_now_ms() + STOP_SNAPSHOT_WAIT_MS;
	return true;
}

/* Before each wait: a stop that waited for its snapshot goes on once it
 * is written (or failed, or took too long). */
static void stop_when_snapshot_written(struct server *srv)
{
	if (!srv->stop_after_snapshot)
		return;
	if (commit_snapshot_busy(&srv->commit) && loop_now_ms() < srv->stop_snapshot_deadline_ms)
		return;
	int kind = srv->stop_after_snapshot;
	srv->stop_after_snapshot = STOP_NONE;
	if (kind == STOP_HANDOVER)
		server_request_handover(srv);
	else
		server_request_stop(srv);
}

void server_request_stop(struct server *srv)
{
	if (snapshot_first(srv, STOP_PLAIN))
		return;
	if (!begin_stop(srv))
		return;
	/* Writes already prepped still commit and are answered; then each
	 * connection closes once its replies are out. */
	clients_for_each(&srv->clients, c)
		if (c->state != CONN_CLOSING)
			conn_close_after_flush(c);
}

void server_request_handover(struct server *srv)
{
	if (srv->stopping || snapshot_first(srv, STOP_HANDOVER))
		return;
	/* The listening sockets outlive this process too: what connects
	 * meanwhile waits in their backlog for the next one. */
	int n = listeners_keep(&srv->listeners, &srv->kept_listeners);
	srv->kept_listener_count = n > 0 ? (size_t)n : 0;
	begin_stop(srv);
	srv->handing_over = true;
	/* A leader stops taking forwarded writes: the others send them to
	 * the next one (forward_leader.h). */
	if (srv->cfg->in_ensemble)
		forward_leader_drain(&srv->forward_leader);
	/* Writes already prepped still commit and are answered; nothing more
	 * is read (handover.h). */
	handover_begin(&srv->clients);
}

void server_hold_clients(struct server *srv, const uint8_t *image, size_t len,
			 const struct handover_fd *fds, size_t n)
{
	uint64_t deadline = clock_now(srv) + srv->cfg->max_session_timeout_ms;
	if (handover_hold_begin(&srv->hold, image, len, fds, n, srv->hooks.conn_unstored,
				srv->hooks.ctx, deadline) < 0)
		log_error("out of memory holding the connections from the previous process: "
			  "%zu closed", n);
	else
		log_info("%zu client connections from the previous process held until this member "
			 "has caught up with its leader", n);
}

void server_config_changed(struct server *srv)
{
	srv->prep.extended_types = srv->cfg->extended_types;
	srv->prep.x509_acls = srv->cfg->tls_listen_count > 0;
	srv->prep.sasl_acls = srv->cfg->sasl_users || srv->cfg->sasl_keytab;
	srv->prep.enforce_quota = srv->cfg->enforce_quota;
}

void server_leave(struct server *srv)
{
	commit_free(&srv->commit);
}

void server_free(struct server *srv)
{
	admin_http_stop(&srv->admin);
	if (srv->clients.hub.loop)
		clients_free(&srv->clients);
	forward_leader_free(&srv->forward_leader);
	membership_drop(&srv->membership);
	ensemble_free(&srv->ensemble);
	commit_free(&srv->commit);
	watch_table_free(&srv->watches);
	prep_free(&srv->prep);
	state_free(&srv->state);
	listeners_free(&srv->listeners);
	listeners_free(&srv->tls_listeners);
	for (size_t i = 0; i < srv->kept_listener_count; i++)
		close(srv->kept_listeners[i]);
	free(srv->kept_listeners);
	handover_hold_free(&srv->hold);
	tls_context_free(srv->clients.hub.tls_ctx);
	sasl_teardown();
	if (srv->loop_ready)
		loop_free(&srv->loop);
	memset(srv, 0, sizeof(*srv));
}
