/* membership: see membership.h. */
#include "membership.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "commit.h"
#include "log.h"
#include "proto.h"
#include "request.h"
#include "server.h"
#include "sockaddr.h"
#include "tree.h"

#define CONFIG_PATH "/zookeeper/config"

struct pending_reconfig {
	struct pending_reconfig *next;
	uint64_t index;			/* the configuration entry */
	struct request *rq;		/* a local request, or NULL */
	uint32_t origin;		/* or a forwarded one */
	uint64_t seq;
};

/* raft's address of a member, "PEER;CLIENT[;ELECTIONPORT]", in parts
 * (client "" when there is none; election "0" when not given, as for the
 * members that corral.yaml bootstrapped). */
static void split_address(const char *address, char *peer, size_t psize, char *client, size_t csize,
			  char *election, size_t esize)
{
	size_t n = strcspn(address, ";");
	snprintf(peer, psize, "%.*s", (int)n, address);
	const char *rest = address[n] ? address + n + 1 : "";
	size_t m = strcspn(rest, ";");
	snprintf(client, csize, "%.*s", (int)m, rest);
	snprintf(election, esize, "%s", rest[m] && rest[m + 1] ? rest + m + 1 : "0");
}

static const struct raft_configuration *committed_conf(struct commit *c, uint64_t *ret_index)
{
	if (c->raft.configuration_committed_index) {
		*ret_index = c->raft.configuration_committed_index;
		return &c->raft.configuration_committed;
	}
	*ret_index = 0;
	return NULL;
}

void membership_refresh(struct server *srv)
{
	struct commit *c = &srv->commit;
	uint64_t index;
	const struct raft_configuration *conf = committed_conf(c, &index);
	if (!c->ensemble || !conf)
		return;
	struct jute_buf b = { 0 };
	for (unsigned i = 0; i < conf->n; i++) {
		const struct raft_server *s = &conf->servers[i];
		char peer[128], client[128], election[16], line[400];
		split_address(s->address, peer, sizeof(peer), client, sizeof(client), election,
			      sizeof(election));
		/* ZooKeeper has a quorum port and an election port; corral has
		 * one peer port. A member shows the election port it was added
		 * with, so what a client wrote reads back the same; one from
		 * corral.yaml shows 0 (never equal to the quorum port, which
		 * ZooKeeper's parser, in Curator's EnsembleTracker for one,
		 * refuses). */
		int n = snprintf(line, sizeof(line), "server.%llu=%s:%s:%s;%s\n",
				 (unsigned long long)s->id, peer, election,
				 s->role == RAFT_VOTER ? "participant" : "observer", client);
		jute_write_raw(&b, line, (size_t)n);
	}
	char version[40];
	int n = snprintf(version, sizeof(version), "version=%llx", (unsigned long long)index);
	jute_write_raw(&b, version, (size_t)n);
	struct znode *node = tree_lookup(&srv->state.tree, CONFIG_PATH, strlen(CONFIG_PATH));
	if (!b.error && node && (node->data_len != (int32_t)b.len || memcmp(node->data, b.data, b.len)) &&
	    tree_set_data(&srv->state.tree, node, b.data, (int32_t)b.len) == 0) {
		/* As ZooKeeper's: mzxid the change's, version -1 (no setData
		 * takes it); mtime stays 0 (the entry carries no time, and the
		 * state must not depend on this server's clock). Watchers of the
		 * node (Curator's EnsembleTracker) hear NodeDataChanged, with
		 * the zxid this server is at. */
		node->mzxid = (int64_t)index;
		node->version = -1;
		struct state_listener *l = &srv->state.listener;
		if (l->node_event) {
			int64_t applying = srv->applying_zxid;
			srv->applying_zxid = srv->state.last_zxid;
			l->node_event(l->ctx, ZK_EVENT_NODE_DATA_CHANGED, node, CONFIG_PATH,
				      strlen(CONFIG_PATH));
			srv->applying_zxid = applying;
		}
	}
	jute_buf_free(&b);
}

