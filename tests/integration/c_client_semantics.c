/*
 * c_client_semantics: corral integration test driven by the Apache ZooKeeper
 * C client (libzookeeper_mt): watches, ACLs, multi, and a reconnect that must
 * re-send the client's watches (setWatches).
 *
 *   usage: c_client_semantics HOST:PORT
 *
 * Prints one line per check, "PASS name" or "FAIL name: detail", and exits 0
 * only when every check passed (1 otherwise, 2 on bad usage).  It was written
 * and validated against Apache ZooKeeper 3.8 first, so a failure against
 * corrald points at corrald.
 *
 * Every wait is bounded: requests use the asynchronous API and wait for their
 * completion on a condition variable with a timeout (the synchronous zoo_*
 * calls would block forever if a server never answered); watch events and
 * session events are recorded in event logs that are waited on the same way.
 *
 * Some handles connect through a small TCP proxy run inside this program.
 * The proxy
 *  - records every notification (xid -1 frame) the server sends on it, so a
 *    check can count what went over the wire: the C client silently drops a
 *    notification for which it has no watcher registered, so "a second change
 *    sends nothing" can only be proven on the wire;
 *  - has a gate: while closed it accepts and immediately closes new
 *    connections, which lets the reconnect check decide which of two handles
 *    sharing one session may connect (see check_reconnect), and keeps a
 *    handle away from the server until its session expires;
 *  - can drop its connections, as a network failure would.
 *
 * Build: gcc -Wall -Wextra -fsanitize=address,undefined c_client_semantics.c
 *        -o c_client_semantics -lzookeeper_mt -lpthread
 * Env CCS_ZK_LOG=debug|info|warn|error sets the client library's log level
 * (default warn; the log goes to stderr).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <zookeeper/zookeeper.h>

#define SESSION_TIMEOUT_MS 4000
#define WAIT_MS 10000
#define ANY INT_MIN
#define RC_TIMEOUT (-99999)  /* our own code: no completion within WAIT_MS */
#define MAX_OPS 8
#define PATH_MAX_LEN 256

/* digest identity of "alice:secret": "alice:" + base64(sha1("alice:secret")) */
#define ALICE_AUTH "alice:secret"
#define ALICE_ID "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="

static char g_root[64];
static int g_failed;
static int g_passed;

/* ------------------------------------------------------------------ */
/* time, reporting                                                      */

static void cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
}

static void deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* The current check: begin() names it, failf() reports its first failure,
 * end_check() reports PASS unless it failed. */
static const char *g_check;
static int g_check_failed;

static void begin(const char *name)
{
	g_check = name;
	g_check_failed = 0;
}

__attribute__((format(printf, 1, 2)))
static void failf(const char *fmt, ...)
{
	va_list ap;

	if (g_check_failed)
		return;
	g_check_failed = 1;
	g_failed++;
	printf("FAIL %s: ", g_check);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void end_check(void)
{
	if (!g_check_failed) {
		printf("PASS %s\n", g_check);
		g_passed++;
		fflush(stdout);
	}
	g_check = NULL;
}

/* Reports the checks of a flow that an earlier failure kept from running. */
static void not_reached(const char *const *names, int n, int from, const char *why)
{
	for (int i = from; i < n; i++) {
		begin(names[i]);
		failf("not reached: %s failed", why);
		end_check();
	}
}

static const char *rcname(int rc)
{
	static __thread char bufs[4][64];
	static __thread int next;
	char *buf = bufs[next++ % 4];

	if (rc == RC_TIMEOUT)
		return "no completion within the timeout";
	snprintf(buf, sizeof(bufs[0]), "%d (%s)", rc, zerror(rc));
	return buf;
}

static const char *evname(int type)
{
	if (type == ZOO_CREATED_EVENT)
		return "CREATED";
	if (type == ZOO_DELETED_EVENT)
		return "DELETED";
	if (type == ZOO_CHANGED_EVENT)
		return "CHANGED";
	if (type == ZOO_CHILD_EVENT)
		return "CHILD";
	if (type == ZOO_SESSION_EVENT)
		return "SESSION";
	if (type == ZOO_NOTWATCHING_EVENT)
		return "NOTWATCHING";
	return "?";
}

static const char *statename(int state)
{
	if (state == ZOO_CONNECTED_STATE)
		return "CONNECTED";
	if (state == ZOO_CONNECTING_STATE)
		return "CONNECTING";
	if (state == ZOO_ASSOCIATING_STATE)
		return "ASSOCIATING";
	if (state == ZOO_EXPIRED_SESSION_STATE)
		return "EXPIRED_SESSION";
	if (state == ZOO_AUTH_FAILED_STATE)
		return "AUTH_FAILED";
	if (state == ZOO_NOTCONNECTED_STATE)
		return "NOTCONNECTED";
	if (state == 0)
		return "0 (closed, reconnecting)";
	return "?";
}

/* ------------------------------------------------------------------ */
/* event logs: what a watcher (or the proxy's wire recorder) saw         */

struct event {
	int type;
	int state;
	char path[PATH_MAX_LEN];
};

struct evlog {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int n;
	int cap;
	int dropped;		/* events that did not fit: counts are unreliable */
	struct event *ev;
};

/* Watch contexts must outlive every watch registered with them (a watch
 * that never fired stays registered in the client until the handle is
 * closed), so they come from a pool freed only at exit. */
#define EVLOG_POOL 128
static struct evlog *g_evlogs[EVLOG_POOL];
static int g_nevlogs;

static void evlog_init(struct evlog *l, int cap)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->mu, NULL);
	cond_init_mono(&l->cv);
	l->cap = cap;
	l->ev = calloc((size_t)cap, sizeof(*l->ev));
	if (!l->ev)
		abort();
}

static void evlog_destroy(struct evlog *l)
{
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	free(l->ev);
	l->ev = NULL;
}

static struct evlog *evlog_new(void)
{
	struct evlog *l;

	if (g_nevlogs == EVLOG_POOL) {
		fprintf(stderr, "evlog pool exhausted\n");
		abort();
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		abort();
	evlog_init(l, 32);
	g_evlogs[g_nevlogs++] = l;
	return l;
}

static void evlog_add(struct evlog *l, int type, int state, const char *path)
{
	pthread_mutex_lock(&l->mu);
	if (l->n < l->cap) {
		struct event *e = &l->ev[l->n++];

		e->type = type;
		e->state = state;
		snprintf(e->path, sizeof(e->path), "%s", path ? path : "");
	} else {
		l->dropped++;
	}
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

static int evlog_len(struct evlog *l)
{
	int n;

	pthread_mutex_lock(&l->mu);
	n = l->n;
	pthread_mutex_unlock(&l->mu);
	return n;
}

static int count_locked(struct evlog *l, int from, int type, int state, const char *path)
{
	int n = 0;

	for (int i = from; i < l->n; i++) {
		const struct event *e = &l->ev[i];

		if ((type == ANY || e->type == type) && (state == ANY || e->state == state) &&
		    (!path || strcmp(e->path, path) == 0))
			n++;
	}
	return n;
}

/* Events at index >= from that match (ANY / NULL match everything). */
static int evlog_count(struct evlog *l, int from, int type, int state, const char *path)
{
	int n;

	pthread_mutex_lock(&l->mu);
	n = count_locked(l, from, type, state, path);
	pthread_mutex_unlock(&l->mu);
	return n;
}

/* Waits until at least `want` matching events at index >= from were logged;
 * returns 1 if so, 0 on timeout. */
static int evlog_wait(struct evlog *l, int from, int type, int state, const char *path,
		      int want, int ms)
{
	struct timespec dl;
	int ok;

	deadline_in(&dl, ms);
	pthread_mutex_lock(&l->mu);
	while (!(ok = count_locked(l, from, type, state, path) >= want)) {
		if (pthread_cond_timedwait(&l->cv, &l->mu, &dl) == ETIMEDOUT) {
			ok = count_locked(l, from, type, state, path) >= want;
			break;
		}
	}
	pthread_mutex_unlock(&l->mu);
	return ok;
}

/* "[CHANGED /a, SESSION state CONNECTED, ...]" for failure details: the
 * events on `path` (all if NULL). */
static const char *evlog_str_path(struct evlog *l, const char *path)
{
	enum { SZ = 1024 };
	static __thread char bufs[4][SZ];
	static __thread int next;
	char *buf = bufs[next++ % 4];
	size_t off = 0;
	const char *sep = "";

	pthread_mutex_lock(&l->mu);
	off += snprintf(buf + off, SZ - off, "[");
	for (int i = 0; i < l->n && off < SZ - 300; i++) {
		const struct event *e = &l->ev[i];

		if (path && strcmp(e->path, path) != 0)
			continue;
		if (e->type == ZOO_SESSION_EVENT)
			off += snprintf(buf + off, SZ - off, "%sSESSION state %s", sep,
					statename(e->state));
		else
			off += snprintf(buf + off, SZ - off, "%s%s %s", sep,
					evname(e->type), e->path);
		sep = ", ";
	}
	snprintf(buf + off, SZ - off, "%s]%s", off < SZ - 300 ? "" : "...",
		 l->dropped ? " (events were dropped: log full)" : "");
	pthread_mutex_unlock(&l->mu);
	return buf;
}

static const char *evlog_str(struct evlog *l)
{
	return evlog_str_path(l, NULL);
}

/* Per-node watcher: the context is the evlog.  The C client also hands
 * every session event to every registered watcher; those are recorded by
 * the handle's default watcher instead, so they are ignored here. */
static void node_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	(void)zh;
	if (type == ZOO_SESSION_EVENT)
		return;
	evlog_add(ctx, type, state, path);
}

/* ------------------------------------------------------------------ */
/* a TCP proxy with a wire recorder and a gate                           */

#define MAX_PCONN 16

struct pconn {
	int cfd, sfd;		/* client side, server side */
	unsigned char *buf;	/* server->client bytes not yet parsed */
	size_t len, cap;
	int frames;		/* frames parsed; the first is the ConnectResponse */
};

struct proxy {
	struct sockaddr_storage target;
	socklen_t target_len;
	int lfd;
	int port;
	int wake[2];
	pthread_t thread;
	int running;
	char hosts[64];		/* "127.0.0.1:port" for zookeeper_init */

	pthread_mutex_t mu;	/* guards the fields below */
	pthread_cond_t cv;
	int gate_open;
	int accepted;
	int refused;

	struct pconn conns[MAX_PCONN];	/* proxy thread only */
	int nconns;

