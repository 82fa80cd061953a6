/* resolve: host names to socket addresses (getaddrinfo: DNS, /etc/hosts),
 * never blocking the loop once it serves. resolve_now() is for start-up,
 * before any client or peer is served (binding a listener); a resolver
 * resolves in the background (glibc's getaddrinfo_a, its own thread) and is
 * polled from the loop, so no other thread ever touches the loop's state.
 * Numeric addresses resolve at once, without a lookup. */
#pragma once

#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* host (a name, or a numeric IPv4/IPv6 address) and port into *ss, the
 * first address getaddrinfo gives (passive: for bind). Blocks. Returns 0,
 * or -ENOENT (no such name, or no address), -EAGAIN (the lookup failed for
 * now), -ENOMEM. */
int resolve_now(const char *host, uint16_t port, bool passive, struct sockaddr_storage *ss,
		socklen_t *len);

struct resolver {
	struct gaicb cb;
	struct addrinfo hints;
	char host[256];
	char service[8];
	bool busy;		/* a lookup is on its way */
};

/* Starts looking host:port up. Returns 0 or -errno. */
int resolver_start(struct resolver *r, const char *host, uint16_t port);
/* 1 and *ss when the lookup is done, 0 while it is on its way, -errno when
 * it failed (as resolve_now). A name with several addresses gives the
 * pick-th (modulo their number): a caller that failed to connect to one
 * asks for the next. */
int resolver_poll(struct resolver *r, unsigned pick, struct sockaddr_storage *ss, socklen_t *len);
/* Ends a lookup on its way (waiting for it if it cannot be cancelled). */
void resolver_cancel(struct resolver *r);
