/* service: see service.h. */
#include "service.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "config.h"
#include "log.h"
#include "prep.h"
#include "server.h"

void service_notify_recovering(void)
{
	sd_notify(0, "STATUS=recovering: reading the log");
}

void service_notify_ready(struct service *svc)
{
	sd_notifyf(0, "READY=1\nSTATUS=serving clients, last zxid 0x%llx",
		   (unsigned long long)svc->srv->state.last_zxid);
}

/* An ensemble member's role changed: say so in the unit's status. */
static void notify_status(void *ctx, struct server *srv)
{
	raft_id leader = commit_leader(&srv->commit);
	if (leader)
		sd_notifyf(0, "STATUS=serving clients as %s (leader: server %llu), last zxid 0x%llx",
			   status_mode(&srv->status), (unsigned long long)leader,
			   (unsigned long long)srv->state.last_zxid);
	else
		sd_notifyf(0, "STATUS=no leader known: new sessions refused until one is elected");
}

static void notify_stopping(void *ctx)
{
	sd_notify(0, "STOPPING=1\nSTATUS=stopping: finishing the writes in flight");
}

/* From the loop's timer: pings when half the interval has passed. */
static void watchdog_tick(void *ctx, uint64_t now_ms)
{
	struct service *svc = ctx;
	if (!svc->watchdog_interval_ms || now_ms - svc->watchdog_last_ms < svc->watchdog_interval_ms / 2)
		return;
	svc->watchdog_last_ms = now_ms;
	sd_notify(0, "WATCHDOG=1");
}

/* Progress of a long recovery: a log line, STATUS= and EXTEND_TIMEOUT_USEC=. */
static void notify_recovery(void *ctx, uint64_t entries, uint64_t index)
{
	log_info("recovering: %llu log entries read (index %llu)", (unsigned long long)entries,
		 (unsigned long long)index);
	/* Ask systemd for more start-up time while the log is being read. */
	sd_notifyf(0, "STATUS=recovering: %llu log entries read (index %llu)\nEXTEND_TIMEOUT_USEC=30000000",
		   (unsigned long long)entries, (unsigned long long)index);
}

void service_hooks(struct service *svc, struct server_hooks *hooks)
{
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
		svc->watchdog_interval_ms = usec / 1000;
	*hooks = (struct server_hooks){
		.role_changed = notify_status,
		.tick = watchdog_tick,
		.recovery_progress = notify_recovery,
		.stopping = notify_stopping,
		.ctx = svc,
		/* the timer pings the watchdog: a few times per interval */
		.max_tick_ms = svc->watchdog_interval_ms ? (uint32_t)(svc->watchdog_interval_ms / 4) + 1 : 0,
	};
}

static uint64_t monotonic_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A key the reload does not put in force: named in the log, once. */
static void restart_needed(const char *key, const char *why, void *ctx)
{
	const struct service *svc = ctx;
	const struct listeners *ls = &svc->srv->listeners;

	if (strcmp(key, "client.listen") == 0 && ls->count > 0 && ls->list[0].adopted) {
		/* Adopted sockets replace client.listen, now and after a restart. */
		log_notice("reload: client.listen changed; not used: the listening sockets come from "
			   "systemd (corral.socket)");
		return;
	}
	if (why)
		log_notice("reload: %s changed; not applied: %s", key, why);
	else
		log_notice("reload: %s changed; takes effect after a restart", key);
}

/* Puts what can change while running in force; names what cannot. */
static void apply_live(struct service *svc, struct server_config *cur, struct server_config *next)
{
	enum log_level before = cur->log_level;

	bool audit_before = cur->audit_log;

	config_reload(cur, next, restart_needed, svc);
	if (cur->log_level != before)
		log_set_level(cur->log_level);
	if (cur->audit_log != audit_before)
		log_notice("reload: the audit log is %s", cur->audit_log ? "on" : "off");
	server_config_changed(svc->srv);
}

int service_reload(struct service *svc)
{
	struct server *srv = svc->srv;
	struct server_config next;
	char error[CONFIG_ERROR_MAX];
	int r;

	sd_notifyf(0, "RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC=%llu",
		   (unsigned long long)monotonic_usec());
	r = config_init_defaults(&next);
	if (r == 0 && svc->config_path) {
		r = config_load(&next, svc->config_path, error, sizeof(error));
		if (r == -ENOENT && !svc->config_path_given)
			r = 0;
	}
	if (r == 0 && svc->data_dir_overridden) {
		/* Command-line overrides stay in force. */
		free(next.data_dir);
		next.data_dir = strdup(srv->cfg->data_dir);
		if (!next.data_dir)
			r = -ENOMEM;
	}
	if (r == 0 && svc->listen_overridden) {
		for (size_t i = 0; i < next.listen_count; i++)
			free(next.listen[i].host);
		free(next.listen);
		next.listen = NULL;
		next.listen_count = 0;
		for (size_t i = 0; i < srv->cfg->listen_count; i++) {
			struct listen_address *l = realloc(next.listen, (i + 1) * sizeof(*l));
			if (!l) {
				r = -ENOMEM;
				break;
			}
			next.listen = l;
			next.listen[i].port = srv->cfg->listen[i].port;
			next.listen[i].host = strdup(srv->cfg->listen[i].host);
			next.listen_count = i + 1;
			if (!next.listen[i].host) {
				r = -ENOMEM;
				break;
			}
		}
	}
	if (r == 0)
		r = config_finish(&next, error, sizeof(error));
	if (r < 0) {
		if (r == -ENOMEM)
			snprintf(error, sizeof(error), "out of memory");
		log_event(LOG_ERR, { .message_id = LOG_MSGID_CONFIG },
			  "reload failed, keeping the running configuration: %s", error);
		config_free(&next);
		sd_notifyf(0, "READY=1\nSTATUS=reload failed: %s", error);
		return r;
	}
	apply_live(svc, srv->cfg, &next);
	config_free(&next);
	server_tls_reload(srv);
	log_event(LOG_NOTICE, { .message_id = LOG_MSGID_CONFIG }, "configuration reloaded from %s",
		  svc->config_path ? svc->config_path : "(built-in defaults)");
	service_notify_ready(svc);
	return 0;
}
