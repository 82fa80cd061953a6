/* clients: see clients.h. */
#include "clients.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"
#include "log.h"
#include "tls.h"

/* Live connections from one client address (IPv4 as v4-mapped IPv6). */
struct address_count {
	struct hash_node node;
	uint8_t addr[16];
	uint32_t count;
};

static void address_key(const struct sockaddr_storage *ss, uint8_t out[16])
{
	memset(out, 0, 16);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &in->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)ss;
		memcpy(out, &in6->sin6_addr, 16);
	}
}

static uint64_t address_hash(const uint8_t addr[16])
{
	return hash_bytes_unkeyed(addr, 16);
}

static uint64_t hash_of(const struct hash_table *t, const struct hash_node *n)
{
	return address_hash(container_of(n, struct address_count, node)->addr);
}

static struct address_count *address_find(struct clients *cl, const uint8_t addr[16])
{
	for (struct hash_node *n = hash_table_bucket(&cl->per_address, address_hash(addr)); n;
	     n = n->next) {
		struct address_count *a = container_of(n, struct address_count, node);
		if (memcmp(a->addr, addr, 16) == 0)
			return a;
	}
	return NULL;
}

int clients_init(struct clients *cl, struct loop *loop, const struct server_config *cfg,
		 const struct conn_handlers *handlers)
{
	memset(cl, 0, sizeof(*cl));
	cl->hub.loop = loop;
	cl->hub.cfg = cfg;
	cl->hub.handlers = *handlers;
	list_init(&cl->hub.dirty);
	list_init(&cl->hub.fresh);
	list_init(&cl->hub.partial);
	list_init(&cl->all);
	cl->refused_log.what = "connections refused";
	cl->deadline_log.what = "connections closed past a deadline or displaced";
	cl->hub.slow_log.what = "connections closed for holding their unread replies";
	int r = namespace_stats_init(&cl->reads);
	if (r == 0)
		r = namespace_stats_init(&cl->writes);
	if (r == 0)
		r = hash_table_init(&cl->per_address, 64, hash_of);
	return r;
}

/* The connection is gone: its address counts one less. */
static void forget(struct clients *cl, struct conn *c)
{
	uint8_t key[16];
	address_key(&c->peer, key);
	struct address_count *a = address_find(cl, key);
	ASSERT(a && a->count > 0);
	if (--a->count == 0) {
		hash_table_remove(&cl->per_address, &a->node, address_hash(key));
		free(a);
	}
	list_remove(&cl->all, &c->node);
}

void clients_free(struct clients *cl)
{
	struct list_node *n;
	while ((n = list_first(&cl->all))) {
		struct conn *c = list_entry(n, struct conn, node);
		conn_close(c, 0, NULL);
		c->ops_in_flight = 0;	/* the ring goes away with us */
		if (list_linked(&c->dirty_node))
			list_remove(&cl->hub.dirty, &c->dirty_node);
		forget(cl, c);
		conn_free(c);
	}
	hash_table_free(&cl->per_address);
	namespace_stats_free(&cl->reads);
	namespace_stats_free(&cl->writes);
}

static void refuse(struct clients *cl, int fd, const struct sockaddr_storage *peer, const char *why,
		   uint32_t count)
{
	char text[64] = "";
	cl->hub.stats.connections_refused++;
	if (!log_limit_allow(&cl->refused_log, cl->hub.now_ms)) {
		close(fd);
		return;
	}
	inet_ntop(peer->ss_family, peer->ss_family == AF_INET
			  ? (const void *)&((const struct sockaddr_in *)peer)->sin_addr
			  : (const void *)&((const struct sockaddr_in6 *)peer)->sin6_addr, text, sizeof(text));
	log_event(LOG_WARNING, { .message_id = LOG_MSGID_CONNECTION_REFUSED },
		  "connection from %s refused: %u connections open%s", text, count, why);
	close(fd);
}

/* Closes c, past a deadline or displaced, with a rate-limited line. */
static void close_for(struct clients *cl, struct conn *c, const char *why, uint32_t ms)
{
	if (log_limit_allow(&cl->deadline_log, cl->hub.now_ms))
		log_event(LOG_NOTICE, { .message_id = LOG_MSGID_DEADLINE },
			  "connection %llu from %s closed: %s (%u ms)", (unsigned long long)c->id,
			  c->peer_text, why, ms);
	conn_close(c, 0, NULL);
}

/* The table is full: the oldest connection still before its ConnectRequest
 * makes room, if there is one. */
static bool displace_one(struct clients *cl)
{
	struct conn *c = list_first_entry(&cl->hub.fresh, struct conn, fresh_node);
	if (!c)
		return false;
	cl->displaced++;
	close_for(cl, c, "displaced by a new connection: client.max_connections are open and "
		  "it had sent no ConnectRequest", (uint32_t)(cl->hub.now_ms - c->accepted_ms));
	return true;
}

