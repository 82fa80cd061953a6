/* members: corralctl's commands for an ensemble's membership.
 *
 * The members are what /zookeeper/config says (ZooKeeper's dynamic-config
 * format: "server.N=PEERHOST:PORT:0:participant|observer;CLIENT" lines
 * and "version=HEX"); each member's state and the leader it knows come from
 * its own mntr (zk_server_state, corral_leader_id), asked at its client
 * address. add and remove are ZooKeeper's reconfig op (incremental) and
 * transfer-leader is corral's opcode 5001 (it waits until the new leader
 * leads); all three are sent to the leader, found with mntr's
 * corral_leader_id. A server that leaves never hears of the commit that
 * removes it, so a change sent through it would lose its answer; when the
 * leader itself leaves, the change goes through a member that stays. Changes need WRITE on /zookeeper/config: in practice the super
 * user (--auth super:PASSWORD). Usage is checked before anything is sent. */
#include "members.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "jute.h"
#include "proto.h"

#define CONFIG_PATH "/zookeeper/config"
#define ZK_OP_CORRAL_TRANSFER_LEADER 5001
#define MAX_ID 255
#define POLL_INTERVAL_MS 50

struct member {
	unsigned id;
	bool observer;
	/* Room for any DNS name (253 bytes), brackets, a port: a line that
	 * does not fit is refused, never cut short. */
	char peer[264];			/* HOST:PORT */
	char client[264];		/* [HOST:]PORT, as /zookeeper/config gives it; "-": none */
	char host[256], port[16];	/* where its clients connect (for mntr) */
	char state[40];			/* zk_server_state, or why there is none */
	unsigned leader_id;		/* corral_leader_id; 0: none known or none said */
};

struct members {
	struct member *m;
	size_t n;
	char version[24];		/* hex, as given; "" when there is none */
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int parse_id(const char *text, unsigned *ret)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(text, &end, 10);
	if (!isdigit((unsigned char)text[0]) || *end || errno || v < 1 || v > MAX_ID)
		return -1;
	*ret = (unsigned)v;
	return 0;
}

/* HOST:PORT with the port given (an IPv6 host in brackets), and nothing that
 * would change the meaning of a reconfig's server spec (',', ';', '='). */
static bool address_ok(const char *text)
{
	char host[256], port[16], why[128];
	if (strspn(text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:[]") !=
	    strlen(text))
		return false;
	const char *colon = strrchr(text, ':');
	if (!colon || (text[0] == '[' ? colon[-1] != ']' : colon != strchr(text, ':')))
		return false;
	return zkc_split_server(text, host, sizeof(host), port, sizeof(port), why, sizeof(why)) == 0;
}

/* "[HOST:]PORT" -> where to connect; a missing or wildcard host means the
 * member's peer host. */
static int client_address(struct member *m, const char *peer_host, size_t peer_host_len)
{
	const char *colon = strrchr(m->client, ':');
	const char *port = colon ? colon + 1 : m->client;
	size_t hlen = colon ? (size_t)(colon - m->client) : 0;
	const char *host = m->client;
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host++;
		hlen -= 2;
	}
	if (hlen == 0 || (hlen == 7 && memcmp(host, "0.0.0.0", 7) == 0) ||
	    (hlen == 2 && memcmp(host, "::", 2) == 0)) {
		host = peer_host;
		hlen = peer_host_len;
		if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
			host++;
			hlen -= 2;
		}
	}
	if (hlen >= sizeof(m->host) || strlen(port) >= sizeof(m->port))
		return -1;
	snprintf(m->host, sizeof(m->host), "%.*s", (int)hlen, host);
	snprintf(m->port, sizeof(m->port), "%s", port);
	return 0;
}

/* "server.N=PEERHOST:PORT[:PORT][:ROLE][;[CLIENTHOST:]CLIENTPORT]". */
static int parse_member(const char *line, size_t len, struct member *m)
{
	char text[400];
	memset(m, 0, sizeof(*m));
	if (len >= sizeof(text) || len < 7 || memcmp(line, "server.", 7) != 0)
		return -1;
	memcpy(text, line, len);
	text[len] = '\0';
	char *eq = strchr(text, '=');
	if (!eq)
		return -1;
	*eq = '\0';
	if (parse_id(text + 7, &m->id) < 0)
		return -1;
	char *spec = eq + 1;
	char *semi = strchr(spec, ';');
	if (semi)
		*semi = '\0';
	int n = snprintf(m->client, sizeof(m->client), "%s", semi ? semi + 1 : "");
	if (n < 0 || (size_t)n >= sizeof(m->client))
		return -1;
	char *host_end = spec[0] == '[' ? strchr(spec, ']') : spec;
	char *colon = host_end ? strchr(host_end, ':') : NULL;
	if (!colon || colon == spec)
		return -1;
	char *fields[3] = { 0 };
	int nf = 0;
	for (char *f = colon + 1; f && nf < 3; nf++) {
		fields[nf] = f;
		f = strchr(f, ':');
		if (f)
			*f++ = '\0';
	}
	if (!fields[0][0] || strspn(fields[0], "0123456789") != strlen(fields[0]))
		return -1;
	const char *role = nf > 1 && isalpha((unsigned char)fields[nf - 1][0]) ? fields[nf - 1] : NULL;
	if (role && strcmp(role, "observer") == 0)
		m->observer = true;
	else if (role && strcmp(role, "participant") != 0)
		return -1;
	n = snprintf(m->peer, sizeof(m->peer), "%.*s:%s", (int)(colon - spec), spec, fields[0]);
	if (n < 0 || (size_t)n >= sizeof(m->peer))
		return -1;	/* a host name longer than any member's can be */
	if (!m->client[0])
		snprintf(m->client, sizeof(m->client), "-");	/* (not from corral) */
	else if (client_address(m, spec, (size_t)(colon - spec)) < 0)
		return -1;
	return 0;
}

