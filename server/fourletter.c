/* fourletter: see fourletter.h. The texts follow ZooKeeper 3.8's line by
 * line (the words' command classes in org.apache.zookeeper.server.command),
 * since tools parse them: the version line that clients read the version
 * from, srvr's "Mode:", mntr's zk_* names, cons' per-connection fields.
 * Numbers are printed as Java prints them (a double always has a fraction:
 * "0.0"). Where corral has something ZooKeeper has not, it is an extra
 * corral_* line of mntr; what ZooKeeper has and corral has not is listed in
 * the README's compatibility notes. */
#include "fourletter.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "budget.h"
#include "clients.h"
#include "commit.h"
#include "conn.h"
#include "ensemble.h"
#include "forward.h"
#include "forward_leader.h"
#include "log.h"
#include "server_config.h"
#include "session.h"
#include "state.h"
#include "status.h"
#include "tree.h"
#include "watch.h"

/* What ZooKeeper's Version.getFullVersion() is: the ZooKeeper version whose
 * protocol corral serves first (clients read its leading digits), then,
 * where ZooKeeper has its git revision, corral's name and version. */
#define FULL_VERSION ZOOKEEPER_VERSION "-corral-" CORRAL_VERSION ", built on " CORRAL_BUILD_DATE

#define CONFIG_PATH "/zookeeper/config"

static const char names[FLW_COUNT][5] = {
	[FLW_CONF] = "conf", [FLW_CONS] = "cons", [FLW_CRST] = "crst", [FLW_DIRS] = "dirs",
	[FLW_DUMP] = "dump", [FLW_ENVI] = "envi", [FLW_RUOK] = "ruok", [FLW_SRST] = "srst",
	[FLW_SRVR] = "srvr", [FLW_STAT] = "stat", [FLW_WCHC] = "wchc", [FLW_WCHP] = "wchp",
	[FLW_WCHS] = "wchs", [FLW_MNTR] = "mntr", [FLW_ISRO] = "isro",
	[FLW_HASH] = "hash",
};

int four_letter_word_parse(const char *name, size_t len)
{
	if (len != 4)
		return -1;
	for (int i = 0; i < FLW_COUNT; i++)
		if (memcmp(names[i], name, 4) == 0)
			return i;
	return -1;
}

const char *four_letter_word_name(enum four_letter_word w)
{
	return names[w];
}

__attribute__((format(printf, 2, 3)))
static void out(struct conn *c, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n > 0)
		jute_write_raw(&c->obuf, s, (size_t)n);
	free(s);
}

/* A double as Java's Double.toString() writes it, after ZooKeeper's
 * rounding of averages to 4 decimals (AvgMinMaxCounter): "0.0", "4.5",
 * "0.3333", and below 10^-3 or from 10^7 on, "1.0E-4", "1.2345E7". */
static void java_double(char *buf, size_t size, double v)
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

/* The bytes of the regular files under path, recursively (ZooKeeper's
 * getDirSize). */
static unsigned long long dir_bytes(int dirfd_parent, const char *path, int depth)
{
	unsigned long long sum = 0;
	int fd = openat(dirfd_parent, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	struct dirent *e;
	struct stat st;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISREG(st.st_mode))
			sum += (unsigned long long)st.st_size;
		else if (S_ISDIR(st.st_mode) && depth < 4)
			sum += dir_bytes(dirfd(d), e->d_name, depth + 1);
	}
	closedir(d);
	return sum;
}

static unsigned long long data_dir_bytes(const struct server_config *cfg)
{
	return dir_bytes(AT_FDCWD, cfg->data_dir, 0);
}

static unsigned long long log_dir_bytes(const struct server_config *cfg)
{
	char wal[4200];
	snprintf(wal, sizeof(wal), "%s/wal", cfg->data_dir);
	return dir_bytes(AT_FDCWD, wal, 0);
}

/* Every connection, closing ones too (ZooKeeper's count of its cnxns). */
static size_t open_connections(const struct server_status *ss)
{
	return ss->clients->all.length;
}

static size_t outstanding(const struct server_status *ss)
{
	size_t n = 0;
	clients_for_each(ss->clients, k)
		n += k->queue.length;
	return n;
}

