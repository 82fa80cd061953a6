/* metrics: see metrics.h. The rows' order is mntr's: ZooKeeper's two
 * monitor values and the gauges of ZooKeeperServer.registerMetrics in the
 * order a 3.8 server lists them, the quorum gauges (ensemble, leader), the
 * latency and duration summaries ZooKeeper has (readlatency, updatelatency,
 * fsynctime, snapshottime, election_time), then corral's own. */
#include "metrics.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "backup.h"
#include "budget.h"
#include "digest_check.h"
#include "clients.h"
#include "commit.h"
#include "conn.h"
#include "ensemble.h"
#include "forward.h"
#include "forward_leader.h"
#include "prep.h"
#include "quota.h"
#include "server_config.h"
#include "session.h"
#include "state.h"
#include "tree.h"
#include "watch.h"


void metrics_java_double(char *buf, size_t size, double v)
{
	if (v < 0)
		v = 0;
	else if (v < 9e14)	/* (past it, no fraction is left to round) */
		v = (double)(long long)(v * 10000.0 + 0.5) / 10000.0;
	if (v == 0) {
		snprintf(buf, size, "0.0");
		return;
	}
	if (v >= 1e-3 && v < 1e7) {
		snprintf(buf, size, "%.4f", v);
		size_t n = strlen(buf);
		while (n > 2 && buf[n - 1] == '0' && buf[n - 2] != '.')
			buf[--n] = 0;
		return;
	}
	/* The shortest mantissa that reads back as v, Java's way: d.ddd, at
	 * least one digit after the point, "E" and the exponent bare. */
	char e[32];
	for (int p = 0; p < 17; p++) {
		snprintf(e, sizeof(e), "%.*e", p, v);
		if (strtod(e, NULL) == v)
			break;
	}
	char *x = strchr(e, 'e');
	int exponent = atoi(x + 1);
	*x = 0;
	snprintf(buf, size, "%s%sE%d", e, strchr(e, '.') ? "" : ".0", exponent);
}

static void count_fds(long *ret_open, long *ret_max)
{
	struct rlimit rl;
	long n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		while (readdir(d))
			n++;
		closedir(d);
		n -= 3;	/* ".", ".." and the directory's own fd */
	}
	*ret_open = n;
	*ret_max = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (long)rl.rlim_cur : -1;
}

/* The leader's view of its learners. Synced: connected, and no more than
 * 1000 entries behind. */
static void count_learners(struct metrics_pass *p)
{
	const struct server_status *ss = p->ss;
	struct commit *k = ss->commit;
	const struct raft_configuration *conf = &k->raft.configuration;
	for (unsigned i = 0; i < conf->n; i++)
		p->voters += conf->servers[i].role == RAFT_VOTER;
	if (!p->leader)
		return;
	raft_index last = raft_last_index(&k->raft);
	for (unsigned i = 0; i < conf->n; i++) {
		raft_id id = conf->servers[i].id;
		raft_index match = 0;
		if (id == k->self || conf->servers[i].role == RAFT_SPARE ||
		    !peer_transport_up(&ss->ensemble->peers, id))
			continue;	/* (a spare is joining, not yet a member) */
		p->learners++;
		if (raft_match_index(&k->raft, id, &match) != 0 || match + 1000 < last)
			continue;
		if (conf->servers[i].role == RAFT_VOTER)
			p->synced_voters++;
		else
			p->synced_observers++;
	}
}

void metrics_pass_init(struct metrics_pass *p, const struct server_status *ss)
{
	*p = (struct metrics_pass){ .ss = ss };
	count_fds(&p->fds, &p->max_fds);
	session_for_each(&ss->state->sessions, s)
		p->ephemerals += s->ephemerals.length;
	clients_for_each(ss->clients, k) {
		p->read_only_sessions += k->ro_session != NULL;
		p->outstanding += k->queue.length;
	}
	if (ss->cfg->in_ensemble) {
		const struct peer_transport *t = &ss->ensemble->peers;
		p->leader = commit_state(ss->commit) == RAFT_LEADER;
		count_learners(p);
		for (size_t i = 0; i < t->peer_count; i++) {
			const struct peer *peer = t->peers[i];
			p->peer_queue_bytes += peer->queue.len + peer->out.len - peer->out_sent;
			p->peer_frames_dropped += peer->frames_dropped;
			p->peer_buffer_bytes += peer->queue.cap + peer->out.cap;
		}
		for (const struct peer_inbound *in = t->inbound; in; in = in->next)
			p->peer_buffer_bytes += in->cap;
	}
}

bool metric_present(const struct metrics_pass *p, const struct metric *m)
{
	if ((m->flags & METRIC_ENSEMBLE) && !p->ss->cfg->in_ensemble)
		return false;
	if ((m->flags & METRIC_LEADER) && !p->leader)
		return false;
	return true;
}