void clients_tick(struct clients *cl, uint64_t now_ms)
{
	const struct server_config *cfg = cl->hub.cfg;
	struct conn *c;
	while ((c = list_first_entry(&cl->hub.fresh, struct conn, fresh_node)) &&
	       now_ms - c->accepted_ms >= cfg->handshake_timeout_ms) {
		cl->timed_out++;
		close_for(cl, c, "no ConnectRequest within client.handshake_timeout_ms",
			  cfg->handshake_timeout_ms);
	}
	while ((c = list_first_entry(&cl->hub.partial, struct conn, partial_node)) &&
	       now_ms - c->partial_since_ms >= cfg->frame_timeout_ms) {
		cl->timed_out++;
		close_for(cl, c, "a frame begun and not finished within client.frame_timeout_ms",
			  cfg->frame_timeout_ms);
	}
	log_limit_tick(&cl->deadline_log, now_ms);
	log_limit_tick(&cl->refused_log, now_ms);
	log_limit_tick(&cl->hub.slow_log, now_ms);
}

/* One more connection from peer's address: its count, or NULL when out
 * of memory. */
static struct address_count *address_add(struct clients *cl, const struct sockaddr_storage *peer)
{
	uint8_t key[16];
	address_key(peer, key);
	struct address_count *a = address_find(cl, key);
	if (!a) {
		a = calloc(1, sizeof(*a));
		if (!a)
			return NULL;
		memcpy(a->addr, key, 16);
		hash_table_insert(&cl->per_address, &a->node, address_hash(key));
	}
	a->count++;
	return a;
}

/* The connection that was counted could not be made. */
static void address_undo(struct clients *cl, struct address_count *a)
{
	if (--a->count == 0) {
		hash_table_remove(&cl->per_address, &a->node, address_hash(a->addr));
		free(a);
	}
}

static void accept_one(struct clients *cl, int fd, const struct sockaddr_storage *peer,
		       SSL_CTX *tls_ctx)
{
	const struct server_config *cfg = cl->hub.cfg;
	if (cl->hub.open >= cfg->max_connections && !displace_one(cl)) {
		refuse(cl, fd, peer, " (client.max_connections)", (uint32_t)cl->hub.open);
		return;
	}
	uint8_t key[16];
	address_key(peer, key);
	struct address_count *a = address_find(cl, key);
	if (a && a->count >= cfg->max_connections_per_address) {
		refuse(cl, fd, peer, " from that address (client.max_connections_per_address)",
		       a->count);
		return;
	}
	if (!(a = address_add(cl, peer))) {
		log_warning("connection refused: out of memory");
		close(fd);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct conn *c = conn_new(&cl->hub, fd, peer, tls_ctx);
	if (!c) {
		log_warning("connection refused: out of memory");
		close(fd);
		address_undo(cl, a);
		return;
	}
	list_push_back(&cl->all, &c->node);
	cl->hub.stats.connections_accepted++;
}

struct conn *clients_adopt(struct clients *cl, int fd, const struct sockaddr_storage *peer,
			   uint64_t id)
{
	struct address_count *a = address_add(cl, peer);
	struct conn *c = a ? conn_adopt(&cl->hub, fd, peer, id) : NULL;
	if (!c) {
		if (a)
			address_undo(cl, a);
		return NULL;
	}
	list_push_back(&cl->all, &c->node);
	return c;
}

void clients_accept(void *ctx, int fd, const struct sockaddr_storage *peer)
{
	accept_one(ctx, fd, peer, NULL);
}

void clients_accept_tls(void *ctx, int fd, const struct sockaddr_storage *peer)
{
	struct clients *cl = ctx;
	if (!cl->hub.tls_ctx) {
		close(fd);
		return;
	}
	accept_one(cl, fd, peer, cl->hub.tls_ctx);
}

void clients_flush(struct clients *cl)
{
	struct list_node *n;
	while ((n = list_pop_front(&cl->hub.dirty)))
		conn_flush(list_entry(n, struct conn, dirty_node));
	list_for_each_safe(&cl->all, cn, tmp) {
		struct conn *c = list_entry(cn, struct conn, node);
		if (conn_done(c)) {
			forget(cl, c);
			conn_free(c);
		}
	}
}

size_t clients_tls_handshakes(const struct clients *cl)
{
	size_t n = 0;
	list_for_each(&cl->all, cn) {
		const struct conn *c = list_entry(cn, struct conn, node);
		n += c->tls && !c->tls->handshake_done && c->state != CONN_CLOSING;
	}
	return n;
}

void clients_reset_stats(struct clients *cl)
{
	clients_for_each(cl, c)
		conn_reset_stats(c);
}