/* ZooKeeper's ServerStats.toString(), then the node count and, on the
 * leader, the proposal sizes. */
static void server_lines(const struct server_status *ss, struct conn *c)
{
	const struct client_stats *cs = &ss->clients->hub.stats;
	char avg[48];
	java_double(avg, sizeof(avg), cs->latency_count
		    ? (double)cs->latency_total_ms / (double)cs->latency_count : 0.0);
	out(c, "Latency min/avg/max: %llu/%s/%llu\n", (unsigned long long)cs->latency_min_ms, avg,
	    (unsigned long long)cs->latency_max_ms);
	out(c, "Received: %llu\nSent: %llu\nConnections: %zu\nOutstanding: %zu\nZxid: 0x%llx\n"
	       "Mode: %s\nNode count: %zu\n",
	    (unsigned long long)cs->packets_received, (unsigned long long)cs->packets_sent,
	    open_connections(ss), outstanding(ss), (unsigned long long)ss->state->last_zxid,
	    status_mode(ss), ss->state->tree.nodes.count);
	if (ss->cfg->in_ensemble && commit_state(ss->commit) == RAFT_LEADER)
		out(c, "Proposal sizes last/min/max: %lld/%lld/%lld\n",
		    (long long)ss->commit->proposal_last_bytes,
		    (long long)ss->commit->proposal_min_bytes,
		    (long long)ss->commit->proposal_max_bytes);
}

/* srvr and stat begin so; a read-only server says it. */
static void version_lines(const struct server_status *ss, struct conn *c)
{
	out(c, "Zookeeper version: %s\n", FULL_VERSION);
	if (status_read_only(ss))
		out(c, "READ-ONLY mode; serving only read-only clients\n");
}

/* ZooKeeper's op names in cons (FinalRequestProcessor's lastOp). */
static const char *op_abbreviation(int32_t op)
{
	switch (op) {
	case ZK_OP_PING: return "PING";
	case ZK_OP_CREATE_SESSION: return "SESS";
	case ZK_OP_MULTI: return "MULT";
	case ZK_OP_MULTI_READ: return "MLTR";
	case ZK_OP_CREATE: case ZK_OP_CREATE2: case ZK_OP_CREATE_TTL:
	case ZK_OP_CREATE_CONTAINER: return "CREA";
	case ZK_OP_DELETE: case ZK_OP_DELETE_CONTAINER: return "DELE";
	case ZK_OP_SET_DATA: return "SETD";
	case ZK_OP_RECONFIG: return "RECO";
	case ZK_OP_SET_ACL: return "SETA";
	case ZK_OP_CLOSE_SESSION: return "CLOS";
	case ZK_OP_SYNC: return "SYNC";
	case ZK_OP_CHECK: return "CHEC";
	case ZK_OP_EXISTS: return "EXIS";
	case ZK_OP_GET_DATA: return "GETD";
	case ZK_OP_SET_WATCHES: return "SETW";
	case ZK_OP_SET_WATCHES2: return "STW2";
	case ZK_OP_ADD_WATCH: return "ADDW";
	case ZK_OP_GET_ACL: return "GETA";
	case ZK_OP_GET_CHILDREN: case ZK_OP_GET_CHILDREN2: return "GETC";
	case ZK_OP_GET_ALL_CHILDREN_NUMBER: return "GETACN";
	case ZK_OP_CHECK_WATCHES: return "CHKW";
	case ZK_OP_REMOVE_WATCHES: return "REMW";
	case ZK_OP_WHO_AM_I: return "HOMI";
	case ZK_OP_GET_EPHEMERALS: return "GETE";
	default: return "NA";
	}
}