/* /zookeeper/config's data into ms. Returns 0, or an exit status with the
 * message printed. */
static int parse_config(const char *where, const char *data, size_t len, struct members *ms)
{
	memset(ms, 0, sizeof(*ms));
	size_t lines = 1;
	for (size_t i = 0; i < len; i++)
		lines += data[i] == '\n';
	ms->m = calloc(lines, sizeof(*ms->m));
	if (!ms->m) {
		fprintf(stderr, "corralctl: out of memory\n");
		return EXIT_NO;
	}
	for (size_t start = 0, no = 1; start < len; no++) {
		size_t end = start;
		while (end < len && data[end] != '\n')
			end++;
		const char *line = data + start;
		size_t n = end - start;
		if (n > 8 && memcmp(line, "version=", 8) == 0) {
			snprintf(ms->version, sizeof(ms->version), "%.*s", (int)(n - 8), line + 8);
		} else if (n > 0) {
			if (parse_member(line, n, &ms->m[ms->n]) < 0) {
				fprintf(stderr, "corralctl: %s: " CONFIG_PATH " line %zu does not parse: "
					"'%.*s'\n", where, no, (int)(n > 200 ? 200 : n), line);
				return EXIT_NO;
			}
			ms->n++;
		}
		start = end + 1;
	}
	if (ms->n == 0) {
		fprintf(stderr, "corralctl: %s: " CONFIG_PATH " lists no members: the server is "
			"not part of an ensemble (standalone)\n", where);
		return EXIT_NO;
	}
	return 0;
}

/* getData /zookeeper/config in the session of c: -1 when it went
 * unanswered or the reply does not parse (c->error says which), else 0 with
 * the server's error code in *err and, on ZOK, the text (in c's buffer). */
static int get_config(struct zk_client *c, int32_t *err, const uint8_t **data, int32_t *len)
{
	struct jute_buf b = { 0 };
	struct jute_reader body;
	jute_write_string(&b, CONFIG_PATH, (int32_t)strlen(CONFIG_PATH));
	jute_write_bool(&b, false);
	int r = zkc_call(c, ZK_OP_GET_DATA, &b, err, &body);
	jute_buf_free(&b);
	if (r < 0)
		return -1;
	if (*err != ZOK)
		return 0;
	jute_read_buffer(&body, data, len);
	if (body.error) {
		snprintf(c->error, sizeof(c->error), "the getData reply does not parse");
		return -1;
	}
	return 0;
}

/* /zookeeper/config in the session of c, parsed into ms. */
static int read_config(struct zk_client *c, const char *where, struct members *ms)
{
	const uint8_t *data;
	int32_t err, len;
	memset(ms, 0, sizeof(*ms));
	if (get_config(c, &err, &data, &len) < 0)
		return unreachable_at(where, c);
	if (err != ZOK)
		return answered_error(CONFIG_PATH, err);
	return parse_config(where, (const char *)data, len > 0 ? (size_t)len : 0, ms);
}

/* A session at the server given with -s, and its /zookeeper/config; the
 * session stays open in x->zk. */
static int members_of(struct ctx *x, struct members *ms)
{
	memset(ms, 0, sizeof(*ms));
	int status = session_at(x, &x->zk, x->host, x->port, x->server);
	return status ? status : read_config(&x->zk, x->server, ms);
}

static const struct member *find(const struct members *ms, unsigned id)
{
	for (size_t i = 0; i < ms->n; i++)
		if (ms->m[i].id == id)
			return &ms->m[i];
	return NULL;
}

/* mntr at host:port: zk_server_state into state (or why there is none),
 * corral_leader_id into *ret_leader (0 when none). Returns false when the
 * server could not be reached. */
