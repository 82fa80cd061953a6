/* loadgen: a ZooKeeper-protocol load generator for benchmarking corral (and
 * Apache ZooKeeper, side by side). One thread, many connections, each with
 * a fixed number of requests outstanding (pipelined); every reply's latency
 * is recorded, and the run prints ops/s and p50/p99/p999 on one line (or as
 * JSON with --json).
 *
 * Workloads:
 *   create    sequential creates under /bench/<run>/
 *   set       setData on --keys existing nodes
 *   get       getData on --keys existing nodes
 *   exists    exists on --keys existing nodes
 *   children  getChildren on a node with --children children (default 1000)
 *   mix       --read-percent reads (getData), the rest setData
 *   churn     connect, create an ephemeral, close; repeatedly, with connections x
 *             outstanding sessions at once (each session is its own connection)
 *   watch     --watchers sessions watch one node; one setData fires them all;
 *             latency = setData sent -> last watcher notified
 *   multi     multi of --multi-ops setData ops
 *
 * --servers HOST:PORT,HOST:PORT,... spreads the connections over an
 * ensemble's servers, round-robin (connection i goes to server i mod n); the
 * setup (nodes the workload needs) runs on the first, then a sync on each of
 * the others makes sure they have applied it before the run starts (reads
 * on a follower are answered from its own state).
 *
 * --tls-port PORT (with --cert, --key, --ca) runs the measured connections
 * over TLS to that port of each server (OpenSSL, blocking handshake, then
 * non-blocking records); the setup session stays on the plaintext --port.
 *
 * This is a client tool: it uses epoll (the server is the one with the
 * io_uring rule). */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

static const char *workload_names[] = { "create", "set", "get", "exists", "children", "mix", "churn",
					"watch", "multi" };

void usage(void) __attribute__((noreturn));

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- connections ---------------------------------------------------------- */
struct conn {
	int fd;
	SSL *ssl;		/* --tls-port: the connection's TLS */
	int index;
	bool connected;
	int32_t next_xid;
	struct buf out;
	size_t out_off;
	uint8_t *in;
	size_t in_len, in_cap;
	uint64_t *sent_at;	/* by xid % ring */
	int inflight;
	uint64_t counter;
	int phase;		/* churn: 0 connecting, 1 creating, 2 closing; watch: 1 registered */
	uint64_t cycle_start;	/* churn: when this connection's cycle began */
};

#define XID_RING 65536

struct options opt;
struct sockaddr_in server_addr[MAX_SERVERS];
int nservers;
char base[128];
uint8_t *value;
static uint64_t *latencies;
static size_t lat_len, lat_cap;
static uint64_t ops_done, errors;
static bool measuring;
static int epfd;

static SSL_CTX *tls_ctx;

