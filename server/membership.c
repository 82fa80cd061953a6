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

/* Where a reconfig is. Most go straight to PENDING_COMMIT. One whose new
 * voters the new configuration needs for its quorum (a one-voter ensemble
 * adding a second voter) is staged, as raft's thesis has it (4.2.1): were
 * its entry appended while they cannot answer yet, the leader would lose its
 * majority, and a new voter that never got the entry could not vote for
 * anyone (a server votes only as a voter of its own configuration): the
 * ensemble would stand still. So they join as spares first (not members:
 * /zookeeper/config does not list them), are caught up with the log, and
 * only then become voters; one that does not answer ends the reconfig with
 * ZooKeeper's NEWCONFIGNOQUORUM, nothing changed for the members. (Should
 * leadership change meanwhile, a spare stays in raft's configuration,
 * unlisted and sent nothing; adding the server again goes on from there.) */
enum pending_stage {
	PENDING_COMMIT,		/* the change's entry is on its way: answered once committed */
	PENDING_SPARES,		/* the new voters, as spares, are on their way */
	PENDING_CATCH_UP,	/* they are being caught up, one at a time */
};

/* A reconfig on its way. */
struct pending_reconfig {
	struct list_node node;
	enum pending_stage stage;
	uint64_t index;			/* the configuration entry (COMMIT, SPARES) */
	struct request *rq;		/* a local request, or NULL */
	uint32_t origin;		/* or a forwarded one */
	uint64_t seq;
	/* Staged: the configuration asked for, and the new voters to catch up */
	struct raft_configuration target;
	raft_id *joining;
	unsigned joining_count, caught;	/* joining[caught] is being caught up */
	bool catching;			/* its catch-up was started */
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
		struct znode_mod *mod = tree_mod(&m->state->tree, node);
		int r = mod ? tree_set_data(&m->state->tree, node, b.data, (int32_t)b.len) : -ENOMEM;
		/* As ZooKeeper's: mzxid the change's, version -1 (no setData
		 * takes it); mtime stays 0 (the entry carries no time, and the
		 * state must not depend on this server's clock). Watchers of the
		 * node (Curator's EnsembleTracker) hear NodeDataChanged, with
		 * the zxid this server is at. */
		if (r == 0) {
			mod->mzxid = (int64_t)index;
			mod->version = -1;
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

static void pending_reconfig_free(struct pending_reconfig *p)
{
	if (p->joining)
		raft_configuration_close(&p->target);
	free(p->joining);
	free(p);
}

static const struct raft_server *conf_find(const struct raft_configuration *conf, raft_id id)
{
	for (unsigned i = 0; i < conf->n; i++)
		if (conf->servers[i].id == id)
			return &conf->servers[i];
	return NULL;
}

/* The voters of next that cur has not as voters, into p->joining, when
 * next's quorum needs them: when cur's voters that stay are no majority of
 * next's. 0 or -ENOMEM. */
static int new_voters(const struct raft_configuration *cur, const struct raft_configuration *next,
		      struct pending_reconfig *p)
{
	unsigned voters = 0, kept = 0, added = 0;
	for (unsigned i = 0; i < next->n; i++) {
		if (next->servers[i].role != RAFT_VOTER)
			continue;
		const struct raft_server *was = conf_find(cur, next->servers[i].id);
		voters++;
		if (was && was->role == RAFT_VOTER)
			kept++;
		else
			added++;
	}
	if (!added || kept >= voters / 2 + 1)
		return 0;
	p->joining = calloc(added, sizeof(*p->joining));
	if (!p->joining)
		return -ENOMEM;
	for (unsigned i = 0; i < next->n; i++) {
		const struct raft_server *was = conf_find(cur, next->servers[i].id);
		if (next->servers[i].role == RAFT_VOTER && !(was && was->role == RAFT_VOTER))
			p->joining[p->joining_count++] = next->servers[i].id;
	}
	return 0;
}

/* The first step of a staged reconfig (p->joining set): next becomes its
 * target; cur with the new voters that are not in it yet, as spares, is
 * submitted (or, all there already, their catch-up begins). 0 or a
 * negative errno, next closed either way. */
static int stage(struct commit *c, const struct raft_configuration *cur,
		 struct pending_reconfig *p, struct raft_configuration *next)
{
	p->target = *next;
	struct raft_configuration spares;
	raft_configuration_init(&spares);
	bool adds = false;
	int r = 0;
	/* cur as it is, but for a new voter there at another address (a spare
	 * or standby before): it comes back below, as a spare at its new one */
	for (unsigned i = 0; i < cur->n && r == 0; i++) {
		const struct raft_server *s = &cur->servers[i];
		const struct raft_server *to = conf_find(&p->target, s->id);
		if (to && s->role != RAFT_VOTER && to->role == RAFT_VOTER &&
		    strcmp(s->address, to->address) != 0)
			continue;
		if (raft_configuration_add(&spares, s->id, s->address, s->role) != 0)
			r = -ENOMEM;
	}
	for (unsigned k = 0; k < p->joining_count && r == 0; k++) {
		const struct raft_server *s = conf_find(&p->target, p->joining[k]);
		if (conf_find(&spares, s->id))
			continue;	/* a spare or standby already, at its address */
		if (raft_configuration_add(&spares, s->id, s->address, RAFT_SPARE) != 0)
			r = -ENOMEM;
		adds = true;
	}
	if (r == 0 && adds) {
		p->stage = PENDING_SPARES;
		r = commit_change(c, &spares, &p->index);
	} else if (r == 0) {
		p->stage = PENDING_CATCH_UP;
		r = commit_catch_up(c, p->joining[0]);
		p->catching = r == 0;
	}
	raft_configuration_close(&spares);
	return r;
}

static bool may_write_config(struct membership *m, const struct auth_identities *ids)
{
	const struct znode *n = tree_lookup(&m->state->tree, CONFIG_PATH, strlen(CONFIG_PATH));
	return n && auth_allowed(ids, znode_acl(n), ZK_PERM_WRITE);
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
	struct pending_reconfig *p = calloc(1, sizeof(*p));
	if (!p) {
		raft_configuration_close(&next);
		return ZAPIERROR;
	}
	p->rq = rq;
	p->origin = origin;
	p->seq = seq;
	int rc = new_voters(cur, &next, p);
	if (rc < 0) {
		raft_configuration_close(&next);
	} else if (p->joining_count) {
		rc = stage(c, cur, p, &next);
	} else {
		p->stage = PENDING_COMMIT;
		rc = commit_change(c, &next, &p->index);
		raft_configuration_close(&next);
	}
	if (rc < 0) {
		pending_reconfig_free(p);
		return rc == -EBUSY ? ZRECONFIGINPROGRESS : ZAPIERROR;
	}
	list_push_back(&m->pending, &p->node);
	if (p->stage == PENDING_COMMIT)
		log_notice("reconfig: the members change at index %llu (%s%.*s%s%.*s%s%.*s)",
			   (unsigned long long)p->index, jlen > 0 ? "joining " : "",
			   jlen > 0 ? (int)jlen : 0, jlen > 0 ? joining : "", llen > 0 ? " leaving " : "",
			   llen > 0 ? (int)llen : 0, llen > 0 ? leaving : "", mlen >= 0 ? " members " : "",
			   mlen > 0 ? (int)mlen : 0, mlen > 0 ? members : "");
	else
		log_notice("reconfig: %u new voter%s that the new members need for their quorum "
			   "join%s as spare%s first, to be caught up with the log (%s%.*s%s%.*s%s%.*s)",
			   p->joining_count, p->joining_count == 1 ? "" : "s",
			   p->joining_count == 1 ? "s" : "", p->joining_count == 1 ? "" : "s",
			   jlen > 0 ? "joining " : "", jlen > 0 ? (int)jlen : 0, jlen > 0 ? joining : "",
			   llen > 0 ? " leaving " : "", llen > 0 ? (int)llen : 0, llen > 0 ? leaving : "",
			   mlen >= 0 ? " members " : "", mlen > 0 ? (int)mlen : 0, mlen > 0 ? members : "");
	return ZOK;
}

/* Answers p and frees it: the new members (err ZOK) or err, as a txn that
 * follows every txn before it through the log (the way a forwarded
 * request's server hears of it). */
static void answer(struct membership *m, struct pending_reconfig *p, int32_t err)
{
	list_remove(&m->pending, &p->node);
	struct txn *t = txn_new(err ? 1 : 0);
	if (t) {
		t->request_op = ZK_OP_RECONFIG;
		t->time_ms = loop_wall_ms();
		t->origin = p->origin;
		t->origin_seq = p->seq;
		t->request = p->rq;
		if (err) {
			t->ops[0].type = TXN_OP_ERROR;
			t->ops[0].request_type = ZK_OP_RECONFIG;
			t->ops[0].err = err;
		}
		if (p->rq)
			p->rq->txn = t;
		if (commit_submit(m->commit, t) < 0) {
			if (p->rq)
				p->rq->txn = NULL;
			t->request = NULL;
			txn_free(t);
		}
	}
	pending_reconfig_free(p);
}

/* A staged reconfig that failed: the spares it added leave the
 * configuration again (the members never listed them), when nothing else
 * is changing it. */
static void drop_spares(struct commit *c, const struct pending_reconfig *p)
{
	uint64_t index;
	const struct raft_configuration *cur = committed_conf(c, &index);
	if (!cur || c->raft.configuration_uncommitted_index)
		return;
	struct raft_configuration next;
	raft_configuration_init(&next);
	bool drops = false;
	int r = 0;
	for (unsigned i = 0; i < cur->n && r == 0; i++) {
		const struct raft_server *s = &cur->servers[i];
		bool joining = false;
		for (unsigned k = 0; k < p->joining_count; k++)
			joining |= p->joining[k] == s->id;
		if (joining && s->role == RAFT_SPARE)
			drops = true;
		else if (raft_configuration_add(&next, s->id, s->address, s->role) != 0)
			r = -ENOMEM;
	}
	if (r == 0 && drops)
		r = commit_change(c, &next, &index);
	if (r < 0)
		log_warning("reconfig: the spares of a refused change stay in raft's configuration "
			    "(%s); they are not members", strerror(-r));
	raft_configuration_close(&next);
}

/* The staged reconfig's next step: the next new voter's catch-up, or, all
 * caught up, the change asked for. 0, or a negative errno (-EAGAIN: try
 * again later). */
static int staged_step(struct membership *m, struct pending_reconfig *p)
{
	struct commit *c = m->commit;
	if (p->caught < p->joining_count) {
		int r = commit_catch_up(c, p->joining[p->caught]);
		if (r == 0) {
			p->stage = PENDING_CATCH_UP;
			p->catching = true;
		}
		return r;
	}
	int r = commit_change(c, &p->target, &p->index);
	if (r == 0) {
		p->stage = PENDING_COMMIT;
		log_notice("reconfig: the new voters are caught up; the members change at index %llu",
			   (unsigned long long)p->index);
	}
	return r;
}

void membership_committed(struct membership *m)
{
	membership_refresh(m);
	uint64_t committed = m->commit->raft.configuration_committed_index;
	list_for_each_safe(&m->pending, n, tmp) {
		struct pending_reconfig *p = list_entry(n, struct pending_reconfig, node);
		if (p->index > committed || p->stage == PENDING_CATCH_UP)
			continue;
		if (p->stage == PENDING_COMMIT) {
			answer(m, p, ZOK);
			continue;
		}
		/* the spares are in: their catch-up begins (or on the next tick) */
		p->stage = PENDING_CATCH_UP;
		p->catching = false;
		int r = staged_step(m, p);
		if (r < 0 && r != -EAGAIN && r != -EBUSY)
			answer(m, p, ZAPIERROR);
	}
}

void membership_tick(struct membership *m)
{
	list_for_each_safe(&m->pending, n, tmp) {
		struct pending_reconfig *p = list_entry(n, struct pending_reconfig, node);
		if (p->stage != PENDING_CATCH_UP || p->catching)
			continue;
		int r = staged_step(m, p);
		if (r < 0 && r != -EAGAIN && r != -EBUSY)
			answer(m, p, ZAPIERROR);
	}
}

void membership_catch_up_ended(struct membership *m)
{
	struct commit *c = m->commit;
	list_for_each_safe(&m->pending, n, tmp) {
		struct pending_reconfig *p = list_entry(n, struct pending_reconfig, node);
		if (p->stage != PENDING_CATCH_UP || !p->catching)
			continue;
		raft_id id = p->joining[p->caught];
		int status = commit_catch_up_status(c, id);
		if (status == RAFT_CATCH_UP_RUNNING || status == -EAGAIN)
			continue;	/* (not leading any more: on_role drops it) */
		if (status != RAFT_CATCH_UP_FINISHED) {
			log_notice("reconfig refused: new voter %llu did not answer the leader or could "
				   "not catch up with the log (NEWCONFIGNOQUORUM); it stays out of the "
				   "members", (unsigned long long)id);
			drop_spares(c, p);
			answer(m, p, ZNEWCONFIGNOQUORUM);
			continue;
		}
		log_info("reconfig: new voter %llu is caught up with the log",
			 (unsigned long long)id);
		p->caught++;
		p->catching = false;
		int r = staged_step(m, p);
		if (r < 0 && r != -EAGAIN && r != -EBUSY)
			answer(m, p, ZAPIERROR);
	}
}

void membership_drop(struct membership *m)
{
	struct list_node *n;
	while ((n = list_pop_front(&m->pending)))
		pending_reconfig_free(list_entry(n, struct pending_reconfig, node));
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