static bool ask_mntr(const struct ctx *x, const char *host, const char *port, char *state,
		     size_t size, unsigned *ret_leader, bool *ret_has_leader)
{
	struct zk_client c;
	struct zkc_kv kv = { 0 };
	char *text;
	size_t len;
	*ret_leader = 0;
	*ret_has_leader = false;
	if (!host[0]) {
		snprintf(state, size, "(no client address)");
		return false;
	}
	zkc_init(&c, x->timeout_ms);
	if (zkc_word(&c, host, port, "mntr", &text, &len) < 0) {
		snprintf(state, size, "unreachable");
		return false;
	}
	if (zkc_kv_parse(&kv, text, "\t") < 0) {
		zkc_kv_free(&kv);
		snprintf(state, size, "(out of memory)");
		return true;
	}
	const char *s = zkc_kv_get(&kv, "zk_server_state");
	const char *l = zkc_kv_get(&kv, "corral_leader_id");
	snprintf(state, size, "%s", s ? s : kv.answered ? "(mntr has no state)" : "(mntr not enabled)");
	if (l) {
		unsigned id;
		*ret_has_leader = true;
		if (parse_id(l, &id) == 0)
			*ret_leader = id;
	}
	zkc_kv_free(&kv);
	return true;
}

static void print_leader(const struct ctx *x, unsigned leader, bool already)
{
	if (x->json) {
		json_open(NULL, '{');
		json_int("leader", leader);
		json_bool("already", already);
		json_close('}');
	} else {
		printf(already ? "leader: %u (already)\n" : "leader: %u\n", leader);
	}
}

/* members list as one JSON object; leader 0: none known, or disputed. */
static void list_json(const struct members *ms, unsigned leader, unsigned distinct)
{
	json_open(NULL, '{');
	json_open("members", '[');
	for (size_t i = 0; i < ms->n; i++) {
		const struct member *m = &ms->m[i];
		json_open(NULL, '{');
		json_int("id", m->id);
		json_str("role", m->observer ? "observer" : "participant");
		json_str("peer", m->peer);
		json_str("client", m->client);
		json_str("state", m->state);
		if (m->leader_id)
			json_int("leader_id", m->leader_id);
		else
			json_null("leader_id");
		json_close('}');
	}
	json_close(']');
	json_str("version", ms->version[0] ? ms->version : NULL);
	if (distinct == 1)
		json_int("leader", leader);
	else
		json_null("leader");
	json_bool("leader_disputed", distinct > 1);
	json_close('}');
}

static int cmd_list(struct ctx *x)
{
	struct members ms;
	int status = members_of(x, &ms);
	zkc_close(&x->zk);
	if (status) {
		free(ms.m);
		return status;
	}
	for (size_t i = 0; i < ms.n; i++) {
		struct member *m = &ms.m[i];
		bool has_leader;
		ask_mntr(x, m->host, m->port, m->state, sizeof(m->state), &m->leader_id, &has_leader);
		if (!has_leader && strcmp(m->state, "leader") == 0)
			m->leader_id = m->id;	/* not corral: its own word for it */
	}
	if (x->json) {
		unsigned distinct = 0, leader = 0;
		for (size_t i = 0; i < ms.n; i++) {
			unsigned l = ms.m[i].leader_id;
			if (l && distinct == 0) {
				leader = l;
				distinct = 1;
			} else if (l && l != leader) {
				distinct = 2;
			}
		}
		list_json(&ms, leader, distinct);
		free(ms.m);
		return EXIT_SUCCESS;
	}
	static const char *const head[] = { "id", "role", "peer", "client", "state" };
	int w[5];
	for (int k = 0; k < 5; k++)
		w[k] = (int)strlen(head[k]);
	for (size_t i = 0; i < ms.n; i++) {
		char id[8];
		const struct member *m = &ms.m[i];
		int lens[5] = { snprintf(id, sizeof(id), "%u", m->id), m->observer ? 8 : 11,
				(int)strlen(m->peer), (int)strlen(m->client), 0 };
		for (int k = 0; k < 4; k++)
			if (lens[k] > w[k])
				w[k] = lens[k];
	}
	printf("%-*s  %-*s  %-*s  %-*s  %s\n", w[0], head[0], w[1], head[1], w[2], head[2], w[3],
	       head[3], head[4]);
	for (size_t i = 0; i < ms.n; i++) {
		const struct member *m = &ms.m[i];
		printf("%-*u  %-*s  %-*s  %-*s  %s\n", w[0], m->id, w[1],
		       m->observer ? "observer" : "participant", w[2], m->peer, w[3], m->client,
		       m->state);
	}
	if (ms.version[0])
		printf("version: 0x%s\n", ms.version);
	/* The leader the reachable members name; they may disagree for a
	 * moment during an election. */
	unsigned named[MAX_ID + 1] = { 0 }, distinct = 0, leader = 0;
	for (size_t i = 0; i < ms.n; i++) {
		unsigned l = ms.m[i].leader_id;
		if (l && named[l]++ == 0) {
			distinct++;
			leader = l;
		}
	}
	if (distinct == 0) {
		printf("leader: none known\n");
	} else if (distinct == 1) {
		printf("leader: %u\n", leader);
	} else {
		printf("leader: disputed:");
		for (size_t i = 0; i < ms.n; i++)
			if (ms.m[i].leader_id)
				printf(" %u names %u;", ms.m[i].id, ms.m[i].leader_id);
		printf("\n");
	}
	free(ms.m);
	return EXIT_SUCCESS;
}