	struct evlog wire;	/* notifications the server sent (type, state, path) */
};

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int send_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Parses the server->client stream into frames and records notifications. */
static void proxy_record(struct proxy *p, struct pconn *c, const unsigned char *data, size_t n)
{
	if (c->frames < 0)
		return;		/* unparseable stream: stop recording on it */
	if (c->len + n > c->cap) {
		size_t cap = c->cap ? c->cap : 65536;

		while (cap < c->len + n)
			cap *= 2;
		c->buf = realloc(c->buf, cap);
		if (!c->buf)
			abort();
		c->cap = cap;
	}
	memcpy(c->buf + c->len, data, n);
	c->len += n;
	while (c->len >= 4) {
		int32_t flen = (int32_t)be32(c->buf);
		const unsigned char *f = c->buf + 4;

		if (flen < 0 || flen > 64 * 1024 * 1024) {
			c->frames = -1;
			pthread_mutex_lock(&p->wire.mu);
			p->wire.dropped++;	/* wire counts are unreliable now */
			pthread_mutex_unlock(&p->wire.mu);
			return;
		}
		if (c->len < 4 + (size_t)flen)
			break;
		if (c->frames > 0 && flen >= 28 && (int32_t)be32(f) == -1) {
			/* ReplyHeader {xid -1, zxid, err} + WatcherEvent {type, state, path} */
			int type = (int32_t)be32(f + 16);
			int state = (int32_t)be32(f + 20);
			int32_t plen = (int32_t)be32(f + 24);
			char path[PATH_MAX_LEN] = "";

			if (plen > 0 && 28 + plen <= flen) {
				size_t k = (size_t)plen < sizeof(path) - 1 ? (size_t)plen : sizeof(path) - 1;

				memcpy(path, f + 28, k);
				path[k] = 0;
			}
			evlog_add(&p->wire, type, state, path);
		}
		c->frames++;
		memmove(c->buf, c->buf + 4 + flen, c->len - 4 - (size_t)flen);
		c->len -= 4 + (size_t)flen;
	}
}

static void pconn_drop(struct proxy *p, int i)
{
	struct pconn *c = &p->conns[i];

	close(c->cfd);
	close(c->sfd);
	free(c->buf);
	p->conns[i] = p->conns[--p->nconns];
}

static void proxy_accept(struct proxy *p)
{
	int one = 1;
	int open_gate;
	int cfd = accept(p->lfd, NULL, NULL);
	int sfd;

	if (cfd < 0)
		return;
	pthread_mutex_lock(&p->mu);
	open_gate = p->gate_open;
	if (!open_gate) {
		p->refused++;
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	if (!open_gate || p->nconns == MAX_PCONN) {
		close(cfd);
		return;
	}
	sfd = socket(p->target.ss_family, SOCK_STREAM, 0);
	if (sfd < 0 || connect(sfd, (struct sockaddr *)&p->target, p->target_len) < 0) {
		if (sfd >= 0)
			close(sfd);
		close(cfd);
		return;
	}
	setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(&p->conns[p->nconns], 0, sizeof(p->conns[0]));
	p->conns[p->nconns].cfd = cfd;
	p->conns[p->nconns].sfd = sfd;
	p->nconns++;
	pthread_mutex_lock(&p->mu);
	p->accepted++;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static void *proxy_main(void *arg)
{
	struct proxy *p = arg;
	static __thread unsigned char buf[65536];

	for (;;) {
		struct pollfd pfd[2 + 2 * MAX_PCONN];
		int n = 0, polled;

		pfd[n++] = (struct pollfd){ .fd = p->wake[0], .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = p->lfd, .events = POLLIN };
		for (int i = 0; i < p->nconns; i++) {
			pfd[n++] = (struct pollfd){ .fd = p->conns[i].cfd, .events = POLLIN };
			pfd[n++] = (struct pollfd){ .fd = p->conns[i].sfd, .events = POLLIN };
		}
		polled = p->nconns;
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("proxy poll");
			break;
		}
		if (pfd[0].revents) {
			char cmd = 'x';

			if (read(p->wake[0], &cmd, 1) != 1 || cmd == 'x')
				break;
			/* 'd': drop every connection, as a network failure would */
			while (p->nconns > 0)
				pconn_drop(p, p->nconns - 1);
			continue;
		}
		/* Downwards, so that dropping conn i (the last one moves into
		 * slot i) never disturbs a slot not yet handled. */
		for (int i = polled - 1; i >= 0; i--) {
			struct pconn *c = &p->conns[i];
			short crev = pfd[2 + 2 * i].revents, srev = pfd[3 + 2 * i].revents;
			ssize_t r;

			if (crev) {
				r = recv(c->cfd, buf, sizeof(buf), 0);
				if (r <= 0 || send_all(c->sfd, buf, (size_t)r) < 0) {
					pconn_drop(p, i);
					continue;
				}
			}
			if (srev) {
				r = recv(c->sfd, buf, sizeof(buf), 0);
				if (r <= 0) {
					pconn_drop(p, i);
					continue;
				}
				/* record before forwarding: once the client has seen
				 * a frame, the recorder has too */
				proxy_record(p, c, buf, (size_t)r);
				if (send_all(c->cfd, buf, (size_t)r) < 0)
					pconn_drop(p, i);
			}
		}
		if (pfd[1].revents & POLLIN)
			proxy_accept(p);
	}
	while (p->nconns > 0)
		pconn_drop(p, p->nconns - 1);
	return NULL;
}

/* Resolves the first "host:port" of a ZooKeeper host string. */
static int resolve_hosts(const char *hosts, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256], *colon, *comma;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;

	snprintf(host, sizeof(host), "%s", hosts);
	comma = strchr(host, ',');
	if (comma)
		*comma = 0;
	colon = strrchr(host, ':');
	if (!colon)
		return -1;
	*colon = 0;
	if (host[0] == '[') {	/* [v6]:port */
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = 0;
	}
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int proxy_start(struct proxy *p, const char *server_hosts)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);

	memset(p, 0, sizeof(*p));
	p->lfd = -1;
	pthread_mutex_init(&p->mu, NULL);
	cond_init_mono(&p->cv);
	evlog_init(&p->wire, 4096);
	p->gate_open = 1;
	if (resolve_hosts(server_hosts, &p->target, &p->target_len) < 0)
		return -1;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(p->lfd, 16) < 0 || getsockname(p->lfd, (struct sockaddr *)&sin, &sl) < 0)
		return -1;
	p->port = ntohs(sin.sin_port);
	snprintf(p->hosts, sizeof(p->hosts), "127.0.0.1:%d", p->port);
	if (pipe(p->wake) < 0)
		return -1;
	if (pthread_create(&p->thread, NULL, proxy_main, p) != 0)
		return -1;
	p->running = 1;
	return 0;
}

static void proxy_stop(struct proxy *p)
{
	if (p->running) {
		if (write(p->wake[1], "x", 1) != 1)
			perror("proxy wake");
		pthread_join(p->thread, NULL);
		close(p->wake[0]);
		close(p->wake[1]);
		p->running = 0;
	}
	if (p->lfd >= 0)
		close(p->lfd);
	p->lfd = -1;
	evlog_destroy(&p->wire);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
}

/* Notifications recorded on the wire, -1 if the log is unreliable (full,
 * or a stream it could not parse). */
static int wire_count(struct proxy *p, int type, const char *path)
{
	int n, dropped;

	pthread_mutex_lock(&p->wire.mu);
	n = count_locked(&p->wire, 0, type, ANY, path);
	dropped = p->wire.dropped;
	pthread_mutex_unlock(&p->wire.mu);
	return dropped ? -1 : n;
}

static void proxy_drop_all(struct proxy *p)
{
	if (write(p->wake[1], "d", 1) != 1)
		perror("proxy wake");
}

static void proxy_gate(struct proxy *p, int open_gate)
{
	pthread_mutex_lock(&p->mu);
	p->gate_open = open_gate;
	pthread_mutex_unlock(&p->mu);
}

static int proxy_refused(struct proxy *p)
{
	int n;

	pthread_mutex_lock(&p->mu);
	n = p->refused;
	pthread_mutex_unlock(&p->mu);
	return n;
}

/* Waits until the proxy refused more than `mark` connections. */
static int proxy_wait_refused(struct proxy *p, int mark, int ms)
{
	struct timespec dl;
	int ok;

	deadline_in(&dl, ms);
	pthread_mutex_lock(&p->mu);
	while (!(ok = p->refused > mark)) {
		if (pthread_cond_timedwait(&p->cv, &p->mu, &dl) == ETIMEDOUT) {
			ok = p->refused > mark;
			break;
		}
	}
	pthread_mutex_unlock(&p->mu);
	return ok;
}

/* ------------------------------------------------------------------ */
/* asynchronous requests with bounded waits                              */

struct call {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	int abandoned;
	int rc;
	struct Stat st;
	char *data;		/* getData: a copy, NUL-terminated */
	int datalen;		/* -1: null data */
	int nchildren;
	struct ACL_vector acl;	/* getACL: a deep copy */
	char path[PATH_MAX_LEN];	/* create: the created path */
	zoo_op_t ops[MAX_OPS];
	zoo_op_result_t results[MAX_OPS];
	char pathbuf[MAX_OPS][PATH_MAX_LEN];
	struct Stat stats[MAX_OPS];
};

static void acl_free(struct ACL_vector *v)
{
	for (int i = 0; i < v->count; i++) {
		free(v->data[i].id.scheme);
		free(v->data[i].id.id);
	}
	free(v->data);
	v->data = NULL;
	v->count = 0;
}

static struct call *call_new(void)
{
	struct call *c = calloc(1, sizeof(*c));

	if (!c)
		abort();
	pthread_mutex_init(&c->mu, NULL);
	cond_init_mono(&c->cv);
	c->datalen = -1;
	return c;
}

static void call_free(struct call *c)
{
	free(c->data);
	acl_free(&c->acl);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

/* Completion side, with c->mu held: marks it done; an abandoned call (its
 * waiter timed out and left) is freed here. */
static void call_complete(struct call *c, int rc)
{
	c->rc = rc;
	c->done = 1;
	if (c->abandoned) {
		pthread_mutex_unlock(&c->mu);
		call_free(c);
		return;
	}
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* Returns 1 when the completion came (the caller reads c, then frees it);
 * 0 on timeout (c now belongs to its completion, which frees it; the
 * client library calls every outstanding completion at the latest when
 * the handle is closed). */
static int call_wait(struct call *c)
{
	struct timespec dl;
	int done;

	deadline_in(&dl, WAIT_MS);
	pthread_mutex_lock(&c->mu);
	while (!c->done)
		if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) == ETIMEDOUT)
			break;
	done = c->done;
	if (!done)
		c->abandoned = 1;
	pthread_mutex_unlock(&c->mu);
	return done;
}

static struct call *as_call(const void *data)
{
	return (struct call *)(uintptr_t)data;
}

static void cb_void(int rc, const void *data)
{
	struct call *c = as_call(data);

	pthread_mutex_lock(&c->mu);
	call_complete(c, rc);
}

static void cb_stat(int rc, const struct Stat *st, const void *data)
{
	struct call *c = as_call(data);

	pthread_mutex_lock(&c->mu);
	if (rc == ZOK && st)
		c->st = *st;
	call_complete(c, rc);
}

