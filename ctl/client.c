/* client: see client.h. */
#include "client.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

#define FOUR_LETTER_MAX_BYTES (16u << 20)

__attribute__((format(printf, 2, 3)))
static int fail(struct zk_client *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	return -1;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int zkc_split_server(const char *text, char *host, size_t host_size, char *port,
		     size_t port_size, char *why, size_t why_size)
{
	const char *h = text, *p = NULL;
	size_t hlen;

	if (strchr(text, ',')) {
		snprintf(why, why_size, "one server only, not a list");
		return -1;
	}
	if (text[0] == '[') {
		const char *end = strchr(text, ']');
		if (!end || (end[1] != '\0' && end[1] != ':')) {
			snprintf(why, why_size, "expected [IPV6]:PORT");
			return -1;
		}
		h = text + 1;
		hlen = (size_t)(end - h);
		if (end[1] == ':')
			p = end + 2;
	} else {
		const char *colon = strchr(text, ':');
		if (colon && !strchr(colon + 1, ':')) {
			hlen = (size_t)(colon - text);
			p = colon + 1;
		} else {
			hlen = strlen(text);	/* no port, or a bare IPv6 address */
		}
	}
	if (hlen == 0 || hlen >= host_size) {
		snprintf(why, why_size, hlen ? "host name too long" : "no host");
		return -1;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (!p)
		p = ZKC_DEFAULT_PORT;
	char *end;
	errno = 0;
	unsigned long n = strtoul(p, &end, 10);
	if (!*p || *end || errno || n == 0 || n > 65535 || p[0] == '-' || p[0] == '+') {
		snprintf(why, why_size, "bad port '%s'", p);
		return -1;
	}
	snprintf(port, port_size, "%lu", n);
	return 0;
}

void zkc_init(struct zk_client *c, int timeout_ms)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->timeout_ms = timeout_ms;
	c->next_xid = 1;
}

/* Waits until fd is ready for events or the deadline passes. Returns 1, or
 * 0 on timeout, or -1 with errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return 0;
		struct pollfd pfd = { .fd = fd, .events = events };
		int n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

static int connect_one(struct zk_client *c, const struct addrinfo *ai, int64_t deadline)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);
	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS) {
			int e = errno;
			close(fd);
			return -e;
		}
		int r = wait_fd(fd, POLLOUT, deadline);
		int e = 0;
		socklen_t len = sizeof(e);
		if (r <= 0) {
			e = r == 0 ? ETIMEDOUT : errno;
		} else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0) {
			e = errno;
		}
		if (e) {
			close(fd);
			return -e;
		}
	}
	c->fd = fd;
	return 0;
}

int zkc_connect(struct zk_client *c, const char *host, const char *port)
{
	const struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
					.ai_flags = AI_ADDRCONFIG };
	struct addrinfo *list;
	int64_t deadline = now_ms() + c->timeout_ms;
	int r = getaddrinfo(host, port, &hints, &list);
	if (r != 0)
		return fail(c, "cannot resolve the host name: %s",
			    r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
	int err = -EHOSTUNREACH;
	for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
		err = connect_one(c, ai, deadline);
		if (err == 0 || err == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(list);
	if (err == -ETIMEDOUT)
		return fail(c, "cannot connect: no connection within %d ms", c->timeout_ms);
	if (err < 0)
		return fail(c, "cannot connect: %s", strerror(-err));
	return 0;
}

static int send_all(struct zk_client *c, const void *data, size_t len, int64_t deadline)
{
	const uint8_t *p = data;
	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return fail(c, "cannot send: %s", strerror(errno));
		int r = wait_fd(c->fd, POLLOUT, deadline);
		if (r == 0)
			return fail(c, "no answer within %d ms", c->timeout_ms);
		if (r < 0)
			return fail(c, "poll: %s", strerror(errno));
	}
	return 0;
}

/* Reads up to len bytes (fewer only at end of stream). Returns the count,
 * or -1. */
static ssize_t recv_some(struct zk_client *c, void *data, size_t len, int64_t deadline)
{
	uint8_t *p = data;
	size_t got = 0;
	while (got < len) {
		ssize_t n = recv(c->fd, p + got, len - got, 0);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0)
			break;
		if (errno == ECONNRESET)
			return fail(c, "the server reset the connection");
		if (errno != EAGAIN && errno != EINTR)
			return fail(c, "cannot receive: %s", strerror(errno));
		int r = wait_fd(c->fd, POLLIN, deadline);
		if (r == 0)
			return fail(c, "no answer within %d ms", c->timeout_ms);
		if (r < 0)
			return fail(c, "poll: %s", strerror(errno));
	}
	return (ssize_t)got;
}