/* The message for an error the server answered a membership change with. */
static int change_error(const char *where, int32_t err)
{
	switch (err) {
	case ZNOAUTH:
		fprintf(stderr, "corralctl: " CONFIG_PATH ": not authorized (NOAUTH): changing the "
			"members needs WRITE on " CONFIG_PATH " (e.g. --auth super:PASSWORD)\n");
		break;
	case ZRECONFIGDISABLED:
		fprintf(stderr, "corralctl: %s: reconfig is disabled on the server (ensemble.reconfig "
			"is off) (RECONFIGDISABLED)\n", where);
		break;
	case ZRECONFIGINPROGRESS:
		fprintf(stderr, "corralctl: %s: another change of the members is in progress; try "
			"again once it is done (RECONFIGINPROGRESS)\n", where);
		break;
	case ZNEWCONFIGNOQUORUM:
		fprintf(stderr, "corralctl: %s: the new members would have no quorum of live servers "
			"(NEWCONFIGNOQUORUM)\n", where);
		break;
	case ZBADARGUMENTS:
		fprintf(stderr, "corralctl: %s: the server refused the change as invalid "
			"(BADARGUMENTS)\n", where);
		break;
	case ZUNIMPLEMENTED:
		fprintf(stderr, "corralctl: %s: the server does not implement this request "
			"(UNIMPLEMENTED)\n", where);
		break;
	default:
		return answered_error(where, err);
	}
	return EXIT_NO;
}

/* The members' text as a change's answer gives it, on stdout. */
static void print_config(const uint8_t *data, int32_t len, bool x_json)
{
	if (x_json) {
		json_open(NULL, '{');
		json_strn("config", (const char *)data, len > 0 ? (size_t)len : 0);
		json_close('}');
	} else if (len > 0) {
		fwrite(data, 1, (size_t)len, stdout);
		if (data[len - 1] != '\n')
			putchar('\n');
	}
}

/* reconfig's status when the change went out and no answer came back (the
 * connection closed or timed out): change_outcome() reads what became of it. */
#define CHANGE_UNANSWERED (-1)

/* reconfig (incremental) in c's session: prints the new configuration. */
static int reconfig(struct zk_client *c, const char *where, const char *joining,
		    const char *leaving, bool x_json)
{
	struct jute_buf b = { 0 };
	struct jute_reader body;
	const uint8_t *data;
	int32_t err, len;
	jute_write_string(&b, joining, joining ? (int32_t)strlen(joining) : -1);
	jute_write_string(&b, leaving, leaving ? (int32_t)strlen(leaving) : -1);
	jute_write_string(&b, NULL, -1);	/* newMembers: none (incremental) */
	jute_write_long(&b, -1);		/* curConfigId: any */
	int r = zkc_call(c, ZK_OP_RECONFIG, &b, &err, &body);
	jute_buf_free(&b);
	if (r < 0)
		return CHANGE_UNANSWERED;
	if (err != ZOK)
		return change_error(where, err);
	jute_read_buffer(&body, &data, &len);
	if (body.error) {
		snprintf(c->error, sizeof(c->error), "the reconfig reply does not parse");
		return unreachable_at(where, c);
	}
	print_config(data, len, x_json);
	return EXIT_SUCCESS;
}

/* /zookeeper/config as the server given with -s has it now, in a session
 * of its own; nothing printed when it cannot be read. On true, *ret_text
 * (*ret_len bytes) is the caller's to free and ms is filled in. */
static bool config_now(struct ctx *x, struct members *ms, uint8_t **ret_text, int32_t *ret_len)
{
	struct zk_client c;
	const uint8_t *data;
	int32_t err, len;
	bool ok = false;
	zkc_init(&c, x->timeout_ms);
	if (zkc_connect(&c, x->host, x->port) == 0 && zkc_session_open(&c, SESSION_TIMEOUT_MS) == 0 &&
	    get_config(&c, &err, &data, &len) == 0 && err == ZOK && len > 0 &&
	    (*ret_text = malloc((size_t)len))) {
		memcpy(*ret_text, data, (size_t)len);
		*ret_len = len;
		ok = parse_config(x->server, (const char *)data, (size_t)len, ms) == 0;
		if (!ok) {
			free(ms->m);
			free(*ret_text);
		}
	}
	zkc_close(&c);
	return ok;
}

/* The change of server id went out through `where` and its answer did not
 * come back (c's error). A leader closes its clients when it loses its
 * majority, and a change can cost it that for a moment (a one-voter leader
 * whose new voter is slow to answer): the change is committed all the same,
 * by the next leader, as Raft keeps an entry the leader had. So the members
 * are read back from the server given with -s (the committed ones, which
 * it puts in /zookeeper/config) until the change shows or the timeout
 * passes: a change that shows is reported as its answer would have been. */