static void tls_setup(void)
{
	tls_ctx = SSL_CTX_new(TLS_client_method());
	if (!tls_ctx || (opt.tls_cert && SSL_CTX_use_certificate_chain_file(tls_ctx, opt.tls_cert) != 1) ||
	    (opt.tls_key && SSL_CTX_use_PrivateKey_file(tls_ctx, opt.tls_key, SSL_FILETYPE_PEM) != 1) ||
	    (opt.tls_ca && SSL_CTX_load_verify_locations(tls_ctx, opt.tls_ca, NULL) != 1)) {
		ERR_print_errors_fp(stderr);
		exit(2);
	}
	SSL_CTX_set_verify(tls_ctx, opt.tls_ca ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

/* A TLS connection to server index's --tls-port: handshake done, then
 * non-blocking. */
static int tls_connect(int index, SSL **ret)
{
	struct sockaddr_in sa = server_addr[index % nservers];
	sa.sin_port = htons((uint16_t)opt.tls_port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "loadgen: connect to the TLS port %d: %s\n", opt.tls_port, strerror(errno));
		exit(2);
	}
	SSL *ssl = SSL_new(tls_ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1) {
		fprintf(stderr, "loadgen: TLS handshake with port %d failed\n", opt.tls_port);
		ERR_print_errors_fp(stderr);
		exit(2);
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	*ret = ssl;
	return fd;
}

/* send() or SSL_write(): bytes written, or -1 with errno (EAGAIN: later). */
static ssize_t conn_send(struct conn *c, const void *p, size_t n)
{
	if (!c->ssl)
		return send(c->fd, p, n, MSG_NOSIGNAL);
	size_t done = 0;
	if (SSL_write_ex(c->ssl, p, n, &done) == 1)
		return (ssize_t)done;
	int e = SSL_get_error(c->ssl, 0);
	errno = e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? EAGAIN : EPIPE;
	return -1;
}

/* recv() or SSL_read(): bytes read, 0 at the end, or -1 with errno. */
static ssize_t conn_recv(struct conn *c, void *p, size_t n)
{
	if (!c->ssl)
		return recv(c->fd, p, n, 0);
	size_t done = 0;
	if (SSL_read_ex(c->ssl, p, n, &done) == 1)
		return (ssize_t)done;
	int e = SSL_get_error(c->ssl, 0);
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	errno = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? EAGAIN : ECONNRESET;
	return -1;
}

static void record(uint64_t ns)
{
	if (!measuring)
		return;
	if (lat_len == lat_cap) {
		lat_cap = lat_cap ? lat_cap * 2 : 1 << 20;
		latencies = realloc(latencies, lat_cap * sizeof(*latencies));
		if (!latencies) {
			perror("realloc");
			exit(1);
		}
	}
	latencies[lat_len++] = ns;
	ops_done++;
}

static void send_connect(struct conn *c)
{
	size_t m;
	frame_begin(&c->out, &m);
	put_int(&c->out, 0);
	put_long(&c->out, 0);
	put_int(&c->out, 30000);
	put_long(&c->out, 0);
	uint8_t pw[16] = { 0 };
	put_buffer(&c->out, pw, 16);
	put_bool(&c->out, false);
	frame_end(&c->out, m);
}

static void key_path(char *out, size_t size, uint64_t k)
{
	snprintf(out, size, "%s/k%llu", base, (unsigned long long)(k % (uint64_t)opt.keys));
}

/* Queues one request of the workload on c. */
static void send_request(struct conn *c)
{
	char path[256];
	size_t m;
	int32_t xid = c->next_xid++;
	if (c->next_xid <= 0)
		c->next_xid = 1;
	uint64_t k = c->counter++ * (uint64_t)opt.connections + (uint64_t)c->index;
	enum workload w = opt.w;
	if (w == W_MIX)
		w = (int)(k * 2654435761u % 100) < opt.read_percent ? W_GET : W_SET;

	frame_begin(&c->out, &m);
	put_int(&c->out, xid);
	switch (w) {
	case W_CREATE:
		put_int(&c->out, 1);
		snprintf(path, sizeof(path), "%s/c", base);
		put_string(&c->out, path);
		put_buffer(&c->out, value, opt.value_bytes);
		put_open_acl(&c->out);
		put_int(&c->out, 2);	/* PERSISTENT_SEQUENTIAL */
		break;
	case W_SET:
		put_int(&c->out, 5);
		key_path(path, sizeof(path), k);
		put_string(&c->out, path);
		put_buffer(&c->out, value, opt.value_bytes);
		put_int(&c->out, -1);
		break;
	case W_GET:
	case W_EXISTS:
		put_int(&c->out, w == W_GET ? 4 : 3);
		key_path(path, sizeof(path), k);
		put_string(&c->out, path);
		put_bool(&c->out, false);
		break;
	case W_CHILDREN:
		put_int(&c->out, 8);
		snprintf(path, sizeof(path), "%s/wide", base);
		put_string(&c->out, path);
		put_bool(&c->out, false);
		break;
	case W_MULTI:
		put_int(&c->out, 14);
		for (int i = 0; i < opt.multi_ops; i++) {
			put_int(&c->out, 5);
			put_bool(&c->out, false);
			put_int(&c->out, -1);
			key_path(path, sizeof(path), k + (uint64_t)i);
			put_string(&c->out, path);
			put_buffer(&c->out, value, opt.value_bytes);
			put_int(&c->out, -1);
		}
		put_int(&c->out, -1);
		put_bool(&c->out, true);
		put_int(&c->out, -1);
		break;
	default:
		break;
	}
	frame_end(&c->out, m);
	c->sent_at[xid % XID_RING] = now_ns();
	c->inflight++;
}

static void flush_out(struct conn *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = conn_send(c, c->out.p + c->out_off, c->out.len - c->out_off);
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			perror("send");
			exit(1);
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out.len)
		c->out.len = c->out_off = 0;
	struct epoll_event ev = { .events = EPOLLIN | (c->out.len ? EPOLLOUT : 0), .data.ptr = c };
	epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static struct conn *conn_open(int index)
{
	struct conn *c = calloc(1, sizeof(*c));
	c->fd = opt.tls_port ? tls_connect(index, &c->ssl) : tcp_connect(index, true);
	c->index = index;
	c->next_xid = 1;
	c->sent_at = calloc(XID_RING, sizeof(uint64_t));
	c->cycle_start = now_ns();
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
	send_connect(c);
	flush_out(c);
	return c;
}

static void conn_close(struct conn *c)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	SSL_free(c->ssl);
	close(c->fd);
	free(c->out.p);
	free(c->in);
	free(c->sent_at);
	free(c);
}

/* --- the run ---------------------------------------------------------------- */
static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(double p)
{
	if (!lat_len)
		return 0;
	size_t i = (size_t)(p * (double)(lat_len - 1));
	return (double)latencies[i] / 1000.0;
}

/* Handles the whole frames in c->in; returns false when the connection ended. */
static bool handle_input(struct conn *c, struct conn **watchers_done_sink)
{
	size_t off = 0;
	(void)watchers_done_sink;
	while (c->in_len - off >= 4) {
		uint32_t len = get32(c->in + off);
		if (c->in_len - off - 4 < len)
			break;
		const uint8_t *f = c->in + off + 4;
		off += 4 + len;
		if (!c->connected) {
			c->connected = true;
			continue;
		}
		int32_t xid = (int32_t)get32(f);
		int32_t err = (int32_t)get32(f + 12);
		if (xid == -1 || xid == -2)
			continue;
		if (err != 0 && !(opt.w == W_CREATE && err == -110)) {
			if (!errors)
				fprintf(stderr, "loadgen: first error: %d (xid %d)\n", err, xid);
			errors++;
		}
		record(now_ns() - c->sent_at[xid % XID_RING]);
		c->inflight--;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	return true;
}

static bool conn_read(struct conn *c)
{
	for (;;) {
		if (c->in_cap - c->in_len < 65536) {
			c->in_cap = c->in_cap ? c->in_cap * 2 : 131072;
			c->in = realloc(c->in, c->in_cap);
		}
		ssize_t n = conn_recv(c, c->in + c->in_len, c->in_cap - c->in_len);
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n <= 0)
			return false;
		c->in_len += (size_t)n;
	}
}

static void report(uint64_t started)
{
	double secs = (double)(now_ns() - started) / 1e9;
	qsort(latencies, lat_len, sizeof(*latencies), cmp_u64);
	double ops = (double)ops_done / secs;
	if (opt.json)
		printf("{\"label\":\"%s\",\"workload\":\"%s\",\"connections\":%d,\"outstanding\":%d,"
		       "\"value_bytes\":%d,\"watchers\":%d,\"ops_per_s\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
		       "\"p999_us\":%.1f,\"errors\":%llu}\n",
		       opt.label, workload_names[opt.w], opt.connections, opt.outstanding,
		       opt.value_bytes, opt.w == W_WATCH ? opt.watchers : 0, ops, pct(0.5), pct(0.99), pct(0.999),
		       (unsigned long long)errors);
	else
		printf("%s %-8s conns=%d outstanding=%d value=%dB  %10.0f ops/s  p50 %8.1f us  "
		       "p99 %8.1f us  p999 %8.1f us  errors %llu\n",
		       opt.label, workload_names[opt.w], opt.connections, opt.outstanding,
		       opt.value_bytes, ops, pct(0.5), pct(0.99), pct(0.999), (unsigned long long)errors);
}

/* The measured window: a warm-up (none with --count), then --duration
 * seconds or --count replies. */
struct window {
	uint64_t warm_until, started, end;
};

static void window_init(struct window *w)
{
	w->warm_until = now_ns() + (opt.count ? 0 : 500000000ull);
	w->started = w->end = 0;
}

/* Starts measuring once warmed up and ready; true when the run is over. */
static bool window_over(struct window *w, bool ready)
{
	uint64_t t = now_ns();
	if (!measuring && ready && t >= w->warm_until) {
		measuring = true;
		w->started = t;
		w->end = t + (uint64_t)(opt.duration_s * 1e9);
	}
	return measuring && ((opt.count && ops_done >= opt.count) || (!opt.count && t >= w->end));
}

static void run_pipelined(void)
{
	struct conn **conns = calloc((size_t)opt.connections, sizeof(*conns));
	for (int i = 0; i < opt.connections; i++)
		conns[i] = conn_open(i);
	struct window win;
	window_init(&win);
	struct epoll_event evs[256];
	while (!window_over(&win, true)) {
		int n = epoll_wait(epfd, evs, 256, 100);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if ((evs[i].events & EPOLLIN) && !conn_read(c)) {
				fprintf(stderr, "loadgen: the server closed a connection\n");
				exit(2);
			}
			handle_input(c, NULL);
			if (c->connected)
				while (c->inflight < opt.outstanding &&
				       (!opt.count || c->counter * (uint64_t)opt.connections < opt.count))
					send_request(c);
			flush_out(c);
		}
	}
	report(win.started);
	for (int i = 0; i < opt.connections; i++)
		conn_close(conns[i]);
	free(conns);
}

