/* service: corrald as a systemd service. Readiness and status notifications
 * (sd_notify), the watchdog pinged from the event loop's timer (a stuck loop
 * stops pinging), socket activation (sd_listen_fds_with_names, the socket
 * named "client") and reload on SIGHUP (what can change live changes, the
 * rest is logged as needing a restart). Without systemd ($NOTIFY_SOCKET
 * unset, no sockets passed) the notifications cost nothing. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server;

struct service {
	uint64_t watchdog_interval_ms;	/* 0: no watchdog */
	uint64_t watchdog_last_ms;
	const char *config_path;	/* for reload; NULL: built-in defaults only */
	bool config_path_given;		/* -c: a missing file is an error */
	bool data_dir_overridden;	/* -d */
	bool listen_overridden;		/* -l */
};

/* Takes the listening sockets systemd passed, named "client". Returns how
 * many (0 when none were passed), or a negative errno with why filled. */
int service_adopt_sockets(struct server *srv, char *why, size_t why_size);

void service_notify_ready(struct server *srv);
void service_notify_stopping(void);
/* An ensemble member's role changed: say so in the unit's status. */
void service_notify_status(struct server *srv);
void service_watchdog_start(struct service *svc);
/* From the loop's timer: pings when half the interval has passed. */
void service_watchdog_tick(struct service *svc, uint64_t now_ms);

/* Progress of a long recovery: a log line, STATUS= and EXTEND_TIMEOUT_USEC=. */
void service_notify_recovery(uint64_t entries, uint64_t index);

/* SIGHUP: reloads the configuration file. Returns 0 or a negative errno
 * (the old configuration stays; the cause is logged). */
int service_reload(struct server *srv);