static int change_outcome(struct ctx *x, const struct zk_client *c, const char *where,
			  unsigned id, bool adding)
{
	fprintf(stderr, "corralctl: %s: no answer to the change (%s); reading the members "
		"back from %s\n", where, c->error, x->server);
	int64_t deadline = now_ms() + x->timeout_ms;
	for (;;) {
		struct members ms;
		uint8_t *text;
		int32_t len;
		if (config_now(x, &ms, &text, &len)) {
			bool made = (find(&ms, id) != NULL) == adding;
			free(ms.m);
			if (made) {
				print_config(text, len, x->json);
				free(text);
				return EXIT_SUCCESS;
			}
			free(text);
		}
		if (now_ms() >= deadline)
			break;
		sleep_ms(POLL_INTERVAL_MS * 4);
	}
	fprintf(stderr, "corralctl: %s: server %u is %s a member after %d ms: the change was not "
		"made, or not yet (see corralctl members list)\n", x->server, id,
		adding ? "not" : "still", x->timeout_ms);
	return EXIT_UNREACHABLE;
}

/* The leader as the server given with -s knows it (mntr's corral_leader_id):
 * 0 with *ret_named false when mntr does not name one (not corral, or mntr
 * not enabled). Returns 0, or an exit status with the message printed. */
static int leader_of(struct ctx *x, unsigned *ret_leader, bool *ret_named)
{
	char state[40];
	if (!ask_mntr(x, x->host, x->port, state, sizeof(state), ret_leader, ret_named)) {
		fprintf(stderr, "corralctl: %s: cannot ask mntr for the leader\n", x->server);
		return EXIT_UNREACHABLE;
	}
	if (*ret_named && !*ret_leader) {
		fprintf(stderr, "corralctl: %s: no leader known (an election is on?); try again\n",
			x->server);
		return EXIT_NO;
	}
	return 0;
}

/* A session for a change of the members that leaves server `leaving` (0:
 * none) out: at the leader, or when it is the one leaving at a member that
 * stays; at the server given with -s when no leader is named. */
static int change_session(struct ctx *x, const struct members *ms, unsigned leaving,
			  struct zk_client *c, char *where, size_t size)
{
	unsigned leader;
	bool named;
	int status = leader_of(x, &leader, &named);
	if (status)
		return status;
	const struct member *to = named ? find(ms, leader) : NULL;
	if (named && !to) {
		fprintf(stderr, "corralctl: %s: the leader, server %u, is not in " CONFIG_PATH "\n",
			x->server, leader);
		return EXIT_NO;
	}
	for (size_t i = 0; to && to->id == leaving && i < ms->n; i++) {
		char state[40];
		unsigned l;
		bool has;
		if (ms->m[i].id != leaving &&
		    ask_mntr(x, ms->m[i].host, ms->m[i].port, state, sizeof(state), &l, &has) &&
		    (strcmp(state, "follower") == 0 || strcmp(state, "observer") == 0))
			to = &ms->m[i];
	}
	if (to && to->id == leaving) {
		fprintf(stderr, "corralctl: server %u leads and leaves, and no other member "
			"answers\n", leaving);
		return EXIT_NO;
	}
	if (!to) {
		snprintf(where, size, "%s", x->server);
		return session_at(x, c, x->host, x->port, where);
	}
	snprintf(where, size, "server %u (%s:%s)", to->id, to->host, to->port);
	return session_at(x, c, to->host, to->port, where);
}

/* Reads the members, checks id against them, and sends the change. */
static int change(struct ctx *x, unsigned id, bool adding, const char *peer, const char *client)
{
	struct members ms;
	struct zk_client c;
	char where[320];
	int status = members_of(x, &ms);
	zkc_close(&x->zk);
	zkc_init(&c, x->timeout_ms);
	if (status == 0 && adding && find(&ms, id)) {
		fprintf(stderr, "corralctl: server %u is a member already (remove it first to "
			"change its addresses or role)\n", id);
		status = EXIT_NO;
	} else if (status == 0 && !adding && !find(&ms, id)) {
		fprintf(stderr, "corralctl: server %u is not a member\n", id);
		status = EXIT_NO;
	}
	if (status == 0)
		status = change_session(x, &ms, adding ? 0 : id, &c, where, sizeof(where));
	if (status == 0 && adding) {
		/* ZooKeeper's form; corral has no election port: 0. */
		char joining[600];
		snprintf(joining, sizeof(joining), "server.%u=%s:0:%s;%s", id, peer,
			 x->observer ? "observer" : "participant", client);
		status = reconfig(&c, where, joining, NULL, x->json);
	} else if (status == 0) {
		char leaving[8];
		snprintf(leaving, sizeof(leaving), "%u", id);
		status = reconfig(&c, where, NULL, leaving, x->json);
	}
	if (status == CHANGE_UNANSWERED)
		status = change_outcome(x, &c, where, id, adding);
	zkc_close(&c);
	free(ms.m);
	return status;
}

/* Waits until target leads (0: until someone other than old does, as the
 * server given with -s sees it); sets *ret_leader. */
static bool wait_leader(struct ctx *x, const struct members *ms, unsigned target, unsigned old,
			unsigned *ret_leader)
{
	int64_t deadline = now_ms() + x->timeout_ms;
	for (;;) {
		char state[40];
		unsigned leader;
		bool has;
		if (target) {
			const struct member *m = find(ms, target);
			if (ask_mntr(x, m->host, m->port, state, sizeof(state), &leader, &has) &&
			    strcmp(state, "leader") == 0) {
				*ret_leader = target;
				return true;
			}
		} else if (ask_mntr(x, x->host, x->port, state, sizeof(state), &leader, &has) &&
			   leader && leader != old) {
			*ret_leader = leader;
			return true;
		}
		if (now_ms() >= deadline)
			return false;
		sleep_ms(POLL_INTERVAL_MS);
	}
}