/* A decimal port, 0..65535, the whole of text. */
static bool parse_port(const char *text, unsigned *ret_port)
{
	char *end;
	if (!text[0] || strspn(text, "0123456789") != strlen(text))
		return false;
	unsigned long v = strtoul(text, &end, 10);
	if (*end || v > 65535)
		return false;
	*ret_port = (unsigned)v;
	return true;
}

/* A server id as ZooKeeper reads one (Long.parseLong): ZMARSHALLINGERROR
 * when it is not a number. Whether it is one of corral's ids (1..255) is
 * the caller's to check: ZooKeeper takes any, so a well-formed reconfig is
 * checked for WRITE on /zookeeper/config first. */
static int parse_id(const char *text, long long *ret_id)
{
	char *end;
	const char *digits = text[0] == '-' || text[0] == '+' ? text + 1 : text;
	if (!digits[0] || strspn(digits, "0123456789") != strlen(digits))
		return ZMARSHALLINGERROR;
	errno = 0;
	long long id = strtoll(text, &end, 10);
	if (errno || *end)
		return ZMARSHALLINGERROR;
	*ret_id = id;
	return ZOK;
}

static bool corral_id(long long id)
{
	return id >= 1 && id <= 255;
}

/* One joining server, "server.N=HOST:QUORUMPORT:ELECTIONPORT[:ROLE];[CLIENTHOST:]CLIENTPORT",
 * checked as ZooKeeper's reconfig checks it (PrepRequestProcessor and
 * QuorumServer): exactly one '='; the id after the last '.' before it (not
 * a number: ZMARSHALLINGERROR); one server address (no '|'), with both
 * ports, different from each other; a role of participant or observer; a
 * client port. Hosts are numeric addresses here (corral resolves no names).
 * Returns ZOK with raft's id, address ("PEER;CLIENT;ELECTIONPORT") and
 * role, or the error for the whole reconfig. */
static int parse_server(const char *spec, size_t len, long long *ret_id, char *address, size_t size,
			int *ret_role)
{
	char text[512];
	if (len >= sizeof(text))
		return ZBADARGUMENTS;
	memcpy(text, spec, len);
	text[len] = 0;
	char *eq = strchr(text, '=');
	if (!eq || strchr(eq + 1, '='))
		return ZBADARGUMENTS;
	*eq = 0;
	char *dot = strrchr(text, '.');
	long long id;
	int err = parse_id(dot ? dot + 1 : text, &id);
	if (err)
		return err;
	char *server = eq + 1;
	char *semi = strchr(server, ';');
	if (!semi || strchr(semi + 1, ';') || strchr(server, '|'))
		return ZBADARGUMENTS;
	*semi = 0;
	char *client = semi + 1;

	/* HOST:PORT:PORT[:ROLE]; an IPv6 host is in brackets. */
	char *host_end = server[0] == '[' ? strchr(server, ']') : server;
	char *colon = host_end ? strchr(host_end, ':') : NULL;
	if (!colon || colon == server)
		return ZBADARGUMENTS;
	*colon = 0;
	char *fields[4] = { 0 };
	int count = 0;
	for (char *f = colon + 1; f; count++) {
		if (count == 3)
			return ZBADARGUMENTS;
		fields[count] = f;
		f = strchr(f, ':');
		if (f)
			*f++ = 0;
	}
	unsigned quorum_port, election_port;
	if (count < 2 || !parse_port(fields[0], &quorum_port) ||
	    !parse_port(fields[1], &election_port) || quorum_port == election_port)
		return ZBADARGUMENTS;
	*ret_role = RAFT_VOTER;
	if (count == 3) {
		if (strcasecmp(fields[2], "observer") == 0)
			*ret_role = RAFT_STANDBY;
		else if (strcasecmp(fields[2], "participant") != 0)
			return ZBADARGUMENTS;
	}
	char peer[160];
	struct sockaddr_storage ss;
	socklen_t sl;
	snprintf(peer, sizeof(peer), "%s:%u", server, quorum_port);
	if (sockaddr_parse(peer, false, &ss, &sl) < 0)
		return ZBADARGUMENTS;

	/* "[host:]port": without a host, ZooKeeper means every interface. */
	char client_text[160];
	char *client_colon = strrchr(client, ':');
	unsigned client_port;
	if (!parse_port(client_colon ? client_colon + 1 : client, &client_port))
		return ZBADARGUMENTS;
	snprintf(client_text, sizeof(client_text), "%.*s:%u",
		 client_colon ? (int)(client_colon - client) : 7,
		 client_colon ? client : "0.0.0.0", client_port);
	if (sockaddr_parse(client_text, false, &ss, &sl) < 0)
		return ZBADARGUMENTS;
	snprintf(address, size, "%s;%s;%u", peer, client_text, election_port);
	*ret_id = id;
	return ZOK;
}

