/* state: see state.h. */
#include "state.h"

#include <errno.h>
#include <string.h>

static const struct {
	const char *parent;
	const char *path;
	int32_t aversion;
	bool read_only;
} builtin_nodes[] = {
	{ "/", "/zookeeper", 0, false },
	{ "/zookeeper", "/zookeeper/quota", 0, false },
	/* ZooKeeper shows /zookeeper/config with aversion -1 and a read-only ACL. */
	{ "/zookeeper", "/zookeeper/config", -1, true },
};

int state_init(struct state *s, uint8_t server_id, uint64_t wall_ms)
{
	int r;

	memset(s, 0, sizeof(*s));
	r = tree_init(&s->tree);
	if (r < 0)
		return r;
	r = session_table_init(&s->sessions, server_id, wall_ms);
	if (r < 0) {
		tree_free(&s->tree);
		return r;
	}
	s->tree.root->data_len = 0;
	for (size_t i = 0; i < sizeof(builtin_nodes) / sizeof(builtin_nodes[0]); i++) {
		const char *pp = builtin_nodes[i].parent;
		const char *p = builtin_nodes[i].path;
		struct znode *parent = tree_lookup(&s->tree, pp, strlen(pp));
		/* Built-in nodes are not counted as client creates: ZooKeeper shows
		 * /zookeeper with cversion -2 (0 creates, 2 children). */
		struct acl_list *acl = s->tree.acls.open_acl;
		if (builtin_nodes[i].read_only) {
			/* /zookeeper/config: world:anyone READ only, as ZooKeeper. */
			struct acl_entry read = { .perms = 1, .scheme = "world", .id = "anyone" };
			acl = acl_intern(&s->tree.acls, &read, 1);
			if (!acl) {
				state_free(s);
				return -ENOMEM;
			}
		} else {
			acl_ref(acl);
		}
		struct znode *n = tree_add(&s->tree, parent, p, strlen(p), "", 0, acl, 0, 0, 0);
		acl_unref(&s->tree.acls, acl);
		if (!n) {
			state_free(s);
			return -ENOMEM;
		}
		if (!builtin_nodes[i].aversion)
			continue;
		tree_node_changing(&s->tree, n);
		struct znode_mod *m = tree_mod(&s->tree, n);
		if (m)
			m->aversion = builtin_nodes[i].aversion;
		tree_node_changed(&s->tree, n);
		if (!m) {
			state_free(s);
			return -ENOMEM;
		}
	}
	return 0;
}

void state_free(struct state *s)
{
	tree_free(&s->tree);
	session_table_free(&s->sessions);
}

bool state_is_system_path(const char *path, size_t len)
{
	static const char *const system_paths[] = {
		"/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config",
	};
	for (size_t i = 0; i < sizeof(system_paths) / sizeof(system_paths[0]); i++)
		if (strlen(system_paths[i]) == len && memcmp(system_paths[i], path, len) == 0)
			return true;
	return false;
}

uint64_t state_memory_bytes(const struct state *s)
{
	return tree_memory_bytes(&s->tree) +
	       (uint64_t)s->sessions.by_id.count * (sizeof(struct session) + 48);
}

void state_note_digest(struct state *s)
{
	struct digest_history *h = &s->digests;
	struct zxid_digest zd = { .zxid = s->last_zxid, .digest = s->tree.digest };
	h->recent[h->recent_next] = zd;
	h->recent_next = (h->recent_next + 1) % STATE_DIGEST_RECENT;
	if (h->recent_count < STATE_DIGEST_RECENT)
		h->recent_count++;
	if (zd.zxid % STATE_DIGEST_LOG_INTERVAL != 0)
		return;
	if (h->log_count == STATE_DIGEST_LOG_LIMIT) {
		h->log_start = (h->log_start + 1) % STATE_DIGEST_LOG_LIMIT;
		h->log_count--;
	}
	h->log[(h->log_start + h->log_count) % STATE_DIGEST_LOG_LIMIT] = zd;
	h->log_count++;
}

int state_digest_at(const struct state *s, int64_t zxid, uint64_t *ret_digest)
{
	const struct digest_history *h = &s->digests;
	for (uint32_t k = 1; k <= h->recent_count; k++) {
		const struct zxid_digest *zd =
			&h->recent[(h->recent_next + STATE_DIGEST_RECENT - k) % STATE_DIGEST_RECENT];
		if (zd->zxid == zxid) {
			*ret_digest = zd->digest;
			return 0;
		}
		if (zd->zxid < zxid)
			break;
	}
	return -ENOENT;
}