static int cmd_transfer(struct ctx *x, unsigned target)
{
	struct members ms;
	const struct member *lm;
	struct zk_client c;
	char where[320];
	unsigned leader, now_leader;
	bool has_leader;
	int32_t err = ZOK;
	int status = members_of(x, &ms);
	zkc_close(&x->zk);
	if (status)
		goto out;
	status = EXIT_NO;
	if (target && !find(&ms, target)) {
		fprintf(stderr, "corralctl: server %u is not a member\n", target);
		goto out;
	}
	status = leader_of(x, &leader, &has_leader);
	if (status)
		goto out;
	status = EXIT_NO;
	if (!has_leader) {
		fprintf(stderr, "corralctl: %s: mntr does not name the leader (corral_leader_id): "
			"not a corral server, or mntr not enabled\n", x->server);
		goto out;
	}
	if (target == leader) {
		print_leader(x, leader, true);
		status = EXIT_SUCCESS;
		goto out;
	}
	lm = find(&ms, leader);
	if (!lm) {
		fprintf(stderr, "corralctl: %s: the leader, server %u, is not in " CONFIG_PATH "\n",
			x->server, leader);
		goto out;
	}
	snprintf(where, sizeof(where), "server %u (%s:%s)", leader, lm->host, lm->port);
	zkc_init(&c, x->timeout_ms);
	status = session_at(x, &c, lm->host, lm->port, where);
	if (status == 0) {
		struct jute_buf b = { 0 };
		struct jute_reader body;
		jute_write_int(&b, (int32_t)target);
		int r = zkc_call(&c, ZK_OP_CORRAL_TRANSFER_LEADER, &b, &err, &body);
		jute_buf_free(&b);
		if (r < 0)
			status = unreachable_at(where, &c);
	}
	zkc_close(&c);
	if (status)
		goto out;
	status = EXIT_NO;
	if (err == ZAPIERROR) {
		fprintf(stderr, "corralctl: %s: it no longer leads (APIERROR); try again\n", where);
	} else if (err == ZBADARGUMENTS) {
		fprintf(stderr, "corralctl: %s: server %u cannot take over: it is not a participant "
			"(BADARGUMENTS)\n", where, target);
	} else if (err == ZNOAUTH) {
		status = change_error(where, err);
	} else if (err == ZUNIMPLEMENTED) {
		fprintf(stderr, "corralctl: %s: the server does not implement transferLeader "
			"(UNIMPLEMENTED): not a corral server\n", where);
	} else if (err != ZOK) {
		status = answered_error(where, err);
	} else if (!wait_leader(x, &ms, target, leader, &now_leader)) {
		if (target)
			fprintf(stderr, "corralctl: server %u accepted the transfer, but server %u does "
				"not lead after %d ms\n", leader, target, x->timeout_ms);
		else
			fprintf(stderr, "corralctl: server %u accepted the transfer, but no other "
				"server leads after %d ms\n", leader, x->timeout_ms);
	} else {
		print_leader(x, now_leader, false);
		status = EXIT_SUCCESS;
	}
out:
	free(ms.m);
	return status;
}

/* ---- sessions close ---- */

#define ZK_OP_CORRAL_CLOSE_SESSION 5003

/* Sends opcode 5003 {id} in a session at host:port. Returns 0 with the
 * answer in *ret_err, or the exit status with the message printed. */
static int close_at(struct ctx *x, const char *host, const char *port, const char *where,
		    int64_t id, int32_t *ret_err)
{
	struct zk_client c;
	struct jute_buf b = { 0 };
	struct jute_reader body;
	zkc_init(&c, x->timeout_ms);
	int status = session_at(x, &c, host, port, where);
	if (status == 0) {
		jute_write_long(&b, id);
		if (zkc_call(&c, ZK_OP_CORRAL_CLOSE_SESSION, &b, ret_err, &body) < 0)
			status = unreachable_at(where, &c);
		jute_buf_free(&b);
	}
	zkc_close(&c);
	return status;
}