static void cb_data(int rc, const char *value, int value_len, const struct Stat *st,
		    const void *data)
{
	struct call *c = as_call(data);

	pthread_mutex_lock(&c->mu);
	if (rc == ZOK) {
		if (st)
			c->st = *st;
		if (value && value_len >= 0) {
			c->data = malloc((size_t)value_len + 1);
			if (!c->data)
				abort();
			memcpy(c->data, value, (size_t)value_len);
			c->data[value_len] = 0;
			c->datalen = value_len;
		}
	}
	call_complete(c, rc);
}

static void cb_strings(int rc, const struct String_vector *strings, const void *data)
{
	struct call *c = as_call(data);

	pthread_mutex_lock(&c->mu);
	if (rc == ZOK && strings)
		c->nchildren = strings->count;
	call_complete(c, rc);
}

static void cb_string(int rc, const char *value, const void *data)
{
	struct call *c = as_call(data);

	pthread_mutex_lock(&c->mu);
	if (rc == ZOK && value)
		snprintf(c->path, sizeof(c->path), "%s", value);
	call_complete(c, rc);
}

static void cb_acl(int rc, struct ACL_vector *acl, struct Stat *st, const void *data)
{
	struct call *c = as_call(data);

	pthread_mutex_lock(&c->mu);
	if (rc == ZOK) {
		if (st)
			c->st = *st;
		if (acl && acl->count > 0) {
			c->acl.data = calloc((size_t)acl->count, sizeof(struct ACL));
			if (!c->acl.data)
				abort();
			c->acl.count = acl->count;
			for (int i = 0; i < acl->count; i++) {
				c->acl.data[i].perms = acl->data[i].perms;
				c->acl.data[i].id.scheme = strdup(acl->data[i].id.scheme ? acl->data[i].id.scheme : "");
				c->acl.data[i].id.id = strdup(acl->data[i].id.id ? acl->data[i].id.id : "");
			}
		}
	}
	call_complete(c, rc);
}

/* Finishes a submitted call: the submission's own error, a timeout, or the
 * completion's code (c is then kept for the caller to read). */
static int finish(struct call *c, int submit_rc, struct call **keep)
{
	int rc;

	if (keep)
		*keep = NULL;
	if (submit_rc != ZOK) {
		call_free(c);	/* the client did not queue it: no completion comes */
		return submit_rc;
	}
	if (!call_wait(c))
		return RC_TIMEOUT;
	rc = c->rc;
	if (keep)
		*keep = c;
	else
		call_free(c);
	return rc;
}

static int z_create(zhandle_t *zh, const char *path, const char *value,
		    const struct ACL_vector *acl, int mode)
{
	struct call *c = call_new();

	return finish(c, zoo_acreate(zh, path, value, value ? (int)strlen(value) : -1, acl, mode,
				     cb_string, c), NULL);
}

static int z_mk(zhandle_t *zh, const char *path, const char *value)
{
	return z_create(zh, path, value, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT);
}

/* creates `path` unless it exists */
static int z_ensure(zhandle_t *zh, const char *path)
{
	int rc = z_mk(zh, path, "");

	return rc == ZNODEEXISTS ? ZOK : rc;
}

/* exists; with `w`, leaves a watch whose events go to w */
static int z_exists(zhandle_t *zh, const char *path, struct evlog *w, struct Stat *st)
{
	struct call *c = call_new(), *k;
	int rc = finish(c, w ? zoo_awexists(zh, path, node_watcher, w, cb_stat, c)
			     : zoo_aexists(zh, path, 0, cb_stat, c), &k);

	if (k) {
		if (st)
			*st = k->st;
		call_free(k);
	}
	return rc;
}

/* getData; `buf` (may be NULL) receives the data, "<null>" for null data */
static int z_get(zhandle_t *zh, const char *path, struct evlog *w, char *buf, size_t bufsz,
		 struct Stat *st)
{
	struct call *c = call_new(), *k;
	int rc = finish(c, w ? zoo_awget(zh, path, node_watcher, w, cb_data, c)
			     : zoo_aget(zh, path, 0, cb_data, c), &k);

	if (buf && bufsz)
		buf[0] = 0;
	if (k) {
		if (st)
			*st = k->st;
		if (buf && bufsz)
			snprintf(buf, bufsz, "%s", k->datalen >= 0 ? k->data : "<null>");
		call_free(k);
	}
	return rc;
}

static int z_set(zhandle_t *zh, const char *path, const char *value, int version, struct Stat *st)
{
	struct call *c = call_new(), *k;
	int rc = finish(c, zoo_aset(zh, path, value, (int)strlen(value), version, cb_stat, c), &k);

	if (k) {
		if (st)
			*st = k->st;
		call_free(k);
	}
	return rc;
}

static int z_delete(zhandle_t *zh, const char *path, int version)
{
	struct call *c = call_new();

	return finish(c, zoo_adelete(zh, path, version, cb_void, c), NULL);
}

static int z_children(zhandle_t *zh, const char *path, struct evlog *w, int *count)
{
	struct call *c = call_new(), *k;
	int rc = finish(c, w ? zoo_awget_children(zh, path, node_watcher, w, cb_strings, c)
			     : zoo_aget_children(zh, path, 0, cb_strings, c), &k);

	if (k) {
		if (count)
			*count = k->nchildren;
		call_free(k);
	}
	return rc;
}

/* getACL; on success *out is a deep copy the caller frees with acl_free */
static int z_get_acl(zhandle_t *zh, const char *path, struct ACL_vector *out, struct Stat *st)
{
	struct call *c = call_new(), *k;
	int rc = finish(c, zoo_aget_acl(zh, path, cb_acl, c), &k);

	out->count = 0;
	out->data = NULL;
	if (k) {
		*out = k->acl;
		k->acl.count = 0;
		k->acl.data = NULL;
		if (st)
			*st = k->st;
		call_free(k);
	}
	return rc;
}

static int z_set_acl(zhandle_t *zh, const char *path, int version, struct ACL_vector *acl)
{
	struct call *c = call_new();

	return finish(c, zoo_aset_acl(zh, path, version, acl, cb_void, c), NULL);
}

static int z_add_auth(zhandle_t *zh, const char *scheme, const char *cred)
{
	struct call *c = call_new();

	return finish(c, zoo_add_auth(zh, scheme, cred, (int)strlen(cred), cb_void, c), NULL);
}

struct mop {
	char kind;		/* 'c'reate, 's'etData, chec'k', 'd'elete */
	const char *path;
	const char *data;
	int version;
};

struct mres {
	int err;
	char path[PATH_MAX_LEN];	/* create */
	struct Stat st;			/* setData */
};

static int z_multi(zhandle_t *zh, int n, const struct mop *ops, struct mres *res)
{
	struct call *c = call_new(), *k;
	int rc;

	for (int i = 0; i < n; i++) {
		zoo_op_t *op = &c->ops[i];

		switch (ops[i].kind) {
		case 'c':
			zoo_create_op_init(op, ops[i].path, ops[i].data, (int)strlen(ops[i].data),
					   &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, c->pathbuf[i],
					   sizeof(c->pathbuf[i]));
			break;
		case 's':
			zoo_set_op_init(op, ops[i].path, ops[i].data, (int)strlen(ops[i].data),
					ops[i].version, &c->stats[i]);
			break;
		case 'k':
			zoo_check_op_init(op, ops[i].path, ops[i].version);
			break;
		default:
			zoo_delete_op_init(op, ops[i].path, ops[i].version);
			break;
		}
		c->results[i].err = 12345;	/* "never filled in" */
	}
	rc = finish(c, zoo_amulti(zh, n, c->ops, c->results, cb_void, c), &k);
	for (int i = 0; i < n; i++) {
		memset(&res[i], 0, sizeof(res[i]));
		res[i].err = 12345;
		if (k) {
			res[i].err = k->results[i].err;
			snprintf(res[i].path, sizeof(res[i].path), "%s", k->pathbuf[i]);
			res[i].st = k->stats[i];
		}
	}
	if (k)
		call_free(k);
	return rc;
}

/* ------------------------------------------------------------------ */
/* client handles                                                       */

struct client {
	zhandle_t *zh;
	struct evlog session;	/* events of the default watcher: session events */
	const char *name;
};

static void session_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	(void)zh;
	evlog_add(ctx, type, state, path);
}

/* Opens a handle (resuming session `cid` if not NULL) and waits until it is
 * connected; on failure reports it to the current check and returns 0 (the
 * caller still calls client_close). */
static int client_open(struct client *c, const char *name, const char *hosts, const clientid_t *cid)
{
	memset(c, 0, sizeof(*c));
	c->name = name;
	evlog_init(&c->session, 64);
	c->zh = zookeeper_init(hosts, session_watcher, SESSION_TIMEOUT_MS, cid, &c->session, 0);
	if (!c->zh) {
		failf("%s: zookeeper_init(%s): %s", name, hosts, strerror(errno));
		return 0;
	}
	if (!evlog_wait(&c->session, 0, ZOO_SESSION_EVENT, ZOO_CONNECTED_STATE, NULL, 1, WAIT_MS)) {
		failf("%s: not connected to %s within %d ms; session events %s", name, hosts, WAIT_MS,
		      evlog_str(&c->session));
		return 0;
	}
	return 1;
}

static void client_close(struct client *c)
{
	if (!c->name)
		return;		/* never opened */
	if (c->zh)
		zookeeper_close(c->zh);
	c->zh = NULL;
	evlog_destroy(&c->session);
}

static long long session_id(struct client *c)
{
	const clientid_t *id = zoo_client_id(c->zh);

	return id ? (long long)id->client_id : 0;
}

/* A round trip on the handle: replies come back after every notification
 * the server sent on this connection before it, so afterwards the
 * proxy's wire log holds all of those. */
static int barrier(struct client *c)
{
	int rc = z_exists(c->zh, g_root, NULL, NULL);

	if (rc != ZOK)
		failf("%s: exists(%s) round trip: %s", c->name, g_root, rcname(rc));
	return rc == ZOK;
}

static char *P(char *buf, const char *suffix)
{
	snprintf(buf, PATH_MAX_LEN, "%s%s", g_root, suffix);
	return buf;
}

