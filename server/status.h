/* status: what the server tells of itself (the four-letter words, the
 * service's STATUS= line): its mode as ZooKeeper names it, and the parts
 * whose figures it reports. The server fills it in; fourletter.c reads it
 * and knows nothing else of the server. */
#pragma once

#include "digest_check.h"
#include <stdbool.h>
#include <stdint.h>

struct clients;
struct memory_budget;
struct prep;
struct commit;
struct ensemble;
struct forward_leader;
struct forwarder;
struct server_config;
struct state;
struct watch_table;

struct server_status {
	const struct server_config *cfg;
	struct state *state;
	struct commit *commit;
	struct ensemble *ensemble;		/* in an ensemble only */
	struct watch_table *watches;
	struct clients *clients;		/* and their statistics (srst zeroes them) */
	const struct forwarder *forwarder;	/* in an ensemble only */
	const struct forward_leader *forward_leader;	/* in an ensemble only */
	const struct memory_budget *budget;
	const struct prep *prep;
	const struct digest_check *digest;
	uint64_t started_ms;			/* the loop's clock */
	uint64_t leading_since_ms;		/* when this server last became leader */
};

/* What srvr and mntr call this server: standalone, leader, follower,
 * observer, read-only (status_read_only()), or looking (an ensemble member
 * that knows no leader, without ensemble.read_only). */
const char *status_mode(const struct server_status *st);
/* An ensemble member that knows no leader, with ensemble.read_only on: it
 * serves read-only sessions, as ZooKeeper's read-only server does. */
bool status_read_only(const struct server_status *st);
/* ZooKeeper's detailed peer state (mntr's zk_peer_state). */
const char *status_peer_state(const struct server_status *st);