int members_close_session(struct ctx *x, int64_t id)
{
	int32_t err;
	char where[320];
	int status = close_at(x, x->host, x->port, x->server, id, &err);
	if (status == 0 && err == ZAPIERROR) {
		/* not the leader: ask the leader, as /zookeeper/config places it */
		struct members ms;
		unsigned leader;
		bool named;
		status = members_of(x, &ms);
		zkc_close(&x->zk);
		if (status == 0)
			status = leader_of(x, &leader, &named);
		const struct member *lm = status == 0 ? find(&ms, leader) : NULL;
		if (status == 0 && !lm) {
			fprintf(stderr, "corralctl: %s: no leader known; try again\n", x->server);
			status = EXIT_NO;
		}
		if (status == 0) {
			snprintf(where, sizeof(where), "server %u (%s:%s)", leader, lm->host, lm->port);
			status = close_at(x, lm->host, lm->port, where, id, &err);
		}
		free(ms.m);
	}
	if (status)
		return status;
	switch (err) {
	case ZOK:
		break;
	case ZNOAUTH:
		fprintf(stderr, "corralctl: closing a session needs the super user (--auth super:PASSWORD)\n");
		return EXIT_NO;
	case ZNONODE:
		fprintf(stderr, "corralctl: no session 0x%llx\n", (unsigned long long)id);
		return EXIT_NO;
	case ZBADARGUMENTS:
		fprintf(stderr, "corralctl: session 0x%llx: refused (BADARGUMENTS)\n", (unsigned long long)id);
		return EXIT_NO;
	default:
		return answered_error("sessions close", err);
	}
	if (x->json) {
		char hex[24];
		snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)id);
		json_open(NULL, '{');
		json_str("closed", hex);
		json_close('}');
	} else {
		printf("closed session 0x%llx\n", (unsigned long long)id);
	}
	return EXIT_SUCCESS;
}

/* ---- health ---- */

/* What one member's mntr says, for health. */
struct checkup {
	bool reachable;
	char state[40];
	unsigned long long zxid;
	const char *alarms[6];
	size_t n_alarms;
};

static bool kv_set(const struct zkc_kv *kv, const char *key)
{
	const char *v = zkc_kv_get(kv, key);
	return v && strcmp(v, "0") != 0;
}

static void check_member(const struct ctx *x, const char *host, const char *port,
			 struct checkup *h)
{
	struct zk_client c;
	struct zkc_kv kv = { 0 };
	char *text;
	size_t len;
	memset(h, 0, sizeof(*h));
	zkc_init(&c, x->timeout_ms);
	if (!host[0] || zkc_word(&c, host, port, "mntr", &text, &len) < 0) {
		snprintf(h->state, sizeof(h->state), "unreachable");
		return;
	}
	h->reachable = true;
	if (zkc_kv_parse(&kv, text, "\t") < 0 || !zkc_kv_get(&kv, "zk_server_state")) {
		snprintf(h->state, sizeof(h->state), "%s", kv.answered ? "(no state)" : "(mntr not enabled)");
		h->alarms[h->n_alarms++] = "mntr not answered";
		zkc_kv_free(&kv);
		return;
	}
	snprintf(h->state, sizeof(h->state), "%s", zkc_kv_get(&kv, "zk_server_state"));
	const char *z = zkc_kv_get(&kv, "corral_last_zxid");
	h->zxid = z ? strtoull(z, NULL, 0) : 0;
	if (kv_set(&kv, "corral_log_failed"))
		h->alarms[h->n_alarms++] = "log failed";
	if (kv_set(&kv, "corral_log_refusing_for_space"))
		h->alarms[h->n_alarms++] = "disk full";
	if (kv_set(&kv, "corral_memory_over_budget"))
		h->alarms[h->n_alarms++] = "over memory budget";
	if (kv_set(&kv, "corral_digest_diverged"))
		h->alarms[h->n_alarms++] = "digest diverged";
	if (strcmp(h->state, "looking") == 0 || strcmp(h->state, "read-only") == 0)
		h->alarms[h->n_alarms++] = "no leader";
	zkc_kv_free(&kv);
}

static void health_member(const struct ctx *x, const struct member *m, const struct checkup *h,
			  unsigned long long top)
{
	long long lag = h->reachable && top >= h->zxid ? (long long)(top - h->zxid) : -1;
	char zxid[24];
	snprintf(zxid, sizeof(zxid), "0x%llx", h->zxid);
	if (x->json) {
		json_open(NULL, '{');
		json_int("id", m->id);
		json_str("role", m->observer ? "observer" : "participant");
		json_str("client", m->client);
		json_bool("reachable", h->reachable);
		json_str("state", h->state);
		json_str("zxid", h->reachable ? zxid : NULL);
		if (lag >= 0)
			json_int("zxid_lag", lag);
		else
			json_null("zxid_lag");
		json_open("alarms", '[');
		for (size_t k = 0; k < h->n_alarms; k++)
			json_str(NULL, h->alarms[k]);
		json_close(']');
		json_close('}');
		return;
	}
	printf("%-3u  %-11s  %-22s  %-11s  %-18s  ", m->id, m->observer ? "observer" : "participant",
	       m->client, h->state, h->reachable ? zxid : "-");
	if (lag >= 0)
		printf("%-8lld  ", lag);
	else
		printf("%-8s  ", "-");
	for (size_t k = 0; k < h->n_alarms; k++)
		printf("%s%s", k ? ", " : "", h->alarms[k]);
	printf("%s\n", h->n_alarms ? "" : "-");
}

/* The members to check: /zookeeper/config's, or the server alone when it
 * says it is standalone. Returns 0 or the exit status. */
