/* membership: see membership.h. */
#include "membership.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* "PEER;CLIENT" -> the two halves ("" when there is no client part). */
static void split_address(const char *address, char *peer, size_t psize, char *client, size_t csize)
{
	size_t n = strcspn(address, ";");
	snprintf(peer, psize, "%.*s", (int)n, address);
	snprintf(client, csize, "%s", address[n] ? address + n + 1 : "");
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
		char peer[128], client[128], line[400];
		split_address(s->address, peer, sizeof(peer), client, sizeof(client));
		/* ZooKeeper has a quorum port and an election port; corral has
		 * one peer port, and shows election port 0 (ZooKeeper's parser,
		 * in Curator's EnsembleTracker for one, refuses two equal ports). */
		int n = snprintf(line, sizeof(line), "server.%llu=%s:0:%s;%s\n",
				 (unsigned long long)s->id, peer,
				 s->role == RAFT_VOTER ? "participant" : "observer", client);
		jute_write_raw(&b, line, (size_t)n);
	}
	char version[40];
	int n = snprintf(version, sizeof(version), "version=%llx", (unsigned long long)index);
	jute_write_raw(&b, version, (size_t)n);
	struct znode *node = tree_lookup(&srv->state.tree, CONFIG_PATH, strlen(CONFIG_PATH));
	if (!b.error && node && (node->data_len != (int32_t)b.len || memcmp(node->data, b.data, b.len))) {
		if (tree_set_data(&srv->state.tree, node, b.data, (int32_t)b.len) == 0) {
			node->mzxid = (int64_t)index;
			node->version = (int32_t)(index & 0x7fffffff);
		}
	}
	jute_buf_free(&b);
}

/* "server.N=HOST:PORT[:PORT][:ROLE][;[CLIENTHOST:]CLIENTPORT]" into raft's
 * terms. Returns 0 or ZBADARGUMENTS. */
static int parse_server(const char *spec, size_t len, raft_id *ret_id, char *address, size_t size,
			int *ret_role)
{
	char text[512], *eq, *semi, *end;
	if (len >= sizeof(text))
		return ZBADARGUMENTS;
	memcpy(text, spec, len);
	text[len] = 0;
	if (strncmp(text, "server.", 7) != 0 || !(eq = strchr(text, '=')))
		return ZBADARGUMENTS;
	unsigned long id = strtoul(text + 7, &end, 10);
	if (end != eq || id < 1 || id > 255)
		return ZBADARGUMENTS;
	char *server = eq + 1;
	semi = strchr(server, ';');
	char *client = semi ? semi + 1 : NULL;
	if (semi)
		*semi = 0;
	/* host:port[:port][:role]; an IPv6 host is in brackets. */
	char *host_end = server[0] == '[' ? strchr(server, ']') : server;
	if (!host_end)
		return ZBADARGUMENTS;
	char *colon = strchr(host_end, ':');
	if (!colon)
		return ZBADARGUMENTS;
	char *port = colon + 1;
	char *rest = strchr(port, ':');
	*ret_role = RAFT_VOTER;
	if (rest) {
		*rest = 0;
		char *second = rest + 1;
		char *role = strchr(second, ':');
		if (role)
			*role++ = 0;
		else if (strspn(second, "0123456789") != strlen(second))
			role = second;	/* host:port:role */
		if (role && strcmp(role, "observer") == 0)
			*ret_role = RAFT_STANDBY;
		else if (role && strcmp(role, "participant") != 0)
			return ZBADARGUMENTS;
	}
	char peer[160];
	snprintf(peer, sizeof(peer), "%.*s:%s", (int)(colon - server), server, port);
	struct sockaddr_storage ss;
	socklen_t sl;
	if (sockaddr_parse(peer, false, &ss, &sl) < 0)
		return ZBADARGUMENTS;
	char client_text[160] = "";
	if (client) {
		/* "[host:]port": without a host, ZooKeeper means every interface. */
		if (!strchr(client, ':'))
			snprintf(client_text, sizeof(client_text), "0.0.0.0:%s", client);
		else
			snprintf(client_text, sizeof(client_text), "%s", client);
		if (sockaddr_parse(client_text, false, &ss, &sl) < 0)
			return ZBADARGUMENTS;
	}
	snprintf(address, size, "%s;%s", peer, client_text);
	*ret_id = id;
	return ZOK;
}