/* ServerCnxn.dumpConnectionInfo(): brief for stat, full for cons. */
static void connection_line(struct conn *c, const struct conn *k, bool brief)
{
	out(c, " /%s[%d](queued=%zu,recved=%llu,sent=%llu", k->peer_text,
	    k->state == CONN_ESTABLISHED, k->queue.length, (unsigned long long)k->received,
	    (unsigned long long)k->sent);
	if (!brief && k->session) {
		out(c, ",sid=0x%llx,lop=%s,est=%llu,to=%u", (unsigned long long)k->session->id,
		    op_abbreviation(k->last_op), (unsigned long long)k->established_wall_ms,
		    k->session->timeout_ms);
		if (k->last_cxid >= 0)
			out(c, ",lcxid=0x%llx", (unsigned long long)k->last_cxid);
		out(c, ",lzxid=0x%llx,lresp=%llu,llat=%llu,minlat=%llu,avglat=%llu,maxlat=%llu",
		    (unsigned long long)k->last_zxid, (unsigned long long)k->last_response_wall_ms,
		    (unsigned long long)k->last_latency_ms, (unsigned long long)k->min_latency_ms,
		    (unsigned long long)(k->latency_count ? k->total_latency_ms / k->latency_count : 0),
		    (unsigned long long)k->max_latency_ms);
	}
	out(c, ")\n");
}

