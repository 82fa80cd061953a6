/* loadgen.h: what loadgen.c (the run) shares with loadgen_setup.c (the
 * servers' addresses and the blocking setup session): the options, a tiny
 * jute writer and the setup calls. See loadgen.c. */
#pragma once

#include <endian.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum workload { W_CREATE, W_SET, W_GET, W_EXISTS, W_CHILDREN, W_MIX, W_CHURN, W_WATCH, W_MULTI };

#define MAX_SERVERS 16

struct options {
	const char *host;
	int port;
	const char *servers;	/* "host:port,host:port,..."; overrides host/port */
	enum workload w;
	int connections;
	int outstanding;
	int value_bytes;
	int keys;
	int children;
	int read_percent;
	int watchers;
	int multi_ops;
	double duration_s;
	uint64_t count;		/* stop after this many replies (no warm-up) */
	bool json;
	const char *label;
	int tls_port;		/* --tls-port: the run's connections over TLS */
	const char *tls_cert, *tls_key, *tls_ca;
};


/* --- a tiny jute writer ------------------------------------------------- */
struct buf {
	uint8_t *p;
	size_t len, cap;
};

static inline void need(struct buf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->len < n)
		cap *= 2;
	b->p = realloc(b->p, cap);
	if (!b->p) {
		perror("realloc");
		exit(1);
	}
	b->cap = cap;
}
static inline void put_raw(struct buf *b, const void *p, size_t n) { need(b, n); memcpy(b->p + b->len, p, n); b->len += n; }
static inline void put_int(struct buf *b, int32_t v) { uint32_t x = htobe32((uint32_t)v); put_raw(b, &x, 4); }
static inline void put_long(struct buf *b, int64_t v) { uint64_t x = htobe64((uint64_t)v); put_raw(b, &x, 8); }
static inline void put_bool(struct buf *b, bool v) { uint8_t x = v; put_raw(b, &x, 1); }
static inline void put_buffer(struct buf *b, const void *p, int32_t n) { put_int(b, n); if (n > 0) put_raw(b, p, (size_t)n); }
static inline void put_string(struct buf *b, const char *s) { put_buffer(b, s, (int32_t)strlen(s)); }

static inline void put_open_acl(struct buf *b)
{
	put_int(b, 1);
	put_int(b, 31);
	put_string(b, "world");
	put_string(b, "anyone");
}

static inline void frame_begin(struct buf *b, size_t *mark)
{
	*mark = b->len;
	put_int(b, 0);
}

static inline void frame_end(struct buf *b, size_t mark)
{
	uint32_t n = htobe32((uint32_t)(b->len - mark - 4));
	memcpy(b->p + mark, &n, 4);
}


static inline uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }

extern struct options opt;
extern struct sockaddr_in server_addr[MAX_SERVERS];
extern int nservers;
extern char base[128];		/* the run's parent node */
extern uint8_t *value;		/* --value-bytes of payload */

void usage(void) __attribute__((noreturn));

/* loadgen_setup.c */
void parse_servers(void);
/* A connection to server (index mod the number of servers). */
int tcp_connect(int server, bool nonblock);
extern int setup_fd;
void setup_open(void);
void sync_other_servers(void);
void setup_create(const char *path, const void *data, int32_t len);
void setup_create_many(const char *parent, const char *prefix, int count);
