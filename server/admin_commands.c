/* admin_commands: see admin_commands.h. The answers follow ZooKeeper 3.8's
 * command classes (org.apache.zookeeper.server.admin.Commands): the same
 * names, the same JSON types, "command" and "error" last. What corral has
 * not (the JVM's properties, trace masks) is left out. */
#include "admin_commands.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "auth.h"
#include "clients.h"
#include "commit.h"
#include "conn.h"
#include "fourletter.h"
#include "metrics.h"
#include "server_config.h"
#include "session.h"
#include "snapshot.h"
#include "state.h"
#include "tree.h"
#include "watch.h"

#define HTTP_OK 200
#define HTTP_FORBIDDEN 403
#define HTTP_NOT_FOUND 404
#define HTTP_NOT_IMPLEMENTED 501
#define CONFIG_PATH "/zookeeper/config"

/* ---- a JSON writer: members and elements separated as they come ---- */

struct json {
	struct jute_buf *b;
	size_t max_bytes;	/* past it the answer stops growing (-E2BIG) */
	int depth;
	bool more[16];		/* this level has a member already */
};

__attribute__((format(printf, 2, 3)))
static void raw(struct json *j, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		jute_write_raw(j->b, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void string(struct json *j, const char *s, size_t len)
{
	jute_write_raw(j->b, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			raw(j, "\\%c", c);
		else if (c < 0x20)
			raw(j, "\\u%04x", c);
		else
			jute_write_raw(j->b, &c, 1);
	}
	jute_write_raw(j->b, "\"", 1);
}

/* The separator and the key (NULL inside an array). */
static void key(struct json *j, const char *k)
{
	/* Every value passes here: an answer as large as a client's unread
	 * replies may be (client.max_output_bytes) stops, and is refused. */
	if (j->b->len > j->max_bytes && !j->b->error)
		j->b->error = -E2BIG;
	if (j->more[j->depth])
		jute_write_raw(j->b, ",", 1);
	j->more[j->depth] = true;
	if (k) {
		string(j, k, strlen(k));
		jute_write_raw(j->b, ":", 1);
	}
}

static void open_(struct json *j, const char *k, char bracket)
{
	key(j, k);
	jute_write_raw(j->b, &bracket, 1);
	if (j->depth + 1 < (int)(sizeof(j->more) / sizeof(j->more[0])))
		j->more[++j->depth] = false;
}

static void close_(struct json *j, char bracket)
{
	jute_write_raw(j->b, &bracket, 1);
	if (j->depth > 0)
		j->depth--;
}

static void j_int(struct json *j, const char *k, long long v)
{
	key(j, k);
	raw(j, "%lld", v);
}

static void j_bool(struct json *j, const char *k, bool v)
{
	key(j, k);
	raw(j, "%s", v ? "true" : "false");
}

static void j_double(struct json *j, const char *k, double v)
{
	char text[48];
	key(j, k);
	metrics_java_double(text, sizeof(text), v);
	raw(j, "%s", text);
}

static void j_str(struct json *j, const char *k, const char *v)
{
	key(j, k);
	string(j, v, strlen(v));
}

/* ---- the commands ---- */

static void ruok(const struct server_status *ss, struct json *j)
{
}

static void write_to_buf(void *ctx, const char *text, size_t len)
{
	jute_write_raw(ctx, text, len);
}

/* mntr's rows, "name" : value, each followed by a comma. */
static void monitor(const struct server_status *ss, struct json *j)
{
	struct metrics_out o = { .write = write_to_buf, .ctx = j->b };
	metrics_write_mntr(ss, &o, true);
	j->b->len -= j->b->len && j->b->data[j->b->len - 1] == '\n';
	j->b->len -= j->b->len && j->b->data[j->b->len - 1] == ',';
	j->more[j->depth] = true;
}

static void buffer_stats(struct json *j, const char *k, const struct client_stats *st)
{
	open_(j, k, '{');
	j_int(j, "last_buffer_size", st->responses ? (long long)st->response_last_bytes : -1);
	j_int(j, "min_buffer_size", st->responses ? (long long)st->response_min_bytes : -1);
	j_int(j, "max_buffer_size", st->responses ? (long long)st->response_max_bytes : -1);
	close_(j, '}');
}

/* ServerStats, as server_stats and stats give it. */
static void server_stats(const struct server_status *ss, struct json *j)
{
	const struct client_stats *st = &ss->clients->hub.stats;
	j_str(j, "version", status_full_version);
	j_bool(j, "read_only", status_read_only(ss));
	open_(j, "server_stats", '{');
	j_int(j, "packets_sent", (long long)st->packets_sent);
	j_int(j, "packets_received", (long long)st->packets_received);
	j_int(j, "fsync_threshold_exceed_count", 0);
	buffer_stats(j, "client_response_stats", st);
	j_int(j, "data_dir_size", (long long)four_letter_data_dir_bytes(ss));
	j_int(j, "log_dir_size", (long long)four_letter_log_dir_bytes(ss));
	j_bool(j, "provider_null", false);
	j_str(j, "server_state", status_mode(ss));
	j_int(j, "last_processed_zxid", ss->state->last_zxid);
	j_int(j, "outstanding_requests", (long long)status_outstanding(ss));
	j_double(j, "avg_latency", st->latency_count
		 ? (double)st->latency_total_ms / (double)st->latency_count : 0.0);
	j_int(j, "max_latency", (long long)st->latency_max_ms);
	j_int(j, "min_latency", (long long)st->latency_min_ms);
	j_int(j, "num_alive_client_connections", (long long)ss->clients->all.length);
	j_int(j, "uptime", (long long)(ss->clients->hub.now_ms - ss->started_ms));
	j_int(j, "auth_failed_count", (long long)st->auth_failed);
	j_int(j, "non_mtlsremote_conn_count", 0);
	j_int(j, "non_mtlslocal_conn_count", 0);
	close_(j, '}');
	buffer_stats(j, "client_response", st);
	j_int(j, "node_count", (long long)ss->state->tree.nodes.count);
}

/* ServerCnxn.getConnectionInfo(): brief for stats, full for connections. */
static void connection(struct json *j, const struct conn *k, bool brief)
{
	open_(j, NULL, '{');
	j_str(j, "remote_socket_address", k->peer_text);
	j_int(j, "interest_ops", k->state == CONN_ESTABLISHED);
	j_int(j, "outstanding_requests", (long long)k->queue.length);
	j_int(j, "packets_received", (long long)k->received);
	j_int(j, "packets_sent", (long long)k->sent);
	if (!brief && k->session) {
		j_int(j, "session_id", k->session->id);
		j_str(j, "last_operation", four_letter_op_name(k->last_op));
		j_int(j, "established", (long long)k->established_wall_ms);
		j_int(j, "session_timeout", k->session->timeout_ms);
		j_int(j, "last_cxid", k->last_cxid);
		j_int(j, "last_zxid", k->last_zxid);
		j_int(j, "last_response_time", (long long)k->last_response_wall_ms);
		j_int(j, "last_latency", (long long)k->last_latency_ms);
		j_int(j, "min_latency", (long long)k->min_latency_ms);
		j_int(j, "avg_latency", (long long)(k->latency_count
			? k->total_latency_ms / k->latency_count : 0));
		j_int(j, "max_latency", (long long)k->max_latency_ms);
	}
	close_(j, '}');
}

static void connection_list(const struct server_status *ss, struct json *j, bool brief)
{
	/* ZooKeeper lists its secure port's connections apart. */
	open_(j, "connections", '[');
	clients_for_each(ss->clients, k)
		if (k->state != CONN_CLOSING && !k->tls)
			connection(j, k, brief);
	close_(j, ']');
	open_(j, "secure_connections", '[');
	clients_for_each(ss->clients, k)
		if (k->state != CONN_CLOSING && k->tls)
			connection(j, k, brief);
	close_(j, ']');
}

static void stats(const struct server_status *ss, struct json *j)
{
	server_stats(ss, j);
	connection_list(ss, j, true);
}

static void connections(const struct server_status *ss, struct json *j)
{
	connection_list(ss, j, false);
}

static void configuration(const struct server_status *ss, struct json *j)
{
	const struct server_config *cfg = ss->cfg;
	char wal[4200];
	snprintf(wal, sizeof(wal), "%s/wal", cfg->data_dir);
	j_int(j, "client_port", cfg->listen_count ? cfg->listen[0].port : 0);
	j_str(j, "data_dir", cfg->data_dir);
	j_str(j, "data_log_dir", wal);
	j_int(j, "tick_time", cfg->tick_time_ms);
	j_int(j, "max_client_cnxns", cfg->max_connections_per_address);
	j_int(j, "min_session_timeout", cfg->min_session_timeout_ms);
	j_int(j, "max_session_timeout", cfg->max_session_timeout_ms);
	j_int(j, "server_id", cfg->in_ensemble ? cfg->ensemble.id : 0);
	j_int(j, "client_port_listen_backlog", -1);
}

/* Environment.list(), without the JVM's entries (as envi). */
static void environment(const struct server_status *ss, struct json *j)
{
	struct utsname u;
	char cwd[4096];
	const struct passwd *pw = getpwuid(geteuid());
	uname(&u);
	if (!getcwd(cwd, sizeof(cwd)))
		snprintf(cwd, sizeof(cwd), "/");
	j_str(j, "zookeeper.version", status_full_version);
	j_str(j, "host.name", u.nodename);
	j_str(j, "os.name", u.sysname);
	j_str(j, "os.arch", strcmp(u.machine, "x86_64") == 0 ? "amd64" : u.machine);
	j_str(j, "os.version", u.release);
	j_str(j, "user.name", pw ? pw->pw_name : "?");
	j_str(j, "user.home", pw ? pw->pw_dir : "?");
	j_str(j, "user.dir", cwd);
}

static void dirs(const struct server_status *ss, struct json *j)
{
	j_int(j, "datadir_size", (long long)four_letter_data_dir_bytes(ss));
	j_int(j, "logdir_size", (long long)four_letter_log_dir_bytes(ss));
}

static void watch_summary(const struct server_status *ss, struct json *j)
{
	long long watching = 0;
	clients_for_each(ss->clients, k)
		watching += !list_empty(&k->watches.entries);
	j_int(j, "num_connections", watching);
	j_int(j, "num_paths", (long long)ss->watches->paths.count);
	j_int(j, "num_total_watches", (long long)ss->watches->watch_count);
}

static void watches(const struct server_status *ss, struct json *j)
{
	char id[32];
	open_(j, "session_id_to_watched_paths", '{');
	clients_for_each(ss->clients, k) {
		if (list_empty(&k->watches.entries))
			continue;
		snprintf(id, sizeof(id), "%lld", (long long)(k->session ? k->session->id : 0));
		open_(j, id, '[');
		watch_owner_for_each_entry(&k->watches, e)
			j_str(j, NULL, e->wp->path);
		close_(j, ']');
	}
	close_(j, '}');
}

static void watches_by_path(const struct server_status *ss, struct json *j)
{
	open_(j, "path_to_session_ids", '{');
	watch_for_each_path(ss->watches, wp) {
		open_(j, wp->path, '[');
		watch_path_for_each_entry(wp, e) {
			const struct conn *k = container_of(e->owner, struct conn, watches);
			j_int(j, NULL, k->session ? k->session->id : 0);
		}
		close_(j, ']');
	}
	close_(j, '}');
}

static void is_read_only(const struct server_status *ss, struct json *j)
{
	j_bool(j, "read_only", status_read_only(ss));
}

/* The newest snapshot: its zxid in hex and its file's time in seconds, as
 * ZooKeeper's (0 and 0 before the first). */
static void last_snapshot(const struct server_status *ss, struct json *j)
{
	char zxid[32], path[4200];
	struct stat st;
	uint64_t index = ss->commit->snapshot_index;
	snprintf(zxid, sizeof(zxid), "%llx", (unsigned long long)index);
	snapshot_path(ss->cfg->data_dir, index, path, sizeof(path));
	j_str(j, "zxid", zxid);
	j_int(j, "timestamp", index && stat(path, &st) == 0 ? (long long)st.st_mtime : 0);
}

/* The members as /zookeeper/config lists them, "server.N=SPEC". */
static void voting_view(const struct server_status *ss, struct json *j)
{
	const struct znode *config = tree_lookup(&ss->state->tree, CONFIG_PATH, strlen(CONFIG_PATH));
	open_(j, "current_config", '{');
	if (config && config->data_len > 0) {
		const char *p = (const char *)znode_data(config), *end = p + config->data_len;
		while (p < end) {
			const char *eol = memchr(p, '\n', (size_t)(end - p));
			if (!eol)
				eol = end;
			const char *eq = memchr(p, '=', (size_t)(eol - p));
			if (eq && eol - p > 7 && memcmp(p, "server.", 7) == 0) {
				char id[16];
				snprintf(id, sizeof(id), "%.*s", (int)(eq - p - 7), p + 7);
				key(j, id);
				string(j, eq + 1, (size_t)(eol - eq - 1));
			}
			p = eol + 1;
		}
	}
	close_(j, '}');
}

static void zabstate(const struct server_status *ss, struct json *j)
{
	bool ensemble = ss->cfg->in_ensemble;
	j_bool(j, "voting", ensemble && !commit_is_observer(ss->commit));
	j_str(j, "zabstate", !ensemble ? "" : commit_leader(ss->commit) ? "broadcast" : "election");
}

/* Returns 0 or an error text (ZooKeeper answers 200 with "error" set). */
static const char *leader(const struct server_status *ss, struct json *j)
{
	if (!ss->cfg->in_ensemble)
		return "server is not initialized";
	raft_id id = commit_leader(ss->commit);
	j_bool(j, "is_leader", commit_state(ss->commit) == RAFT_LEADER);
	j_int(j, "leader_id", (long long)id);
	const struct ensemble_member *m = NULL;
	for (size_t i = 0; i < ss->cfg->ensemble.member_count; i++)
		if (ss->cfg->ensemble.members[i].id == id)
			m = &ss->cfg->ensemble.members[i];
	j_str(j, "leader_ip", m && m->peer.host ? m->peer.host : "");
	return NULL;
}

struct expiry {
	uint64_t at_ms;
	int64_t session_id;
};

static int expiry_order(const void *a, const void *b)
{
	const struct expiry *x = a, *y = b;
	if (x->at_ms != y->at_ms)
		return x->at_ms < y->at_ms ? -1 : 1;
	return x->session_id < y->session_id ? -1 : x->session_id > y->session_id;
}

/* SessionTrackerImpl's expiry sets (the wall time each expires at, rounded
 * up to the tick as ZooKeeper buckets them) and the ephemerals by session. */
static void dump(const struct server_status *ss, struct json *j)
{
	const struct session_table *t = &ss->state->sessions;
	size_t n = 0, count = t->by_id.count;
	uint64_t tick = ss->cfg->tick_time_ms ? ss->cfg->tick_time_ms : 1;
	struct expiry *list = calloc(count + 1, sizeof(*list));
	char id[32];
	open_(j, "expiry_time_to_session_ids", '{');
	if (list) {
		int64_t offset = loop_wall_ms() - (int64_t)ss->clients->hub.now_ms;
		session_for_each(t, s) {
			if (n == count)
				break;
			int64_t wall = offset + (int64_t)s->deadline_ms;
			list[n].at_ms = ((uint64_t)(wall < 0 ? 0 : wall) / tick + 1) * tick;
			list[n++].session_id = s->id;
		}
		qsort(list, n, sizeof(*list), expiry_order);
	}
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || list[i].at_ms != list[i - 1].at_ms) {
			if (i > 0)
				close_(j, ']');
			snprintf(id, sizeof(id), "%llu", (unsigned long long)list[i].at_ms);
			open_(j, id, '[');
		}
		j_int(j, NULL, list[i].session_id);
	}
	if (n > 0)
		close_(j, ']');
	close_(j, '}');
	free(list);
	open_(j, "session_id_to_ephemeral_paths", '{');
	session_for_each(t, s) {
		if (list_empty(&s->ephemerals))
			continue;
		snprintf(id, sizeof(id), "%lld", (long long)s->id);
		open_(j, id, '[');
		for (struct znode *z = session_first_ephemeral(s); z; z = session_next_ephemeral(s, z))
			j_str(j, NULL, tree_path(&ss->state->tree, z, NULL));
		close_(j, ']');
	}
	close_(j, '}');
}