static void connections(const struct server_status *ss, struct conn *c, bool brief)
{
	clients_for_each(ss->clients, k)
		if (k->state != CONN_CLOSING)
			connection_line(c, k, brief);
	out(c, "\n");
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

/* mntr's ensemble part: ZooKeeper's quorum gauges (the leader's learners
 * and proposal sizes), then corral's own. */
static void ensemble_lines(const struct server_status *ss, struct conn *c)
{
	struct commit *k = ss->commit;
	const struct raft_configuration *conf = &k->raft.configuration;
	unsigned voters = 0;
	for (unsigned i = 0; i < conf->n; i++)
		voters += conf->servers[i].role == RAFT_VOTER;
	out(c, "zk_quorum_size\t%u\n", voters);
	if (commit_state(k) == RAFT_LEADER) {
		/* Synced: connected, and no more than 1000 entries behind. */
		unsigned learners = 0, synced_voters = 0, synced_observers = 0;
		raft_index last = raft_last_index(&k->raft);
		for (unsigned i = 0; i < conf->n; i++) {
			raft_id id = conf->servers[i].id;
			raft_index match = 0;
			if (id == k->self || !peer_transport_up(&ss->ensemble->peers, id))
				continue;
			learners++;
			if (raft_match_index(&k->raft, id, &match) != 0 || match + 1000 < last)
				continue;
			if (conf->servers[i].role == RAFT_VOTER)
				synced_voters++;
			else
				synced_observers++;
		}
		out(c, "zk_learners\t%u\n", learners);
		out(c, "zk_synced_followers\t%u\n", synced_voters);
		out(c, "zk_synced_non_voting_followers\t0\n");
		out(c, "zk_synced_observers\t%u\n", synced_observers);
		out(c, "zk_pending_syncs\t0\n");
		out(c, "zk_leader_uptime\t%llu\n",
		    (unsigned long long)(ss->clients->hub.now_ms - ss->leading_since_ms));
		out(c, "zk_last_proposal_size\t%lld\n", (long long)k->proposal_last_bytes);
		out(c, "zk_max_proposal_size\t%lld\n", (long long)k->proposal_max_bytes);
		out(c, "zk_min_proposal_size\t%lld\n", (long long)k->proposal_min_bytes);
	}
	out(c, "corral_server_id\t%llu\n", (unsigned long long)k->self);
	out(c, "corral_leader_id\t%llu\n", (unsigned long long)commit_leader(k));
	out(c, "corral_raft_term\t%llu\n", (unsigned long long)raft_current_term(&k->raft));
	out(c, "corral_raft_commit_index\t%llu\n", (unsigned long long)raft_commit_index(&k->raft));
	out(c, "corral_raft_last_index\t%llu\n", (unsigned long long)raft_last_index(&k->raft));
	out(c, "corral_leader_changes\t%llu\n", (unsigned long long)ss->ensemble->leader_changes);
	out(c, "corral_forwarded\t%llu\n", (unsigned long long)ss->forwarder->forwarded);
	out(c, "corral_forwards_lost\t%llu\n", (unsigned long long)ss->forwarder->lost);
	out(c, "corral_forwards_received\t%llu\n", (unsigned long long)ss->forward_leader->received);
	out(c, "corral_txns_truncated\t%llu\n", (unsigned long long)k->txns_truncated);
	out(c, "corral_log_entries_in_memory\t%zu\n", k->entries.count);
}

/* mntr: ZooKeeper's two monitor values, then the gauges of its metrics
 * (ZooKeeperServer.registerMetrics) in the order a 3.8 server lists them,
 * then corral's own (corral_*). ZooKeeper's internal counters and
 * latency summaries (zk_*_time, zk_p99_*, ...) are not there. */
static void mntr(const struct server_status *ss, struct conn *c)
{
	const struct client_stats *st = &ss->clients->hub.stats;
	long fds, max_fds;
	uint64_t ephemerals = 0;
	uint32_t read_only_sessions = 0;
	char avg[48];
	count_fds(&fds, &max_fds);
	session_for_each(&ss->state->sessions, s)
		ephemerals += s->ephemerals.length;
	clients_for_each(ss->clients, k)
		read_only_sessions += k->ro_session != NULL;
	java_double(avg, sizeof(avg), st->latency_count
		    ? (double)st->latency_total_ms / (double)st->latency_count : 0.0);
	out(c, "zk_version\t%s\n", FULL_VERSION);
	out(c, "zk_server_state\t%s\n", status_mode(ss));
	if (ss->cfg->in_ensemble)
		out(c, "zk_peer_state\t%s\n", status_peer_state(ss));
	out(c, "zk_ephemerals_count\t%llu\n", (unsigned long long)ephemerals);
	out(c, "zk_num_alive_connections\t%zu\n", open_connections(ss));
	out(c, "zk_avg_latency\t%s\n", avg);
	out(c, "zk_outstanding_requests\t%zu\n", outstanding(ss));
	out(c, "zk_znode_count\t%zu\n", ss->state->tree.nodes.count);
	out(c, "zk_global_sessions\t%zu\n", ss->state->sessions.by_id.count);
	out(c, "zk_non_mtls_remote_conn_count\t0\n");
	out(c, "zk_last_client_response_size\t%lld\n",
	    st->responses ? (long long)st->response_last_bytes : -1LL);
	out(c, "zk_packets_sent\t%llu\n", (unsigned long long)st->packets_sent);
	out(c, "zk_packets_received\t%llu\n", (unsigned long long)st->packets_received);
	out(c, "zk_max_client_response_size\t%lld\n",
	    st->responses ? (long long)st->response_max_bytes : -1LL);
	out(c, "zk_connection_drop_probability\t0.0\n");
	out(c, "zk_watch_count\t%zu\n", ss->watches->watch_count);
	out(c, "zk_auth_failed_count\t%llu\n", (unsigned long long)st->auth_failed);
	out(c, "zk_min_latency\t%llu\n", (unsigned long long)st->latency_min_ms);
	out(c, "zk_max_file_descriptor_count\t%ld\n", max_fds);
	out(c, "zk_approximate_data_size\t%llu\n", (unsigned long long)ss->state->tree.data_bytes);
	out(c, "zk_open_file_descriptor_count\t%ld\n", fds);
	out(c, "zk_local_sessions\t%u\n", read_only_sessions);
	out(c, "zk_uptime\t%llu\n", (unsigned long long)(ss->clients->hub.now_ms - ss->started_ms));
	out(c, "zk_max_latency\t%llu\n", (unsigned long long)st->latency_max_ms);
	out(c, "zk_outstanding_tls_handshake\t0\n");
	out(c, "zk_min_client_response_size\t%lld\n",
	    st->responses ? (long long)st->response_min_bytes : -1LL);
	out(c, "zk_non_mtls_local_conn_count\t0\n");
	out(c, "zk_connection_rejected\t%llu\n", (unsigned long long)st->connections_refused);
	if (ss->cfg->in_ensemble)
		ensemble_lines(ss, c);
	out(c, "corral_last_zxid\t0x%llx\n", (unsigned long long)ss->state->last_zxid);
	/* The tree's digest at corral_last_zxid (ZooKeeper's, as `hash` lists it). */
	out(c, "corral_digest\t%lld\n", (long long)ss->state->tree.digest);
	/* The ensemble's check (digest_check.h): ZooKeeper's counter, and corral's. */
	const struct digest_check *dc = ss->digest;
	out(c, "zk_digest_mismatches_count\t%llu\n", (unsigned long long)dc->mismatches);
	out(c, "corral_digest_checks\t%llu\n", (unsigned long long)dc->checks);
	out(c, "corral_digest_diverged\t%d\n", dc->diverged);
	out(c, "corral_digest_rebuilds\t%llu\n", (unsigned long long)dc->rebuilds);
	out(c, "corral_txns_committed\t%llu\n", (unsigned long long)ss->commit->txns_committed);
	out(c, "corral_commit_batches\t%llu\n", (unsigned long long)ss->commit->batches_committed);
	/* Group commit made visible: entries per fdatasync. */
	const struct wal *w = &ss->commit->wal;
	out(c, "corral_log_fsyncs\t%llu\n", (unsigned long long)w->batches);
	out(c, "corral_log_entries_written\t%llu\n", (unsigned long long)w->records_written);
	out(c, "corral_log_entries_per_fsync\t%.2f\n",
	    w->batches ? (double)w->records_written / (double)w->batches : 0.0);
	out(c, "corral_log_failed\t%d\n", ss->commit->failed != 0);
	out(c, "corral_log_refusing_for_space\t%d\n", ss->commit->refusing_for_space);
	out(c, "corral_bad_input_closed\t%llu\n", (unsigned long long)st->bad_input_closed);
	out(c, "corral_connections_timed_out\t%llu\n", (unsigned long long)ss->clients->timed_out);
	out(c, "corral_connections_displaced\t%llu\n", (unsigned long long)ss->clients->displaced);
	const struct memory_budget *b = ss->budget;
	out(c, "corral_memory_budget_bytes\t%llu\n", (unsigned long long)ss->cfg->memory_budget_bytes);
	out(c, "corral_memory_used_bytes\t%llu\n", (unsigned long long)budget_used(b));
	out(c, "corral_memory_state_bytes\t%llu\n", (unsigned long long)b->state_bytes);
	out(c, "corral_memory_connection_bytes\t%llu\n", (unsigned long long)ss->clients->hub.held_bytes);
	out(c, "corral_memory_over_budget\t%d\n", b->over);
	out(c, "corral_writes_refused_for_memory\t%llu\n", (unsigned long long)ss->prep->refused_growth);
}

/* This member's quorum and election ports, from its /zookeeper/config line
 * ("server.N=HOST:QUORUM:ELECTION:ROLE;CLIENT"). */
static void own_ports(const struct server_status *ss, const struct znode *config, char *quorum,
		      char *election, size_t size)
{
	char key[32];
	snprintf(quorum, size, "0");
	snprintf(election, size, "0");
	if (!config || config->data_len <= 0)
		return;
	int n = snprintf(key, sizeof(key), "server.%llu=", (unsigned long long)ss->commit->self);
	const char *data = (const char *)config->data, *end = data + config->data_len;
	for (const char *line = data; line < end; ) {
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol)
			eol = end;
		if (eol - line > n && memcmp(line, key, (size_t)n) == 0) {
			const char *spec = line + n;
			const char *host_end = *spec == '[' ? memchr(spec, ']', (size_t)(eol - spec)) : spec;
			const char *p1 = host_end ? memchr(host_end, ':', (size_t)(eol - host_end)) : NULL;
			const char *p2 = p1 ? memchr(p1 + 1, ':', (size_t)(eol - p1 - 1)) : NULL;
			if (p1 && p2) {
				const char *p3 = p2 + 1 + strcspn(p2 + 1, ":;\n");
				snprintf(quorum, size, "%.*s", (int)(p2 - p1 - 1), p1 + 1);
				snprintf(election, size, "%.*s", (int)(p3 - p2 - 1), p2 + 1);
			}
			return;
		}
		line = eol + 1;
	}
}

