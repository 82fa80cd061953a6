/* request_path: the parts of the server that a client's request travels
 * through, as the request path's modules see them (handshake.c,
 * dispatch.c, read.c, housekeeping.c): the configuration, the replicated
 * state, prep, the commit step, the watches, the follower's forwarder and
 * the membership, and the list of refused writes waiting for a barrier.
 * The server owns these parts and fills this in; the modules take what
 * they use from it and none of them knows the server. */
#pragma once

#include "list.h"

struct backup;
struct clients;
struct commit;
struct forwarder;
struct membership;
struct prep;
struct server_config;
struct state;
struct watch_table;

struct request_path {
	const struct server_config *cfg;
	struct state *state;
	struct prep *prep;
	struct commit *commit;
	struct watch_table *watches;
	struct clients *clients;
	struct forwarder *forwarder;	/* a follower's writes to the leader */
	struct membership *membership;	/* reconfig, /zookeeper/config */
	struct backup *backup;		/* online backups (backup.c) */
	struct list barriers;		/* struct request: refused writes, in barrier order */
};