ssize_t zkc_recv(struct zk_client *c, void *data, size_t len)
{
	return recv_some(c, data, len, now_ms() + c->timeout_ms);
}

static int recv_exact(struct zk_client *c, void *data, size_t len, int64_t deadline)
{
	ssize_t n = recv_some(c, data, len, deadline);
	if (n < 0)
		return -1;
	if ((size_t)n < len)
		return fail(c, "the server closed the connection");
	return 0;
}

int zkc_four_letter(struct zk_client *c, const char *word, char **ret_text, size_t *ret_len)
{
	int64_t deadline = now_ms() + c->timeout_ms;
	size_t cap = 4096, len = 0;
	char *text;

	*ret_text = NULL;
	*ret_len = 0;
	if (send_all(c, word, 4, deadline) < 0)
		return -1;
	text = malloc(cap);
	if (!text)
		return fail(c, "out of memory");
	for (;;) {
		if (cap - len < 2) {
			if (cap >= FOUR_LETTER_MAX_BYTES) {
				free(text);
				return fail(c, "the answer to %s is over %u bytes", word,
					    FOUR_LETTER_MAX_BYTES);
			}
			char *p = realloc(text, cap * 2);
			if (!p) {
				free(text);
				return fail(c, "out of memory");
			}
			text = p;
			cap *= 2;
		}
		size_t want = cap - len - 1;
		ssize_t n = recv_some(c, text + len, want, deadline);
		if (n < 0) {
			free(text);
			return -1;
		}
		len += (size_t)n;
		if ((size_t)n < want)	/* short: the server closed, the answer is whole */
			break;
	}
	text[len] = '\0';
	*ret_text = text;
	*ret_len = len;
	return 0;
}

int zkc_word(struct zk_client *c, const char *host, const char *port, const char *word,
	     char **ret_text, size_t *ret_len)
{
	int r = zkc_connect(c, host, port);
	if (r == 0)
		r = zkc_four_letter(c, word, ret_text, ret_len);
	zkc_close(c);
	return r;
}

/* Reads one length-prefixed frame into c->reply. */
static int recv_frame(struct zk_client *c, int64_t deadline)
{
	uint32_t be;
	if (recv_exact(c, &be, 4, deadline) < 0)
		return -1;
	int32_t len = (int32_t)be32toh(be);
	if (len < 0 || (uint32_t)len > ZKC_MAX_FRAME_BYTES)
		return fail(c, "the server sent a frame of %d bytes: not a ZooKeeper server?", len);
	free(c->reply);
	c->reply = malloc(len ? (size_t)len : 1);
	c->reply_len = 0;
	if (!c->reply)
		return fail(c, "out of memory");
	if (recv_exact(c, c->reply, (size_t)len, deadline) < 0)
		return -1;
	c->reply_len = (size_t)len;
	return 0;
}

/* Sends b, whose first 4 bytes were reserved for the length. */
static int send_frame(struct zk_client *c, struct jute_buf *b, int64_t deadline)
{
	if (b->error)
		return fail(c, "out of memory");
	jute_patch_int(b, 0, (int32_t)(b->len - 4));
	return send_all(c, b->data, b->len, deadline);
}

int zkc_session_open(struct zk_client *c, int32_t timeout_ms)
{
	static const uint8_t no_password[ZK_PASSWORD_BYTES];
	int64_t deadline = now_ms() + c->timeout_ms;
	struct jute_buf b = { 0 };

	jute_write_int(&b, 0);			/* length, patched */
	jute_write_int(&b, 0);			/* protocolVersion */
	jute_write_long(&b, 0);			/* lastZxidSeen */
	jute_write_int(&b, timeout_ms);
	jute_write_long(&b, 0);			/* sessionId: a new one */
	jute_write_buffer(&b, no_password, sizeof(no_password));
	jute_write_bool(&b, false);		/* readOnly */
	int r = send_frame(c, &b, deadline);
	jute_buf_free(&b);
	if (r < 0 || recv_frame(c, deadline) < 0)
		return -1;

	struct jute_reader rd;
	const uint8_t *password;
	int32_t password_len;
	jute_reader_init(&rd, c->reply, c->reply_len);
	jute_read_int(&rd);			/* protocolVersion */
	int32_t negotiated = jute_read_int(&rd);
	int64_t id = jute_read_long(&rd);
	jute_read_buffer(&rd, &password, &password_len);
	if (rd.error)
		return fail(c, "the server's ConnectResponse does not parse");
	if (negotiated <= 0 || id == 0)
		return fail(c, "the server refused the session");
	c->session_id = id;
	c->session_timeout_ms = negotiated;
	return 0;
}