static int health_members(struct ctx *x, struct members *ms)
{
	struct checkup h;
	memset(ms, 0, sizeof(*ms));
	check_member(x, x->host, x->port, &h);
	if (!h.reachable) {
		fprintf(stderr, "corralctl: %s: cannot be reached (mntr)\n", x->server);
		return EXIT_UNREACHABLE;
	}
	if (strcmp(h.state, "standalone") != 0) {
		int status = members_of(x, ms);
		zkc_close(&x->zk);
		return status;
	}
	ms->m = calloc(1, sizeof(*ms->m));
	if (!ms->m) {
		fprintf(stderr, "corralctl: out of memory\n");
		return EXIT_NO;
	}
	ms->n = 1;
	snprintf(ms->m[0].client, sizeof(ms->m[0].client), "%s", x->server);
	snprintf(ms->m[0].host, sizeof(ms->m[0].host), "%.127s", x->host);
	snprintf(ms->m[0].port, sizeof(ms->m[0].port), "%s", x->port);
	return 0;
}

int cmd_health(struct ctx *x, char **args, int nargs)
{
	struct members ms;
	int status = health_members(x, &ms);
	if (status) {
		free(ms.m);
		return status;
	}
	struct checkup *h = calloc(ms.n, sizeof(*h));
	if (!h) {
		free(ms.m);
		fprintf(stderr, "corralctl: out of memory\n");
		return EXIT_NO;
	}
	unsigned long long top = 0;
	size_t voters = 0, up = 0, leaders = 0, reachable = 0, alarms = 0;
	for (size_t i = 0; i < ms.n; i++) {
		check_member(x, ms.m[i].host, ms.m[i].port, &h[i]);
		top = h[i].reachable && h[i].zxid > top ? h[i].zxid : top;
		reachable += h[i].reachable;
		alarms += h[i].n_alarms;
		leaders += strcmp(h[i].state, "leader") == 0;
		if (!ms.m[i].observer) {
			voters++;
			up += strcmp(h[i].state, "leader") == 0 || strcmp(h[i].state, "follower") == 0 ||
			      strcmp(h[i].state, "standalone") == 0;
		}
	}
	bool quorum = up >= voters / 2 + 1 && (leaders == 1 || (ms.n == 1 && up == 1));
	const char *verdict = reachable == 0 ? "unreachable"
			      : reachable < ms.n || !quorum || alarms ? "degraded" : "healthy";
	if (x->json) {
		json_open(NULL, '{');
		json_open("members", '[');
	} else {
		printf("%-3s  %-11s  %-22s  %-11s  %-18s  %-8s  %s\n", "id", "role", "client", "state",
		       "zxid", "lag", "alarms");
	}
	for (size_t i = 0; i < ms.n; i++)
		health_member(x, &ms.m[i], &h[i], top);
	if (x->json) {
		json_close(']');
		json_bool("quorum", quorum);
		json_int("voters", (long long)voters);
		json_int("voters_up", (long long)up);
		json_str("health", verdict);
		json_close('}');
	} else {
		printf("quorum: %s (%zu of %zu voters up)\nhealth: %s\n", quorum ? "yes" : "NO", up,
		       voters, verdict);
	}
	free(h);
	free(ms.m);
	return reachable == 0 ? EXIT_UNREACHABLE : strcmp(verdict, "healthy") ? EXIT_NO : EXIT_SUCCESS;
}

int cmd_members(struct ctx *x, char **args, int nargs)
{
	unsigned id = 0;
	if (nargs == 0)
		return usage_error("members: a subcommand is missing: list, add, remove or "
				   "transfer-leader");
	const char *sub = args[0];
	static const struct { const char *name, *arg_names[3]; int min, max; } subs[] = {
		{ "list", { 0 }, 0, 0 },
		{ "add", { "ID", "PEER_HOST:PORT", "CLIENT_HOST:PORT" }, 3, 3 },
		{ "remove", { "ID" }, 1, 1 },
		{ "transfer-leader", { "ID" }, 0, 1 },
	};
	int k = -1;
	for (int i = 0; i < (int)(sizeof(subs) / sizeof(subs[0])); i++)
		if (strcmp(subs[i].name, sub) == 0)
			k = i;
	if (k < 0)
		return usage_error("members: unknown subcommand '%s'", sub);
	args++;
	nargs--;
	if (nargs < subs[k].min)
		return usage_error("members %s: %s is missing", sub, subs[k].arg_names[nargs]);
	if (nargs > subs[k].max)
		return usage_error("members %s: unexpected argument '%s'", sub, args[subs[k].max]);
	if (x->observer && k != 1)
		return usage_error("--observer is for members add only");
	if (nargs > 0 && parse_id(args[0], &id) < 0)
		return usage_error("members %s: '%s' is not a server id (1 to %d)", sub, args[0],
				   MAX_ID);
	for (int i = 1; i < nargs; i++)
		if (!address_ok(args[i]))
			return usage_error("members %s: '%s' is not HOST:PORT (an IPv6 address in "
					   "brackets)", sub, args[i]);
	switch (k) {
	case 0:
		return cmd_list(x);
	case 1:
		return change(x, id, true, args[1], args[2]);
	case 2:
		return change(x, id, false, NULL, NULL);
	default:
		return cmd_transfer(x, id);
	}
}
