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

#include "backup.h"
#include "budget.h"
#include "clients.h"
#include "commit.h"
#include "conn.h"
#include "ensemble.h"
#include "forward.h"
#include "forward_leader.h"
#include "log.h"
#include "metrics.h"
#include "server_config.h"
#include "session.h"
#include "state.h"
#include "status.h"
#include "tree.h"
#include "watch.h"

/* What ZooKeeper's Version.getFullVersion() is: the ZooKeeper version whose
 * protocol corral serves first (clients read its leading digits), then,
 * where ZooKeeper has its git revision, corral's name and version. */

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

unsigned long long four_letter_data_dir_bytes(const struct server_status *ss)
{
	return data_dir_bytes(ss->cfg);
}

unsigned long long four_letter_log_dir_bytes(const struct server_status *ss)
{
	return log_dir_bytes(ss->cfg);
}


/* Every connection, closing ones too (ZooKeeper's count of its cnxns). */
static size_t open_connections(const struct server_status *ss)
{
	return ss->clients->all.length;
}

/* ZooKeeper's ServerStats.toString(), then the node count and, on the
 * leader, the proposal sizes. */
static void server_lines(const struct server_status *ss, struct conn *c)
{
	const struct client_stats *cs = &ss->clients->hub.stats;
	char avg[48];
	metrics_java_double(avg, sizeof(avg), cs->latency_count
		    ? (double)cs->latency_total_ms / (double)cs->latency_count : 0.0);
	out(c, "Latency min/avg/max: %llu/%s/%llu\n", (unsigned long long)cs->latency_min_ms, avg,
	    (unsigned long long)cs->latency_max_ms);
	out(c, "Received: %llu\nSent: %llu\nConnections: %zu\nOutstanding: %zu\nZxid: 0x%llx\n"
	       "Mode: %s\nNode count: %zu\n",
	    (unsigned long long)cs->packets_received, (unsigned long long)cs->packets_sent,
	    open_connections(ss), status_outstanding(ss), (unsigned long long)ss->state->last_zxid,
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
	out(c, "Zookeeper version: %s\n", status_full_version);
	if (status_read_only(ss))
		out(c, "READ-ONLY mode; serving only read-only clients\n");
}

/* ZooKeeper's op names in cons (FinalRequestProcessor's lastOp). */
const char *four_letter_op_name(int32_t op)
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
		    four_letter_op_name(k->last_op), (unsigned long long)k->established_wall_ms,
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

static void write_to_conn(void *ctx, const char *text, size_t len)
{
	struct conn *c = ctx;
	jute_write_raw(&c->obuf, text, len);
}

/* mntr: the metrics table (metrics.c), as ZooKeeper prints it. */
static void mntr(const struct server_status *ss, struct conn *c)
{
	struct metrics_out o = { .write = write_to_conn, .ctx = c };
	metrics_write_mntr(ss, &o, false);
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
	const char *data = (const char *)znode_data(config), *end = data + config->data_len;
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
	/* -1: no such port, as ZooKeeper says it */
	out(c, "clientPort=%d\nsecureClientPort=%d\ndataDir=%s\ndataDirSize=%llu\n"
	       "dataLogDir=%s/wal\ndataLogSize=%llu\ntickTime=%u\nmaxClientCnxns=%u\n"
	       "minSessionTimeout=%u\nmaxSessionTimeout=%u\nclientPortListenBacklog=-1\n"
	       "serverId=%u\n",
	    cfg->listen_count ? (int)cfg->listen[0].port : -1,
	    cfg->tls_listen_count ? (int)cfg->tls_listen[0].port : -1, cfg->data_dir, data_bytes, cfg->data_dir,
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
		jute_write_raw(&c->obuf, znode_data(config), (size_t)config->data_len);
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
	    status_full_version, u.nodename, u.sysname, arch, u.release, pw ? pw->pw_name : "?",
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
			out(c, "\t%s\n", tree_path(&ss->state->tree, z, NULL));
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
		status_reset_stats(ss);
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