/* Calls fn for each whole frame in c->in (after the connect reply, which
 * only marks the connection connected), then drops what was handled. */
static void for_each_frame(struct conn *c, void (*fn)(struct conn *c, int32_t xid, int32_t err))
{
	size_t off = 0;
	while (c->in_len - off >= 4) {
		uint32_t len = get32(c->in + off);
		if (c->in_len - off - 4 < len)
			break;
		const uint8_t *f = c->in + off + 4;
		off += 4 + len;
		if (!c->connected) {
			c->connected = true;
			fn(c, 0, 0);
			continue;
		}
		fn(c, (int32_t)get32(f), (int32_t)get32(f + 12));
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
}

static void count_error(int32_t err, int32_t xid)
{
	if (!errors)
		fprintf(stderr, "loadgen: first error: %d (xid %d)\n", err, xid);
	errors++;
}

/* --- churn: connect, create an ephemeral, close -------------------------- */
static void churn_send(struct conn *c, int32_t type)
{
	size_t m;
	char path[256];
	frame_begin(&c->out, &m);
	put_int(&c->out, c->phase);	/* xid: 1 create, 2 close */
	put_int(&c->out, type);
	if (type == 1) {
		snprintf(path, sizeof(path), "%s/e%d-%llu", base, c->index,
			 (unsigned long long)c->counter);
		put_string(&c->out, path);
		put_buffer(&c->out, value, opt.value_bytes);
		put_open_acl(&c->out);
		put_int(&c->out, 1);	/* EPHEMERAL */
	}
	frame_end(&c->out, m);
}

static void churn_frame(struct conn *c, int32_t xid, int32_t err)
{
	if (c->phase == 0) {		/* the session is open: create */
		c->phase = 1;
		churn_send(c, 1);
	} else if (c->phase == 1 && xid == 1) {
		if (err)
			count_error(err, xid);
		c->phase = 2;
		churn_send(c, -11);	/* closeSession */
	} else if (c->phase == 2 && xid == 2) {
		if (err)
			count_error(err, xid);
		c->phase = 3;		/* done: reopened by the loop */
	}
}

/* connections x outstanding sessions live their lives at once (a session
 * is a connection: "outstanding" here counts sessions, not requests). */
static void run_churn(void)
{
	int slots = opt.connections * opt.outstanding;
	struct conn **conns = calloc((size_t)slots, sizeof(*conns));
	uint64_t counter = 0;
	for (int i = 0; i < slots; i++)
		conns[i] = conn_open(i);
	struct window win;
	window_init(&win);
	struct epoll_event evs[256];
	while (!window_over(&win, true)) {
		int n = epoll_wait(epfd, evs, 256, 100);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			bool open = !(evs[i].events & EPOLLIN) || conn_read(c);
			for_each_frame(c, churn_frame);
			if (c->phase == 3) {	/* closed: one whole session's life */
				record(now_ns() - c->cycle_start);
				int index = c->index;
				conn_close(c);
				conns[index] = conn_open(index);
				conns[index]->counter = ++counter;
				continue;
			}
			if (!open) {
				fprintf(stderr, "loadgen: the server closed a connection mid-session\n");
				exit(2);
			}
			flush_out(c);
		}
	}
	report(win.started);
	for (int i = 0; i < slots; i++)
		conn_close(conns[i]);
	free(conns);
}