/* Takes id out of conf, if it is there (the public API adds only: conf is
 * rebuilt). */
static int conf_remove(struct raft_configuration *conf, raft_id id)
{
	struct raft_configuration next;
	raft_configuration_init(&next);
	for (unsigned i = 0; i < conf->n; i++) {
		const struct raft_server *s = &conf->servers[i];
		if (s->id == id)
			continue;
		if (raft_configuration_add(&next, s->id, s->address, s->role) != 0) {
			raft_configuration_close(&next);
			return ZAPIERROR;
		}
	}
	raft_configuration_close(conf);
	*conf = next;
	return ZOK;
}

/* The next item of a list split at any of seps, trimmed of blanks as
 * ZooKeeper's StringUtils.split trims them; false at the end. *pos moves
 * past it. */
static bool next_item(const char *list, int32_t len, const char *seps, int32_t *pos,
		      int32_t *ret_start, int32_t *ret_len)
{
	while (*pos < len) {
		int32_t start = *pos, end = start;
		while (end < len && !strchr(seps, list[end]))
			end++;
		*pos = end + 1;
		while (start < end && (list[start] == ' ' || list[start] == '\t'))
			start++;
		while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t' ||
				       list[end - 1] == '\r'))
			end--;
		if (end > start) {
			*ret_start = start;
			*ret_len = end - start;
			return true;
		}
	}
	return false;
}

/* A member's addresses as "host:port" texts: quorum, client, election. */
static void member_addresses(const char *address, char out[3][160])
{
	char quorum[160], election[16];
	split_address(address, quorum, sizeof(quorum), out[1], 160, election, sizeof(election));
	const char *colon = strrchr(quorum, ':');
	snprintf(out[0], 160, "%s", quorum);
	snprintf(out[2], 160, "%.*s:%s", colon ? (int)(colon - quorum) : 0, quorum, election);
}

/* ZooKeeper refuses a joining server that has an address of another member
 * (QuorumServer.checkAddressDuplicate), leaving out the wildcard host and
 * port 0, which name no one address. */
static bool conflicts(const struct raft_configuration *conf, raft_id id, const char *address)
{
	char mine[3][160], other[3][160];
	member_addresses(address, mine);
	for (unsigned i = 0; i < conf->n; i++) {
		if (conf->servers[i].id == id)
			continue;
		member_addresses(conf->servers[i].address, other);
		for (int a = 0; a < 3; a++) {
			if (strncmp(mine[a], "0.0.0.0:", 8) == 0 || strncmp(mine[a], "[::]:", 5) == 0 ||
			    (strlen(mine[a]) > 2 && strcmp(mine[a] + strlen(mine[a]) - 2, ":0") == 0))
				continue;
			for (int b = 0; b < 3; b++)
				if (strcmp(mine[a], other[b]) == 0)
					return true;
		}
	}
	return false;
}

/* Applies a list of server specs (split at seps) to conf; a member given
 * again is replaced. An id that is no corral id (1..255) is left out and
 * *ret_bad_id set. */