/* ZooKeeperServer.dumpConf(), and QuorumZooKeeperServer's additions in an
 * ensemble (no electionAlg: corral elects with Raft). */
static void conf(const struct server_status *ss, struct conn *c)
{
	const struct server_config *cfg = ss->cfg;
	unsigned long long data_bytes = data_dir_bytes(cfg), log_bytes = log_dir_bytes(cfg);
	out(c, "clientPort=%u\nsecureClientPort=-1\ndataDir=%s\ndataDirSize=%llu\n"
	       "dataLogDir=%s/wal\ndataLogSize=%llu\ntickTime=%u\nmaxClientCnxns=%u\n"
	       "minSessionTimeout=%u\nmaxSessionTimeout=%u\nclientPortListenBacklog=-1\n"
	       "serverId=%u\n",
	    cfg->listen_count ? cfg->listen[0].port : 0, cfg->data_dir, data_bytes, cfg->data_dir,
	    log_bytes, cfg->tick_time_ms, cfg->max_connections_per_address,
	    cfg->min_session_timeout_ms, cfg->max_session_timeout_ms,
	    cfg->in_ensemble ? cfg->ensemble.id : 0);
	if (!ss->cfg->in_ensemble)
		return;
	/* How long a follower waits for its leader, in ticks, as ZooKeeper's
	 * initLimit and syncLimit say it: the election timeout. */
	unsigned ticks = (cfg->ensemble.election_timeout_ms + cfg->tick_time_ms - 1) / cfg->tick_time_ms;
	const struct znode *config = tree_lookup(&ss->state->tree, CONFIG_PATH, strlen(CONFIG_PATH));
	char quorum[16], election[16];
	own_ports(ss, config, quorum, election, sizeof(quorum));
	out(c, "initLimit=%u\nsyncLimit=%u\nelectionPort=%s\nquorumPort=%s\npeerType=%d\n"
	       "membership: \n", ticks, ticks, election, quorum,
	    commit_is_observer(ss->commit) ? 1 : 0);
	if (config && config->data_len > 0)
		jute_write_raw(&c->obuf, config->data, (size_t)config->data_len);
}