/* The resets (srst, crst): they need authentication (admin_commands.h). */
static void stat_reset(const struct server_status *ss, struct json *j)
{
	status_reset_stats(ss);
}

static void connection_stat_reset(const struct server_status *ss, struct json *j)
{
	clients_reset_stats(ss->clients);
}

/* ZooKeeper 3.9's AuthRequest(Perms.ALL, "/"): the caller's identities (its
 * address, and what its Authorization header proves) may do ALL on "/". */
static bool authorized(const struct server_status *ss, const struct admin_caller *caller)
{
	struct auth_identities ids;
	bool ok = false;
	const struct znode *root = tree_lookup(&ss->state->tree, "/", 1);
	auth_identities_init(&ids, &caller->peer);
	const char *h = caller->authorization;
	const char *space = h ? strchr(h, ' ') : NULL;
	if (h && space && space > h && space[1]) {
		const char *credentials = space + 1;
		if (auth_add(&ids, h, (size_t)(space - h), (const uint8_t *)credentials,
			     strlen(credentials), ss->cfg->super_digest) < 0)
			goto out;
	} else if (h) {
		goto out;	/* present but not "SCHEME CREDENTIALS" */
	}
	ok = root && auth_allowed(&ids, znode_acl(root), ZK_PERM_ALL);
out:
	auth_identities_free(&ids);
	return ok;
}

