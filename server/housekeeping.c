/* housekeeping: see housekeeping.h. */
#include "housekeeping.h"

#include <stdlib.h>

#include "commit.h"
#include "conn.h"
#include "forward_park.h"
#include "log.h"
#include "prep.h"
#include "server_config.h"
#include "session.h"
#include "state.h"
#include "tree.h"

void housekeeping_init(struct housekeeping *h, uint64_t now_ms, const struct server_config *cfg)
{
	*h = (struct housekeeping){ .next_reap_ms = now_ms + cfg->container_check_interval_ms };
}

static void expire_sessions(struct request_path *p, uint64_t now_ms)
{
	struct session *s;
	/* While the log takes no writes, a session cannot be closed: it waits
	 * (and its clients, who cannot write either, are told why by the log). */
	if (p->commit->failed || p->commit->refusing_for_space || !commit_can_prep(p->commit))
		return;		/* only the leader expires sessions */
	while ((s = session_next_expired(&p->state->sessions, now_ms))) {
		if (s->closing)
			continue;
		log_event(LOG_INFO, { .message_id = LOG_MSGID_SESSION_EXPIRED, .session_id = s->id },
			  "session 0x%llx expired after %u ms without a packet",
			  (unsigned long long)s->id, s->timeout_ms);
		if (s->conn)
			conn_close(s->conn, LOG_DEBUG, "its session expired");
		struct txn *t = NULL;
		if (commit_can_accept(p->commit, 4096) < 0 ||
		    prep_close_session(p->prep, s->id, loop_wall_ms(), &t) < 0) {
			session_requeue(&p->state->sessions, s);
			break;
		}
		if (commit_submit(p->commit, t) < 0) {
			/* not taken (leadership is moving): later, by whoever leads */
			txn_free(t);
			session_requeue(&p->state->sessions, s);
			break;
		}
		s->closing = true;
	}
}

/* Containers whose last child went and TTL nodes left unchanged past their
 * ttl are deleted by the server, as ZooKeeper's ContainerManager does: a
 * deleteContainer txn each, at most container_max_per_minute a minute. */
static void reap_nodes(struct request_path *p)
{
	const struct server_config *cfg = p->cfg;
	struct tree *tree = &p->state->tree;
	int64_t now = loop_wall_ms();
	uint64_t budget = (uint64_t)cfg->container_max_per_minute *
			  cfg->container_check_interval_ms / 60000u;
	if (budget == 0)
		budget = 1;
	if (tree->reapable_count == 0 || !commit_can_prep(p->commit))
		return;
	tree_for_each_node(tree, n) {
		if (budget == 0)
			return;
		if (znode_owner(n) >= 0 || znode_num_children(n) > 0)
			continue;
		bool container = znode_owner(n) == ZNODE_OWNER_CONTAINER;
		int64_t ttl = znode_owner(n) & ~ZNODE_OWNER_TTL_MASK;
		if (container ? znode_child_creates(n) == 0 : now - znode_mtime(n) <= ttl)
			continue;
		struct txn *t;
		int32_t err;
		size_t len = znode_path_len(n);
		if (commit_can_accept(p->commit, len + 4096) < 0)
			return;
		char *path = malloc(len + 1);
		if (!path)
			return;
		znode_path_write(n, path, len);
		int r = prep_delete_container(p->prep, NULL, path, len, now, &t, &err);
		free(path);
		if (r < 0)
			return;
		if (err)
			continue;	/* already going, or changed meanwhile */
		if (commit_submit(p->commit, t) < 0) {
			txn_free(t);
			return;
		}
		budget--;
	}
}

/* Once a minute, when there were writes: how well group commit batches. */
static void report_group_commit(struct housekeeping *h, const struct wal *w, uint64_t now_ms)
{
	if (now_ms < h->next_report_ms)
		return;
	h->next_report_ms = now_ms + 60000;
	uint64_t syncs = w->batches - h->reported_fsyncs;
	uint64_t entries = w->records_written - h->reported_entries;
	h->reported_fsyncs = w->batches;
	h->reported_entries = w->records_written;
	if (syncs)
		log_info("log: %llu entries in %llu fdatasyncs in the last minute, %.1f per fdatasync",
			 (unsigned long long)entries, (unsigned long long)syncs,
			 (double)entries / (double)syncs);
}

void housekeeping_tick(struct housekeeping *h, struct request_path *p, uint64_t now_ms)
{
	expire_sessions(p, now_ms);
	if (p->forwarder) {
		forward_touch(p->forwarder, now_ms);
		forward_tick(p->forwarder, now_ms);
	}
	if (now_ms >= h->next_reap_ms) {
		reap_nodes(p);
		h->next_reap_ms = now_ms + p->cfg->container_check_interval_ms;
	}
	report_group_commit(h, &p->commit->wal, now_ms);
}