static int add_servers(struct raft_configuration *conf, const char *list, int32_t len,
		       const char *seps, bool *ret_bad_id)
{
	int32_t pos = 0, start, n;
	while (next_item(list, len, seps, &pos, &start, &n)) {
		if (strncmp(list + start, "version=", 8) == 0)
			continue;	/* a member list copied from /zookeeper/config */
		long long id;
		int role;
		char address[400];
		int err = parse_server(list + start, (size_t)n, &id, address, sizeof(address), &role);
		if (err == ZOK && !corral_id(id)) {
			*ret_bad_id = true;
			continue;
		}
		if (err == ZOK && conflicts(conf, (raft_id)id, address))
			err = ZBADARGUMENTS;
		if (err == ZOK)
			err = conf_remove(conf, (raft_id)id);
		if (err)
			return err;
		if (raft_configuration_add(conf, (raft_id)id, address, role) != 0)
			return ZAPIERROR;
	}
	return ZOK;
}

/* Takes the listed ids out of conf; as in ZooKeeper, an id that is not a
 * member is no error. */
static int remove_servers(struct raft_configuration *conf, const char *list, int32_t len)
{
	int32_t pos = 0, start, n;
	while (next_item(list, len, ",", &pos, &start, &n)) {
		char text[32];
		long long id;
		if (n >= (int32_t)sizeof(text))
			return ZMARSHALLINGERROR;
		memcpy(text, list + start, (size_t)n);
		text[n] = 0;
		int err = parse_id(text, &id);
		if (err == ZOK && !corral_id(id))
			continue;	/* a number, but never a member's id */
		if (err == ZOK)
			err = conf_remove(conf, (raft_id)id);
		if (err)
			return err;
	}
	return ZOK;
}

static bool may_write_config(struct server *srv, const struct auth_identities *ids)
{
	const struct znode *n = tree_lookup(&srv->state.tree, CONFIG_PATH, strlen(CONFIG_PATH));
	return n && auth_allowed(ids, n->acl, ZK_PERM_WRITE);
}

int membership_reconfig(struct server *srv, const struct auth_identities *ids, const uint8_t *body,
			uint32_t len, struct request *rq, uint32_t origin, uint64_t seq)
{
	struct commit *c = &srv->commit;
	struct jute_reader r;
	const char *joining, *leaving, *members;
	int32_t jlen, llen, mlen;
	jute_reader_init(&r, body, len);
	jute_read_string_nullable(&r, &joining, &jlen);
	jute_read_string_nullable(&r, &leaving, &llen);
	jute_read_string_nullable(&r, &members, &mlen);
	int64_t config_id = jute_read_long(&r);
	if (r.error)
		return ZMARSHALLINGERROR;
	/* ZooKeeper's order (PrepRequestProcessor): enabled, no change in
	 * progress, the version, the arguments, a voter left, and only then
	 * WRITE on /zookeeper/config: bad arguments are BADARGUMENTS for
	 * anyone. */
	if (!srv->cfg->reconfig_enabled)
		return ZRECONFIGDISABLED;
	uint64_t index;
	const struct raft_configuration *cur = committed_conf(c, &index);
	if (!cur || c->raft.configuration_uncommitted_index || srv->reconfig_head)
		return ZRECONFIGINPROGRESS;
	if (config_id != -1 && (uint64_t)config_id != index)
		return ZBADVERSION;
	struct raft_configuration next;
	raft_configuration_init(&next);
	int err = ZOK;
	bool bad_id = false;
	if (mlen >= 0) {
		err = add_servers(&next, members, mlen, ",\n", &bad_id);
	} else {
		for (unsigned i = 0; i < cur->n && err == ZOK; i++)
			if (raft_configuration_add(&next, cur->servers[i].id, cur->servers[i].address,
						   cur->servers[i].role) != 0)
				err = ZAPIERROR;
		if (err == ZOK && llen > 0)
			err = remove_servers(&next, leaving, llen);
		if (err == ZOK && jlen > 0)
			err = add_servers(&next, joining, jlen, ",", &bad_id);
	}
	unsigned voters = 0;
	for (unsigned i = 0; i < next.n; i++)
		voters += next.servers[i].role == RAFT_VOTER;
	if (err == ZOK && voters == 0 && !bad_id)
		err = ZBADARGUMENTS;
	if (err == ZOK && !may_write_config(srv, ids))
		err = ZNOAUTH;
	if (err == ZOK && bad_id) {
		log_info("reconfig refused: a joining server's id is outside 1..255 (corral's ids)");
		err = ZBADARGUMENTS;
	}
	uint64_t change_index = 0;
	if (err == ZOK) {
		int rc = commit_change(c, &next, &change_index);
		err = rc == 0 ? ZOK : rc == -EBUSY ? ZRECONFIGINPROGRESS : ZAPIERROR;
	}
	raft_configuration_close(&next);
	if (err)
		return err;
	struct pending_reconfig *p = calloc(1, sizeof(*p));
	if (!p)
		return ZAPIERROR;	/* the change goes on; its answer cannot */
	p->index = change_index;
	p->rq = rq;
	p->origin = origin;
	p->seq = seq;
	p->next = srv->reconfig_head;
	srv->reconfig_head = p;
	log_notice("reconfig: the members change at index %llu (%s%.*s%s%.*s%s%.*s)",
		   (unsigned long long)change_index, jlen > 0 ? "joining " : "", jlen > 0 ? (int)jlen : 0,
		   jlen > 0 ? joining : "", llen > 0 ? " leaving " : "", llen > 0 ? (int)llen : 0,
		   llen > 0 ? leaving : "", mlen >= 0 ? " members " : "", mlen > 0 ? (int)mlen : 0,
		   mlen > 0 ? members : "");
	return ZOK;
}