/* --- watch: fan-out of one setData to --watchers sessions ----------------- */
static int watch_registered, watch_notified;
static bool fanout_in_flight;
static uint64_t fanout_sent;

static void watch_register(struct conn *c)
{
	size_t m;
	char path[256];
	snprintf(path, sizeof(path), "%s/w", base);
	frame_begin(&c->out, &m);
	put_int(&c->out, c->next_xid++);
	put_int(&c->out, 4);		/* getData, watch */
	put_string(&c->out, path);
	put_bool(&c->out, true);
	frame_end(&c->out, m);
}

static void watcher_frame(struct conn *c, int32_t xid, int32_t err)
{
	if (xid == 0 && !c->phase && !c->next_xid) {	/* connected */
		c->next_xid = 1;
		watch_register(c);
	} else if (xid == -1) {		/* the notification */
		watch_notified++;
		watch_registered--;
		watch_register(c);
		if (watch_notified == opt.watchers) {
			record(now_ns() - fanout_sent);
			fanout_in_flight = false;
		}
	} else if (xid > 0) {		/* a registration's reply */
		if (err)
			count_error(err, xid);
		watch_registered++;
	}
}

static void driver_frame(struct conn *c, int32_t xid, int32_t err)
{
	(void)c;
	if (xid > 0 && err)
		count_error(err, xid);
}