/* Shortcuts for the checks: on failure report and jump to `out`. */
#define EXPECT_RC(expr, want)                                                       \
	do {                                                                        \
		int rc_ = (expr);                                                   \
		if (rc_ != (want)) {                                                \
			failf("%s gave %s, expected %s", #expr, rcname(rc_), rcname(want)); \
			goto out;                                                   \
		}                                                                   \
	} while (0)

#define EXPECT(cond, ...)                                                           \
	do {                                                                        \
		if (!(cond)) {                                                      \
			failf(__VA_ARGS__);                                         \
			goto out;                                                   \
		}                                                                   \
	} while (0)

/* Waits for `want` events of `type` on `path` in `w`. */
#define EXPECT_EVENT(w, type, path, want, what)                                     \
	EXPECT(evlog_wait((w), 0, (type), ANY, (path), (want), WAIT_MS),            \
	       "%s: no ZOO_%s_EVENT on %s within %d ms; the watcher saw %s", (what),  \
	       evname(type), (path), WAIT_MS, evlog_str(w))

/* ------------------------------------------------------------------ */
/* watches                                                              */

struct env {
	const char *hosts;
	struct client *a;	/* through proxy pa, which records notifications */
	struct proxy *pa;
	struct client *o;	/* direct: makes the changes */
};

static void check_watch_exists_created(struct env *e)
{
	char path[PATH_MAX_LEN];
	struct evlog *w = evlog_new();

	begin("watch_exists_created");
	P(path, "/w/created");
	EXPECT_RC(z_exists(e->a->zh, path, w, NULL), ZNONODE);
	EXPECT_RC(z_mk(e->o->zh, path, "c"), ZOK);
	EXPECT_EVENT(w, ZOO_CREATED_EVENT, path, 1, "zoo_wexists on a missing node, then create");
	if (!barrier(e->a))
		goto out;
	EXPECT(evlog_count(w, 0, ANY, ANY, NULL) == 1, "expected exactly 1 event, got %s", evlog_str(w));
	EXPECT(wire_count(e->pa, ANY, path) == 1,
	       "expected 1 notification for %s on the wire, got %d", path,
	       wire_count(e->pa, ANY, path));
out:
	end_check();
}

static void check_watch_get_changed(struct env *e)
{
	char path[PATH_MAX_LEN], data[64];
	struct evlog *w = evlog_new();

	begin("watch_get_changed");
	P(path, "/w/changed");
	EXPECT_RC(z_mk(e->o->zh, path, "v0"), ZOK);
	EXPECT_RC(z_get(e->a->zh, path, w, data, sizeof(data), NULL), ZOK);
	EXPECT(strcmp(data, "v0") == 0, "get returned \"%s\", expected \"v0\"", data);
	EXPECT_RC(z_set(e->o->zh, path, "v1", -1, NULL), ZOK);
	EXPECT_EVENT(w, ZOO_CHANGED_EVENT, path, 1, "zoo_wget, then set");
	if (!barrier(e->a))
		goto out;
	EXPECT(evlog_count(w, 0, ANY, ANY, NULL) == 1, "expected exactly 1 event, got %s", evlog_str(w));
out:
	end_check();
}

static void check_watch_get_deleted(struct env *e)
{
	char path[PATH_MAX_LEN], data[64];
	struct evlog *w = evlog_new();

	begin("watch_get_deleted");
	P(path, "/w/deleted");
	EXPECT_RC(z_mk(e->o->zh, path, "d0"), ZOK);
	EXPECT_RC(z_get(e->a->zh, path, w, data, sizeof(data), NULL), ZOK);
	EXPECT(strcmp(data, "d0") == 0, "get returned \"%s\", expected \"d0\"", data);
	EXPECT_RC(z_delete(e->o->zh, path, -1), ZOK);
	EXPECT_EVENT(w, ZOO_DELETED_EVENT, path, 1, "zoo_wget, then delete");
	if (!barrier(e->a))
		goto out;
	EXPECT(evlog_count(w, 0, ANY, ANY, NULL) == 1, "expected exactly 1 event, got %s", evlog_str(w));
out:
	end_check();
}

static void check_watch_children(struct env *e)
{
	char path[PATH_MAX_LEN], kid[PATH_MAX_LEN];
	struct evlog *w = evlog_new(), *w2 = evlog_new();
	int n = -1;

	begin("watch_children");
	P(path, "/w/kids");
	P(kid, "/w/kids/k1");
	EXPECT_RC(z_mk(e->o->zh, path, ""), ZOK);
	EXPECT_RC(z_children(e->a->zh, path, w, &n), ZOK);
	EXPECT(n == 0, "getChildren returned %d children, expected 0", n);
	EXPECT_RC(z_mk(e->o->zh, kid, "k"), ZOK);
	EXPECT_EVENT(w, ZOO_CHILD_EVENT, path, 1, "zoo_wget_children, then create a child");
	if (!barrier(e->a))
		goto out;
	EXPECT(evlog_count(w, 0, ANY, ANY, NULL) == 1, "expected exactly 1 event, got %s", evlog_str(w));
	EXPECT_RC(z_children(e->a->zh, path, w2, &n), ZOK);
	EXPECT(n == 1, "getChildren returned %d children, expected 1", n);
	EXPECT_RC(z_delete(e->o->zh, kid, -1), ZOK);
	EXPECT_EVENT(w2, ZOO_CHILD_EVENT, path, 1, "zoo_wget_children, then delete a child");
out:
	end_check();
}

/* getData and getChildren leave no watch on a missing node (exists does):
 * a later create must send nothing to this connection.  The C client
 * registers no watcher after an error, so only the wire shows it. */
static void check_watch_not_left_on_missing(struct env *e)
{
	char path[PATH_MAX_LEN], kid[PATH_MAX_LEN];
	struct evlog *w1 = evlog_new(), *w2 = evlog_new();
	int wire;

	begin("watch_none_left_by_failed_get");
	P(path, "/w/never");
	P(kid, "/w/never/kid");
	EXPECT_RC(z_get(e->a->zh, path, w1, NULL, 0, NULL), ZNONODE);
	EXPECT_RC(z_children(e->a->zh, path, w2, NULL), ZNONODE);
	EXPECT_RC(z_mk(e->o->zh, path, "n"), ZOK);
	EXPECT_RC(z_mk(e->o->zh, kid, "n"), ZOK);
	EXPECT_RC(z_set(e->o->zh, path, "n2", -1, NULL), ZOK);
	if (!barrier(e->a))
		goto out;
	wire = wire_count(e->pa, ANY, path);
	EXPECT(wire == 0, "getData/getChildren on a missing node left a watch: %d notifications "
	       "for %s went to the connection: %s", wire, path,
	       evlog_str_path(&e->pa->wire, path));
out:
	end_check();
}

/* The notification of a change goes out before the reply of a later
 * request that observes the change: the C client hands both to the
 * completion thread in arrival order, so by the time getData's completion
 * ran, the watcher must have run. */
static void check_watch_event_before_reply(struct env *e)
{
	char path[PATH_MAX_LEN], data[64];
	struct evlog *w = evlog_new();

	begin("watch_event_before_later_reply");
	P(path, "/w/order");
	EXPECT_RC(z_mk(e->o->zh, path, "0"), ZOK);
	for (int i = 1; i <= 20; i++) {
		char v[16];
		struct evlog *wi = i == 1 ? w : evlog_new();

		snprintf(v, sizeof(v), "%d", i);
		EXPECT_RC(z_get(e->a->zh, path, wi, NULL, 0, NULL), ZOK);
		EXPECT_RC(z_set(e->o->zh, path, v, -1, NULL), ZOK);
		EXPECT_RC(z_get(e->a->zh, path, NULL, data, sizeof(data), NULL), ZOK);
		EXPECT(strcmp(data, v) == 0, "read \"%s\" after set \"%s\"", data, v);
		EXPECT(evlog_count(wi, 0, ZOO_CHANGED_EVENT, ANY, path) == 1,
		       "round %d: getData's reply showing the new data arrived before the "
		       "NodeDataChanged notification (watcher saw %s so far)", i, evlog_str(wi));
	}
out:
	end_check();
}

/* A standard watch fires once: change #1 fires it; change #2 must send
 * nothing; a fresh watch then sees change #3.  The first watcher must have
 * seen exactly one event, and the wire exactly two notifications (the C
 * client drops a notification it has no watcher for, so only the wire can
 * show that change #2 sent nothing). */
static void check_watch_fires_once(struct env *e)
{
	char path[PATH_MAX_LEN];
	struct evlog *w1 = evlog_new(), *w2 = evlog_new();
	int wire;

	begin("watch_fires_once");
	P(path, "/w/once");
	EXPECT_RC(z_mk(e->o->zh, path, "0"), ZOK);
	EXPECT_RC(z_get(e->a->zh, path, w1, NULL, 0, NULL), ZOK);
	EXPECT_RC(z_set(e->o->zh, path, "1", -1, NULL), ZOK);
	EXPECT_EVENT(w1, ZOO_CHANGED_EVENT, path, 1, "first change");
	EXPECT_RC(z_set(e->o->zh, path, "2", -1, NULL), ZOK);	/* no watch armed */
	if (!barrier(e->a))
		goto out;
	EXPECT_RC(z_get(e->a->zh, path, w2, NULL, 0, NULL), ZOK);
	EXPECT_RC(z_set(e->o->zh, path, "3", -1, NULL), ZOK);
	EXPECT_EVENT(w2, ZOO_CHANGED_EVENT, path, 1, "third change, fresh watch");
	if (!barrier(e->a))
		goto out;
	EXPECT(evlog_count(w1, 0, ANY, ANY, NULL) == 1,
	       "the first watcher saw %s, expected exactly one CHANGED", evlog_str(w1));
	EXPECT(evlog_count(w2, 0, ANY, ANY, NULL) == 1,
	       "the second watcher saw %s, expected exactly one CHANGED", evlog_str(w2));
	wire = wire_count(e->pa, ANY, path);
	EXPECT(wire == 2, "%d notifications for %s went over the wire for 3 changes with "
	       "2 watches set, expected 2 (the watch fired twice?); wire log %s",
	       wire, path, evlog_str_path(&e->pa->wire, path));
out:
	end_check();
}

/* Two watches of one connection on one node (exists + getData; getData +
 * getChildren): one trigger sends one notification, and the client hands
 * it to both watchers. */
static void check_watch_one_notification(struct env *e)
{
	char path[PATH_MAX_LEN];
	struct evlog *w1 = evlog_new(), *w2 = evlog_new(), *w3 = evlog_new(), *w4 = evlog_new();
	int wire;

	begin("watch_one_notification_per_connection");
	P(path, "/w/dup");
	EXPECT_RC(z_mk(e->o->zh, path, "0"), ZOK);
	EXPECT_RC(z_exists(e->a->zh, path, w1, NULL), ZOK);
	EXPECT_RC(z_get(e->a->zh, path, w2, NULL, 0, NULL), ZOK);
	EXPECT_RC(z_set(e->o->zh, path, "1", -1, NULL), ZOK);
	EXPECT_EVENT(w1, ZOO_CHANGED_EVENT, path, 1, "exists watch, set");
	EXPECT_EVENT(w2, ZOO_CHANGED_EVENT, path, 1, "getData watch, set");
	if (!barrier(e->a))
		goto out;
	wire = wire_count(e->pa, ZOO_CHANGED_EVENT, path);
	EXPECT(wire == 1, "setData with an exists and a getData watch of one connection sent %d "
	       "NodeDataChanged notifications, expected 1", wire);

	EXPECT_RC(z_get(e->a->zh, path, w3, NULL, 0, NULL), ZOK);
	EXPECT_RC(z_children(e->a->zh, path, w4, NULL), ZOK);
	EXPECT_RC(z_delete(e->o->zh, path, -1), ZOK);
	EXPECT_EVENT(w3, ZOO_DELETED_EVENT, path, 1, "getData watch, delete");
	EXPECT_EVENT(w4, ZOO_DELETED_EVENT, path, 1, "getChildren watch, delete");
	if (!barrier(e->a))
		goto out;
	wire = wire_count(e->pa, ZOO_DELETED_EVENT, path);
	EXPECT(wire == 1, "delete with a data and a child watch of one connection sent %d "
	       "NodeDeleted notifications, expected 1", wire);
	EXPECT(wire_count(e->pa, ANY, path) == 2,
	       "unexpected notifications for %s: %s", path,
	       evlog_str_path(&e->pa->wire, path));
out:
	end_check();
}

/* Closing a session deletes its ephemerals and fires other handles' watches. */
static void check_watch_ephemeral_close(struct env *e)
{
	char parent[PATH_MAX_LEN], path[PATH_MAX_LEN];
	struct evlog *w1 = evlog_new(), *w2 = evlog_new();
	struct client eph;
	struct Stat st;
	long long sid;

	begin("watch_ephemeral_session_close");
	P(parent, "/e");
	P(path, "/e/eph");
	if (!client_open(&eph, "ephemeral owner", e->hosts, NULL))
		goto out;
	sid = session_id(&eph);
	EXPECT_RC(z_mk(e->o->zh, parent, ""), ZOK);
	EXPECT_RC(z_create(eph.zh, path, "e", &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL), ZOK);
	EXPECT_RC(z_exists(e->a->zh, path, w1, &st), ZOK);
	EXPECT(st.ephemeralOwner == sid, "ephemeralOwner is %#llx, expected the session %#llx",
	       (long long)st.ephemeralOwner, sid);
	EXPECT_RC(z_children(e->a->zh, parent, w2, NULL), ZOK);
	zookeeper_close(eph.zh);	/* sends closeSession */
	eph.zh = NULL;
	EXPECT_EVENT(w1, ZOO_DELETED_EVENT, path, 1, "exists watch on another session's ephemeral, "
		     "owner closed its session");
	EXPECT_EVENT(w2, ZOO_CHILD_EVENT, parent, 1, "child watch on the parent of an ephemeral, "
		     "owner closed its session");
	EXPECT_RC(z_exists(e->o->zh, path, NULL, NULL), ZNONODE);
out:
	client_close(&eph);
	end_check();
}

/* A session that expires (its client cut off, not closing) deletes its
 * ephemerals too, firing other handles' watches; resuming it afterwards
 * gives the client SESSION_EXPIRED. */
static void check_watch_ephemeral_expiry(struct env *e)
{
	char parent[PATH_MAX_LEN], path[PATH_MAX_LEN];
	struct evlog *w1 = evlog_new(), *w2 = evlog_new();
	struct client eph = { 0 };
	struct proxy pe;
	int pe_ok = proxy_start(&pe, e->hosts) == 0;
	int mark;

	begin("watch_ephemeral_session_expiry");
	P(parent, "/x");
	P(path, "/x/eph");
	EXPECT(pe_ok, "cannot start a proxy: %s", strerror(errno));
	if (!client_open(&eph, "expiring owner", pe.hosts, NULL))
		goto out;
	EXPECT_RC(z_mk(e->o->zh, parent, ""), ZOK);
	EXPECT_RC(z_create(eph.zh, path, "e", &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL), ZOK);
	EXPECT_RC(z_exists(e->a->zh, path, w1, NULL), ZOK);
	EXPECT_RC(z_children(e->a->zh, parent, w2, NULL), ZOK);
	mark = evlog_len(&eph.session);
	proxy_gate(&pe, 0);
	proxy_drop_all(&pe);
	EXPECT(evlog_wait(&eph.session, mark, ZOO_SESSION_EVENT, ZOO_CONNECTING_STATE, NULL, 1, WAIT_MS),
	       "the owner did not notice its cut connection: %s", evlog_str(&eph.session));
	/* the session times out after SESSION_TIMEOUT_MS without its client */
	EXPECT_EVENT(w1, ZOO_DELETED_EVENT, path, 1, "exists watch on another session's ephemeral, "
		     "owner's session expired");
	EXPECT_EVENT(w2, ZOO_CHILD_EVENT, parent, 1, "child watch on the parent of an ephemeral, "
		     "owner's session expired");
	EXPECT_RC(z_exists(e->o->zh, path, NULL, NULL), ZNONODE);
	proxy_gate(&pe, 1);
	EXPECT(evlog_wait(&eph.session, mark, ZOO_SESSION_EVENT, ZOO_EXPIRED_SESSION_STATE, NULL, 1,
			  WAIT_MS),
	       "resuming the expired session did not give ZOO_EXPIRED_SESSION_STATE; session events %s",
	       evlog_str(&eph.session));
out:
	client_close(&eph);
	proxy_stop(&pe);
	end_check();
}

/* ------------------------------------------------------------------ */
/* ACLs                                                                 */

static void check_acls(struct env *e)
{
	static const char *const names[] = {
		"acl_creator_all_digest", "acl_noauth_denied", "acl_read_only",
		"acl_parent_permissions", "acl_set_acl_aversion", "acl_bad_auth_scheme",
	};
	char base[PATH_MAX_LEN], secret[PATH_MAX_LEN], ro[PATH_MAX_LEN], data[64];
	char kid[PATH_MAX_LEN], locked[PATH_MAX_LEN], p2[PATH_MAX_LEN], p2kid[PATH_MAX_LEN];
	char s_world2[] = "world", id_anyone2[] = "anyone";
	struct ACL read_create[1] = { { .perms = 5, .id = { .scheme = s_world2, .id = id_anyone2 } } };
	struct ACL_vector acl_rc = { .count = 1, .data = read_create };
	struct evlog *wacl = evlog_new();
	char s_digest[] = "digest", s_world[] = "world", id_alice[] = ALICE_ID, id_anyone[] = "anyone";
	struct ACL two[2] = {
		{ .perms = 31, .id = { .scheme = s_digest, .id = id_alice } },
		{ .perms = 1, .id = { .scheme = s_world, .id = id_anyone } },
	};
	struct ACL_vector acl2 = { .count = 2, .data = two }, got = { 0, NULL };
	struct client alice = { 0 }, wrong = { 0 }, bad = { 0 };
	struct Stat st;
	int step = 0, rc;

	P(base, "/acl");
	P(secret, "/acl/secret");
	P(ro, "/acl/ro");
	P(locked, "/acl/locked");
	P(p2, "/acl/p2");
	P(p2kid, "/acl/p2/kid");

	begin(names[step]);
	if (!client_open(&alice, "alice", e->hosts, NULL))
		goto out;
	EXPECT_RC(z_add_auth(alice.zh, "digest", ALICE_AUTH), ZOK);
	EXPECT_RC(z_mk(e->o->zh, base, ""), ZOK);
	EXPECT_RC(z_create(alice.zh, secret, "s", &ZOO_CREATOR_ALL_ACL, ZOO_PERSISTENT), ZOK);
	EXPECT_RC(z_get_acl(alice.zh, secret, &got, &st), ZOK);
	EXPECT(got.count == 1 && got.data[0].perms == ZOO_PERM_ALL &&
	       strcmp(got.data[0].id.scheme, "digest") == 0 && strcmp(got.data[0].id.id, ALICE_ID) == 0,
	       "getACL gave %d entries, first {perms %d, %s:%s}; expected one {31, digest:%s}",
	       got.count, got.count ? got.data[0].perms : -1, got.count ? got.data[0].id.scheme : "",
	       got.count ? got.data[0].id.id : "", ALICE_ID);
	EXPECT(st.aversion == 0 && st.version == 0, "getACL stat: aversion %d version %d, expected 0 0",
	       st.aversion, st.version);
	EXPECT_RC(z_get(alice.zh, secret, NULL, data, sizeof(data), NULL), ZOK);
	EXPECT(strcmp(data, "s") == 0, "alice read \"%s\", expected \"s\"", data);
	/* the "auth" scheme needs an authenticated identity */
	EXPECT_RC(z_create(e->o->zh, P(kid, "/acl/anon"), "a", &ZOO_CREATOR_ALL_ACL, ZOO_PERSISTENT),
		  ZINVALIDACL);
	end_check();

	begin(names[++step]);
	EXPECT_RC(z_get(e->o->zh, secret, NULL, NULL, 0, NULL), ZNOAUTH);
	EXPECT_RC(z_set(e->o->zh, secret, "x", -1, NULL), ZNOAUTH);
	acl_free(&got);
	EXPECT_RC(z_get_acl(e->o->zh, secret, &got, NULL), ZNOAUTH);
	EXPECT_RC(z_mk(e->o->zh, P(kid, "/acl/secret/kid"), "k"), ZNOAUTH);
	if (!client_open(&wrong, "alice with a wrong password", e->hosts, NULL))
		goto out;
	/* a digest auth never fails: it just gives another identity */
	EXPECT_RC(z_add_auth(wrong.zh, "digest", "alice:wrong"), ZOK);
	EXPECT_RC(z_get(wrong.zh, secret, NULL, NULL, 0, NULL), ZNOAUTH);
	EXPECT_RC(z_set(wrong.zh, secret, "x", -1, NULL), ZNOAUTH);
	EXPECT_RC(z_get(alice.zh, secret, NULL, data, sizeof(data), &st), ZOK);
	EXPECT(strcmp(data, "s") == 0 && st.version == 0, "after denied sets: \"%s\" version %d", data,
	       st.version);
	end_check();

	begin(names[++step]);
	EXPECT_RC(z_create(alice.zh, ro, "r", &ZOO_READ_ACL_UNSAFE, ZOO_PERSISTENT), ZOK);
	EXPECT_RC(z_get(e->o->zh, ro, NULL, data, sizeof(data), NULL), ZOK);
	EXPECT(strcmp(data, "r") == 0, "read \"%s\", expected \"r\"", data);
	EXPECT_RC(z_set(e->o->zh, ro, "x", -1, NULL), ZNOAUTH);
	EXPECT_RC(z_set(alice.zh, ro, "x", -1, NULL), ZNOAUTH);
	EXPECT_RC(z_mk(alice.zh, P(kid, "/acl/ro/kid"), "k"), ZNOAUTH);
	EXPECT_RC(z_get(alice.zh, ro, NULL, data, sizeof(data), &st), ZOK);
	EXPECT(strcmp(data, "r") == 0 && st.version == 0, "after denied sets: \"%s\" version %d",
	       data, st.version);
	end_check();

	/* create needs CREATE and delete needs DELETE on the parent; the
	 * node's own ACL does not matter to its deletion */
	begin(names[++step]);
	EXPECT_RC(z_create(alice.zh, locked, "l", &ZOO_CREATOR_ALL_ACL, ZOO_PERSISTENT), ZOK);
	EXPECT_RC(z_delete(e->o->zh, locked, -1), ZOK);
	EXPECT_RC(z_create(alice.zh, p2, "p", &acl_rc, ZOO_PERSISTENT), ZOK);
	EXPECT_RC(z_mk(e->o->zh, p2kid, "k"), ZOK);
	EXPECT_RC(z_delete(e->o->zh, p2kid, -1), ZNOAUTH);
	EXPECT_RC(z_delete(alice.zh, p2kid, -1), ZNOAUTH);
	EXPECT_RC(z_exists(e->o->zh, p2kid, NULL, NULL), ZOK);
	end_check();

	begin(names[++step]);
	/* setACL fires no watch: the watch set here must still be armed after
	 * it, and fire on the next data change */
	EXPECT_RC(z_get(alice.zh, secret, wacl, NULL, 0, NULL), ZOK);
	EXPECT_RC(z_set_acl(alice.zh, secret, 0, &acl2), ZOK);
	acl_free(&got);
	EXPECT_RC(z_get_acl(alice.zh, secret, &got, &st), ZOK);
	EXPECT(st.aversion == 1 && st.version == 0 && st.cversion == 0,
	       "after setACL: aversion %d version %d cversion %d, expected 1 0 0",
	       st.aversion, st.version, st.cversion);
	EXPECT(got.count == 2 && strcmp(got.data[0].id.id, ALICE_ID) == 0 && got.data[0].perms == 31 &&
	       strcmp(got.data[1].id.scheme, "world") == 0 && got.data[1].perms == 1,
	       "getACL after setACL gave %d entries (first %s:%s perms %d), expected "
	       "[31 digest:%s, 1 world:anyone]", got.count, got.count ? got.data[0].id.scheme : "",
	       got.count ? got.data[0].id.id : "", got.count ? got.data[0].perms : -1, ALICE_ID);
	/* READ without ADMIN: ZooKeeper masks digest ids as "user:x" */
	acl_free(&got);
	EXPECT_RC(z_get_acl(e->o->zh, secret, &got, &st), ZOK);
	EXPECT(got.count == 2 && strcmp(got.data[0].id.scheme, "digest") == 0 &&
	       strcmp(got.data[0].id.id, "alice:x") == 0,
	       "getACL with READ but not ADMIN gave %d entries, first %s:%s; expected the digest "
	       "id masked as digest:alice:x", got.count, got.count ? got.data[0].id.scheme : "",
	       got.count ? got.data[0].id.id : "");
	EXPECT_RC(z_get(e->o->zh, secret, NULL, data, sizeof(data), NULL), ZOK);	/* world READ now */
	EXPECT_RC(z_set(e->o->zh, secret, "x", -1, NULL), ZNOAUTH);
	EXPECT_RC(z_set_acl(alice.zh, secret, 0, &acl2), ZBADVERSION);
	EXPECT_RC(z_set_acl(alice.zh, secret, 5, &acl2), ZBADVERSION);
	acl_free(&got);
	EXPECT_RC(z_get_acl(alice.zh, secret, &got, &st), ZOK);
	EXPECT(st.aversion == 1, "a setACL with a wrong aversion changed aversion to %d", st.aversion);
	EXPECT_RC(z_set_acl(e->o->zh, secret, -1, &acl2), ZNOAUTH);	/* needs ADMIN */
	if (!barrier(&alice))
		goto out;
	EXPECT(evlog_count(wacl, 0, ANY, ANY, NULL) == 0, "setACL fired a watch: %s", evlog_str(wacl));
	EXPECT_RC(z_set(alice.zh, secret, "s2", 0, &st), ZOK);
	EXPECT(st.version == 1 && st.aversion == 1, "setData after setACL: version %d aversion %d, "
	       "expected 1 1", st.version, st.aversion);
	EXPECT_EVENT(wacl, ZOO_CHANGED_EVENT, secret, 1, "getData watch across a setACL, then set");
	end_check();

	begin(names[++step]);
	if (!client_open(&bad, "unknown auth scheme", e->hosts, NULL))
		goto out;
	rc = z_add_auth(bad.zh, "nosuchscheme", "whatever");
	EXPECT(rc == ZAUTHFAILED, "zoo_add_auth with an unknown scheme completed with %s, expected %s",
	       rcname(rc), rcname(ZAUTHFAILED));
	EXPECT(evlog_wait(&bad.session, 0, ZOO_SESSION_EVENT, ZOO_AUTH_FAILED_STATE, NULL, 1, WAIT_MS),
	       "no session event ZOO_AUTH_FAILED_STATE; session events %s", evlog_str(&bad.session));
	EXPECT(zoo_state(bad.zh) == ZOO_AUTH_FAILED_STATE, "zoo_state is %s, expected AUTH_FAILED",
	       statename(zoo_state(bad.zh)));
	end_check();
	step++;
out:
	if (g_check)
		end_check();
	if (step < (int)(sizeof(names) / sizeof(names[0])) - 1)
		not_reached(names, sizeof(names) / sizeof(names[0]), step + 1, names[step]);
	acl_free(&got);
	client_close(&bad);
	client_close(&wrong);
	client_close(&alice);
}

/* A one-entry ACL vector (the strings are copied into *a). */
struct acl1 {
	char scheme[32];
	char id[64];
	struct ACL entry;
	struct ACL_vector vec;
};

static struct ACL_vector *acl1(struct acl1 *a, int perms, const char *scheme, const char *id)
{
	snprintf(a->scheme, sizeof(a->scheme), "%s", scheme);
	snprintf(a->id, sizeof(a->id), "%s", id);
	a->entry = (struct ACL){ .perms = perms, .id = { .scheme = a->scheme, .id = a->id } };
	a->vec = (struct ACL_vector){ .count = 1, .data = &a->entry };
	return &a->vec;
}

/* ip ACLs match the connection's address (127.0.0.1 here, proxied or not),
 * exactly or by prefix; the "ip" auth scheme always succeeds. */
static void check_acl_ip(struct env *e)
{
	char local[PATH_MAX_LEN], wide[PATH_MAX_LEN], other[PATH_MAX_LEN], data[64];
	struct acl1 x;
	struct client ipc = { 0 };

	begin("acl_ip_scheme");
	EXPECT_RC(z_ensure(e->o->zh, P(local, "/acl")), ZOK);
	P(local, "/acl/ip-local");
	P(wide, "/acl/ip-wide");
	P(other, "/acl/ip-other");
	EXPECT_RC(z_create(e->o->zh, local, "l", acl1(&x, ZOO_PERM_READ, "ip", "127.0.0.1"),
			   ZOO_PERSISTENT), ZOK);
	EXPECT_RC(z_create(e->o->zh, wide, "w", acl1(&x, ZOO_PERM_READ | ZOO_PERM_WRITE, "ip",
						     "127.0.0.0/8"), ZOO_PERSISTENT), ZOK);
	EXPECT_RC(z_create(e->o->zh, other, "o", acl1(&x, ZOO_PERM_ALL, "ip", "10.1.2.0/24"),
			   ZOO_PERSISTENT), ZOK);
	EXPECT_RC(z_get(e->o->zh, local, NULL, data, sizeof(data), NULL), ZOK);
	EXPECT_RC(z_get(e->a->zh, local, NULL, data, sizeof(data), NULL), ZOK);
	EXPECT_RC(z_set(e->o->zh, local, "x", -1, NULL), ZNOAUTH);
	EXPECT_RC(z_set(e->o->zh, wide, "w2", -1, NULL), ZOK);
	EXPECT_RC(z_get(e->o->zh, other, NULL, NULL, 0, NULL), ZNOAUTH);
	EXPECT_RC(z_set(e->o->zh, other, "x", -1, NULL), ZNOAUTH);
	if (!client_open(&ipc, "ip auth", e->hosts, NULL))
		goto out;
	EXPECT_RC(z_add_auth(ipc.zh, "ip", "ignored"), ZOK);
	EXPECT_RC(z_get(ipc.zh, local, NULL, data, sizeof(data), NULL), ZOK);
	EXPECT(strcmp(data, "l") == 0, "read \"%s\", expected \"l\"", data);
out:
	client_close(&ipc);
	end_check();
}

/* create and setACL refuse ACLs that no provider accepts */
static void check_acl_invalid(struct env *e)
{
	static const struct {
		const char *scheme, *id;
	} bad[] = {
		{ "digest", "nocolon" }, { "digest", "a:b:c" }, { "ip", "not-an-address" },
		{ "ip", "127.0.0.1/33" }, { "world", "bob" }, { "nosuchscheme", "x" },
	};
	char path[PATH_MAX_LEN], ok[PATH_MAX_LEN];
	struct acl1 x;
	struct ACL_vector empty = { 0, NULL };
	struct Stat st;

	begin("acl_invalid_acl_rejected");
	EXPECT_RC(z_ensure(e->o->zh, P(path, "/acl")), ZOK);
	P(path, "/acl/invalid");
	P(ok, "/acl/valid");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = z_create(e->o->zh, path, "i", acl1(&x, ZOO_PERM_ALL, bad[i].scheme, bad[i].id),
				  ZOO_PERSISTENT);

		EXPECT(rc == ZINVALIDACL, "create with ACL %s:%s gave %s, expected %s", bad[i].scheme,
		       bad[i].id, rcname(rc), rcname(ZINVALIDACL));
	}
	EXPECT_RC(z_create(e->o->zh, path, "i", &empty, ZOO_PERSISTENT), ZINVALIDACL);
	EXPECT_RC(z_exists(e->o->zh, path, NULL, NULL), ZNONODE);
	EXPECT_RC(z_mk(e->o->zh, ok, "v"), ZOK);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = z_set_acl(e->o->zh, ok, -1, acl1(&x, ZOO_PERM_ALL, bad[i].scheme, bad[i].id));

		EXPECT(rc == ZINVALIDACL, "setACL to %s:%s gave %s, expected %s", bad[i].scheme,
		       bad[i].id, rcname(rc), rcname(ZINVALIDACL));
	}
	EXPECT_RC(z_set_acl(e->o->zh, ok, -1, &empty), ZINVALIDACL);
	EXPECT_RC(z_exists(e->o->zh, ok, NULL, &st), ZOK);
	EXPECT(st.aversion == 0, "rejected setACLs changed aversion to %d", st.aversion);