struct command {
	const char *name, *alias;
	int word;		/* its four-letter word (the whitelist), or -1 */
	bool changes_state;	/* needs authentication: see admin_commands.h */
	void (*run)(const struct server_status *ss, struct json *j);
};

static const struct command commands[] = {
	{ "configuration", "conf", FLW_CONF, false, configuration },
	{ "connection_stat_reset", "crst", FLW_CRST, true, connection_stat_reset },
	{ "connections", "cons", FLW_CONS, false, connections },
	{ "dirs", NULL, FLW_DIRS, false, dirs },
	{ "dump", NULL, FLW_DUMP, false, dump },
	{ "environment", "envi", FLW_ENVI, false, environment },
	{ "is_read_only", "isro", FLW_ISRO, false, is_read_only },
	{ "last_snapshot", "lsnp", -1, false, last_snapshot },
	{ "leader", "lead", -1, false, NULL },
	{ "monitor", "mntr", FLW_MNTR, false, monitor },
	{ "observer_connection_stat_reset", "orst", -1, true, NULL },
	{ "restore", "rest", -1, true, NULL },
	{ "ruok", NULL, FLW_RUOK, false, ruok },
	{ "server_stats", "srvr", FLW_SRVR, false, server_stats },
	{ "set_trace_mask", "stmk", -1, true, NULL },
	{ "snapshot", "snap", -1, true, NULL },
	{ "stat_reset", "srst", FLW_SRST, true, stat_reset },
	{ "stats", "stat", FLW_STAT, false, stats },
	{ "voting_view", NULL, -1, false, voting_view },
	{ "watch_summary", "wchs", FLW_WCHS, false, watch_summary },
	{ "watches", "wchc", FLW_WCHC, false, watches },
	{ "watches_by_path", "wchp", FLW_WCHP, false, watches_by_path },
	{ "zabstate", NULL, -1, false, zabstate },
};
#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static const struct command *find(const char *name)
{
	for (size_t i = 0; i < COMMAND_COUNT; i++)
		if (strcmp(commands[i].name, name) == 0 ||
		    (commands[i].alias && strcmp(commands[i].alias, name) == 0))
			return &commands[i];
	return NULL;
}