/* ---- the getters ---- */

#define GETTER(fn, value_type, field, expr)						\
	static void get_##fn(const struct metrics_pass *p, struct metric_value *v)		\
	{										\
		const struct server_status *ss = p->ss;					\
		(void)ss;								\
		*v = (struct metric_value){ .type = value_type, .field = (expr) };	\
	}
#define INT(fn, expr) GETTER(fn, VALUE_INT, i, (int64_t)(expr))
#define TEXT(fn, expr) GETTER(fn, VALUE_TEXT, text, (expr))
#define STATS (&ss->clients->hub.stats)
#define SUMMARY(fn, expr, unit_scale)							\
	static void get_##fn(const struct metrics_pass *p, struct metric_value *v)		\
	{										\
		const struct server_status *ss = p->ss;					\
		*v = (struct metric_value){ .type = VALUE_SUMMARY, .summary = (expr),	\
					    .scale = (unit_scale),			\
					    .now_ms = ss->clients->hub.now_ms };	\
	}

static void get_avg_latency(const struct metrics_pass *p, struct metric_value *v)
{
	const struct client_stats *st = &p->ss->clients->hub.stats;
	*v = (struct metric_value){ .type = VALUE_DOUBLE,
		.d = st->latency_count ? (double)st->latency_total_ms / (double)st->latency_count : 0 };
}

static void get_entries_per_fsync(const struct metrics_pass *p, struct metric_value *v)
{
	const struct wal *w = &p->ss->commit->wal;
	*v = (struct metric_value){ .type = VALUE_DOUBLE,
		.d = w->batches ? (double)w->records_written / (double)w->batches : 0 };
}

static void get_last_zxid(const struct metrics_pass *p, struct metric_value *v)
{
	*v = (struct metric_value){ .type = VALUE_HEX, .i = p->ss->state->last_zxid };
}

/* -1 until a response was sent, as ZooKeeper's BufferStats. */
#define RESPONSE_SIZE(field) (STATS->responses ? (int64_t)STATS->field : -1)

TEXT(version, status_full_version)
TEXT(server_state, status_mode(ss))
TEXT(peer_state, status_peer_state(ss))
INT(ephemerals_count, p->ephemerals)
INT(num_alive_connections, ss->clients->all.length)
INT(outstanding_tls_handshake, clients_tls_handshakes(ss->clients))
INT(outstanding_requests, p->outstanding)
INT(znode_count, ss->state->tree.nodes.count)
INT(global_sessions, ss->state->sessions.by_id.count)
INT(zero, 0)
GETTER(zero_double, VALUE_DOUBLE, d, 0.0)
INT(last_client_response_size, RESPONSE_SIZE(response_last_bytes))
INT(packets_sent, STATS->packets_sent)
INT(packets_received, STATS->packets_received)
INT(max_client_response_size, RESPONSE_SIZE(response_max_bytes))
INT(watch_count, ss->watches->watch_count)
INT(auth_failed_count, STATS->auth_failed)
INT(min_latency, STATS->latency_min_ms)
INT(max_file_descriptor_count, p->max_fds)
INT(approximate_data_size, ss->state->tree.data_bytes)
INT(open_file_descriptor_count, p->fds)
INT(local_sessions, p->read_only_sessions)
INT(uptime, ss->clients->hub.now_ms - ss->started_ms)
INT(max_latency, STATS->latency_max_ms)
INT(min_client_response_size, RESPONSE_SIZE(response_min_bytes))
INT(connection_rejected, STATS->connections_refused)
INT(connection_request_count, STATS->connect_requests)
INT(snap_count, ss->commit->snapshots_taken)
INT(looking_count, ss->looking_count)
INT(unrecoverable_error_count, ss->commit->failed != 0)
INT(quorum_size, p->voters)
INT(learners, p->learners)
INT(synced_followers, p->synced_voters)
INT(synced_observers, p->synced_observers)
INT(leader_uptime, ss->clients->hub.now_ms - ss->leading_since_ms)
INT(last_proposal_size, ss->commit->proposal_last_bytes)
INT(max_proposal_size, ss->commit->proposal_max_bytes)
INT(min_proposal_size, ss->commit->proposal_min_bytes)
SUMMARY(readlatency, &STATS->read_latency_ms, 1.0)
SUMMARY(updatelatency, &STATS->update_latency_ms, 1.0)
SUMMARY(fsynctime, &ss->commit->wal.fsync_us, 1e-3)
SUMMARY(snapshottime, &ss->commit->snapshot_ms, 1.0)
SUMMARY(election_time, &ss->election_ms, 1.0)
INT(server_id, ss->commit->self)
INT(leader_id, commit_leader(ss->commit))
INT(raft_term, raft_current_term(&ss->commit->raft))
INT(raft_commit_index, raft_commit_index(&ss->commit->raft))
INT(raft_last_index, raft_last_index(&ss->commit->raft))
INT(leader_changes, ss->ensemble->leader_changes)
INT(forwarded, ss->forwarder->forwarded)
INT(forwards_lost, ss->forwarder->lost)
INT(forwards_received, ss->forward_leader->received)
INT(forwards_parked, ss->forwarder->parked_total)
INT(forwards_refused, ss->forward_leader->refused)
INT(txns_truncated, ss->commit->txns_truncated)
INT(log_entries_in_memory, ss->commit->entries.count)
INT(log_entries_in_memory_bytes, ss->commit->entries.bytes)
INT(log_entries_read_from_disk, ss->commit->wal.reader.entries_read)
INT(peer_queue_bytes, p->peer_queue_bytes)
INT(peer_frames_dropped, p->peer_frames_dropped)
INT(peer_buffer_bytes, p->peer_buffer_bytes)
INT(peer_auth_refused, ss->ensemble->peers.auth_refused)
INT(peer_tls_refused, ss->ensemble->peers.tls_refused)
INT(txns_committed, ss->commit->txns_committed)
INT(commit_batches, ss->commit->batches_committed)
INT(log_fsyncs, ss->commit->wal.batches)
INT(log_entries_written, ss->commit->wal.records_written)
INT(log_failed, ss->commit->failed != 0)
INT(log_refusing_for_space, ss->commit->refusing_for_space)
INT(bad_input_closed, STATS->bad_input_closed)
INT(connections_timed_out, ss->clients->timed_out)
INT(connections_displaced, ss->clients->displaced)
INT(memory_budget_bytes, ss->cfg->memory_budget_bytes)
INT(memory_used_bytes, budget_used(ss->budget))
INT(memory_state_bytes, ss->budget->state_bytes)
INT(memory_connection_bytes, ss->clients->hub.held_bytes)
INT(memory_over_budget, ss->budget->over)
INT(writes_refused_for_memory, ss->prep->refused_growth)
INT(http_requests, ss->http->requests)
INT(http_refused, ss->http->refused)
INT(digest, ss->state->tree.digest)
INT(digest_mismatches_count, ss->digest->mismatches)
INT(digest_checks, ss->digest->checks)
INT(digest_diverged, ss->digest->diverged)
INT(digest_rebuilds, ss->digest->rebuilds)
INT(backup_streaming, ss->backup->pid != 0)
INT(backups_sent, ss->backup->taken)
INT(backups_failed, ss->backup->failed)

