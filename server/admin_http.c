/* admin_http: see admin_http.h. */
#include "admin_http.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "admin_commands.h"
#include "common.h"
#include "jute.h"
#include "log.h"
#include "metrics.h"
#include "resolve.h"
#include "sockaddr.h"

#define MEMORY_PER_CONNECTION_BYTES 16384
/* MHD_run() again at once while MHD has buffered work (its timeout is 0),
 * at most so often per wake-up; then a NOP on the ring brings it back after
 * the loop's other completions, so a client that keeps MHD busy (a huge
 * header read a buffer at a time) takes turns with the rest. */
#define RUNS_PER_WAKE 8

static void arm(struct admin_http *a);

static void write_to_buf(void *ctx, const char *text, size_t len)
{
	jute_write_raw(ctx, text, len);
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, struct jute_buf *body,
			       const char *content_type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(body->len, body->data,
								  MHD_RESPMEM_MUST_FREE);
	if (!r) {
		jute_buf_free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	enum MHD_Result ok = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ok;
}

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
	struct jute_buf b = { 0 };
	jute_write_raw(&b, text, strlen(text));
	if (b.error)
		return MHD_NO;
	return respond(conn, status, &b, "text/plain; charset=utf-8");
}

static void caller_of(struct MHD_Connection *conn, struct admin_caller *ret)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = info ? info->client_addr : NULL;
	ret->authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							 MHD_HTTP_HEADER_AUTHORIZATION);
	if (sa && sa->sa_family == AF_INET)
		memcpy(&ret->peer, sa, sizeof(struct sockaddr_in));
	else if (sa && sa->sa_family == AF_INET6)
		memcpy(&ret->peer, sa, sizeof(struct sockaddr_in6));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct admin_http *a = cls;
	struct jute_buf b = { 0 };
	(void)version;
	(void)upload_data;
	(void)con_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		a->stats.refused++;
		*upload_data_size = 0;
		return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD are served\n");
	}
	a->stats.requests++;
	if (strcmp(url, "/metrics") == 0) {
		struct metrics_out o = { .write = write_to_buf, .ctx = &b };
		metrics_write_prometheus(a->status, &o);
		if (b.error) {
			jute_buf_free(&b);
			return MHD_NO;
		}
		return respond(conn, MHD_HTTP_OK, &b, "text/plain; version=0.0.4; charset=utf-8");
	}
	if (strcmp(url, "/commands") == 0 || strcmp(url, "/commands/") == 0) {
		admin_commands_index(&b);
		return b.error ? (jute_buf_free(&b), MHD_NO)
			       : respond(conn, MHD_HTTP_OK, &b, "text/html; charset=utf-8");
	}
	if (strncmp(url, "/commands/", 10) == 0) {
		struct admin_caller caller = { 0 };
		caller_of(conn, &caller);
		unsigned status = admin_command_run(a->status, url + 10, &caller, &b);
		if (status != MHD_HTTP_OK || b.error)
			a->stats.refused++;
		if (b.error) {
			int err = b.error;
			jute_buf_free(&b);
			return err == -E2BIG
			       ? respond_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "the answer is larger "
					      "than client.max_output_bytes\n")
			       : MHD_NO;
		}
		return respond(conn, status, &b, "application/json");
	}
	a->stats.refused++;
	return respond_text(conn, MHD_HTTP_NOT_FOUND, "not found: try /metrics or /commands\n");
}

static void run(struct admin_http *a)
{
	MHD_UNSIGNED_LONG_LONG timeout_ms = 0;
	bool busy = false;
	for (int i = 0; i < RUNS_PER_WAKE; i++) {
		MHD_run(a->daemon);
		busy = MHD_get_timeout(a->daemon, &timeout_ms) == MHD_YES && timeout_ms == 0;
		if (!busy)
			break;
	}
	if (busy && !a->again_armed) {
		io_uring_prep_nop(loop_sqe(a->loop, &a->again_op));
		a->again_armed = true;
	}
	arm(a);
}

static void on_epoll_ready(struct loop_op *op, int res, uint32_t flags)
{
	struct admin_http *a = container_of(op, struct admin_http, poll_op);
	(void)flags;
	a->poll_armed = false;
	if (a->stopped)
		return;
	if (res < 0 && res != -EINTR && res != -ECANCELED)
		log_warning("admin: polling its connections failed: %s", strerror(-res));
	run(a);
}