out:
	end_check();
}

/* digest: the identity is the user (up to the first ':') + ":" +
 * base64(sha1(the whole "user:password")), the password may hold ':' */
static void check_acl_digest_colon(struct env *e)
{
	char path[PATH_MAX_LEN];
	struct client carol = { 0 };
	struct ACL_vector got = { 0, NULL };

	begin("acl_digest_password_with_colon");
	EXPECT_RC(z_ensure(e->o->zh, P(path, "/acl")), ZOK);
	P(path, "/acl/carol");
	if (!client_open(&carol, "carol", e->hosts, NULL))
		goto out;
	EXPECT_RC(z_add_auth(carol.zh, "digest", "carol:pa:ss"), ZOK);
	EXPECT_RC(z_create(carol.zh, path, "c", &ZOO_CREATOR_ALL_ACL, ZOO_PERSISTENT), ZOK);
	EXPECT_RC(z_get_acl(carol.zh, path, &got, NULL), ZOK);
	EXPECT(got.count == 1 && strcmp(got.data[0].id.scheme, "digest") == 0 &&
	       strcmp(got.data[0].id.id, "carol:P+aqahjFgX9lFaIxdaYLSlKQBx0=") == 0,
	       "getACL gave %d entries, first %s:%s; expected digest:carol:%s", got.count,
	       got.count ? got.data[0].id.scheme : "", got.count ? got.data[0].id.id : "",
	       "P+aqahjFgX9lFaIxdaYLSlKQBx0=");
	EXPECT_RC(z_get(carol.zh, path, NULL, NULL, 0, NULL), ZOK);
	EXPECT_RC(z_get(e->o->zh, path, NULL, NULL, 0, NULL), ZNOAUTH);
out:
	acl_free(&got);
	client_close(&carol);
	end_check();
}

