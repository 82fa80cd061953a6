/* membership: who the ensemble's members are, as clients see it and change
 * it.
 *
 * The members are raft's configuration: each with an id, a role (voter =
 * ZooKeeper's participant, standby = observer) and an address that corral
 * writes "PEER;CLIENT", or "PEER;CLIENT;ELECTIONPORT" for a member added by
 * reconfig. /zookeeper/config shows the committed configuration in
 * ZooKeeper's dynamic-config format, one line per member,
 * "server.N=PEERHOST:PEERPORT:ELECTIONPORT:participant|observer;CLIENTHOST:CLIENTPORT"
 * (corral has no election port: a member shows the one it was added with,
 * so a reconfig's server string reads back as written, and 0 when it came
 * from corral.yaml) and "version=HEX" (the configuration's log index), so
 * getConfig works; it is rewritten on every server when a configuration
 * commits (the same data everywhere; its Stat as ZooKeeper's, mzxid that
 * index and version -1), and its watchers get NodeDataChanged.
 *
 * ZooKeeper's reconfig op (incremental: joining and leaving servers; or a
 * whole new member list) is allowed when ensemble.reconfig is on and the
 * client has WRITE on /zookeeper/config. The leader turns it into a raft
 * configuration change (new voters that the new members need for their
 * quorum are caught up first, as spares: membership.c); once that commits, the answer goes back as a txn
 * (through the log, like every answer to a forwarded request) and the
 * client gets /zookeeper/config's data and Stat. transferLeader (corral's
 * opcode 5001) asks the leader to hand over leadership. */
#pragma once

#include <stdint.h>

#include "auth.h"
#include "commit.h"
#include "list.h"
#include "server_config.h"
#include "state.h"

#define ZK_OP_CORRAL_TRANSFER_LEADER 5001

struct request;

struct membership {
	struct commit *commit;
	struct state *state;		/* /zookeeper/config is in its tree */
	const struct server_config *cfg;
	struct list pending;		/* reconfigs waiting for their entry to commit */
};

int membership_init(struct membership *m, struct commit *commit, struct state *state,
		    const struct server_config *cfg);

/* Rewrites /zookeeper/config from the committed configuration. */
void membership_refresh(struct membership *m);
/* The leader: a reconfig request (body: ReconfigRequest) from a local
 * connection (rq) or forwarded (origin, seq). Returns the ZooKeeper
 * verdict (no errno: running out of memory is APIERROR, nothing changed):
 * ZOK when the change is on its way (the answer follows once it commits),
 * or the error to fail it with. */
int32_t membership_reconfig(struct membership *m, const struct auth_identities *ids,
			    const uint8_t *body, uint32_t len, struct request *rq, uint32_t origin,
			    uint64_t seq);
/* A configuration committed: the reconfigs waiting for it are answered. */
void membership_committed(struct membership *m);
/* The leader's timer: a staged reconfig's next step that could not be
 * taken at once (raft busy with another change) is tried again. */
void membership_tick(struct membership *m);
/* A catch-up is over (commit's on_catch_up_ended): a staged reconfig's
 * new voter is caught up (see membership.c) and the next one's begins or
 * they are made voters, or the reconfig fails with NEWCONFIGNOQUORUM when
 * it did not answer. */
void membership_catch_up_ended(struct membership *m);
/* This server stopped leading: reconfigs waiting are dropped (their
 * connections are closed with the other writes in flight). */
void membership_drop(struct membership *m);
/* transferLeader on this server; returns the ZooKeeper verdict: ZOK,
 * ZAPIERROR (not the leader), ZNOAUTH, ZBADARGUMENTS. */
int32_t membership_transfer(struct membership *m, const struct auth_identities *ids,
			    const uint8_t *body, uint32_t len);
/* An answered reconfig becomes a read of /zookeeper/config, in order. */
int membership_answer(struct request *rq);