void membership_committed(struct server *srv)
{
	membership_refresh(srv);
	uint64_t committed = srv->commit.raft.configuration_committed_index;
	struct pending_reconfig **pp = &srv->reconfig_head;
	while (*pp) {
		struct pending_reconfig *p = *pp;
		if (p->index > committed) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		/* The answer follows every txn before it, through the log. */
		struct txn *t = txn_new(0);
		if (t) {
			t->request_op = ZK_OP_RECONFIG;
			t->time_ms = loop_wall_ms();
			t->origin = p->origin;
			t->origin_seq = p->seq;
			t->request = p->rq;
			if (p->rq)
				p->rq->txn = t;
			if (server_submit(srv, t) < 0) {
				if (p->rq)
					p->rq->txn = NULL;
				t->request = NULL;
				txn_free(t);
			}
		}
		free(p);
	}
}

void membership_drop(struct server *srv)
{
	while (srv->reconfig_head) {
		struct pending_reconfig *p = srv->reconfig_head;
		srv->reconfig_head = p->next;
		free(p);
	}
}

int membership_transfer(struct server *srv, const struct auth_identities *ids, const uint8_t *body,
			uint32_t len)
{
	struct jute_reader r;
	jute_reader_init(&r, body, len);
	int32_t id = jute_read_int(&r);
	if (r.error || id < 0 || id > 255)
		return ZBADARGUMENTS;
	if (!srv->commit.ensemble || commit_state(&srv->commit) != RAFT_LEADER)
		return ZAPIERROR;
	if (!may_write_config(srv, ids))
		return ZNOAUTH;
	int rc = commit_transfer(&srv->commit, (raft_id)id);
	if (rc == -ENOENT)
		return ZBADARGUMENTS;
	if (rc < 0)
		return ZAPIERROR;
	if (id)
		log_notice("leadership is being handed to server %d", id);
	else
		log_notice("leadership is being handed to the most up-to-date member");
	return ZOK;
}

int membership_answer(struct request *rq)
{
	struct jute_buf b = { 0 };
	jute_write_string(&b, CONFIG_PATH, (int32_t)strlen(CONFIG_PATH));
	jute_write_bool(&b, false);
	if (b.error)
		return -ENOMEM;
	free(rq->body);
	rq->body = b.data;
	rq->body_len = (uint32_t)b.len;
	rq->op = ZK_OP_GET_DATA;
	rq->state = REQUEST_WAITING;
	return 0;
}