static void run_watch(void)
{
	int nw = opt.watchers;
	struct conn **conns = calloc((size_t)nw + 1, sizeof(*conns));
	for (int i = 0; i < nw; i++) {
		conns[i] = conn_open(i);
		conns[i]->next_xid = 0;	/* registers once connected */
	}
	struct conn *driver = conns[nw] = conn_open(nw);
	struct window win;
	window_init(&win);
	struct epoll_event evs[256];
	char path[256];
	snprintf(path, sizeof(path), "%s/w", base);
	while (!window_over(&win, watch_registered == nw)) {
		/* every watcher watches again: the next setData fires them all */
		if (!fanout_in_flight && watch_registered == nw && driver->connected) {
			size_t m;
			frame_begin(&driver->out, &m);
			put_int(&driver->out, driver->next_xid++);
			put_int(&driver->out, 5);
			put_string(&driver->out, path);
			put_buffer(&driver->out, value, opt.value_bytes);
			put_int(&driver->out, -1);
			frame_end(&driver->out, m);
			fanout_in_flight = true;
			watch_notified = 0;
			fanout_sent = now_ns();
			flush_out(driver);
		}
		int n = epoll_wait(epfd, evs, 256, 100);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if ((evs[i].events & EPOLLIN) && !conn_read(c)) {
				fprintf(stderr, "loadgen: the server closed a connection\n");
				exit(2);
			}
			for_each_frame(c, c == driver ? driver_frame : watcher_frame);
			flush_out(c);
		}
	}
	report(win.started);
	for (int i = 0; i <= nw; i++)
		conn_close(conns[i]);
	free(conns);
}

