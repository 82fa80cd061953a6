/* membership: see membership.h. */
#include "membership.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commit.h"
#include "log.h"
#include "members.h"
#include "proto.h"
#include "request.h"
#include "state.h"
#include "tree.h"

#define CONFIG_PATH "/zookeeper/config"

/* A reconfig whose configuration entry is on its way. */
struct pending_reconfig {
	struct list_node node;
	uint64_t index;			/* the configuration entry */
	struct request *rq;		/* a local request, or NULL */
	uint32_t origin;		/* or a forwarded one */
	uint64_t seq;
};

static const struct raft_configuration *committed_conf(struct commit *c, uint64_t *ret_index)
{
	if (c->raft.configuration_committed_index) {
		*ret_index = c->raft.configuration_committed_index;
		return &c->raft.configuration_committed;
	}
	*ret_index = 0;
	return NULL;
}

void membership_refresh(struct membership *m)
{
	struct commit *c = m->commit;
	uint64_t index;
	const struct raft_configuration *conf = committed_conf(c, &index);
	if (!m->cfg->in_ensemble || !conf)
		return;
	struct jute_buf b = { 0 };
	if (members_config_text(conf, index, &b) < 0) {
		jute_buf_free(&b);
		return;
	}
	struct znode *node = tree_lookup(&m->state->tree, CONFIG_PATH, strlen(CONFIG_PATH));
	if (!b.error && node && (node->data_len != (int32_t)b.len || memcmp(znode_data(node), b.data, b.len))) {
		tree_node_changing(&m->state->tree, node);
		int r = tree_set_data(&m->state->tree, node, b.data, (int32_t)b.len);
		/* As ZooKeeper's: mzxid the change's, version -1 (no setData
		 * takes it); mtime stays 0 (the entry carries no time, and the
		 * state must not depend on this server's clock). Watchers of the
		 * node (Curator's EnsembleTracker) hear NodeDataChanged, with
		 * the zxid this server is at. */
		if (r == 0) {
			node->mzxid = (int64_t)index;
			node->version = -1;
		}
		tree_node_changed(&m->state->tree, node);
		if (r < 0) {
			jute_buf_free(&b);
			return;
		}
		struct state_listener *l = &m->state->listener;
		if (l->node_event)
			l->node_event(l->ctx, m->state->last_zxid, ZK_EVENT_NODE_DATA_CHANGED, node,
				      CONFIG_PATH, strlen(CONFIG_PATH));
	}
	jute_buf_free(&b);
}

static bool may_write_config(struct membership *m, const struct auth_identities *ids)
{
	const struct znode *n = tree_lookup(&m->state->tree, CONFIG_PATH, strlen(CONFIG_PATH));
	return n && auth_allowed(ids, n->acl, ZK_PERM_WRITE);
}

int32_t membership_reconfig(struct membership *m, const struct auth_identities *ids,
			    const uint8_t *body, uint32_t len, struct request *rq, uint32_t origin, uint64_t seq)
{
	struct commit *c = m->commit;
	struct jute_reader r;
	struct reconfig_request req;
	jute_reader_init(&r, body, len);
	if (reconfig_request_decode(&r, &req) < 0)
		return ZMARSHALLINGERROR;
	const char *joining = req.joining, *leaving = req.leaving, *members = req.members;
	int32_t jlen = req.joining_len, llen = req.leaving_len, mlen = req.members_len;
	/* ZooKeeper's order (PrepRequestProcessor): enabled, no change in
	 * progress, the version, the arguments, a voter left, and only then
	 * WRITE on /zookeeper/config: bad arguments are BADARGUMENTS for
	 * anyone. */
	if (!m->cfg->reconfig_enabled)
		return ZRECONFIGDISABLED;
	uint64_t index;
	const struct raft_configuration *cur = committed_conf(c, &index);
	if (!cur || c->raft.configuration_uncommitted_index || !list_empty(&m->pending))
		return ZRECONFIGINPROGRESS;
	if (req.config_id != -1 && (uint64_t)req.config_id != index)
		return ZBADVERSION;
	struct raft_configuration next;
	struct members_verdict verdict;
	if (members_change(cur, &req, &next, &verdict) < 0)
		return ZAPIERROR;	/* out of memory: nothing changes */
	if (verdict.err)
		return verdict.err;
	if (!may_write_config(m, ids)) {
		if (!verdict.foreign_id)
			raft_configuration_close(&next);
		return ZNOAUTH;
	}
	if (verdict.foreign_id) {
		log_info("reconfig refused: a joining server's id is outside 1..255 (corral's ids)");
		return ZBADARGUMENTS;
	}
	uint64_t change_index = 0;
	int rc = commit_change(c, &next, &change_index);
	raft_configuration_close(&next);
	if (rc < 0)
		return rc == -EBUSY ? ZRECONFIGINPROGRESS : ZAPIERROR;
	struct pending_reconfig *p = calloc(1, sizeof(*p));
	if (!p)
		return ZAPIERROR;	/* the change goes on; its answer cannot */
	p->index = change_index;
	p->rq = rq;
	p->origin = origin;
	p->seq = seq;
	list_push_back(&m->pending, &p->node);
	log_notice("reconfig: the members change at index %llu (%s%.*s%s%.*s%s%.*s)",
		   (unsigned long long)change_index, jlen > 0 ? "joining " : "", jlen > 0 ? (int)jlen : 0,
		   jlen > 0 ? joining : "", llen > 0 ? " leaving " : "", llen > 0 ? (int)llen : 0,
		   llen > 0 ? leaving : "", mlen >= 0 ? " members " : "", mlen > 0 ? (int)mlen : 0,
		   mlen > 0 ? members : "");
	return ZOK;
}

void membership_committed(struct membership *m)
{
	membership_refresh(m);
	uint64_t committed = m->commit->raft.configuration_committed_index;
	list_for_each_safe(&m->pending, n, tmp) {
		struct pending_reconfig *p = list_entry(n, struct pending_reconfig, node);
		if (p->index > committed)
			continue;
		list_remove(&m->pending, &p->node);
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
			if (commit_submit(m->commit, t) < 0) {
				if (p->rq)
					p->rq->txn = NULL;
				t->request = NULL;
				txn_free(t);
			}
		}
		free(p);
	}
}

void membership_drop(struct membership *m)
{
	struct list_node *n;
	while ((n = list_pop_front(&m->pending)))
		free(list_entry(n, struct pending_reconfig, node));
}

int32_t membership_transfer(struct membership *m, const struct auth_identities *ids,
			    const uint8_t *body, uint32_t len)
{
	struct jute_reader r;
	jute_reader_init(&r, body, len);
	int32_t id = jute_read_int(&r);
	if (r.error || id < 0 || id > 255)
		return ZBADARGUMENTS;
	if (!m->cfg->in_ensemble || commit_state(m->commit) != RAFT_LEADER)
		return ZAPIERROR;
	if (!may_write_config(m, ids))
		return ZNOAUTH;
	int rc = commit_transfer(m->commit, (raft_id)id);
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

int membership_init(struct membership *m, struct commit *commit, struct state *state,
		    const struct server_config *cfg)
{
	m->commit = commit;
	m->state = state;
	m->cfg = cfg;
	list_init(&m->pending);
	return 0;
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
