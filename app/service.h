/* service: corrald as a systemd service. Readiness and status notifications
 * (sd_notify), the watchdog pinged from the event loop's timer (a stuck loop
 * stops pinging), socket activation (the sockets fdstore.c takes) and reload on SIGHUP (what can change live changes, the
 * rest is logged as needing a restart). Without systemd ($NOTIFY_SOCKET
 * unset, no sockets passed) the notifications cost nothing. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server;
struct server_hooks;

struct service {
	struct server *srv;
	uint64_t watchdog_interval_ms;	/* 0: no watchdog */
	uint64_t watchdog_last_ms;
	const char *config_path;	/* for reload; NULL: built-in defaults only */
	bool config_path_given;		/* -c: a missing file is an error */
	bool data_dir_overridden;	/* -d */
	bool listen_overridden;		/* -l */
	size_t fdstore_max;		/* SIGTERM hands the clients over (fdstore.h); 0: off */
};

/* The server's hooks into the service (status, watchdog, recovery,
 * stopping), svc their context; reads whether systemd's watchdog is on. */
void service_hooks(struct service *svc, struct server_hooks *hooks);
/* Before the log is read: systemd hears that recovery began. */
void service_notify_recovering(void);
/* The server listens: READY=1. */
void service_notify_ready(struct service *svc);

/* SIGHUP: reloads the configuration file. Returns 0 or a negative errno
 * (the old configuration stays; the cause is logged). */
int service_reload(struct service *svc);
