/* ops: see ops.h.
 *
 * getacl and setacl are ZooKeeper's getACL and setACL ops (setacl with
 * version -1: any version); an ACL is written as zkCli.sh writes it,
 * "scheme:id:perms" entries separated by commas, perms from "cdrwa".
 *
 * sessions reads the server's connections (cons: client address, session
 * id, timeout) and the ephemerals of each session (dump); watches prints
 * wchp (by path) or wchc (by session). These words answer for the server
 * asked only: in an ensemble each member knows its own clients. */
#include "ops.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "json.h"
#include "members.h"
#include "jute.h"
#include "proto.h"

static const char perm_letters[] = "cdrwa";
static const int perm_bits[] = { ZK_PERM_CREATE, ZK_PERM_DELETE, ZK_PERM_READ, ZK_PERM_WRITE,
				 ZK_PERM_ADMIN };

static void perms_text(int32_t perms, char *buf)
{
	size_t n = 0;
	for (int i = 0; i < 5; i++)
		if (perms & perm_bits[i])
			buf[n++] = perm_letters[i];
	buf[n] = '\0';
}

int cmd_getacl(struct ctx *x, char **args, int nargs)
{
	struct jute_buf b = { 0 };
	struct jute_reader body;
	int32_t err;
	jute_write_string(&b, args[0], (int32_t)strlen(args[0]));
	int r = zkc_call(&x->zk, ZK_OP_GET_ACL, &b, &err, &body);
	jute_buf_free(&b);
	if (r < 0)
		return unreachable_at(x->server, &x->zk);
	if (err != ZOK)
		return answered_error(args[0], err);
	int32_t count = jute_read_int(&body);
	if (count < 0 || (size_t)count > jute_remaining(&body) / 12) {
		snprintf(x->zk.error, sizeof(x->zk.error), "the getACL reply does not parse");
		return unreachable_at(x->server, &x->zk);
	}
	if (x->json) {
		json_open(NULL, '{');
		json_str("path", args[0]);
		json_open("acl", '[');
	}
	for (int32_t i = 0; i < count && !body.error; i++) {
		const char *scheme, *id;
		int32_t slen, ilen;
		char perms[8];
		int32_t bits = jute_read_int(&body);
		jute_read_string(&body, &scheme, &slen);
		jute_read_string(&body, &id, &ilen);
		if (body.error)
			break;
		perms_text(bits, perms);
		if (x->json) {
			json_open(NULL, '{');
			json_strn("scheme", scheme, slen > 0 ? (size_t)slen : 0);
			json_strn("id", id, ilen > 0 ? (size_t)ilen : 0);
			json_str("perms", perms);
			json_int("perms_bits", bits);
			json_close('}');
		} else {
			printf("%.*s:%.*s:%s\n", slen > 0 ? (int)slen : 0, scheme,
			       ilen > 0 ? (int)ilen : 0, id, perms);
		}
	}
	int32_t aversion = 0;
	if (!body.error) {
		jute_read_long(&body);
		jute_read_long(&body);
		jute_read_long(&body);
		jute_read_long(&body);
		jute_read_int(&body);
		jute_read_int(&body);
		aversion = jute_read_int(&body);
	}
	if (x->json) {
		json_close(']');
		json_int("aversion", aversion);
		json_close('}');
	}
	if (body.error) {
		snprintf(x->zk.error, sizeof(x->zk.error), "the getACL reply does not parse");
		return unreachable_at(x->server, &x->zk);
	}
	return EXIT_SUCCESS;
}

/* One "scheme:id:perms" entry (the id may hold ':', as digest's does) into
 * b. Returns 0, or -1 with why. */
static int acl_entry(struct jute_buf *b, const char *p, size_t len, const char **why)
{
	const char *first = memchr(p, ':', len), *last = NULL;
	for (size_t i = len; i > 0; i--)
		if (p[i - 1] == ':') {
			last = p + i - 1;
			break;
		}
	if (!first || first == last || first == p) {
		*why = "an entry is not scheme:id:perms";
		return -1;
	}
	int32_t bits = 0;
	for (const char *c = last + 1; c < p + len; c++) {
		const char *at = strchr(perm_letters, *c);
		if (!at || !*c) {
			*why = "perms are letters of cdrwa";
			return -1;
		}
		bits |= perm_bits[at - perm_letters];
	}
	jute_write_int(b, bits);
	jute_write_string(b, p, (int32_t)(first - p));
	jute_write_string(b, first + 1, (int32_t)(last - first - 1));
	return 0;
}

