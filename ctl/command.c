/* command: what corralctl's commands share (corralctl.c, members.c,
 * words.c): the usage text, the messages every command words the same
 * way, and opening a session. See command.h. */
#include "command.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"

const char usage_text[] =
	"Usage: corralctl [-s HOST:PORT] [-t TIMEOUT_MS] [--auth USER:PASSWORD] [--json] COMMAND [ARGS]\n"
	"       corralctl --help | --version\n"
	"Commands: ruok, status, ls PATH, get PATH, stat PATH,\n"
	"          tree [--max-nodes N] [--max-depth N] [PATH],\n"
	"          create PATH [DATA], set PATH DATA, delete PATH,\n"
	"          members list, members add ID PEER_HOST:PORT CLIENT_HOST:PORT [--observer],\n"
	"          members remove ID, members transfer-leader [ID],\n"
	"          backup FILE, getacl PATH, setacl PATH ACL, sessions [list],\n"
	"          sessions close ID, watches [path|session], health, doctor [CONFIG]\n";

int usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs("corralctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%sTry 'corralctl --help' for more.\n", usage_text);
	return EXIT_USAGE;
}

int unreachable_at(const char *where, const struct zk_client *c)
{
	fprintf(stderr, "corralctl: %s: %s\n", where, c->error);
	return EXIT_UNREACHABLE;
}

int answered_error(const char *path, int32_t err)
{
	switch (err) {
	case ZNONODE:
		fprintf(stderr, "corralctl: %s: no such node\n", path);
		break;
	case ZNOAUTH:
		fprintf(stderr, "corralctl: %s: not authorized (NOAUTH)\n", path);
		break;
	case ZBADARGUMENTS:
		fprintf(stderr, "corralctl: %s: invalid path\n", path);
		break;
	case ZNODEEXISTS:
		fprintf(stderr, "corralctl: %s: already exists\n", path);
		break;
	case ZNOTEMPTY:
		fprintf(stderr, "corralctl: %s: has children\n", path);
		break;
	default: {
		const char *name = zk_err_name(err);
		if (strcmp(name, "(other)") == 0)
			fprintf(stderr, "corralctl: %s: server error %d\n", path, err);
		else
			fprintf(stderr, "corralctl: %s: server error %s (%d)\n", path, name, err);
	}
	}
	return EXIT_NO;
}

int session_at(struct ctx *x, struct zk_client *c, const char *host, const char *port,
	       const char *where)
{
	int32_t err;
	if (zkc_connect(c, host, port) < 0 || zkc_session_open(c, SESSION_TIMEOUT_MS) < 0 ||
	    (x->auth && zkc_auth(c, "digest", x->auth, &err) < 0))
		return unreachable_at(where, c);
	if (x->auth && err != ZOK) {
		fprintf(stderr, "corralctl: %s: the server refused --auth (addauth digest): %s (%d)\n",
			where, zk_err_name(err), err);
		return EXIT_NO;
	}
	return 0;
}