/* ZooKeeper's Environment.list(), without the JVM's entries (java.*,
 * os.memory.*), which corral has no equivalent of. */
static void envi(struct conn *c)
{
	struct utsname u;
	char cwd[4096];
	const struct passwd *pw = getpwuid(geteuid());
	uname(&u);
	if (!getcwd(cwd, sizeof(cwd)))
		snprintf(cwd, sizeof(cwd), "/");
	/* os.arch as the JVM names the machine on this hardware. */
	const char *arch = strcmp(u.machine, "x86_64") == 0 ? "amd64"
			   : strcmp(u.machine, "i686") == 0 ? "x86" : u.machine;
	out(c, "Environment:\nzookeeper.version=%s\nhost.name=%s\nos.name=%s\nos.arch=%s\n"
	       "os.version=%s\nuser.name=%s\nuser.home=%s\nuser.dir=%s\n",
	    FULL_VERSION, u.nodename, u.sysname, arch, u.release, pw ? pw->pw_name : "?",
	    pw ? pw->pw_dir : "?", cwd);
}

/* WatchManager.dumpWatches(): by connection (its session), or by path. */
static void watches_by_connection(const struct server_status *ss, struct conn *c)
{
	clients_for_each(ss->clients, k) {
		if (list_empty(&k->watches.entries))
			continue;
		out(c, "0x%llx\n", (unsigned long long)(k->session ? k->session->id : 0));
		watch_owner_for_each_entry(&k->watches, e)
			out(c, "\t%s\n", e->wp->path);
	}
}

static void watches_by_path(const struct server_status *ss, struct conn *c)
{
	const struct watch_table *t = ss->watches;
	watch_for_each_path(t, wp) {
		out(c, "%s\n", wp->path);
		watch_path_for_each_entry(wp, e) {
			const struct conn *k = container_of(e->owner, struct conn, watches);
			out(c, "\t0x%llx\n", (unsigned long long)(k->session ? k->session->id : 0));
		}
	}
}

struct expiry {
	uint64_t wall_ms;
	int64_t session_id;
	const struct conn *conn;
};

