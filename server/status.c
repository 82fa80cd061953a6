/* status: see status.h. */
#include "status.h"

#include <string.h>

#include "clients.h"
#include "commit.h"
#include "prep.h"
#include "server_config.h"

bool status_read_only(const struct server_status *st)
{
	return st->cfg->in_ensemble && st->cfg->read_only && !commit_leader(st->commit);
}

const char status_full_version[] =
	ZOOKEEPER_VERSION "-corral-" CORRAL_VERSION ", built on " CORRAL_BUILD_DATE;

const char *status_mode(const struct server_status *st)
{
	struct commit *c = st->commit;
	if (!st->cfg->in_ensemble)
		return "standalone";
	if (commit_state(c) == RAFT_LEADER)
		return "leader";
	if (!commit_leader(c))
		return status_read_only(st) ? "read-only" : "looking";
	return commit_is_observer(c) ? "observer" : "follower";
}

const char *status_peer_state(const struct server_status *st)
{
	struct commit *k = st->commit;
	if (commit_state(k) == RAFT_LEADER)
		return "leading - broadcast";
	if (!commit_leader(k))
		return "looking - election";
	return commit_is_observer(k) ? "observing - broadcast" : "following - broadcast";
}

size_t status_outstanding(const struct server_status *st)
{
	size_t n = 0;
	clients_for_each(st->clients, k)
		n += k->queue.length;
	return n;
}

void status_reset_stats(const struct server_status *st)
{
	memset(&st->clients->hub.stats, 0, sizeof(st->clients->hub.stats));
	namespace_stats_zero(&st->prep->quota_refused);
	namespace_stats_zero(&st->clients->reads);
	namespace_stats_zero(&st->clients->writes);
}
