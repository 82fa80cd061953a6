/* resolve: see resolve.h. */
#include "resolve.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sockaddr.h"

static int gai_errno(int e)
{
	switch (e) {
	case 0:
		return 0;
	case EAI_NONAME:
	case EAI_NODATA:
	case EAI_ADDRFAMILY:
		return -ENOENT;
	case EAI_MEMORY:
		return -ENOMEM;
	default:
		return -EAGAIN;
	}
}

static bool usable(const struct addrinfo *a, const struct sockaddr_storage *ss)
{
	return (a->ai_family == AF_INET || a->ai_family == AF_INET6) && a->ai_addrlen <= sizeof(*ss);
}

/* The pick-th usable address (modulo their number). */
static int pick_address(const struct addrinfo *res, unsigned pick, struct sockaddr_storage *ss,
			socklen_t *len)
{
	unsigned n = 0;
	for (const struct addrinfo *a = res; a; a = a->ai_next)
		n += usable(a, ss);
	if (n == 0)
		return -ENOENT;
	pick %= n;
	for (const struct addrinfo *a = res; a; a = a->ai_next) {
		if (!usable(a, ss) || pick-- > 0)
			continue;
		memset(ss, 0, sizeof(*ss));
		memcpy(ss, a->ai_addr, a->ai_addrlen);
		*len = a->ai_addrlen;
		break;
	}
	return 0;
}

int resolve_now(const char *host, uint16_t port, bool passive, struct sockaddr_storage *ss,
		socklen_t *len)
{
	if (sockaddr_from_host(host, port, ss, len) == 0)
		return 0;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_ADDRCONFIG | (passive ? AI_PASSIVE : 0) };
	struct addrinfo *res = NULL;
	char service[8];
	snprintf(service, sizeof(service), "%u", port);
	int r = gai_errno(getaddrinfo(host, service, &hints, &res));
	if (r == 0)
		r = pick_address(res, 0, ss, len);
	if (res)
		freeaddrinfo(res);
	return r;
}

int resolver_start(struct resolver *r, const char *host, uint16_t port)
{
	if (r->busy)
		return -EBUSY;
	snprintf(r->host, sizeof(r->host), "%s", host);
	snprintf(r->service, sizeof(r->service), "%u", port);
	r->hints = (struct addrinfo){ .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				      .ai_flags = AI_ADDRCONFIG };
	r->cb = (struct gaicb){ .ar_name = r->host, .ar_service = r->service,
				.ar_request = &r->hints };
	struct gaicb *list[1] = { &r->cb };
	struct sigevent none = { .sigev_notify = SIGEV_NONE };
	int e = getaddrinfo_a(GAI_NOWAIT, list, 1, &none);
	if (e)
		return gai_errno(e);
	r->busy = true;
	return 0;
}

int resolver_poll(struct resolver *r, unsigned pick, struct sockaddr_storage *ss, socklen_t *len)
{
	if (!r->busy)
		return -EINVAL;
	int e = gai_error(&r->cb);
	if (e == EAI_INPROGRESS)
		return 0;
	r->busy = false;
	int ret = gai_errno(e);
	if (ret == 0)
		ret = pick_address(r->cb.ar_result, pick, ss, len);
	if (r->cb.ar_result)
		freeaddrinfo(r->cb.ar_result);
	r->cb.ar_result = NULL;
	return ret < 0 ? ret : 1;
}

void resolver_cancel(struct resolver *r)
{
	if (!r->busy)
		return;
	if (gai_cancel(&r->cb) != EAI_CANCELED) {
		/* already running in glibc's thread: its result lands in r->cb */
		const struct gaicb *list[1] = { &r->cb };
		while (gai_error(&r->cb) == EAI_INPROGRESS) {
			struct timespec ts = { .tv_sec = 1 };
			gai_suspend(list, 1, &ts);
		}
	}
	r->busy = false;
	if (r->cb.ar_result)
		freeaddrinfo(r->cb.ar_result);
	r->cb.ar_result = NULL;
}