#define ZK(n, k, h) { .name = #n, .kind = METRIC_##k, .flags = METRIC_ZOOKEEPER, .help = h, .get = get_##n }
#define ZKF(n, k, f, h) { .name = #n, .kind = METRIC_##k, .flags = METRIC_ZOOKEEPER | (f), .help = h, .get = get_##n }
#define ZK0(n, h) { .name = #n, .kind = METRIC_GAUGE, .flags = METRIC_ZOOKEEPER, .help = h, .get = get_zero }
#define OWN(n, k, f, h) { .name = "corral_" #n, .kind = METRIC_##k, .flags = (f), .help = h, .get = get_##n }

const struct metric metrics_table[] = {
	ZK(version, TEXT, "the version (ZooKeeper's protocol, then corral's)"),
	ZK(server_state, TEXT, "standalone, leader, follower, observer, read-only or looking"),
	ZKF(peer_state, TEXT, METRIC_ENSEMBLE, "ZooKeeper's detailed peer state"),
	ZK(ephemerals_count, GAUGE, "ephemeral nodes"),
	ZK(num_alive_connections, GAUGE, "open client connections"),
	ZK(avg_latency, GAUGE, "mean request latency, ms"),
	ZK(outstanding_requests, GAUGE, "requests received and not yet answered"),
	ZK(znode_count, GAUGE, "nodes in the tree"),
	ZK(global_sessions, GAUGE, "sessions of the ensemble"),
	ZK0(non_mtls_remote_conn_count, "connections from other hosts without mutual TLS (none: no TLS)"),
	ZK(last_client_response_size, GAUGE, "bytes of the last response, -1 before one"),
	ZK(packets_sent, GAUGE, "packets sent to clients"),
	ZK(packets_received, GAUGE, "packets received from clients"),
	ZK(max_client_response_size, GAUGE, "bytes of the largest response, -1 before one"),
	{ .name = "connection_drop_probability", .kind = METRIC_GAUGE, .flags = METRIC_ZOOKEEPER,
	  .help = "probability of dropping a connection (always 0)", .get = get_zero_double },
	ZK(watch_count, GAUGE, "watches set"),
	ZK(auth_failed_count, GAUGE, "auth and SASL requests refused"),
	ZK(min_latency, GAUGE, "least request latency, ms"),
	ZK(max_file_descriptor_count, GAUGE, "the file descriptor limit"),
	ZK(approximate_data_size, GAUGE, "bytes of node data and paths"),
	ZK(open_file_descriptor_count, GAUGE, "open file descriptors"),
	ZK(local_sessions, GAUGE, "read-only sessions of this server"),
	ZK(uptime, GAUGE, "ms since the server started"),
	ZK(max_latency, GAUGE, "largest request latency, ms"),
	ZK(outstanding_tls_handshake, GAUGE, "TLS handshakes under way (client.tls)"),
	ZK(min_client_response_size, GAUGE, "bytes of the smallest response, -1 before one"),
	ZK0(non_mtls_local_conn_count, "local connections without mutual TLS (none: no TLS)"),
	ZK(connection_rejected, GAUGE, "connections refused at accept (limits)"),
	/* ZooKeeper's counters that corral has: exported under ZooKeeper's
	 * names as gauges (its Prometheus client put no _total on them). */
	ZK(connection_request_count, GAUGE, "ConnectRequests received (new and resumed sessions)"),
	ZK(snap_count, GAUGE, "snapshots written"),
	ZK0(connection_drop_count, "connections dropped by the drop probability (none)"),
	ZK(looking_count, GAUGE, "times this server came to know no leader"),
	ZK(unrecoverable_error_count, GAUGE, "1 when the log failed (takes no writes until restarted)"),
	ZKF(quorum_size, GAUGE, METRIC_ENSEMBLE, "voting members"),
	ZKF(learners, GAUGE, METRIC_ENSEMBLE | METRIC_LEADER, "followers and observers connected"),
	ZKF(synced_followers, GAUGE, METRIC_ENSEMBLE | METRIC_LEADER,
	    "voting followers connected and within 1000 entries"),
	{ .name = "synced_non_voting_followers", .kind = METRIC_GAUGE,
	  .flags = METRIC_ZOOKEEPER | METRIC_ENSEMBLE | METRIC_LEADER,
	  .help = "non-voting followers in sync (none in corral)", .get = get_zero },
	ZKF(synced_observers, GAUGE, METRIC_ENSEMBLE | METRIC_LEADER,
	    "observers connected and within 1000 entries"),
	{ .name = "pending_syncs", .kind = METRIC_GAUGE,
	  .flags = METRIC_ZOOKEEPER | METRIC_ENSEMBLE | METRIC_LEADER,
	  .help = "syncs waiting on the leader (corral answers them at once)", .get = get_zero },
	ZKF(leader_uptime, GAUGE, METRIC_ENSEMBLE | METRIC_LEADER, "ms since this server became leader"),
	ZKF(last_proposal_size, GAUGE, METRIC_ENSEMBLE | METRIC_LEADER, "bytes of the last proposal"),
	ZKF(max_proposal_size, GAUGE, METRIC_ENSEMBLE | METRIC_LEADER, "bytes of the largest proposal"),
	ZKF(min_proposal_size, GAUGE, METRIC_ENSEMBLE | METRIC_LEADER, "bytes of the smallest proposal"),
	ZKF(readlatency, SUMMARY, METRIC_QUANTILES, "latency of reads and pings, ms"),
	ZKF(updatelatency, SUMMARY, METRIC_QUANTILES, "latency of writes (txns), ms"),
	ZK(fsynctime, SUMMARY, "write and fdatasync of a log batch, ms"),
	ZK(snapshottime, SUMMARY, "writing a snapshot, ms"),
	ZKF(election_time, SUMMARY, METRIC_ENSEMBLE, "from losing the leader to knowing one, ms"),
	OWN(server_id, GAUGE, METRIC_ENSEMBLE, "this member's id"),
	OWN(leader_id, GAUGE, METRIC_ENSEMBLE, "the leader's id, 0 when none is known"),
	OWN(raft_term, GAUGE, METRIC_ENSEMBLE, "raft's current term"),
	OWN(raft_commit_index, GAUGE, METRIC_ENSEMBLE, "raft's commit index"),
	OWN(raft_last_index, GAUGE, METRIC_ENSEMBLE, "the last index of this server's log"),
	OWN(leader_changes, COUNTER, METRIC_ENSEMBLE, "leaders this server saw come"),
	OWN(forwarded, COUNTER, METRIC_ENSEMBLE, "writes forwarded to the leader"),
	OWN(forwards_lost, COUNTER, METRIC_ENSEMBLE, "forwarded writes whose outcome was lost"),
	OWN(forwards_received, COUNTER, METRIC_ENSEMBLE, "writes other servers forwarded here"),
	OWN(forwards_parked, COUNTER, METRIC_ENSEMBLE, "forwarded writes parked for a usable leader"),
	OWN(forwards_refused, COUNTER, METRIC_ENSEMBLE, "forwarded writes refused while stepping down"),
	OWN(txns_truncated, COUNTER, METRIC_ENSEMBLE, "txns a new leader's log replaced"),
	OWN(log_entries_in_memory, GAUGE, METRIC_ENSEMBLE, "log entries cached for the peers"),
	OWN(log_entries_in_memory_bytes, GAUGE, METRIC_ENSEMBLE,
	    "their bytes (ensemble.entry_cache_bytes bounds them)"),
	OWN(log_entries_read_from_disk, COUNTER, METRIC_ENSEMBLE,
	    "log entries for the peers read back from the log on disk"),
	OWN(peer_queue_bytes, GAUGE, METRIC_ENSEMBLE, "bytes queued to the other servers, not yet sent"),
	OWN(peer_frames_dropped, COUNTER, METRIC_ENSEMBLE, "frames to other servers dropped (queue full)"),
	OWN(peer_buffer_bytes, GAUGE, METRIC_ENSEMBLE,
	    "memory the peer connections' buffers hold (sent and received)"),
	OWN(peer_auth_refused, COUNTER, METRIC_ENSEMBLE,
	    "peer connections refused at authentication (ensemble.secret_file), both ways"),
	OWN(peer_tls_refused, COUNTER, METRIC_ENSEMBLE,
	    "peer connections refused by TLS or its names (ensemble.tls), both ways"),
	{ .name = "corral_last_zxid", .kind = METRIC_GAUGE, .help = "the last zxid applied",
	  .get = get_last_zxid },
	OWN(digest, GAUGE, 0, "the tree's digest at corral_last_zxid (ZooKeeper's, as hash lists it)"),
	ZK(digest_mismatches_count, GAUGE, "digests that differed from the leader's at the same zxid"),
	OWN(digest_checks, COUNTER, 0, "digests compared with the leader's"),
	OWN(digest_diverged, GAUGE, 0, "1 while this server's state differs from the leader's"),
	OWN(digest_rebuilds, COUNTER, 0, "rebuilds from the leader's snapshot after a divergence"),
	OWN(txns_committed, COUNTER, 0, "txns committed"),
	OWN(commit_batches, COUNTER, 0, "batches of txns committed"),
	OWN(log_fsyncs, COUNTER, 0, "log fdatasyncs"),
	OWN(log_entries_written, COUNTER, 0, "log entries written"),
	{ .name = "corral_log_entries_per_fsync", .kind = METRIC_GAUGE,
	  .help = "log entries per fdatasync (group commit)", .get = get_entries_per_fsync },
	OWN(log_failed, GAUGE, 0, "1 when the log failed and takes no writes"),
	OWN(log_refusing_for_space, GAUGE, 0, "1 while the disk is full"),
	OWN(bad_input_closed, COUNTER, 0, "connections closed for bad input"),
	OWN(connections_timed_out, COUNTER, 0, "connections closed past a deadline"),
	OWN(connections_displaced, COUNTER, 0, "connections closed to make room"),
	OWN(memory_budget_bytes, GAUGE, 0, "memory.budget_bytes"),
	OWN(memory_used_bytes, GAUGE, 0, "memory counted against the budget"),
	OWN(memory_state_bytes, GAUGE, 0, "of which the state"),
	OWN(memory_connection_bytes, GAUGE, 0, "of which the connections"),
	OWN(memory_over_budget, GAUGE, 0, "1 while over the budget"),
	OWN(writes_refused_for_memory, COUNTER, 0, "writes refused over the memory budget"),
	OWN(http_requests, COUNTER, 0, "requests to the HTTP endpoint (GET and HEAD)"),
	OWN(http_refused, COUNTER, 0, "HTTP requests refused (403, 404, 405, 501)"),
	OWN(backup_streaming, GAUGE, 0, "1 while a backup is being streamed to a client"),
	OWN(backups_sent, COUNTER, 0, "backups streamed whole (corralctl backup)"),
	OWN(backups_failed, COUNTER, 0, "backups that ended before they were whole"),
};
const unsigned metrics_count = sizeof(metrics_table) / sizeof(metrics_table[0]);