/* ------------------------------------------------------------------ */
/* multi                                                                */

static void check_multi_success(struct env *e)
{
	char base[PATH_MAX_LEN], a[PATH_MAX_LEN], del[PATH_MAX_LEN], data[64];
	const struct mop ops[] = {
		{ 'c', a, "x", 0 }, { 's', a, "y", 0 }, { 'k', a, NULL, 1 }, { 'd', del, NULL, 0 },
	};
	struct mres res[4];
	struct Stat st, pst;
	struct evlog *wa = evlog_new(), *wbase = evlog_new(), *wdel = evlog_new();
	int rc;

	begin("multi_success");
	P(base, "/m");
	P(a, "/m/a");
	P(del, "/m/del");
	EXPECT_RC(z_mk(e->o->zh, base, ""), ZOK);
	EXPECT_RC(z_mk(e->o->zh, del, "d"), ZOK);
	EXPECT_RC(z_exists(e->a->zh, a, wa, NULL), ZNONODE);
	EXPECT_RC(z_children(e->a->zh, base, wbase, NULL), ZOK);
	EXPECT_RC(z_get(e->a->zh, del, wdel, NULL, 0, NULL), ZOK);
	rc = z_multi(e->o->zh, 4, ops, res);
	EXPECT(rc == ZOK, "zoo_multi(create, set, check, delete) gave %s; per-op %d %d %d %d",
	       rcname(rc), res[0].err, res[1].err, res[2].err, res[3].err);
	for (int i = 0; i < 4; i++)
		EXPECT(res[i].err == ZOK, "op %d result %s", i, rcname(res[i].err));
	EXPECT(strcmp(res[0].path, a) == 0, "create result path \"%s\", expected %s", res[0].path, a);
	EXPECT(res[1].st.version == 1 && res[1].st.dataLength == 1,
	       "setData result stat: version %d dataLength %d, expected 1 1",
	       res[1].st.version, res[1].st.dataLength);
	EXPECT_RC(z_get(e->o->zh, a, NULL, data, sizeof(data), &st), ZOK);
	EXPECT(strcmp(data, "y") == 0 && st.version == 1, "after multi %s is \"%s\" version %d, "
	       "expected \"y\" version 1", a, data, st.version);
	EXPECT(st.czxid == st.mzxid && res[1].st.mzxid == st.mzxid,
	       "the ops of one multi must share one zxid: czxid %#llx mzxid %#llx set-result mzxid %#llx",
	       (long long)st.czxid, (long long)st.mzxid, (long long)res[1].st.mzxid);
	EXPECT_RC(z_exists(e->o->zh, del, NULL, NULL), ZNONODE);
	EXPECT_RC(z_exists(e->o->zh, base, NULL, &pst), ZOK);
	EXPECT(pst.pzxid == st.czxid && pst.numChildren == 1,
	       "parent after multi: pzxid %#llx (expected the multi's zxid %#llx), numChildren %d",
	       (long long)pst.pzxid, (long long)st.czxid, pst.numChildren);
	/* the multi's changes fire watches like single ops: one notification
	 * per watched path (the create and the delete both change base's
	 * children: still one NodeChildrenChanged for the one-shot watch) */
	EXPECT_EVENT(wa, ZOO_CREATED_EVENT, a, 1, "exists watch, multi creates the node");
	EXPECT_EVENT(wbase, ZOO_CHILD_EVENT, base, 1, "child watch, multi creates and deletes children");
	EXPECT_EVENT(wdel, ZOO_DELETED_EVENT, del, 1, "getData watch, multi deletes the node");
	if (!barrier(e->a))
		goto out;
	EXPECT(wire_count(e->pa, ANY, a) == 1 &&
	       wire_count(e->pa, ANY, base) == 1 &&
	       wire_count(e->pa, ANY, del) == 1,
	       "expected one notification each for %s, %s, %s; wire log %s", a, base, del,
	       evlog_str(&e->pa->wire));
out:
	end_check();
}