static void on_again(struct loop_op *op, int res, uint32_t flags)
{
	struct admin_http *a = container_of(op, struct admin_http, again_op);
	(void)res;
	(void)flags;
	a->again_armed = false;
	if (!a->stopped)
		run(a);
}

static void on_timer(struct loop_op *op, int res, uint32_t flags)
{
	struct admin_http *a = container_of(op, struct admin_http, timer_op);
	(void)res;
	(void)flags;
	a->timer_armed = false;
	if (a->stopped)
		return;
	log_limit_tick(&a->log_limit, loop_now_ms());
	run(a);
}

/* The poll on MHD's epoll descriptor, and a timer for MHD's next timeout
 * (at most a second away, so its connection timeouts are kept). */
static void arm(struct admin_http *a)
{
	if (!a->poll_armed) {
		struct io_uring_sqe *sqe = loop_sqe(a->loop, &a->poll_op);
		io_uring_prep_poll_add(sqe, a->epoll_fd, POLLIN);
		a->poll_armed = true;
	}
	if (!a->timer_armed) {
		MHD_UNSIGNED_LONG_LONG ms = 1000;
		if (MHD_get_timeout(a->daemon, &ms) != MHD_YES || ms > 1000)
			ms = 1000;
		a->timer_ts.tv_sec = (long long)(ms / 1000);
		a->timer_ts.tv_nsec = (long long)(ms % 1000) * 1000000;
		struct io_uring_sqe *sqe = loop_sqe(a->loop, &a->timer_op);
		io_uring_prep_timeout(sqe, &a->timer_ts, 0, 0);
		a->timer_armed = true;
	}
}

/* MHD's word on a bad request or a refused connection: one line each, at
 * most LOG_LIMIT_LINES a window (a flood of garbage is one summary line). */
__attribute__((format(printf, 2, 0)))
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct admin_http *a = cls;
	char line[256];
	if (!log_limit_allow(&a->log_limit, loop_now_ms()))
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = 0;
	char *page = strstr(line, " ('<html>");	/* the error page MHD sends: not news */
	if (page)
		strcpy(page, ")");
	log_notice("admin: %s", line);
}

int admin_http_start(struct admin_http *a, struct loop *loop, const struct server_config *cfg,
		     const struct server_status *status, char *why, size_t why_size)
{
	struct sockaddr_storage addr;
	socklen_t len;
	char text[128];
	*a = (struct admin_http){ .loop = loop, .status = status, .epoll_fd = -1,
				  .log_limit.what = "HTTP errors" };
	if (!cfg->admin_listen.host)
		return 0;
	sockaddr_format(cfg->admin_listen.host, cfg->admin_listen.port, text, sizeof(text));
	/* at start-up, before anyone is served: a name may be looked up here */
	int r = resolve_now(cfg->admin_listen.host, cfg->admin_listen.port, true, &addr, &len);
	if (r < 0) {
		snprintf(why, why_size, "admin.listen: %s: %s", text,
			 r == -ENOENT ? "no such host name (or no IPv4/IPv6 address for it)"
				      : "the name could not be looked up now");
		return r;
	}
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	a->daemon = MHD_start_daemon(flags, cfg->admin_listen.port, NULL, NULL, on_request, a,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, a,		/* first: MHD wants it so */
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->admin_max_connections,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->admin_max_connections_per_address,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MEMORY_PER_CONNECTION_BYTES,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)((cfg->admin_timeout_ms + 999) / 1000),
		MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)64,
		MHD_OPTION_END);
	if (!a->daemon) {
		int err = errno ? errno : EADDRINUSE;
		snprintf(why, why_size, "admin.listen: cannot listen on %s: %s", text, strerror(err));
		return -err;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_EPOLL_FD);
	a->epoll_fd = info ? info->epoll_fd : -1;
	if (a->epoll_fd < 0) {
		admin_http_stop(a);
		snprintf(why, why_size, "admin.listen: libmicrohttpd has no epoll descriptor");
		return -ENOTSUP;
	}
	a->poll_op.complete = on_epoll_ready;
	a->timer_op.complete = on_timer;
	a->again_op.complete = on_again;
	arm(a);
	log_info("admin: serving /metrics and /commands on http://%s", text);
	return 0;
}

void admin_http_stop(struct admin_http *a)
{
	a->stopped = true;
	if (a->daemon)
		MHD_stop_daemon(a->daemon);
	a->daemon = NULL;
}
