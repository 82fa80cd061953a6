/* status: what the server tells of itself (the four-letter words, the
 * service's STATUS= line): its mode as ZooKeeper names it, and the parts
 * whose figures it reports. The server fills it in; fourletter.c reads it
 * and knows nothing else of the server. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest_check.h"
#include "summary.h"

struct clients;
struct backup;
struct memory_budget;
struct prep;
struct commit;
struct ensemble;
struct forward_leader;
struct forwarder;
struct server_config;
struct state;
struct watch_table;

/* What the HTTP endpoint counts (admin_http.c keeps it, metrics report it). */
struct http_stats {
	uint64_t requests, refused;	/* answered; refused (403/404/405) */
};

/* "3.8.0-corral-0.1.0, built on ...": what srvr, mntr and the metrics call
 * the version (clients parse the part before the dash). */
extern const char status_full_version[];

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
	const struct backup *backup;
	struct prep *prep;			/* (srst zeroes its quota refusals) */
	const struct http_stats *http;		/* the HTTP endpoint's counts */
	const struct digest_check *digest;
	uint64_t started_ms;			/* the loop's clock */
	uint64_t leading_since_ms;		/* when this server last became leader */
	uint64_t looking_since_ms;		/* knows no leader since (0: knows one) */
	struct summary election_ms;		/* from losing a leader to knowing one */
	uint64_t looking_count;			/* times it came to know no leader */
};

/* What srvr and mntr call this server: standalone, leader, follower,
 * observer, read-only (status_read_only()), or looking (an ensemble member
 * that knows no leader, without ensemble.read_only). */
const char *status_mode(const struct server_status *st);
/* An ensemble member that knows no leader, with ensemble.read_only on: it
 * serves read-only sessions, as ZooKeeper's read-only server does. */
bool status_read_only(const struct server_status *st);
/* Requests received and not yet answered, on every connection. */
size_t status_outstanding(const struct server_status *st);
/* ZooKeeper's detailed peer state (mntr's zk_peer_state). */
const char *status_peer_state(const struct server_status *st);
/* srst: the server's statistics back to zero, as ZooKeeper's
 * ServerStats.reset() (latencies, packets, the counters of mntr). */
void status_reset_stats(const struct server_status *st);