/* A multi whose check fails: the error for the multi and for that op,
 * ZOK before it, ZRUNTIMEINCONSISTENCY after it, nothing applied, no
 * watch fired. */
static void check_multi_failure(struct env *e)
{
	char base[PATH_MAX_LEN], a[PATH_MAX_LEN], b[PATH_MAX_LEN], data[64];
	/* the check fails: a's version is 1, not 7 */
	const struct mop ops[] = {
		{ 'c', b, "b", 0 }, { 's', a, "z", 1 }, { 'k', a, NULL, 7 }, { 'd', a, NULL, -1 },
	};
	struct mres res[4];
	struct Stat st, pst;
	struct evlog *wb = evlog_new();
	int rc, wire;

	begin("multi_failure_atomic");
	P(base, "/mf");
	P(a, "/mf/a");
	P(b, "/mf/b");
	EXPECT_RC(z_mk(e->o->zh, base, ""), ZOK);
	EXPECT_RC(z_mk(e->o->zh, a, "x"), ZOK);
	EXPECT_RC(z_set(e->o->zh, a, "y", 0, NULL), ZOK);
	/* a watch on the node the failed multi would create: it must not fire */
	EXPECT_RC(z_exists(e->a->zh, b, wb, NULL), ZNONODE);
	rc = z_multi(e->o->zh, 4, ops, res);
	EXPECT(rc == ZBADVERSION, "zoo_multi with a failing check gave %s, expected %s",
	       rcname(rc), rcname(ZBADVERSION));
	EXPECT(res[0].err == ZOK && res[1].err == ZOK && res[2].err == ZBADVERSION &&
	       res[3].err == ZRUNTIMEINCONSISTENCY,
	       "per-op results %d %d %d %d, expected 0 0 %d %d", res[0].err, res[1].err,
	       res[2].err, res[3].err, ZBADVERSION, ZRUNTIMEINCONSISTENCY);
	EXPECT_RC(z_exists(e->o->zh, b, NULL, NULL), ZNONODE);
	EXPECT_RC(z_get(e->o->zh, a, NULL, data, sizeof(data), &st), ZOK);
	EXPECT(strcmp(data, "y") == 0 && st.version == 1,
	       "failed multi changed %s: \"%s\" version %d", a, data, st.version);
	EXPECT_RC(z_exists(e->o->zh, base, NULL, &pst), ZOK);
	EXPECT(pst.numChildren == 1 && pst.cversion == 1,
	       "failed multi changed the children of %s: numChildren %d cversion %d", base,
	       pst.numChildren, pst.cversion);
	if (!barrier(e->a))
		goto out;
	wire = wire_count(e->pa, ANY, b);
	EXPECT(wire == 0 && evlog_count(wb, 0, ANY, ANY, NULL) == 0,
	       "the failed multi sent %d notifications for %s (watcher saw %s)", wire, b,
	       evlog_str(wb));
	/* the watch is still armed: a real create fires it */
	EXPECT_RC(z_mk(e->o->zh, b, "b"), ZOK);
	EXPECT_EVENT(wb, ZOO_CREATED_EVENT, b, 1, "exists watch after a failed multi, then create");
out:
	end_check();
}

/* ------------------------------------------------------------------ */
/* reconnect: watches re-sent with setWatches                           */

/*
 * Handle A (through proxy pa) authenticates as alice, creates an ephemeral
 * and a node only alice may read, and sets exists watches on two missing
 * nodes, data watches on three existing nodes and a child watch on their
 * parent.  Handle B (through proxy
 * pb) then opens A's session with zoo_client_id(A): the server moves the
 * session to B's connection and closes A's.  Both handles would now take the
 * session from each other forever (each reconnect closes the other's
 * connection), so the proxies' gates decide who may connect:
 *
 *  1. pa's gate closes, then B connects with A's session id: the server
 *     closes A's connection; A's reconnect attempts are refused by pa.
 *     Identities belong to the connection, not the session: B, which did
 *     not authenticate, may not read alice's node.
 *  2. B, owning the session, creates one missing node, changes one watched
 *     node, deletes another, and so changes the watched parent's children.
 *     Nobody is told (A's watches went with its connection).
 *  3. pb's gate closes, pa's opens: A reconnects with its session id and
 *     lastZxidSeen; the server closes B's connection (B's attempts are now
 *     refused); A re-sends its watches (setWatches, relativeZxid = the last
 *     zxid A saw) and must get CREATED, CHANGED, DELETED and CHILD for B's
 *     changes.  The watches on the untouched nodes must not fire but be
 *     registered: later changes by another handle fire them.
 *  4. Only once A has its events, and B has been refused at least once
 *     after losing its connection (so B's state is no longer CONNECTED),
 *     B is closed: zookeeper_close sends closeSession only from the
 *     CONNECTED state, and pb's closed gate keeps B from connecting again,
 *     so closing B does not end the session A is using.  A must still be
 *     connected with the same session afterwards, still alice (the client
 *     re-sends its auth on reconnect), its ephemeral still there;
 *     A is closed last, which ends the session and deletes the ephemeral.
 *
 * The session timeout (4 s) bounds each disconnected phase: the session
 * lives as long as one of the handles keeps it, and the phases take
 * milliseconds (the C client retries every timeout/60 ms).
 */
