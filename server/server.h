/* server: the composition root of corrald's daemon. It owns every part
 * (the loop, the replicated state, prep and the commit step, the
 * ensemble, the watches, the clients and listeners, forwarding, the
 * membership) and wires them together; the parts know each other only
 * through what it hands them:
 *
 *   listener -> clients -> conn --(handlers)--> handshake | dispatch | fourletter
 *   dispatch -> read (tree) | write: prep -> commit -> [raft] -> apply
 *   commit --(on_committed)--> txn_apply -> watches -> reply_event
 *                          \-> dispatch_txn_applied -> reply
 *
 * What is the service's (systemd's notifications, the watchdog, reload)
 * is the application's, above: it hears of the server through hooks. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <linux/time_types.h>

#include "backup.h"
#include "admin_http.h"
#include "budget.h"
#include "clients.h"
#include "commit.h"
#include "digest_check.h"
#include "ensemble.h"
#include "forward.h"
#include "forward_leader.h"
#include "handover.h"
#include "handover_hold.h"
#include "housekeeping.h"
#include "listener.h"
#include "loop.h"
#include "membership.h"
#include "prep.h"
#include "request_path.h"
#include "server_config.h"
#include "state.h"
#include "status.h"
#include "watch.h"

struct server;

/* What the application hears of the server (each may be NULL). */
struct server_hooks {
	/* An ensemble member's role or leader changed. */
	void (*role_changed)(void *ctx, struct server *srv);
	/* Every timer tick, stopping too (the watchdog pings from here). */
	void (*tick)(void *ctx, uint64_t now_ms);
	/* Reading a long log at startup. */
	void (*recovery_progress)(void *ctx, uint64_t entries, uint64_t index);
	/* The server begins to stop (asked, or it cannot go on). */
	void (*stopping)(void *ctx);
	/* A connection whose socket is in systemd's fd store too (handover.h)
	 * closed for real: it must leave the store, or its peer never sees
	 * the close. */
	void (*conn_unstored)(void *ctx, uint64_t conn_id);
	void *ctx;
	/* The timer ticks at least this often (0: as tick_time_ms says). */
	uint32_t max_tick_ms;
};

struct server {
	struct server_config *cfg;
	struct server_hooks hooks;
	struct loop loop;
	struct state state;
	struct prep prep;
	struct commit commit;
	struct ensemble ensemble;	/* when in an ensemble (cfg->in_ensemble) */
	struct watch_table watches;
	struct clients clients;
	struct listeners listeners;
	struct listeners tls_listeners;	/* client.tls.listen (the SSL_CTX: clients.hub.tls_ctx) */
	struct forwarder forwarder;	/* in an ensemble: a follower's writes */
	struct forward_leader forward_leader;	/* in an ensemble: other servers' writes */
	struct membership membership;
	struct backup backup;		/* an online backup streaming */
	struct request_path path;	/* what the request path sees of all this */
	struct server_status status;	/* what the four-letter words see */
	struct digest_check digest;	/* in an ensemble: the state compared with the leader's */
	struct housekeeping housekeeping;
	struct memory_budget budget;
	struct admin_http admin;	/* the HTTP endpoint, when admin.listen is set */

	raft_id leader_seen;
	enum raft_state role_seen;	/* raft's state when on_role last ran */
	bool prepping;			/* this server preps writes (leader, ready) */
	/* A candidate because its leader handed leadership to it: its clients
	 * stay, unless it is still a candidate at this time (0: not). */
	uint64_t transfer_candidacy_until_ms;
	/* Handing over as the leader: leadership was handed on at this time, and
	 * this process leaves once another leads (or an election timeout later). */
	uint64_t leadership_handed_ms;

	struct loop_op timer_op;
	struct __kernel_timespec timer_ts;
	bool stopping;
	bool handing_over;		/* stopping to hand the clients over (handover.h) */
	/* A stop (or hand-over) asked for that waits for a snapshot first,
	 * serving meanwhile (server_request_stop()); until this time. */
	enum { STOP_NONE, STOP_PLAIN, STOP_HANDOVER } stop_after_snapshot;
	uint64_t stop_snapshot_deadline_ms;
	int *kept_listeners;		/* handing over: the listening sockets to store */
	size_t kept_listener_count;
	struct handover_hold hold;	/* a member's connections from the previous process */
	bool recovering;		/* replaying the log at startup */
	bool loop_ready;
	uint64_t stop_deadline_ms;
	int exit_status;
};

/* Sets everything up and replays the log. On failure everything is freed
 * again and why says what went wrong. */
int server_init(struct server *srv, struct server_config *cfg, const struct server_hooks *hooks,
		char *why, size_t why_size);
/* Listens on the adopted sockets (systemd's, adopted_count of them) or,
 * when there are none, on cfg's addresses, with the kept sockets (a
 * previous process's: listeners_open()) where they listen on one; returns
 * 0 or a negative errno (logged). */
int server_listen(struct server *srv, const int *adopted, size_t adopted_count, int *kept,
		  size_t kept_count);
int server_run(struct server *srv);
void server_free(struct server *srv);
/* After the loop ended: lets go of the data directory without freeing
 * anything else (a snapshot being written finishes, the log is closed,
 * its lock released), for a process that exits at once. The hand-over
 * does this: the next process starts when this one has exited, and
 * freeing a big tree was a third of the wait. */
void server_leave(struct server *srv);
/* Stops taking clients; writes in flight finish; then the loop ends.
 * When the log since the last snapshot is long, a snapshot is written
 * first, the server serving as usual meanwhile, so that the next start
 * loads it and replays little (commit_snapshot_before_stop()). */
void server_request_stop(struct server *srv);

/* Stops as server_request_stop() does, but to hand the connections over
 * to the next process (handover.h): they are frozen instead of closed, and
 * the loop ends once they are quiescent; then the application saves them
 * (handover_save()). */
void server_request_handover(struct server *srv);
/* An ensemble member's connections from the previous process: held, not
 * read from, until it may serve them (handover_hold.h). The fds are the
 * server's, whatever happens. */
void server_hold_clients(struct server *srv, const uint8_t *image, size_t len,
			 const struct handover_fd *fds, size_t n);

/* The configuration changed (reload): what the parts copied of it. */
void server_config_changed(struct server *srv);
/* Reload: the TLS port's certificate, key, CA and settings read again
 * into a new SSL_CTX for new connections (open ones keep theirs). On
 * failure the previous one stays, and the error is logged. */
void server_tls_reload(struct server *srv);