static int expiry_order(const void *a, const void *b)
{
	const struct expiry *x = a, *y = b;
	if (x->wall_ms != y->wall_ms)
		return x->wall_ms < y->wall_ms ? -1 : 1;
	return x->session_id < y->session_id ? -1 : x->session_id > y->session_id;
}

/* ExpiryQueue.dump(): "Sets (N)/(M):", then per expiry time (rounded up to
 * the tick, as ZooKeeper buckets them) "K expire at DATE:" and the items. */
static void expiry_sets(struct conn *c, struct expiry *list, size_t count)
{
	size_t sets = 0;
	qsort(list, count, sizeof(*list), expiry_order);
	for (size_t i = 0; i < count; i++)
		sets += i == 0 || list[i].wall_ms != list[i - 1].wall_ms;
	out(c, "Sets (%zu)/(%zu):\n", sets, count);
	for (size_t i = 0; i < count; ) {
		size_t j = i;
		while (j < count && list[j].wall_ms == list[i].wall_ms)
			j++;
		char date[64];
		time_t t = (time_t)(list[i].wall_ms / 1000);
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(date, sizeof(date), "%a %b %d %H:%M:%S %Z %Y", &tm);
		out(c, "%zu expire at %s:\n", j - i, date);
		for (; i < j; i++) {
			if (list[i].conn)
				out(c, "\tip: /%s sessionId: 0x%llx\n", list[i].conn->peer_text,
				    (unsigned long long)list[i].session_id);
			else
				out(c, "\t0x%llx\n", (unsigned long long)list[i].session_id);
		}
	}
}

static uint64_t expiry_wall_ms(const struct server_status *ss, uint64_t deadline_ms)
{
	uint64_t tick = ss->cfg->tick_time_ms ? ss->cfg->tick_time_ms : 1;
	int64_t wall = loop_wall_ms() + (int64_t)deadline_ms - (int64_t)ss->clients->hub.now_ms;
	return ((uint64_t)(wall < 0 ? 0 : wall) / tick + 1) * tick;
}

/* dump: the session tracker (the leader's expiry sets, or a follower's
 * list of the ensemble's sessions), the ephemerals, the connections. */
static void dump(const struct server_status *ss, struct conn *c)
{
	struct session_table *t = &ss->state->sessions;
	size_t count = t->by_id.count, with_ephemerals = 0, n = 0;
	struct expiry *list = calloc(count + open_connections(ss) + 1, sizeof(*list));
	if (!list) {
		log_warning("dump: out of memory");
		return;
	}
	session_for_each(t, s) {
		if (n == count)
			break;
		list[n].wall_ms = expiry_wall_ms(ss, s->deadline_ms);
		list[n++].session_id = s->id;
		with_ephemerals += !list_empty(&s->ephemerals);
	}
	out(c, "SessionTracker dump:\n");
	if (!ss->cfg->in_ensemble || commit_state(ss->commit) == RAFT_LEADER) {
		out(c, "Session ");
		expiry_sets(c, list, n);
	} else {
		/* LearnerSessionTracker: the global sessions by id, with timeouts. */
		for (size_t i = 0; i < n; i++)
			list[i].wall_ms = 0;
		qsort(list, n, sizeof(*list), expiry_order);
		out(c, "Global Sessions(%zu):\n", n);
		for (size_t i = 0; i < n; i++) {
			const struct session *s = session_lookup(t, list[i].session_id);
			out(c, "0x%llx\t%ums\n", (unsigned long long)list[i].session_id,
			    s ? s->timeout_ms : 0);
		}
	}
	out(c, "ephemeral nodes dump:\nSessions with Ephemerals (%zu):\n", with_ephemerals);
	session_for_each(t, s) {
		if (list_empty(&s->ephemerals))
			continue;
		out(c, "0x%llx:\n", (unsigned long long)s->id);
		for (struct znode *z = session_first_ephemeral(s); z; z = session_next_ephemeral(s, z))
			out(c, "\t%s\n", z->path);
	}
	out(c, "Connections dump:\nConnections ");
	n = 0;
	clients_for_each(ss->clients, k) {
		if (k->state == CONN_CLOSING)
			continue;
		/* A connection without a session goes after 10 s (ZooKeeper's
		 * sessionless connection timeout); one with, with its session. */
		list[n].wall_ms = k->session ? expiry_wall_ms(ss, k->session->deadline_ms)
					     : expiry_wall_ms(ss, ss->clients->hub.now_ms + 10000);
		list[n].session_id = k->session ? k->session->id : 0;
		list[n++].conn = k;
	}
	expiry_sets(c, list, n);
	free(list);
}