void usage(void)
{
	fprintf(stderr,
		"usage: loadgen [--host 127.0.0.1] [--port 2181] [--servers H:P,H:P,...]\n"
		"               --workload NAME\n"
		"               [--connections 8] [--outstanding 32] [--value-bytes 100]\n"
		"               [--keys 1000] [--children 1000] [--read-percent 90]\n"
		"               [--multi-ops 4] [--watchers 100] [--duration 5 | --count N]\n"
		"               [--json] [--label TEXT]\n"
		"               [--tls-port PORT [--cert FILE --key FILE] [--ca FILE]]\n"
		"workloads: create set get exists children mix churn watch multi\n");
	exit(64);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "host", 1, NULL, 'h' }, { "port", 1, NULL, 'p' }, { "workload", 1, NULL, 'w' },
		{ "connections", 1, NULL, 'c' }, { "outstanding", 1, NULL, 'o' },
		{ "value-bytes", 1, NULL, 'v' }, { "keys", 1, NULL, 'k' }, { "children", 1, NULL, 'C' },
		{ "read-percent", 1, NULL, 'r' }, { "multi-ops", 1, NULL, 'm' },
		{ "duration", 1, NULL, 'd' }, { "json", 0, NULL, 'j' }, { "label", 1, NULL, 'l' },
		{ "count", 1, NULL, 'n' }, { "watchers", 1, NULL, 'W' }, { "servers", 1, NULL, 's' },
		{ "tls-port", 1, NULL, 'T' }, { "cert", 1, NULL, 'E' }, { "key", 1, NULL, 'K' },
		{ "ca", 1, NULL, 'A' },
		{ 0 },
	};
	opt = (struct options){ .host = "127.0.0.1", .port = 2181, .w = -1, .connections = 8,
				.outstanding = 32, .value_bytes = 100, .keys = 1000, .children = 1000,
				.read_percent = 90, .multi_ops = 4, .watchers = 100, .duration_s = 5,
				.label = "" };
	int ch;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'h': opt.host = optarg; break;
		case 'p': opt.port = atoi(optarg); break;
		case 's': opt.servers = optarg; break;
		case 'w':
			for (int i = 0; i < (int)(sizeof(workload_names) / sizeof(*workload_names)); i++)
				if (strcmp(optarg, workload_names[i]) == 0)
					opt.w = i;
			break;
		case 'c': opt.connections = atoi(optarg); break;
		case 'o': opt.outstanding = atoi(optarg); break;
		case 'v': opt.value_bytes = atoi(optarg); break;
		case 'k': opt.keys = atoi(optarg); break;
		case 'C': opt.children = atoi(optarg); break;
		case 'r': opt.read_percent = atoi(optarg); break;
		case 'm': opt.multi_ops = atoi(optarg); break;
		case 'd': opt.duration_s = atof(optarg); break;
		case 'j': opt.json = true; break;
		case 'l': opt.label = optarg; break;
		case 'n': opt.count = strtoull(optarg, NULL, 10); break;
		case 'W': opt.watchers = atoi(optarg); break;
		case 'T': opt.tls_port = atoi(optarg); break;
		case 'E': opt.tls_cert = optarg; break;
		case 'K': opt.tls_key = optarg; break;
		case 'A': opt.tls_ca = optarg; break;
		default: usage();
		}
	}
	if ((int)opt.w < 0 || opt.watchers < 1 || opt.connections < 1 ||
	    opt.outstanding < 1 || opt.keys < 1 || opt.value_bytes < 0)
		usage();
	value = calloc(1, (size_t)opt.value_bytes + 1);
	memset(value, 'v', (size_t)opt.value_bytes);
	parse_servers();
	if (opt.tls_port)
		tls_setup();
	epfd = epoll_create1(EPOLL_CLOEXEC);
	snprintf(base, sizeof(base), "/bench/%ld%d", (long)time(NULL), getpid());
	setup_open();
	setup_create("/bench", NULL, -1);
	setup_create(base, NULL, -1);
	if (opt.w == W_SET || opt.w == W_GET || opt.w == W_EXISTS || opt.w == W_MIX || opt.w == W_MULTI)
		setup_create_many(base, "k", opt.keys);
	if (opt.w == W_CHILDREN) {
		char wide[200];
		snprintf(wide, sizeof(wide), "%s/wide", base);
		setup_create(wide, NULL, -1);
		setup_create_many(wide, "c", opt.children);
	}
	if (opt.w == W_WATCH) {
		char w[200];
		snprintf(w, sizeof(w), "%s/w", base);
		setup_create(w, value, opt.value_bytes);
	}
	sync_other_servers();
	if (opt.w == W_WATCH)
		run_watch();
	else if (opt.w == W_CHURN) {
		run_churn();
	} else {
		run_pipelined();
	}
	close(setup_fd);
	free(value);
	free(latencies);
	SSL_CTX_free(tls_ctx);
	return errors ? 1 : 0;
}