/* The request body of setACL: path, the entries of spec, version -1.
 * Returns 0, or -1 with why. */
static int acl_request(struct jute_buf *b, const char *path, const char *spec, const char **why)
{
	int32_t count = 1;
	for (const char *c = spec; *c; c++)
		count += *c == ',';
	jute_write_string(b, path, (int32_t)strlen(path));
	jute_write_int(b, count);
	for (const char *p = spec;;) {
		size_t n = strcspn(p, ",");
		if (acl_entry(b, p, n, why) < 0)
			return -1;
		if (!p[n])
			break;
		p += n + 1;
	}
	jute_write_int(b, -1);
	return 0;
}

int cmd_setacl(struct ctx *x, char **args, int nargs)
{
	struct jute_buf b = { 0 };
	struct jute_reader body;
	const char *why;
	int32_t err;
	if (acl_request(&b, args[0], args[1], &why) < 0) {
		jute_buf_free(&b);
		return usage_error("setacl: '%s': %s", args[1], why);
	}
	int r = zkc_call(&x->zk, ZK_OP_SET_ACL, &b, &err, &body);
	jute_buf_free(&b);
	if (r < 0)
		return unreachable_at(x->server, &x->zk);
	if (err == ZINVALIDACL) {
		fprintf(stderr, "corralctl: %s: the server refused the ACL '%s' (INVALIDACL)\n",
			args[0], args[1]);
		return EXIT_NO;
	}
	if (err != ZOK)
		return answered_error(args[0], err);
	if (x->json) {
		json_open(NULL, '{');
		json_str("path", args[0]);
		json_str("acl", args[1]);
		json_close('}');
	}
	return EXIT_SUCCESS;
}

/* Runs word on a connection of its own. Returns 0 with the answer (free
 * it), or the exit status with the message printed: unreachable, or the
 * word not enabled. */
static int word(struct ctx *x, const char *w, char **ret_text)
{
	size_t len;
	if (zkc_word(&x->zk, x->host, x->port, w, ret_text, &len) < 0)
		return unreachable_at(x->server, &x->zk);
	if (strstr(*ret_text, ZKC_NOT_IN_WHITELIST)) {
		fprintf(stderr, "corralctl: %s: %s is not enabled on the server (add it to "
			"client.four_letter_words)\n", x->server, w);
		free(*ret_text);
		return EXIT_NO;
	}
	return 0;
}

/* The value of "name=" in a cons line's parenthesised fields, or NULL. */
static const char *field(const char *line, const char *name, size_t *ret_len)
{
	size_t n = strlen(name);
	const char *open = strchr(line, '(');
	for (const char *p = open ? open + 1 : NULL; p && *p; p++) {
		if ((p[-1] == '(' || p[-1] == ',') && strncmp(p, name, n) == 0 && p[n] == '=') {
			*ret_len = strcspn(p + n + 1, ",)");
			return p + n + 1;
		}
	}
	return NULL;
}

/* Prints the ephemerals dump lists for session sid ("0x..."), from the
 * "Sessions with Ephemerals" part of dump: a "0xID:" line, then a tab and
 * a path a line. Returns their count. */
static int ephemerals_of(const struct ctx *x, const char *dump, const char *sid, size_t sid_len)
{
	const char *p = dump ? strstr(dump, "Sessions with Ephemerals") : NULL;
	int count = 0;
	if (!p)
		return 0;
	for (p = strchr(p, '\n'); p && p[1] && p[1] != 'C'; p = strchr(p + 1, '\n')) {
		const char *line = p + 1;
		if (line[0] == '\t' || strncmp(line, sid, sid_len) != 0 || line[sid_len] != ':')
			continue;
		for (const char *e = strchr(line, '\n'); e && e[1] == '\t'; e = strchr(e + 1, '\n')) {
			size_t n = strcspn(e + 2, "\n");
			if (x->json)
				json_strn(NULL, e + 2, n);
			else
				printf("%s%.*s", count ? "," : "", (int)n, e + 2);
			count++;
		}
		break;
	}
	return count;
}