/* ZooKeeper's CommandResponse: the command's name and the error, last. */
static unsigned finish(struct json *j, const char *command, const char *error, unsigned status)
{
	j_str(j, "command", command);
	key(j, "error");
	if (error)
		string(j, error, strlen(error));
	else
		raw(j, "null");
	close_(j, '}');
	jute_write_raw(j->b, "\n", 1);
	return status;
}

unsigned admin_command_run(const struct server_status *ss, const char *name,
			   const struct admin_caller *caller, struct jute_buf *out)
{
	struct json j = { .b = out, .max_bytes = ss->cfg->max_output_bytes };
	char error[160];
	const struct command *c = find(name);
	open_(&j, NULL, '{');
	if (!c) {
		snprintf(error, sizeof(error), "Unknown command: %.64s", name);
		return finish(&j, name, error, HTTP_NOT_FOUND);
	}
	if (c->word >= 0 && !(ss->cfg->four_letter_words & (1u << c->word))) {
		snprintf(error, sizeof(error), "%s is not executed because it is not in the whitelist "
			 "(client.four_letter_words)", four_letter_word_name((enum four_letter_word)c->word));
		return finish(&j, c->name, error, HTTP_FORBIDDEN);
	}
	if (c->changes_state && !authorized(ss, caller))
		return finish(&j, c->name, "this command changes the server's state: it needs an "
			      "Authorization header whose identity may do ALL on /", HTTP_FORBIDDEN);
	if (c->changes_state && !c->run)
		return finish(&j, c->name, "not implemented in corral", HTTP_NOT_IMPLEMENTED);
	if (c->run) {
		c->run(ss, &j);
		return finish(&j, c->name, NULL, HTTP_OK);
	}
	/* leader: an error of its own, as ZooKeeper's standalone server says. */
	const char *err = leader(ss, &j);
	return finish(&j, c->name, err, HTTP_OK);
}

void admin_commands_index(struct jute_buf *out)
{
	for (size_t i = 0; i < COMMAND_COUNT; i++) {
		char line[160];
		int n = snprintf(line, sizeof(line), "<a href=\"/commands/%s\">%s</a>\n<br/>\n",
				 commands[i].name, commands[i].name);
		jute_write_raw(out, line, (size_t)n);
	}
}