static void check_reconnect(const char *hosts, struct client *o)
{
	static const char *const names[] = {
		"reconnect_session_takeover",
		"reconnect_resends_watches",
		"reconnect_watch_reregistered",
		"reconnect_session_kept",
		"reconnect_close_ends_session",
	};
	struct proxy pa, pb;
	int pa_ok, pb_ok;
	struct client a = { 0 }, b = { 0 };
	char base[PATH_MAX_LEN], missing[PATH_MAX_LEN], existing[PATH_MAX_LEN], untouched[PATH_MAX_LEN];
	char gone[PATH_MAX_LEN], later[PATH_MAX_LEN], eph[PATH_MAX_LEN], priv[PATH_MAX_LEN];
	struct evlog *wmiss = evlog_new(), *wexist = evlog_new(), *wkids = evlog_new(), *wun = evlog_new();
	struct evlog *wgone = evlog_new(), *wlater = evlog_new();
	struct Stat st;
	clientid_t cid;
	long long sid;
	int step = 0, amark, bmark, refmark;

	P(base, "/r");
	P(missing, "/r/missing");
	P(existing, "/r/existing");
	P(untouched, "/r/untouched");
	P(gone, "/r/gone");
	P(later, "/r/later");
	P(eph, "/r/eph");
	P(priv, "/r/private");
	pa_ok = proxy_start(&pa, hosts) == 0;
	pb_ok = proxy_start(&pb, hosts) == 0;

	begin(names[step]);
	EXPECT(pa_ok && pb_ok, "cannot start the proxies: %s", strerror(errno));
	EXPECT_RC(z_mk(o->zh, base, ""), ZOK);
	EXPECT_RC(z_mk(o->zh, existing, "e0"), ZOK);
	EXPECT_RC(z_mk(o->zh, untouched, "u0"), ZOK);
	EXPECT_RC(z_mk(o->zh, gone, "g0"), ZOK);
	if (!client_open(&a, "A", pa.hosts, NULL))
		goto out;
	sid = session_id(&a);
	EXPECT_RC(z_add_auth(a.zh, "digest", ALICE_AUTH), ZOK);
	EXPECT_RC(z_create(a.zh, priv, "p", &ZOO_CREATOR_ALL_ACL, ZOO_PERSISTENT), ZOK);
	EXPECT_RC(z_create(a.zh, eph, "a", &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL), ZOK);
	EXPECT_RC(z_exists(a.zh, missing, wmiss, NULL), ZNONODE);
	EXPECT_RC(z_exists(a.zh, later, wlater, NULL), ZNONODE);
	EXPECT_RC(z_get(a.zh, existing, wexist, NULL, 0, NULL), ZOK);
	EXPECT_RC(z_get(a.zh, untouched, wun, NULL, 0, NULL), ZOK);
	EXPECT_RC(z_get(a.zh, gone, wgone, NULL, 0, NULL), ZOK);
	EXPECT_RC(z_children(a.zh, base, wkids, NULL), ZOK);

	/* 1: B takes the session; A's attempts to get it back are refused */
	proxy_gate(&pa, 0);
	cid = *zoo_client_id(a.zh);
	amark = evlog_len(&a.session);
	if (!client_open(&b, "B (A's session)", pb.hosts, &cid))
		goto out;
	EXPECT(session_id(&b) == sid, "B resumed session %#llx but got %#llx", sid, session_id(&b));
	EXPECT(evlog_wait(&a.session, amark, ZOO_SESSION_EVENT, ZOO_CONNECTING_STATE, NULL, 1, WAIT_MS),
	       "the server did not close A's connection when B resumed A's session; A's session "
	       "events %s", evlog_str(&a.session));
	EXPECT_RC(z_get(b.zh, priv, NULL, NULL, 0, NULL), ZNOAUTH);
	end_check();

	/* 2: B changes the watched nodes while A is away */
	begin(names[++step]);
	EXPECT_RC(z_mk(b.zh, missing, "m"), ZOK);
	EXPECT_RC(z_set(b.zh, existing, "e1", -1, NULL), ZOK);
	EXPECT_RC(z_delete(b.zh, gone, -1), ZOK);
	EXPECT(evlog_count(wmiss, 0, ANY, ANY, NULL) + evlog_count(wexist, 0, ANY, ANY, NULL) +
	       evlog_count(wkids, 0, ANY, ANY, NULL) + evlog_count(wgone, 0, ANY, ANY, NULL) == 0,
	       "A got events while disconnected?");

	/* 3: A comes back, B is kept out */
	proxy_gate(&pb, 0);
	bmark = evlog_len(&b.session);
	amark = evlog_len(&a.session);
	refmark = proxy_refused(&pb);
	proxy_gate(&pa, 1);
	EXPECT(evlog_wait(&a.session, amark, ZOO_SESSION_EVENT, ZOO_CONNECTED_STATE, NULL, 1, WAIT_MS),
	       "A did not reconnect; A's session events %s", evlog_str(&a.session));
	EXPECT(evlog_count(&a.session, amark, ZOO_SESSION_EVENT, ZOO_EXPIRED_SESSION_STATE, NULL) == 0,
	       "A's session expired: %s", evlog_str(&a.session));
	EXPECT(session_id(&a) == sid, "A reconnected with session %#llx, expected %#llx",
	       session_id(&a), sid);
	EXPECT_EVENT(wmiss, ZOO_CREATED_EVENT, missing, 1,
		     "exists watch re-sent on reconnect, node created meanwhile");
	EXPECT_EVENT(wexist, ZOO_CHANGED_EVENT, existing, 1,
		     "getData watch re-sent on reconnect, node changed meanwhile");
	EXPECT_EVENT(wgone, ZOO_DELETED_EVENT, gone, 1,
		     "getData watch re-sent on reconnect, node deleted meanwhile");
	EXPECT_EVENT(wkids, ZOO_CHILD_EVENT, base, 1,
		     "getChildren watch re-sent on reconnect, children changed meanwhile");
	EXPECT(evlog_wait(&b.session, bmark, ZOO_SESSION_EVENT, ZOO_CONNECTING_STATE, NULL, 1, WAIT_MS),
	       "the server did not close B's connection when A resumed the session; B's session "
	       "events %s", evlog_str(&b.session));
	EXPECT(barrier(&a), "A's round trip failed");
	EXPECT(evlog_count(wmiss, 0, ANY, ANY, NULL) == 1 && evlog_count(wexist, 0, ANY, ANY, NULL) == 1 &&
	       evlog_count(wgone, 0, ANY, ANY, NULL) == 1 && evlog_count(wkids, 0, ANY, ANY, NULL) == 1,
	       "expected one event each; saw %s, %s, %s, %s", evlog_str(wmiss), evlog_str(wexist),
	       evlog_str(wgone), evlog_str(wkids));
	end_check();

	/* 4: the unchanged nodes' watches were registered, not fired */
	begin(names[++step]);
	EXPECT(evlog_count(wun, 0, ANY, ANY, NULL) == 0,
	       "the watch on the unchanged %s fired on reconnect: %s", untouched, evlog_str(wun));
	EXPECT(evlog_count(wlater, 0, ANY, ANY, NULL) == 0,
	       "the exists watch on the still missing %s fired on reconnect: %s", later,
	       evlog_str(wlater));
	EXPECT(proxy_wait_refused(&pb, refmark, WAIT_MS), "B never tried to reconnect");
	zookeeper_close(b.zh);	/* B is not connected: no closeSession goes out */
	b.zh = NULL;
	EXPECT_RC(z_set(o->zh, untouched, "u1", -1, NULL), ZOK);
	EXPECT_EVENT(wun, ZOO_CHANGED_EVENT, untouched, 1,
		     "getData watch re-sent on reconnect for an unchanged node, changed later");
	EXPECT_RC(z_mk(o->zh, later, "l"), ZOK);
	EXPECT_EVENT(wlater, ZOO_CREATED_EVENT, later, 1,
		     "exists watch re-sent on reconnect for a still missing node, created later");
	end_check();

	begin(names[++step]);
	EXPECT(barrier(&a), "A's round trip after closing B failed");
	EXPECT(zoo_state(a.zh) == ZOO_CONNECTED_STATE && session_id(&a) == sid,
	       "A: state %s session %#llx, expected CONNECTED %#llx", statename(zoo_state(a.zh)),
	       session_id(&a), sid);
	EXPECT(evlog_count(&a.session, 0, ZOO_SESSION_EVENT, ZOO_EXPIRED_SESSION_STATE, NULL) == 0,
	       "A's session expired: %s", evlog_str(&a.session));
	EXPECT_RC(z_get(a.zh, priv, NULL, NULL, 0, NULL), ZOK);
	EXPECT_RC(z_exists(o->zh, eph, NULL, &st), ZOK);
	EXPECT(st.ephemeralOwner == sid, "A's ephemeral is owned by %#llx, expected %#llx",
	       (long long)st.ephemeralOwner, sid);
	end_check();

	begin(names[++step]);
	zookeeper_close(a.zh);	/* connected: sends closeSession */
	a.zh = NULL;
	EXPECT_RC(z_exists(o->zh, eph, NULL, NULL), ZNONODE);
	end_check();
	step++;
out:
	if (g_check)
		end_check();
	if (step < (int)(sizeof(names) / sizeof(names[0])) - 1)
		not_reached(names, sizeof(names) / sizeof(names[0]), step + 1, names[step]);
	client_close(&b);
	client_close(&a);
	proxy_stop(&pa);
	proxy_stop(&pb);
}

/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	struct client a = { 0 }, o = { 0 };
	struct proxy pa;
	struct env e;
	const char *lvl = getenv("CCS_ZK_LOG");
	char path[PATH_MAX_LEN];
	struct timespec now;
	int ready = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	zoo_set_log_stream(stderr);
	zoo_set_debug_level(!lvl ? ZOO_LOG_LEVEL_WARN :
			    !strcmp(lvl, "debug") ? ZOO_LOG_LEVEL_DEBUG :
			    !strcmp(lvl, "info") ? ZOO_LOG_LEVEL_INFO :
			    !strcmp(lvl, "error") ? ZOO_LOG_LEVEL_ERROR : ZOO_LOG_LEVEL_WARN);
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(g_root, sizeof(g_root), "/ccs-%d-%lld", (int)getpid(), (long long)now.tv_sec);

	begin("setup");
	if (proxy_start(&pa, argv[1]) < 0) {
		failf("cannot start a proxy to %s: %s", argv[1], strerror(errno));
		end_check();
		return 1;
	}
	if (!client_open(&o, "O", argv[1], NULL) || !client_open(&a, "A", pa.hosts, NULL))
		goto out;
	EXPECT_RC(z_mk(o.zh, g_root, ""), ZOK);
	EXPECT_RC(z_mk(o.zh, P(path, "/w"), ""), ZOK);
	ready = 1;
out:
	end_check();
	if (ready) {
		e = (struct env){ .hosts = argv[1], .a = &a, .pa = &pa, .o = &o };
		check_watch_exists_created(&e);
		check_watch_get_changed(&e);
		check_watch_get_deleted(&e);
		check_watch_children(&e);
		check_watch_not_left_on_missing(&e);
		check_watch_event_before_reply(&e);
		check_watch_fires_once(&e);
		check_watch_one_notification(&e);
		check_watch_ephemeral_close(&e);
		check_watch_ephemeral_expiry(&e);
		check_acls(&e);
		check_acl_ip(&e);
		check_acl_invalid(&e);
		check_acl_digest_colon(&e);
		check_multi_success(&e);
		check_multi_failure(&e);
		check_reconnect(argv[1], &o);
	}
	client_close(&a);
	client_close(&o);
	proxy_stop(&pa);
	for (int i = 0; i < g_nevlogs; i++) {
		evlog_destroy(g_evlogs[i]);
		free(g_evlogs[i]);
	}
	fprintf(stderr, "c_client_semantics: %d passed, %d failed\n", g_passed, g_failed);
	return g_failed || !ready ? 1 : 0;
}
