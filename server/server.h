/* server: corrald's top-level object. It owns the loop, the replicated state,
 * prep and the commit step, the listeners and the connections, and the
 * timer that expires sessions. It glues the request path together:
 * connection -> request queue -> (read: tree | write: prep -> commit -> apply)
 * -> reply. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <linux/time_types.h>

#include "commit.h"
#include "ensemble.h"
#include "server_config.h"
#include "loop.h"
#include "prep.h"
#include "service.h"
#include "state.h"
#include "watch.h"

struct conn;
struct listener;
struct address_count;

struct server_stats {
	uint64_t packets_received;
	uint64_t packets_sent;
	uint64_t latency_min_ms, latency_max_ms, latency_total_ms, latency_count;
	uint64_t connections_accepted;
	uint64_t connections_refused;
	uint64_t bad_input_closed;
	uint64_t auth_failed;		/* auth and SASL requests refused */
	/* Sizes of the replies and events sent (mntr's client response sizes). */
	uint64_t responses, response_last_bytes, response_min_bytes, response_max_bytes;
};

struct server {
	struct server_config *cfg;
	struct loop loop;
	struct state state;
	struct prep prep;
	struct commit commit;
	struct ensemble ensemble;	/* when in an ensemble (cfg->in_ensemble) */
	struct watch_table watches;
	int64_t applying_zxid;		/* the txn being applied, for watch events */

	struct listener *listeners;
	size_t listener_count;

	struct conn *conns;		/* all open connections */
	uint32_t conn_count;
	/* Refused writes waiting for earlier txns (request.c), in barrier order. */
	struct request *barrier_head, *barrier_tail;
	struct conn *dirty;		/* connections with replies to send */
	struct address_count *per_address;
	size_t per_address_cap;

	struct service service;

	/* The ensemble (forward.c). */
	struct list fwd;		/* requests forwarded, answer not matched yet, in order */
	uint64_t fwd_next_seq;		/* from the wall clock at start (server.c) */
	struct held_frame *held_head, *held_tail;	/* for the leader once ready */
	raft_id leader_seen;
	enum raft_state role_seen;	/* raft's state when on_role last ran */
	uint64_t leading_since_ms;	/* when this server last became leader */
	struct pending_reconfig *reconfig_head;	/* membership.c */
	bool prepping;			/* this server preps writes (leader, ready) */
	uint64_t next_touch_ms;
	uint64_t forwarded, forwards_lost, forwards_received;

	struct loop_op timer_op;
	struct __kernel_timespec timer_ts;
	bool timer_armed;

	uint64_t now_ms;		/* monotonic, refreshed every loop turn */
	uint64_t started_ms;
	uint64_t next_reap_ms;
	uint64_t next_report_ms;
	uint64_t reported_fsyncs, reported_entries;
	bool stopping;
	bool recovering;
	bool loop_ready;		/* replaying the log at startup */
	uint64_t stop_deadline_ms;
	int exit_status;
	struct server_stats stats;
};

/* Sets everything up and replays the log. On failure everything is freed
 * again and why says what went wrong. */
int server_init(struct server *srv, struct server_config *cfg, char *why, size_t why_size);
/* Opens the configured listeners; returns 0 or a negative errno (logged). */
int server_listen(struct server *srv);
int server_run(struct server *srv);
void server_free(struct server *srv);
void server_request_stop(struct server *srv);

/* What srvr and mntr call this server: standalone, leader, follower,
 * observer, read-only (see server_read_only()), or looking (an ensemble
 * member that knows no leader, without ensemble.read_only). */
const char *server_mode(struct server *srv);
/* An ensemble member that knows no leader, with ensemble.read_only on: it
 * serves read-only sessions, as ZooKeeper's read-only server does (conn.c). */
bool server_read_only(struct server *srv);

/* Used by conn.c and request.c. */
void server_conn_dirty(struct server *srv, struct conn *c);
int server_submit(struct server *srv, struct txn *t);