/* Takes id out of conf (the public API adds only: conf is rebuilt). */
static int conf_remove(struct raft_configuration *conf, raft_id id)
{
	struct raft_configuration next;
	bool found = false;
	raft_configuration_init(&next);
	for (unsigned i = 0; i < conf->n; i++) {
		const struct raft_server *s = &conf->servers[i];
		if (s->id == id) {
			found = true;
			continue;
		}
		if (raft_configuration_add(&next, s->id, s->address, s->role) != 0) {
			raft_configuration_close(&next);
			return ZAPIERROR;
		}
	}
	if (!found) {
		raft_configuration_close(&next);
		return ZBADARGUMENTS;
	}
	raft_configuration_close(conf);
	*conf = next;
	return ZOK;
}

/* Applies a comma-separated list of server specs to conf. */
static int add_servers(struct raft_configuration *conf, const char *list, int32_t len)
{
	for (int32_t start = 0; start < len; ) {
		int32_t end = start;
		while (end < len && list[end] != ',' && list[end] != '\n')
			end++;
		while (start < end && (list[start] == ' ' || list[start] == '\t'))
			start++;
		if (end > start && strncmp(list + start, "version=", 8) != 0) {
			raft_id id;
			int role;
			char address[400];
			int err = parse_server(list + start, (size_t)(end - start), &id, address,
					       sizeof(address), &role);
			if (err)
				return err;
			for (unsigned i = 0; i < conf->n; i++)
				if (conf->servers[i].id == id) {
					conf_remove(conf, id);
					break;
				}
			if (raft_configuration_add(conf, id, address, role) != 0)
				return ZAPIERROR;
		}
		start = end + 1;
	}
	return ZOK;
}

static int remove_servers(struct raft_configuration *conf, const char *list, int32_t len)
{
	for (int32_t start = 0; start < len; ) {
		int32_t end = start;
		while (end < len && list[end] != ',')
			end++;
		char idtext[16];
		int32_t n = end - start;
		if (n > 0 && n < (int32_t)sizeof(idtext)) {
			memcpy(idtext, list + start, (size_t)n);
			idtext[n] = 0;
			char *e;
			unsigned long id = strtoul(idtext, &e, 10);
			if (*e || id < 1 || id > 255)
				return ZBADARGUMENTS;
			int err = conf_remove(conf, id);
			if (err)
				return err;
		} else if (n) {
			return ZBADARGUMENTS;
		}
		start = end + 1;
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
	struct reconfig_request req;
	jute_reader_init(&r, body, len);
	if (reconfig_request_decode(&r, &req) < 0)
		return ZMARSHALLINGERROR;
	const char *joining = req.joining, *leaving = req.leaving, *members = req.members;
	int32_t jlen = req.joining_len, llen = req.leaving_len, mlen = req.members_len;
	int64_t config_id = req.config_id;
	if (!srv->cfg->reconfig_enabled)
		return ZRECONFIGDISABLED;
	if (!may_write_config(srv, ids))
		return ZNOAUTH;
	uint64_t index;
	const struct raft_configuration *cur = committed_conf(c, &index);
	if (!cur || c->raft.configuration_uncommitted_index || srv->reconfig_head)
		return ZRECONFIGINPROGRESS;
	if (config_id != -1 && (uint64_t)config_id != index)
		return ZBADVERSION;
	struct raft_configuration next;
	raft_configuration_init(&next);
	int err = ZOK;
	if (mlen >= 0) {
		err = add_servers(&next, members, mlen);
	} else {
		for (unsigned i = 0; i < cur->n && err == ZOK; i++)
			if (raft_configuration_add(&next, cur->servers[i].id, cur->servers[i].address,
						   cur->servers[i].role) != 0)
				err = ZAPIERROR;
		if (err == ZOK && llen > 0)
			err = remove_servers(&next, leaving, llen);
		if (err == ZOK && jlen > 0)
			err = add_servers(&next, joining, jlen);
	}
	unsigned voters = 0;
	for (unsigned i = 0; i < next.n; i++)
		voters += next.servers[i].role == RAFT_VOTER;
	if (err == ZOK && voters == 0)
		err = ZBADARGUMENTS;
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