/* ---- writing them ---- */

__attribute__((format(printf, 2, 3)))
static void put(const struct metrics_out *o, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		o->write(o->ctx, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* mntr's name of a row (or of one figure of a summary: stat "avg", ...):
 * ZooKeeper's "zk_avg_readlatency", corral's "corral_avg_x". JSON drops
 * ZooKeeper's "zk_", as its /commands/monitor does. */
static void mntr_name(char *buf, size_t size, const struct metric *m, const char *stat, bool json)
{
	bool zk = m->flags & METRIC_ZOOKEEPER;
	const char *prefix = zk ? (json ? "" : "zk_") : "corral_";
	const char *base = zk ? m->name : m->name + strlen("corral_");
	snprintf(buf, size, "%s%s%s%s", prefix, stat ? stat : "", stat ? "_" : "", base);
}

static void mntr_int(const struct metrics_out *o, const struct metric *m, const char *stat,
		     int64_t v, bool json)
{
	char name[128];
	mntr_name(name, sizeof(name), m, stat, json);
	put(o, json ? "  \"%s\" : %lld,\n" : "%s\t%lld\n", name, (long long)v);
}

static void mntr_summary(const struct metrics_out *o, const struct metric *m,
			 const struct metric_value *v, bool json)
{
	static const struct { const char *stat; double q; } quantiles[] = {
		{ "p50", 0.5 }, { "p95", 0.95 }, { "p99", 0.99 }, { "p999", 0.999 },
	};
	const struct summary *s = v->summary;
	char name[128], avg[48];
	mntr_name(name, sizeof(name), m, "avg", json);
	metrics_java_double(avg, sizeof(avg), summary_mean(s) * v->scale);
	put(o, json ? "  \"%s\" : %s,\n" : "%s\t%s\n", name, avg);
	mntr_int(o, m, "min", (int64_t)((double)s->min * v->scale), json);
	mntr_int(o, m, "max", (int64_t)((double)s->max * v->scale), json);
	mntr_int(o, m, "cnt", (int64_t)s->count, json);
	mntr_int(o, m, "sum", (int64_t)((double)s->sum * v->scale), json);
	if (!(m->flags & METRIC_QUANTILES))
		return;
	for (size_t i = 0; i < sizeof(quantiles) / sizeof(quantiles[0]); i++)
		mntr_int(o, m, quantiles[i].stat,
			 (int64_t)((double)summary_quantile(s, quantiles[i].q, v->now_ms) * v->scale),
			 json);
}

/* A JSON string's body: quotes, backslashes and control characters escaped. */
static void json_text(char *buf, size_t size, const char *text)
{
	size_t n = 0;
	for (const unsigned char *t = (const unsigned char *)text; *t && n + 7 < size; t++) {
		if (*t == '"' || *t == '\\')
			n += (size_t)snprintf(buf + n, size - n, "\\%c", *t);
		else if (*t < 0x20)
			n += (size_t)snprintf(buf + n, size - n, "\\u%04x", *t);
		else
			buf[n++] = (char)*t;
	}
	buf[n] = 0;
}

static void mntr_row(const struct metrics_out *o, const struct metric *m,
		     const struct metric_value *v, bool json)
{
	char name[128], text[256];
	mntr_name(name, sizeof(name), m, NULL, json);
	switch (v->type) {
	case VALUE_INT:
		mntr_int(o, m, NULL, v->i, json);
		break;
	case VALUE_DOUBLE:
		metrics_java_double(text, sizeof(text), v->d);
		put(o, json ? "  \"%s\" : %s,\n" : "%s\t%s\n", name, text);
		break;
	case VALUE_HEX:
		put(o, json ? "  \"%s\" : \"0x%llx\",\n" : "%s\t0x%llx\n", name, (unsigned long long)v->i);
		break;
	case VALUE_TEXT:
		if (json) {
			json_text(text, sizeof(text), v->text);
			put(o, "  \"%s\" : \"%s\",\n", name, text);
		} else {
			put(o, "%s\t%s\n", name, v->text);
		}
		break;
	case VALUE_SUMMARY:
		mntr_summary(o, m, v, json);
		break;
	}
}

/* ZooKeeper's figures per namespace (quotas, bytes read and written), as its sets
 * write them (quota.h): "zk_NS_quota_count_limit_per_namespace" in mntr,
 * "NS_..." in JSON, quota_..._per_namespace{key="NS"} for Prometheus. */
enum quota_figure { QUOTA_COUNT_LIMIT, QUOTA_BYTES_LIMIT, QUOTA_COUNT_USAGE, QUOTA_BYTES_USAGE };
static const struct {
	const char *name, *help;
} quota_figures[] = {
	[QUOTA_COUNT_LIMIT] = { "quota_count_limit_per_namespace",
				"nodes the quotas in a namespace allow (hard limits, else soft)" },
	[QUOTA_BYTES_LIMIT] = { "quota_bytes_limit_per_namespace",
				"bytes the quotas in a namespace allow (hard limits, else soft)" },
	[QUOTA_COUNT_USAGE] = { "quota_count_usage_per_namespace",
				"nodes under the quotas in a namespace" },
	[QUOTA_BYTES_USAGE] = { "quota_bytes_usage_per_namespace",
				"bytes of data under the quotas in a namespace" },
};
#define QUOTA_REFUSED_NAME "quota_exceeded_error_per_namespace"

static bool quota_figure(const struct quota_namespace *n, enum quota_figure f, int64_t *ret)
{
	switch (f) {
	case QUOTA_COUNT_LIMIT: *ret = n->count_limit; return n->has_limits;
	case QUOTA_BYTES_LIMIT: *ret = n->bytes_limit; return n->has_limits;
	case QUOTA_COUNT_USAGE: *ret = n->count_usage; return n->has_stats;
	case QUOTA_BYTES_USAGE: *ret = n->bytes_usage; return n->has_stats;
	}
	return false;
}

/* A namespace is a path's component, of any length: written whole, in
 * pieces (put() holds one line of a bounded length). */
static void mntr_keyed_text(const struct metrics_out *o, const char *stat, const char *key,
			    size_t key_len, const char *name, const char *value, bool json)
{
	const char *sep = stat ? "_" : "";
	stat = stat ? stat : "";
	if (json) {
		char *text = strndup(key, key_len), *escaped = malloc(key_len * 6 + 8);
		if (text && escaped) {
			json_text(escaped, key_len * 6 + 8, text);
			put(o, "  \"%s%s", stat, sep);
			o->write(o->ctx, escaped, strlen(escaped));
			put(o, "_%s\" : %s,\n", name, value);
		}
		free(text);
		free(escaped);
	} else {
		put(o, "zk_%s%s", stat, sep);
		o->write(o->ctx, key, key_len);
		put(o, "_%s\t%s\n", name, value);
	}
}

static void mntr_keyed(const struct metrics_out *o, const char *key, size_t key_len,
		       const char *name, int64_t v, bool json)
{
	char value[32];
	snprintf(value, sizeof(value), "%lld", (long long)v);
	mntr_keyed_text(o, NULL, key, key_len, name, value, json);
}

/* ZooKeeper's BASIC summary sets per namespace: zk_avg_NS_name, min, max,
 * cnt, sum. */
static void mntr_namespace_summaries(const struct metrics_out *o, const struct namespace_stats *s,
				     const char *name, bool json)
{
	char value[48];
	namespace_stats_for_each(s, e) {
		metrics_java_double(value, sizeof(value),
				    e->count ? (double)e->sum / (double)e->count : 0.0);
		mntr_keyed_text(o, "avg", e->name, e->name_len, name, value, json);
		const struct { const char *stat; long long v; } figures[] = {
			{ "min", e->min }, { "max", e->max }, { "cnt", (long long)e->count },
			{ "sum", e->sum },
		};
		for (size_t i = 0; i < sizeof(figures) / sizeof(figures[0]); i++) {
			snprintf(value, sizeof(value), "%lld", figures[i].v);
			mntr_keyed_text(o, figures[i].stat, e->name, e->name_len, name, value, json);
		}
	}
}

static void mntr_namespaces(const struct server_status *ss, const struct metrics_out *o, bool json)
{
	struct quota_namespace *ns;
	long n = quota_namespaces(&ss->state->tree, &ns);
	for (long i = 0; i < n; i++)
		for (size_t f = 0; f < sizeof(quota_figures) / sizeof(quota_figures[0]); f++) {
			int64_t v;
			if (quota_figure(&ns[i], (enum quota_figure)f, &v))
				mntr_keyed(o, ns[i].name, ns[i].name_len, quota_figures[f].name, v, json);
		}
	free(ns);
	namespace_stats_for_each(&ss->prep->quota_refused, e)
		mntr_keyed(o, e->name, e->name_len, QUOTA_REFUSED_NAME, (int64_t)e->count, json);
	mntr_namespace_summaries(o, &ss->clients->reads, "read_per_namespace", json);
	mntr_namespace_summaries(o, &ss->clients->writes, "write_per_namespace", json);
}

void metrics_write_mntr(const struct server_status *ss, const struct metrics_out *o, bool json)
{
	struct metrics_pass p;
	metrics_pass_init(&p, ss);
	for (unsigned i = 0; i < metrics_count; i++) {
		const struct metric *m = &metrics_table[i];
		struct metric_value v;
		if (!metric_present(&p, m))
			continue;
		m->get(&p, &v);
		mntr_row(o, m, &v, json);
	}
	mntr_namespaces(ss, o, json);
}

/* A sample's value: integers exactly, doubles as Go's ParseFloat reads them. */
static void prometheus_summary(const struct metrics_out *o, const char *name,
			       const struct metric *m, const struct metric_value *v)
{
	/* ZooKeeper's PrometheusMetricsProvider: 0.5 for every summary, 0.9
	 * and 0.99 too for its ADVANCED ones. */
	static const double quantiles[] = { 0.5, 0.9, 0.99 };
	const struct summary *s = v->summary;
	size_t n = (m->flags & METRIC_QUANTILES) ? 3 : 1;
	for (size_t i = 0; i < n; i++)
		put(o, "%s{quantile=\"%g\"} %.17g\n", name, quantiles[i],
		    (double)summary_quantile(s, quantiles[i], v->now_ms) * v->scale);
	put(o, "%s_sum %.17g\n%s_count %llu\n", name, (double)s->sum * v->scale, name,
	    (unsigned long long)s->count);
}

static void prometheus_row(const struct metrics_out *o, const struct metric *m,
			   const struct metric_value *v)
{
	static const char *const types[] = {
		[METRIC_GAUGE] = "gauge", [METRIC_COUNTER] = "counter", [METRIC_SUMMARY] = "summary",
	};
	char name[128];
	snprintf(name, sizeof(name), "%s%s", m->prometheus ? m->prometheus : m->name,
		 m->kind == METRIC_COUNTER ? "_total" : "");
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, m->help, name, types[m->kind]);
	switch (v->type) {
	case VALUE_INT:
	case VALUE_HEX:
		put(o, "%s %lld\n", name, (long long)v->i);
		break;
	case VALUE_DOUBLE:
		put(o, "%s %.17g\n", name, v->d);
		break;
	case VALUE_SUMMARY:
		prometheus_summary(o, name, m, v);
		break;
	case VALUE_TEXT:
		break;
	}
}

/* One sample of a family keyed by namespace: name{key="NS"} v, the key's
 * backslashes and quotes escaped (a path holds no newline). */
static void prometheus_keyed(const struct metrics_out *o, const char *name, const char *key,
			     size_t key_len, long long v)
{
	put(o, "%s{key=\"", name);
	size_t from = 0;
	for (size_t i = 0; i < key_len; i++)
		if (key[i] == '\\' || key[i] == '"') {
			o->write(o->ctx, key + from, i - from);
			put(o, "\\%c", key[i]);
			from = i + 1;
		}
	o->write(o->ctx, key + from, key_len - from);
	put(o, "\"} %lld\n", v);
}

static void prometheus_namespaces(const struct server_status *ss, const struct metrics_out *o)
{
	struct quota_namespace *ns;
	long n = quota_namespaces(&ss->state->tree, &ns);
	for (size_t f = 0; f < sizeof(quota_figures) / sizeof(quota_figures[0]); f++) {
		put(o, "# HELP %s %s\n# TYPE %s gauge\n", quota_figures[f].name, quota_figures[f].help,
		    quota_figures[f].name);
		for (long i = 0; i < n; i++) {
			int64_t v;
			if (!quota_figure(&ns[i], (enum quota_figure)f, &v))
				continue;
			prometheus_keyed(o, quota_figures[f].name, ns[i].name, ns[i].name_len, v);
		}
	}
	free(ns);
	put(o, "# HELP %s_total writes refused past a quota's hard limit, per namespace\n"
	       "# TYPE %s_total counter\n", QUOTA_REFUSED_NAME, QUOTA_REFUSED_NAME);
	namespace_stats_for_each(&ss->prep->quota_refused, e)
		prometheus_keyed(o, QUOTA_REFUSED_NAME "_total", e->name, e->name_len,
				 (long long)e->count);
	/* ZooKeeper's summaries of bytes per namespace: no quantiles kept here,
	 * a count and a sum (a summary may have only those). */
	const struct { const char *name, *help; const struct namespace_stats *s; } sets[] = {
		{ "read_per_namespace", "bytes of the reads answered, per namespace",
		  &ss->clients->reads },
		{ "write_per_namespace", "bytes of the changes applied, per namespace",
		  &ss->clients->writes },
	};
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		const struct namespace_stats *s = sets[i].s;
		char count[64], sum[64];
		snprintf(count, sizeof(count), "%s_count", sets[i].name);
		snprintf(sum, sizeof(sum), "%s_sum", sets[i].name);
		put(o, "# HELP %s %s\n# TYPE %s summary\n", sets[i].name, sets[i].help, sets[i].name);
		namespace_stats_for_each(s, e) {
			prometheus_keyed(o, count, e->name, e->name_len, (long long)e->count);
			prometheus_keyed(o, sum, e->name, e->name_len, (long long)e->sum);
		}
	}
}

void metrics_write_prometheus(const struct server_status *ss, const struct metrics_out *o)
{
	struct metrics_pass p;
	char version[128];
	metrics_pass_init(&p, ss);
	for (unsigned i = 0; i < metrics_count; i++) {
		const struct metric *m = &metrics_table[i];
		struct metric_value v;
		if (m->kind == METRIC_TEXT || !metric_present(&p, m))
			continue;
		m->get(&p, &v);
		prometheus_row(o, m, &v);
	}
	prometheus_namespaces(ss, o);
	/* The texts, as labels of an info metric (a value must be a number). */
	json_text(version, sizeof(version), status_full_version);
	put(o, "# HELP corral_info the version and what this server is now\n"
	       "# TYPE corral_info gauge\ncorral_info{version=\"%s\",server_state=\"%s\"} 1\n",
	    version, status_mode(ss));
}
