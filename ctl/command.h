/* command: what the files of corralctl's commands (corralctl.c, members.c,
 * words.c) share: the context of one run, the exit statuses, the usage
 * text, the messages every command words the same way, and opening a
 * session (command.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "client.h"

#define EXIT_NO 1		/* the server answered, but not as asked */
#define EXIT_UNREACHABLE 2	/* could not reach or talk to the server */
#define EXIT_USAGE 64		/* EX_USAGE */

/* The session asked for; the server clamps it to its bounds. Every request
 * renews it, and corralctl never idles between requests. */
#define SESSION_TIMEOUT_MS 10000

struct ctx {
	const char *server;		/* as given, for messages */
	char host[256];
	char port[16];
	int timeout_ms;
	long max_nodes;			/* tree: 0 = no limit */
	long max_depth;			/* tree: -1 = no limit */
	const char *auth;		/* --auth USER:PASSWORD, or NULL */
	bool observer;			/* members add --observer */
	bool json;			/* --json: one JSON object on stdout */
	struct zk_client zk;
};

/* The synopsis of every command, for usage messages. */
extern const char usage_text[];

/* "corralctl: MESSAGE", the usage and a hint on stderr; returns EXIT_USAGE. */
__attribute__((format(printf, 1, 2)))
int usage_error(const char *fmt, ...);
/* "corralctl: WHERE: c->error" on stderr; returns EXIT_UNREACHABLE. */
int unreachable_at(const char *where, const struct zk_client *c);
/* The message for an error code the server answered about path; returns
 * EXIT_NO. */
int answered_error(const char *path, int32_t err);
/* Connects c to host:port (where: the same for messages), opens a session
 * and, with --auth, adds the digest identity. Returns 0, or the exit status
 * with the message printed. */
int session_at(struct ctx *x, struct zk_client *c, const char *host, const char *port,
	       const char *where);