/* One cons line with a session: its id, client address, timeout and
 * ephemerals. */
static void session_line(const struct ctx *x, const char *line, const char *dump)
{
	size_t sid_len, to_len;
	const char *sid = field(line, "sid", &sid_len);
	const char *to = field(line, "to", &to_len);
	const char *addr = strchr(line, '/');
	size_t addr_len = addr ? strcspn(addr + 1, "[") : 0;
	if (!sid || !to || !addr)
		return;
	long long timeout = strtoll(to, NULL, 10);
	if (x->json) {
		char id[32];
		snprintf(id, sizeof(id), "%.*s", (int)(sid_len < 31 ? sid_len : 31), sid);
		json_open(NULL, '{');
		json_str("session_id", id);
		json_int("session_id_int", (long long)strtoull(id, NULL, 16));
		json_strn("client", addr + 1, addr_len);
		json_int("timeout_ms", timeout);
		json_open("ephemerals", '[');
		ephemerals_of(x, dump, sid, sid_len);
		json_close(']');
		json_close('}');
		return;
	}
	printf("%-18.*s  %-40.*s  %-10lld  ", (int)sid_len, sid, (int)addr_len, addr + 1, timeout);
	if (ephemerals_of(x, dump, sid, sid_len) == 0)
		putchar('-');
	putchar('\n');
}

int cmd_sessions(struct ctx *x, char **args, int nargs)
{
	char *cons, *dump;
	if (nargs > 0 && strcmp(args[0], "close") == 0) {
		char *end;
		errno = 0;
		unsigned long long id = nargs == 2 ? strtoull(args[1], &end, 0) : 0;
		if (nargs != 2 || end == args[1] || *end || errno || id == 0)
			return usage_error("sessions close: expected a session id (0x... or decimal)");
		return members_close_session(x, (int64_t)id);
	}
	if (nargs > 1 || (nargs > 0 && strcmp(args[0], "list") != 0))
		return usage_error("sessions: unknown subcommand '%s' (list, close ID)", args[0]);
	int status = word(x, "cons", &cons);
	if (status)
		return status;
	status = word(x, "dump", &dump);
	if (status) {
		free(cons);
		return status;
	}
	if (x->json) {
		json_open(NULL, '{');
		json_str("server", x->server);
		json_open("sessions", '[');
	} else {
		printf("%-18s  %-40s  %-10s  %s\n", "session", "client", "timeout_ms", "ephemerals");
	}
	for (char *line = cons; line && *line;) {
		char *eol = strchr(line, '\n');
		if (eol)
			*eol = '\0';
		session_line(x, line, dump);
		line = eol ? eol + 1 : NULL;
	}
	if (x->json) {
		json_close(']');
		json_close('}');
	}
	free(cons);
	free(dump);
	return EXIT_SUCCESS;
}

/* wchp ("PATH" then "\t0xSESSION" lines) or wchc ("0xSESSION" then
 * "\tPATH" lines) as {"KEY": [VALUE, ...]}. */
static void watches_json(const char *text, const char *by)
{
	bool open = false;
	json_open(NULL, '{');
	json_str("by", by);
	json_open("watches", '{');
	for (const char *line = text; *line;) {
		size_t n = strcspn(line, "\n");
		if (line[0] == '\t') {
			if (open)
				json_strn(NULL, line + 1, n - 1);
		} else if (n > 0) {
			char key[4200];
			if (open)
				json_close(']');
			snprintf(key, sizeof(key), "%.*s", (int)(n < 4199 ? n : 4199), line);
			json_open(key, '[');
			open = true;
		}
		line += n + (line[n] == '\n');
	}
	if (open)
		json_close(']');
	json_close('}');
	json_close('}');
}

int cmd_watches(struct ctx *x, char **args, int nargs)
{
	bool by_path = nargs == 0 || strcmp(args[0], "path") == 0;
	if (nargs > 0 && !by_path && strcmp(args[0], "session") != 0)
		return usage_error("watches: '%s': by path or by session", args[0]);
	char *text;
	int status = word(x, by_path ? "wchp" : "wchc", &text);
	if (status)
		return status;
	if (x->json)
		watches_json(text, by_path ? "path" : "session");
	else
		fputs(text, stdout);
	free(text);
	return EXIT_SUCCESS;
}
