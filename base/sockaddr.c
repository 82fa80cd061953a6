/* sockaddr: see sockaddr.h. */
#include "sockaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sockaddr_format(const char *host, uint16_t port, char *out, size_t size)
{
	bool v6 = strchr(host, ':') != NULL;
	snprintf(out, size, "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

void sockaddr_text(const struct sockaddr_storage *ss, char *out, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(out, size, "%s:%u", host, ntohs(in->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(out, size, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(out, size, "?");
	}
}

int sockaddr_from_host(const char *host, uint16_t port, struct sockaddr_storage *ss,
		       socklen_t *len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		*len = sizeof(*in);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

int sockaddr_parse(const char *text, bool allow_zero_port, struct sockaddr_storage *ss,
		   socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(text, ':');
	if (!colon || colon == text || (size_t)(colon - text) >= sizeof(host))
		return -EINVAL;
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = 0;
	char *h = host;
	bool bracketed = h[0] == '[';
	if (bracketed) {
		size_t n = strlen(h);
		if (n < 3 || h[n - 1] != ']')
			return -EINVAL;
		h[n - 1] = 0;
		h++;
	}
	char *end;
	errno = 0;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || port > 65535 || (port == 0 && !allow_zero_port))
		return -EINVAL;
	if (sockaddr_from_host(h, (uint16_t)port, ss, len) < 0)
		return -EINVAL;
	/* an IPv6 address needs its brackets, an IPv4 one must not have them */
	if (bracketed != (ss->ss_family == AF_INET6))
		return -EINVAL;
	return 0;
}

bool sockaddr_name_valid(const char *host)
{
	size_t n = strlen(host), label = 0;
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = host[i];
		if (ch == '.') {
			if (label == 0 || host[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9');
		if (!alnum && !(ch == '-' && label > 0) && ch != '_')
			return false;
		if (++label > 63)
			return false;
	}
	if (host[n - 1] == '-')
		return false;
	/* a last label of digits alone would be read as a number ("1.2.3") */
	for (size_t i = n; i > 0 && host[i - 1] != '.'; i--)
		if (host[i - 1] < '0' || host[i - 1] > '9')
			return true;
	return false;
}

int sockaddr_split(const char *text, bool allow_zero_port, char *host, size_t host_size,
		   uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	const char *colon = strrchr(text, ':');
	if (!colon || colon == text)
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || p > 65535 || (p == 0 && !allow_zero_port))
		return -EINVAL;
	size_t n = (size_t)(colon - text);
	bool bracketed = text[0] == '[';
	if (bracketed) {
		if (n < 3 || text[n - 1] != ']')
			return -EINVAL;
		text++;
		n -= 2;
	}
	if (n >= host_size)
		return -EINVAL;
	memcpy(host, text, n);
	host[n] = 0;
	if (sockaddr_from_host(host, (uint16_t)p, &ss, &len) == 0) {
		/* an IPv6 address needs its brackets, an IPv4 one must not have them */
		if (bracketed != (ss.ss_family == AF_INET6))
			return -EINVAL;
	} else if (bracketed || !sockaddr_name_valid(host)) {
		return -EINVAL;
	}
	*port = (uint16_t)p;
	return 0;
}
