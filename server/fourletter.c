/* fourletter: see fourletter.h. The texts and the zk_* names follow
 * ZooKeeper 3.8, since monitoring tools parse them. */
#include "fourletter.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "server.h"
#include "session.h"

static const char names[FLW_COUNT][5] = {
	[FLW_CONF] = "conf", [FLW_CONS] = "cons", [FLW_CRST] = "crst", [FLW_DIRS] = "dirs",
	[FLW_DUMP] = "dump", [FLW_ENVI] = "envi", [FLW_RUOK] = "ruok", [FLW_SRST] = "srst",
	[FLW_SRVR] = "srvr", [FLW_STAT] = "stat", [FLW_WCHC] = "wchc", [FLW_WCHP] = "wchp",
	[FLW_WCHS] = "wchs", [FLW_MNTR] = "mntr", [FLW_ISRO] = "isro",
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

static unsigned long long dir_bytes(const char *path)
{
	unsigned long long sum = 0;
	DIR *d = opendir(path);
	struct dirent *e;
	struct stat st;
	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (fstatat(dirfd(d), e->d_name, &st, 0) == 0 && S_ISREG(st.st_mode))
			sum += (unsigned long long)st.st_size;
	closedir(d);
	return sum;
}

static void latency_line(struct conn *c, const struct server_stats *st)
{
	double avg = st->latency_count ? (double)st->latency_total_ms / (double)st->latency_count : 0;
	out(c, "Latency min/avg/max: %llu/%.4f/%llu\n", (unsigned long long)st->latency_min_ms, avg,
	    (unsigned long long)st->latency_max_ms);
}

static uint32_t outstanding(const struct server *srv)
{
	uint32_t n = 0;
	for (const struct conn *k = srv->conns; k; k = k->next)
		n += k->queue_len;
	return n;
}

static void server_lines(struct conn *c)
{
	struct server *srv = c->srv;
	latency_line(c, &srv->stats);
	out(c, "Received: %llu\nSent: %llu\nConnections: %u\nOutstanding: %u\nZxid: 0x%llx\n"
	       "Mode: %s\nNode count: %zu\n",
	    (unsigned long long)srv->stats.packets_received, (unsigned long long)srv->stats.packets_sent,
	    srv->conn_count, outstanding(srv), (unsigned long long)srv->state.last_zxid,
	    server_mode(srv), srv->state.tree.nodes.count);
}

static void connection_line(struct conn *c, const struct conn *k, bool detail)
{
	out(c, " /%s[%d](queued=%u,recved=%llu,sent=%llu", k->peer_text, k->state == CONN_ESTABLISHED,
	    k->queue_len, (unsigned long long)k->received, (unsigned long long)k->sent);
	if (detail && k->session)
		out(c, ",sid=0x%llx,to=%u", (unsigned long long)k->session->id, k->session->timeout_ms);
	out(c, ")\n");
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

/* mntr's ensemble part: who leads, and on the leader its followers. */
static void ensemble_lines(struct conn *c)
{
	struct server *srv = c->srv;
	struct commit *k = &srv->commit;
	out(c, "corral_server_id\t%llu\n", (unsigned long long)k->self);
	out(c, "corral_leader_id\t%llu\n", (unsigned long long)commit_leader(k));
	out(c, "corral_raft_term\t%llu\n", (unsigned long long)raft_current_term(&k->raft));
	out(c, "corral_raft_commit_index\t%llu\n", (unsigned long long)raft_commit_index(&k->raft));
	out(c, "corral_raft_last_index\t%llu\n", (unsigned long long)raft_last_index(&k->raft));
	out(c, "corral_leader_changes\t%llu\n", (unsigned long long)srv->ensemble.leader_changes);
	out(c, "corral_forwarded\t%llu\n", (unsigned long long)srv->forwarded);
	out(c, "corral_forwards_lost\t%llu\n", (unsigned long long)srv->forwards_lost);
	out(c, "corral_forwards_received\t%llu\n", (unsigned long long)srv->forwards_received);
	out(c, "corral_txns_truncated\t%llu\n", (unsigned long long)k->txns_truncated);
	out(c, "corral_log_entries_in_memory\t%zu\n", k->entries.count);
	if (commit_state(k) != RAFT_LEADER)
		return;
	unsigned followers = 0, synced = 0;
	raft_index last = raft_last_index(&k->raft);
	for (unsigned i = 0; i < k->raft.configuration.n; i++) {
		raft_id id = k->raft.configuration.servers[i].id;
		raft_index match = 0;
		if (id == k->self)
			continue;
		followers++;
		if (raft_match_index(&k->raft, id, &match) == 0 && match + 1000 >= last &&
		    peer_transport_up(&srv->ensemble.peers, id))
			synced++;
	}
	out(c, "zk_followers\t%u\n", followers);
	out(c, "zk_synced_followers\t%u\n", synced);
}

static void mntr(struct conn *c)
{
	struct server *srv = c->srv;
	const struct server_stats *st = &srv->stats;
	long fds, max_fds;
	uint64_t ephemerals = 0;
	count_fds(&fds, &max_fds);
	session_for_each(&srv->state.sessions, s)
		ephemerals += s->ephemerals.length;
	out(c, "zk_version\tcorral %s\n", CORRAL_VERSION);
	out(c, "zk_server_state\t%s\n", server_mode(srv));
	out(c, "zk_avg_latency\t%.4f\n",
	    st->latency_count ? (double)st->latency_total_ms / (double)st->latency_count : 0.0);
	out(c, "zk_max_latency\t%llu\n", (unsigned long long)st->latency_max_ms);
	out(c, "zk_min_latency\t%llu\n", (unsigned long long)st->latency_min_ms);
	out(c, "zk_packets_received\t%llu\n", (unsigned long long)st->packets_received);
	out(c, "zk_packets_sent\t%llu\n", (unsigned long long)st->packets_sent);
	out(c, "zk_num_alive_connections\t%u\n", srv->conn_count);
	out(c, "zk_outstanding_requests\t%u\n", outstanding(srv));
	out(c, "zk_znode_count\t%zu\n", srv->state.tree.nodes.count);
	out(c, "zk_watch_count\t%zu\n", srv->watches.watch_count);
	out(c, "zk_ephemerals_count\t%llu\n", (unsigned long long)ephemerals);
	out(c, "zk_approximate_data_size\t%llu\n", (unsigned long long)srv->state.tree.data_bytes);
	out(c, "zk_open_file_descriptor_count\t%ld\n", fds);
	out(c, "zk_max_file_descriptor_count\t%ld\n", max_fds);
	out(c, "zk_global_sessions\t%zu\n", srv->state.sessions.by_id.count);
	out(c, "zk_connection_rejected\t%llu\n", (unsigned long long)st->connections_refused);
	out(c, "zk_last_zxid\t0x%llx\n", (unsigned long long)srv->state.last_zxid);
	out(c, "zk_uptime\t%llu\n", (unsigned long long)(srv->now_ms - srv->started_ms));
	out(c, "corral_txns_committed\t%llu\n", (unsigned long long)srv->commit.txns_committed);
	out(c, "corral_commit_batches\t%llu\n", (unsigned long long)srv->commit.batches_committed);
	/* Group commit made visible: entries per fdatasync. */
	const struct wal *w = &srv->commit.wal;
	out(c, "corral_log_fsyncs\t%llu\n", (unsigned long long)w->batches);
	out(c, "corral_log_entries_written\t%llu\n", (unsigned long long)w->records_written);
	out(c, "corral_log_entries_per_fsync\t%.2f\n",
	    w->batches ? (double)w->records_written / (double)w->batches : 0.0);
	out(c, "corral_log_failed\t%d\n", srv->commit.failed != 0);
	out(c, "corral_log_refusing_for_space\t%d\n", srv->commit.refusing_for_space);
	out(c, "corral_bad_input_closed\t%llu\n", (unsigned long long)st->bad_input_closed);
	if (srv->cfg->in_ensemble)
		ensemble_lines(c);
}


static void watches_by_connection(struct conn *c)
{
	struct server *srv = c->srv;
	for (struct conn *k = srv->conns; k; k = k->next) {
		if (list_empty(&k->watches.entries))
			continue;
		out(c, "0x%llx\n", (unsigned long long)(k->session ? k->session->id : 0));
		watch_owner_for_each_entry(&k->watches, e)
			out(c, "\t%s\n", e->wp->path);
	}
}

static void watches_by_path(struct conn *c)
{
	struct server *srv = c->srv;
	const struct watch_table *t = &srv->watches;
	watch_for_each_path(t, wp) {
		out(c, "%s\n", wp->path);
		watch_path_for_each_entry(wp, e) {
			const struct conn *k = container_of(e->owner, struct conn, watches);
			out(c, "\t0x%llx\n", (unsigned long long)(k->session ? k->session->id : 0));
		}
	}
}

static void run(struct conn *c, enum four_letter_word w)
{
	struct server *srv = c->srv;
	const struct server_config *cfg = srv->cfg;
	struct utsname u;

	switch (w) {
	case FLW_RUOK:
		out(c, "imok");
		break;
	case FLW_ISRO:
		/* ro: an ensemble member without a quorum, serving read-only
		 * sessions (ensemble.read_only). */
		out(c, srv->cfg->in_ensemble && srv->cfg->read_only && !commit_leader(&srv->commit)
		       ? "ro" : "rw");
		break;
	case FLW_SRVR:
		out(c, "Zookeeper version: corral %s, compatible with 3.8\n", CORRAL_VERSION);
		server_lines(c);
		break;
	case FLW_STAT:
		out(c, "Zookeeper version: corral %s, compatible with 3.8\nClients:\n", CORRAL_VERSION);
		for (const struct conn *k = srv->conns; k; k = k->next)
			if (k->state != CONN_CLOSING)
				connection_line(c, k, false);
		out(c, "\n");
		server_lines(c);
		break;
	case FLW_CONS:
		for (const struct conn *k = srv->conns; k; k = k->next)
			if (k->state != CONN_CLOSING)
				connection_line(c, k, true);
		out(c, "\n");
		break;
	case FLW_CONF:
		out(c, "clientPort=%u\nclientPortAddress=%s\ndataDir=%s\ntickTime=%u\n"
		       "maxClientCnxns=%u\nminSessionTimeout=%u\nmaxSessionTimeout=%u\nserverId=1\n",
		    cfg->listen_count ? cfg->listen[0].port : 0,
		    cfg->listen_count ? cfg->listen[0].host : "", cfg->data_dir, cfg->tick_time_ms,
		    cfg->max_connections_per_address, cfg->min_session_timeout_ms,
		    cfg->max_session_timeout_ms);
		break;
	case FLW_MNTR:
		mntr(c);
		break;
	case FLW_WCHS: {
		uint32_t watching = 0;
		for (const struct conn *k = srv->conns; k; k = k->next)
			watching += !list_empty(&k->watches.entries);
		out(c, "%u connections watching %zu paths\nTotal watches:%zu\n", watching,
		    srv->watches.paths.count, srv->watches.watch_count);
		break;
	}
	case FLW_WCHC:
		watches_by_connection(c);
		break;
	case FLW_WCHP:
		watches_by_path(c);
		break;
	case FLW_ENVI:
		uname(&u);
		out(c, "Environment:\nzookeeper.version=corral %s\nhost.name=%s\nos.name=%s\n"
		       "os.arch=%s\nos.version=%s\nuser.dir=%s\n",
		    CORRAL_VERSION, u.nodename, u.sysname, u.machine, u.release, cfg->data_dir);
		break;
	case FLW_DIRS:
	{
		char wal[4200];
		snprintf(wal, sizeof(wal), "%s/wal", cfg->data_dir);
		out(c, "datadir_size: %llu\nlogdir_size: %llu\n", dir_bytes(cfg->data_dir),
		    dir_bytes(wal));
	}
		break;
	case FLW_CRST:
		for (struct conn *k = srv->conns; k; k = k->next)
			k->received = k->sent = 0;
		out(c, "Connection stats reset.\n");
		break;
	case FLW_SRST:
		memset(&srv->stats, 0, sizeof(srv->stats));
		out(c, "Server stats reset.\n");
		break;
	case FLW_DUMP:
		out(c, "SessionTracker dump:\nGlobal Sessions(%zu):\n", srv->state.sessions.by_id.count);
		session_for_each(&srv->state.sessions, s)
			out(c, "0x%llx\t%ums\n", (unsigned long long)s->id, s->timeout_ms);
		out(c, "ephemeral nodes dump:\nSessions with Ephemerals (%zu):\n",
		    srv->state.sessions.by_id.count);
		session_for_each(&srv->state.sessions, s) {
			if (list_empty(&s->ephemerals))
				continue;
			out(c, "0x%llx:\n", (unsigned long long)s->id);
			for (struct znode *n = session_first_ephemeral(s); n;
			     n = session_next_ephemeral(s, n))
				out(c, "\t%s\n", n->path);
		}
		break;
	case FLW_COUNT:
		break;
	}
}

bool four_letter_word_handle(struct conn *c, const uint8_t *p)
{
	int w = four_letter_word_parse((const char *)p, 4);
	if (w < 0)
		return false;
	if (c->srv->cfg->four_letter_words & (1u << w))
		run(c, (enum four_letter_word)w);
	else
		out(c, "%s is not executed because it is not in the whitelist.\n", names[w]);
	log_debug("connection %llu from %s: four-letter word %s", (unsigned long long)c->id,
		  c->peer_text, names[w]);
	server_conn_dirty(c->srv, c);
	conn_close_after_flush(c);
	return true;
}