/* hash: ZooKeeper's digest log, "ZXID_IN_HEX: DIGEST" a line, oldest
 * first (the digest at every zxid that is a multiple of 128). */
static void hash_lines(const struct server_status *ss, struct conn *c)
{
	const struct digest_history *h = &ss->state->digests;
	for (uint32_t k = 0; k < h->log_count; k++) {
		const struct zxid_digest *zd = &h->log[(h->log_start + k) % STATE_DIGEST_LOG_LIMIT];
		out(c, "%llx: %lld\n", (unsigned long long)zd->zxid, (long long)zd->digest);
	}
}

static void run(const struct server_status *ss, struct conn *c, enum four_letter_word w)
{
	switch (w) {
	case FLW_RUOK:
		out(c, "imok");
		break;
	case FLW_ISRO:
		/* ro: an ensemble member without a quorum, serving read-only
		 * sessions (ensemble.read_only); null: one that serves nobody
		 * (ZooKeeper's answer when it is not running a server). */
		out(c, status_read_only(ss) ? "ro"
		       : ss->cfg->in_ensemble && !commit_leader(ss->commit) ? "null" : "rw");
		break;
	case FLW_SRVR:
		version_lines(ss, c);
		server_lines(ss, c);
		break;
	case FLW_STAT:
		version_lines(ss, c);
		out(c, "Clients:\n");
		connections(ss, c, true);
		server_lines(ss, c);
		break;
	case FLW_CONS:
		connections(ss, c, false);
		break;
	case FLW_CONF:
		conf(ss, c);
		break;
	case FLW_MNTR:
		mntr(ss, c);
		break;
	case FLW_WCHS: {
		uint32_t watching = 0;
		clients_for_each(ss->clients, k)
			watching += !list_empty(&k->watches.entries);
		out(c, "%u connections watching %zu paths\nTotal watches:%zu\n", watching,
		    ss->watches->paths.count, ss->watches->watch_count);
		break;
	}
	case FLW_WCHC:
		watches_by_connection(ss, c);
		out(c, "\n");
		break;
	case FLW_WCHP:
		watches_by_path(ss, c);
		out(c, "\n");
		break;
	case FLW_ENVI:
		envi(c);
		break;
	case FLW_DIRS:
		out(c, "datadir_size: %llu\nlogdir_size: %llu\n", data_dir_bytes(ss->cfg),
		    log_dir_bytes(ss->cfg));
		break;
	case FLW_CRST:
		clients_reset_stats(ss->clients);
		out(c, "Connection stats reset.\n");
		break;
	case FLW_SRST:
		memset(&ss->clients->hub.stats, 0, sizeof(ss->clients->hub.stats));
		out(c, "Server stats reset.\n");
		break;
	case FLW_DUMP:
		dump(ss, c);
		break;
	case FLW_HASH:
		hash_lines(ss, c);
		break;
	case FLW_COUNT:
		break;
	}
}

bool four_letter_word_handle(const struct server_status *ss, struct conn *c, const uint8_t *p)
{
	int w = four_letter_word_parse((const char *)p, 4);
	if (w < 0)
		return false;
	/* ZooKeeper counts the word as a packet received, on the connection
	 * and the server. */
	c->received++;
	c->hub->stats.packets_received++;
	if (ss->cfg->four_letter_words & (1u << w))
		run(ss, c, (enum four_letter_word)w);
	else
		out(c, "%s is not executed because it is not in the whitelist.\n", names[w]);
	log_debug("connection %llu from %s: four-letter word %s", (unsigned long long)c->id,
		  c->peer_text, names[w]);
	conn_mark_dirty(c);
	conn_close_after_flush(c);
	return true;
}