/* Sends {xid, op} + body and waits for the reply to xid. */
static int call_xid(struct zk_client *c, int32_t xid, int32_t op, const struct jute_buf *body,
		    int32_t *ret_err, struct jute_reader *ret_body)
{
	int64_t deadline = now_ms() + c->timeout_ms;
	struct jute_buf b = { 0 };

	jute_write_int(&b, 0);
	jute_write_int(&b, xid);
	jute_write_int(&b, op);
	if (body) {
		if (body->error) {
			jute_buf_free(&b);
			return fail(c, "out of memory");
		}
		jute_write_raw(&b, body->data, body->len);
	}
	int r = send_frame(c, &b, deadline);
	jute_buf_free(&b);
	if (r < 0)
		return -1;
	for (;;) {
		if (recv_frame(c, deadline) < 0)
			return -1;
		struct jute_reader rd;
		jute_reader_init(&rd, c->reply, c->reply_len);
		int32_t got_xid = jute_read_int(&rd);
		jute_read_long(&rd);		/* zxid */
		int32_t err = jute_read_int(&rd);
		if (rd.error)
			return fail(c, "the server's reply header does not parse");
		if (got_xid == ZK_XID_NOTIFICATION || got_xid == ZK_XID_PING)
			continue;	/* no watches are set, but be tolerant */
		if (got_xid != xid)
			return fail(c, "reply to xid %d when waiting for %d", got_xid, xid);
		*ret_err = err;
		jute_reader_init(ret_body, c->reply + rd.pos, c->reply_len - rd.pos);
		return 0;
	}
}

int zkc_call(struct zk_client *c, int32_t op, const struct jute_buf *body, int32_t *ret_err,
	     struct jute_reader *ret_body)
{
	int32_t xid = c->next_xid;
	c->next_xid = c->next_xid == INT32_MAX ? 1 : c->next_xid + 1;
	return call_xid(c, xid, op, body, ret_err, ret_body);
}

int zkc_auth(struct zk_client *c, const char *scheme, const char *auth, int32_t *ret_err)
{
	struct jute_buf b = { 0 };
	struct jute_reader body;
	jute_write_int(&b, 0);			/* type */
	jute_write_string(&b, scheme, (int32_t)strlen(scheme));
	jute_write_buffer(&b, auth, (int32_t)strlen(auth));
	int r = call_xid(c, ZK_XID_AUTH, ZK_OP_AUTH, &b, ret_err, &body);
	jute_buf_free(&b);
	return r;
}

void zkc_close(struct zk_client *c)
{
	if (c->fd >= 0 && c->session_id != 0) {
		struct jute_reader body;
		int32_t err;
		zkc_call(c, ZK_OP_CLOSE_SESSION, NULL, &err, &body);
	}
	c->session_id = 0;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->reply);
	c->reply = NULL;
	c->reply_len = 0;
}

int zkc_kv_parse(struct zkc_kv *l, char *text, const char *sep)
{
	size_t lines = 1;
	l->text = text;
	l->n = 0;
	l->answered = !strstr(text, ZKC_NOT_IN_WHITELIST);
	for (const char *p = text; *p; p++)
		lines += *p == '\n';
	l->v = calloc(lines, sizeof(*l->v));
	if (!l->v)
		return -1;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *s = strstr(line, sep);
		if (!s)
			continue;
		*s = '\0';
		s += strlen(sep);
		while (*s == ' ' || *s == '\t')
			s++;
		size_t n = strlen(s);
		while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' '))
			s[--n] = '\0';
		l->v[l->n].key = line;
		l->v[l->n].value = s;
		l->n++;
	}
	return 0;
}

const char *zkc_kv_get(const struct zkc_kv *l, const char *key)
{
	if (!l->answered)
		return NULL;
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].key, key) == 0)
			return l->v[i].value;
	return NULL;
}

void zkc_kv_free(struct zkc_kv *l)
{
	free(l->v);
	free(l->text);
	l->v = NULL;
	l->text = NULL;
	l->n = 0;
}
