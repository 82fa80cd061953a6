/* loadgen_setup: the servers loadgen talks to (--servers or --host/--port)
 * and the blocking setup session that creates what a workload needs before
 * the run, then syncs every other server of an ensemble. See loadgen.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loadgen.h"

static void parse_server(const char *host, int port)
{
	if (nservers == MAX_SERVERS) {
		fprintf(stderr, "loadgen: at most %d servers\n", MAX_SERVERS);
		exit(64);
	}
	struct sockaddr_in *sa = &server_addr[nservers++];
	*sa = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (port < 1 || port > 65535 || inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
		fprintf(stderr, "loadgen: %s:%d is not an IPv4 address and port\n", host, port);
		exit(64);
	}
}

/* --servers "a:p,b:q" (or --host/--port when absent) into server_addr. */
void parse_servers(void)
{
	if (!opt.servers) {
		parse_server(opt.host, opt.port);
		return;
	}
	char *list = strdup(opt.servers), *save = NULL;
	for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *colon = strrchr(tok, ':');
		if (!colon) {
			fprintf(stderr, "loadgen: --servers: %s has no :PORT\n", tok);
			exit(64);
		}
		*colon = 0;
		parse_server(tok, atoi(colon + 1));
	}
	free(list);
	if (!nservers)
		usage();
}

/* A connection to server (index mod the number of servers). */
int tcp_connect(int server, bool nonblock)
{
	const struct sockaddr_in *sa = &server_addr[server % nservers];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
		char host[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &sa->sin_addr, host, sizeof(host));
		fprintf(stderr, "loadgen: connect %s:%d: %s\n", host, ntohs(sa->sin_port), strerror(errno));
		exit(2);
	}
	if (nonblock)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}


/* --- blocking setup requests ------------------------------------------------ */
int setup_fd;
static int32_t setup_xid = 1;

static void read_full(int fd, void *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (uint8_t *)p + got, n - got);
		if (r <= 0) {
			fprintf(stderr, "loadgen: server closed the setup connection\n");
			exit(2);
		}
		got += (size_t)r;
	}
}

/* Sends one framed request and returns the reply's err (skipping watch events). */
static int32_t setup_call(struct buf *req)
{
	size_t off = 0;
	while (off < req->len) {
		ssize_t n = write(setup_fd, req->p + off, req->len - off);
		if (n <= 0) {
			perror("write");
			exit(2);
		}
		off += (size_t)n;
	}
	req->len = 0;
	for (;;) {
		uint8_t h[4];
		read_full(setup_fd, h, 4);
		uint32_t len = get32(h);
		uint8_t *body = malloc(len);
		read_full(setup_fd, body, len);
		int32_t xid = (int32_t)get32(body);
		int32_t err = (int32_t)get32(body + 12);
		free(body);
		if (xid != -1)
			return err;
	}
}

/* A blocking connection to server with a new session. */
static int session_open(int server)
{
	struct buf b = { 0 };
	size_t m;
	int fd = tcp_connect(server, false);
	frame_begin(&b, &m);
	put_int(&b, 0);
	put_long(&b, 0);
	put_int(&b, 30000);
	put_long(&b, 0);
	uint8_t pw[16] = { 0 };
	put_buffer(&b, pw, 16);
	put_bool(&b, false);
	frame_end(&b, m);
	if (write(fd, b.p, b.len) != (ssize_t)b.len)
		exit(2);
	uint8_t h[4];
	read_full(fd, h, 4);
	uint8_t resp[64];
	uint32_t len = get32(h);
	if (len > sizeof(resp))
		exit(2);
	read_full(fd, resp, len);
	free(b.p);
	return fd;
}

void setup_open(void)
{
	setup_fd = session_open(0);
}

/* After the setup on server 0: a sync on every other server, in its own
 * session (closed after), so each has applied the setup before the run. */
void sync_other_servers(void)
{
	int saved = setup_fd;
	for (int i = 1; i < nservers; i++) {
		setup_fd = session_open(i);
		struct buf b = { 0 };
		size_t m;
		frame_begin(&b, &m);
		put_int(&b, setup_xid++);
		put_int(&b, 9);		/* sync */
		put_string(&b, base);
		frame_end(&b, m);
		int32_t err = setup_call(&b);
		if (err != 0) {
			fprintf(stderr, "loadgen: sync on server %d: error %d\n", i + 1, err);
			exit(2);
		}
		frame_begin(&b, &m);
		put_int(&b, setup_xid++);
		put_int(&b, -11);	/* closeSession */
		frame_end(&b, m);
		setup_call(&b);
		free(b.p);
		close(setup_fd);
	}
	setup_fd = saved;
}

void setup_create(const char *path, const void *data, int32_t len)
{
	struct buf b = { 0 };
	size_t m;
	frame_begin(&b, &m);
	put_int(&b, setup_xid++);
	put_int(&b, 1);
	put_string(&b, path);
	put_buffer(&b, data, len);
	put_open_acl(&b);
	put_int(&b, 0);
	frame_end(&b, m);
	int32_t err = setup_call(&b);
	free(b.p);
	if (err != 0 && err != -110) {
		fprintf(stderr, "loadgen: setup create %s: error %d\n", path, err);
		exit(2);
	}
}

/* Creates many nodes, pipelined in batches, on the setup connection. */
void setup_create_many(const char *parent, const char *prefix, int count)
{
	struct buf b = { 0 };
	char path[256];
	for (int done = 0; done < count;) {
		int batch = count - done < 512 ? count - done : 512;
		for (int i = 0; i < batch; i++) {
			size_t m;
			frame_begin(&b, &m);
			put_int(&b, setup_xid++);
			put_int(&b, 1);
			snprintf(path, sizeof(path), "%s/%s%d", parent, prefix, done + i);
			put_string(&b, path);
			put_buffer(&b, value, opt.value_bytes);
			put_open_acl(&b);
			put_int(&b, 0);
			frame_end(&b, m);
		}
		size_t off = 0;
		while (off < b.len) {
			ssize_t n = write(setup_fd, b.p + off, b.len - off);
			if (n <= 0)
				exit(2);
			off += (size_t)n;
		}
		b.len = 0;
		for (int i = 0; i < batch; i++) {
			uint8_t h[4];
			read_full(setup_fd, h, 4);
			uint32_t len = get32(h);
			uint8_t *body = malloc(len);
			read_full(setup_fd, body, len);
			free(body);
		}
		done += batch;
	}
	free(b.p);
}
