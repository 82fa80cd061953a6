/* sockaddr: IPv4/IPv6 socket addresses to and from text, the one place for
 * it (listeners, client connections, the peer transport). Text is
 * "ip:port", "[ipv6]:port" or "name:port"; names are resolved by resolve.h,
 * not here. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An address as configured: a host (numeric IPv4 or IPv6, or a name) and a port. */
struct listen_address {
	char *host;		/* "127.0.0.1", "::1" or "zk1.example.com" */
	uint16_t port;
};

/* "1.2.3.4:5" or "[::1]:5" (port 0 means "unknown" here: "?" when not IP). */
void sockaddr_text(const struct sockaddr_storage *ss, char *out, size_t size);
/* "host:port", with brackets around an IPv6 host. */
void sockaddr_format(const char *host, uint16_t port, char *out, size_t size);
/* A numeric host and a port. Returns 0, or -EINVAL when host is not numeric. */
int sockaddr_from_host(const char *host, uint16_t port, struct sockaddr_storage *ss,
		       socklen_t *len);
/* "ip:port" or "[ipv6]:port"; port 0 only when allow_zero_port (a listener
 * that takes any free port). Returns 0 or -EINVAL. */
int sockaddr_parse(const char *text, bool allow_zero_port, struct sockaddr_storage *ss,
		   socklen_t *len);
/* A host name as DNS and /etc/hosts take it: dot-separated labels of
 * letters, digits, '-' and '_' (no label empty, starting or ending with
 * '-', over 63 characters; the last not of digits alone, which would
 * read as a number), 253 characters at most. */
bool sockaddr_name_valid(const char *host);
/* "ip:port", "[ipv6]:port" or "name:port" into host (without brackets) and
 * port, checked but not resolved. Returns 0 or -EINVAL. */
int sockaddr_split(const char *text, bool allow_zero_port, char *host, size_t host_size,
		   uint16_t *port);
