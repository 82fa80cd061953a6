/* corralctl: the administrator's command-line client of corrald (and of any
 * ZooKeeper server): health check (ruok), a status table (srvr + mntr), the
 * reads ls, get, stat and tree, the writes create, set and delete, and an
 * ensemble's membership. It speaks the client protocol itself (client.c),
 * opens one session for the reads and closes it before exiting. The
 * four-letter-word commands are in words.c, the members commands and
 * health in members.c, getacl, setacl, sessions and watches in ops.c, the
 * preflight in doctor.c; --json output goes through json.c.
 *
 * Exit statuses (also in --help and corralctl(8)): 0 success; 1 the server
 * answered, but not as asked; 2 the server could not be reached or talked
 * to; 64 bad usage. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backup.h"
#include "client.h"
#include "command.h"
#include "jute.h"
#include "doctor.h"
#include "json.h"
#include "members.h"
#include "ops.h"
#include "words.h"
#include "path.h"
#include "proto.h"
#include "records.h"

#ifndef CORRAL_VERSION
#error "CORRAL_VERSION must be defined by the build"
#endif

#define DEFAULT_SERVER "127.0.0.1:2181"
#define DEFAULT_TIMEOUT_MS 5000
#define MAX_TIMEOUT_MS 3600000
#define DEFAULT_MAX_NODES 10000

static void print_help(void)
{
	printf("%s", usage_text);
	printf("\n"
	       "The administrator's client of a corral (or ZooKeeper) server.\n"
	       "\n"
	       "Commands:\n"
	       "  ruok          ask the server whether it is running; prints imok\n"
	       "                (for health checks: exit 0 only when the answer is imok)\n"
	       "  status        mode, version, zxid, counters, latency, log and uptime\n"
	       "                (four-letter words srvr and mntr)\n"
	       "  ls PATH       the children of PATH, sorted, one per line\n"
	       "  get PATH      the data of PATH as raw bytes (a newline is added only\n"
	       "                on a terminal, when the data does not end with one)\n"
	       "  stat PATH     every Stat field of PATH, one \"name = value\" per line\n"
	       "  tree [PATH]   the subtree under PATH (default /), indented and sorted\n"
	       "  create PATH [DATA]  a persistent znode readable and writable by anyone,\n"
	       "                with DATA (default: empty); prints its path\n"
	       "  set PATH DATA replaces the data of PATH (any version)\n"
	       "  delete PATH   deletes PATH (any version; it must have no children)\n"
	       "  backup FILE   an online backup: the server's state at one zxid, with\n"
	       "                its cluster identity and a checksum, streamed into FILE\n"
	       "                while the server goes on (needs --auth as the super user;\n"
	       "                check it with corrald --verify FILE, restore it with\n"
	       "                corrald restore FILE DATA_DIR)\n"
	       "  getacl PATH   the ACL of PATH, one scheme:id:perms a line (perms of cdrwa)\n"
	       "  setacl PATH ACL  replaces the ACL of PATH (any version); ACL as zkCli.sh\n"
	       "                writes it: scheme:id:perms[,scheme:id:perms...]\n"
	       "  sessions [list]  the server's client sessions: id, client address,\n"
	       "                timeout and ephemerals (four-letter words cons and dump)\n"
	       "  sessions close ID  closes session ID (0x... or decimal) as its expiry\n"
	       "                would: its ephemerals go (needs --auth as the super user)\n"
	       "  watches [path|session]  the server's watches by path (wchp) or by\n"
	       "                session (wchc)\n"
	       "  health        every member's role, state, zxid lag and alarms (from its\n"
	       "                mntr), and whether the voters have a quorum\n"
	       "  doctor [CONFIG]  a preflight on the server's machine, from its corral.yaml\n"
	       "                (default " DOCTOR_DEFAULT_CONFIG "): the data directory's\n"
	       "                fdatasync latency and free space, the open-file limit\n"
	       "                against client.max_connections, io_uring, clock sync, the\n"
	       "                members reachable and their versions (exit 1 on a warning)\n"
	       "\n"
	       "An ensemble's members (changes need WRITE on /zookeeper/config: --auth):\n"
	       "  members list  each member's id, role (participant or observer), peer and\n"
	       "                client address and state (from its mntr), the configuration's\n"
	       "                version and the leader\n"
	       "  members add ID PEER_HOST:PORT CLIENT_HOST:PORT [--observer]\n"
	       "                adds server ID (a participant, or an observer); prints the\n"
	       "                new configuration\n"
	       "  members remove ID\n"
	       "                removes server ID; prints the new configuration\n"
	       "  members transfer-leader [ID]\n"
	       "                asks the leader to hand leadership to server ID (default:\n"
	       "                the most up-to-date member) and waits until it is done\n"
	       "\n"
	       "Options:\n"
	       "  -s, --server=HOST:PORT  the server; [IPV6]:PORT for IPv6 (default:\n"
	       "                          $CORRAL_SERVER, else " DEFAULT_SERVER ")\n"
	       "  -t, --timeout=MS        the longest wait for each step: connecting,\n"
	       "                          each answer (default %d)\n"
	       "      --max-nodes=N       tree: stop after N nodes (default %d; 0: no limit)\n"
	       "      --max-depth=N       tree: at most N levels below PATH (default: no limit)\n"
	       "      --auth=USER:PASSWORD  commands with a session: authenticate first\n"
	       "                          (addauth digest), e.g. as the super user\n"
	       "      --observer          members add: the new member is an observer\n"
	       "      --json              every command: one JSON object on stdout instead\n"
	       "                          of text (errors stay on stderr)\n"
	       "  -h, --help              this text\n"
	       "  -V, --version           corralctl's version\n"
	       "\n"
	       "Exit status:\n"
	       "  0   success; health: healthy (every member reachable, a quorum, no\n"
	       "      alarm)\n"
	       "  1   the server answered, but not as asked: no such node, not authorized,\n"
	       "      ruok answered other than imok, a four-letter word not enabled,\n"
	       "      a membership change refused; health: degraded (a member\n"
	       "      unreachable, no quorum, an alarm)\n"
	       "  2   the server could not be reached or talked to: connection refused,\n"
	       "      timed out, closed, name not resolved; health: the server asked\n"
	       "      is unreachable\n"
	       "  64  bad usage\n",
	       DEFAULT_TIMEOUT_MS, DEFAULT_MAX_NODES);
}

static int unreachable(const struct ctx *x)
{
	return unreachable_at(x->server, &x->zk);
}

/* ---- reads in a session ---- */

/* Sends op {path, watch=false}. Returns 0 with *ret_err and the body, or -1
 * (transport). */
static int path_request(struct ctx *x, int32_t op, const char *path, int32_t *ret_err,
			struct jute_reader *ret_body)
{
	struct jute_buf b = { 0 };
	jute_write_string(&b, path, (int32_t)strlen(path));
	jute_write_bool(&b, false);
	int r = zkc_call(&x->zk, op, &b, ret_err, ret_body);
	jute_buf_free(&b);
	return r;
}

static int stat_decode(struct jute_reader *r, struct zk_stat *st)
{
	st->czxid = jute_read_long(r);
	st->mzxid = jute_read_long(r);
	st->ctime = jute_read_long(r);
	st->mtime = jute_read_long(r);
	st->version = jute_read_int(r);
	st->cversion = jute_read_int(r);
	st->aversion = jute_read_int(r);
	st->ephemeral_owner = jute_read_long(r);
	st->data_length = jute_read_int(r);
	st->num_children = jute_read_int(r);
	st->pzxid = jute_read_long(r);
	return r->error ? -1 : 0;
}

struct name {
	const char *p;
	int32_t len;
};

/* A node's children, sorted bytewise; names point into buf (owned). */
struct children {
	uint8_t *buf;
	struct name *names;
	size_t count;
};

static void children_free(struct children *c)
{
	free(c->buf);
	free(c->names);
	c->buf = NULL;
	c->names = NULL;
	c->count = 0;
}

static int name_cmp(const void *a, const void *b)
{
	const struct name *x = a, *y = b;
	int32_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->p, y->p, (size_t)n);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* getChildren. Returns 0 with *ret_err (and, when 0, the children), or -1
 * with x->zk.error set. */
static int get_children(struct ctx *x, const char *path, struct children *ret, int32_t *ret_err)
{
	struct jute_reader body;
	memset(ret, 0, sizeof(*ret));
	if (path_request(x, ZK_OP_GET_CHILDREN, path, ret_err, &body) < 0)
		return -1;
	if (*ret_err != ZOK)
		return 0;
	size_t len = jute_remaining(&body);
	ret->buf = malloc(len ? len : 1);
	if (!ret->buf) {
		snprintf(x->zk.error, sizeof(x->zk.error), "out of memory");
		return -1;
	}
	memcpy(ret->buf, body.p + body.pos, len);
	jute_reader_init(&body, ret->buf, len);
	int32_t count = jute_read_int(&body);
	if (count < 0)
		count = 0;	/* a null vector */
	if ((size_t)count > len / 4) {	/* each name takes at least its length */
		children_free(ret);
		snprintf(x->zk.error, sizeof(x->zk.error), "the getChildren reply does not parse");
		return -1;
	}
	ret->names = calloc((size_t)count + 1, sizeof(*ret->names));
	if (!ret->names) {
		children_free(ret);
		snprintf(x->zk.error, sizeof(x->zk.error), "out of memory");
		return -1;
	}
	for (int32_t i = 0; i < count; i++)
		jute_read_string(&body, &ret->names[i].p, &ret->names[i].len);
	if (body.error) {
		children_free(ret);
		snprintf(x->zk.error, sizeof(x->zk.error), "the getChildren reply does not parse");
		return -1;
	}
	ret->count = (size_t)count;
	qsort(ret->names, ret->count, sizeof(*ret->names), name_cmp);
	return 0;
}

static int cmd_ls(struct ctx *x, char **args, int nargs)
{
	struct children ch;
	int32_t err;
	if (get_children(x, args[0], &ch, &err) < 0)
		return unreachable(x);
	if (err != ZOK)
		return answered_error(args[0], err);
	if (x->json) {
		json_open(NULL, '{');
		json_str("path", args[0]);
		json_open("children", '[');
	}
	for (size_t i = 0; i < ch.count; i++) {
		if (x->json) {
			json_strn(NULL, ch.names[i].p, (size_t)ch.names[i].len);
			continue;
		}
		fwrite(ch.names[i].p, 1, (size_t)ch.names[i].len, stdout);
		putchar('\n');
	}
	if (x->json) {
		json_close(']');
		json_close('}');
	}
	children_free(&ch);
	return EXIT_SUCCESS;
}

/* The Stat as a JSON object under key, zkCli.sh's names. */
static void stat_json(const char *key, const struct zk_stat *st)
{
	json_open(key, '{');
	json_int("cZxid", st->czxid);
	json_int("ctime", st->ctime);
	json_int("mZxid", st->mzxid);
	json_int("mtime", st->mtime);
	json_int("pZxid", st->pzxid);
	json_int("cversion", st->cversion);
	json_int("dataVersion", st->version);
	json_int("aclVersion", st->aversion);
	json_int("ephemeralOwner", st->ephemeral_owner);
	json_int("dataLength", st->data_length);
	json_int("numChildren", st->num_children);
	json_close('}');
}

static int cmd_get(struct ctx *x, char **args, int nargs)
{
	struct jute_reader body;
	const uint8_t *data;
	int32_t err, len;
	struct zk_stat st;

	if (path_request(x, ZK_OP_GET_DATA, args[0], &err, &body) < 0)
		return unreachable(x);
	if (err != ZOK)
		return answered_error(args[0], err);
	jute_read_buffer(&body, &data, &len);
	if (stat_decode(&body, &st) < 0) {
		snprintf(x->zk.error, sizeof(x->zk.error), "the getData reply does not parse");
		return unreachable(x);
	}
	if (x->json) {
		json_open(NULL, '{');
		json_str("path", args[0]);
		if (len < 0)
			json_null("data");
		else
			json_strn("data", (const char *)data, (size_t)len);
		stat_json("stat", &st);
		json_close('}');
	} else if (len > 0) {
		fwrite(data, 1, (size_t)len, stdout);
		if (data[len - 1] != '\n' && isatty(STDOUT_FILENO))
			putchar('\n');
	}
	return EXIT_SUCCESS;
}

/* "1700000000000 (2023-11-14T22:13:20.000Z)" */
static void print_time(const char *name, int64_t ms)
{
	int64_t s = ms / 1000, frac = ms % 1000;
	if (frac < 0) {
		s--;
		frac += 1000;
	}
	time_t t = (time_t)s;
	struct tm tm;
	char text[64];
	if (gmtime_r(&t, &tm) && strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm) > 0)
		printf("%s = %lld (%s.%03dZ)\n", name, (long long)ms, text, (int)frac);
	else
		printf("%s = %lld\n", name, (long long)ms);
}

static int cmd_stat(struct ctx *x, char **args, int nargs)
{
	struct jute_reader body;
	struct zk_stat st;
	int32_t err;

	if (path_request(x, ZK_OP_EXISTS, args[0], &err, &body) < 0)
		return unreachable(x);
	if (err != ZOK)
		return answered_error(args[0], err);
	if (stat_decode(&body, &st) < 0) {
		snprintf(x->zk.error, sizeof(x->zk.error), "the exists reply does not parse");
		return unreachable(x);
	}
	if (x->json) {
		json_open(NULL, '{');
		json_str("path", args[0]);
		stat_json("stat", &st);
		json_close('}');
		return EXIT_SUCCESS;
	}
	/* zkCli.sh's names and order. */
	printf("cZxid = 0x%llx\n", (unsigned long long)st.czxid);
	print_time("ctime", st.ctime);
	printf("mZxid = 0x%llx\n", (unsigned long long)st.mzxid);
	print_time("mtime", st.mtime);
	printf("pZxid = 0x%llx\n", (unsigned long long)st.pzxid);
	printf("cversion = %d\n", st.cversion);
	printf("dataVersion = %d\n", st.version);
	printf("aclVersion = %d\n", st.aversion);
	printf("ephemeralOwner = 0x%llx\n", (unsigned long long)st.ephemeral_owner);
	printf("dataLength = %d\n", st.data_length);
	printf("numChildren = %d\n", st.num_children);
	return EXIT_SUCCESS;
}

/* One level of the walk: the children of path still to visit. */
struct level {
	char *path;
	struct children ch;
	size_t next;
};

static char *child_path(const char *parent, const struct name *n)
{
	size_t plen = strlen(parent);
	bool root = strcmp(parent, "/") == 0;
	char *p = malloc(plen + 1 + (size_t)n->len + 1);
	if (!p)
		return NULL;
	memcpy(p, parent, plen);
	if (!root)
		p[plen++] = '/';
	memcpy(p + plen, n->p, (size_t)n->len);
	p[plen + (size_t)n->len] = '\0';
	return p;
}

/* The walk's stack: the levels between the root and the node printed last. */
struct walk {
	struct level *stack;
	size_t depth, cap;
	long printed;
	bool stopped;		/* at --max-nodes, with nodes left */
};

/* Pushes a level. Returns 0, the walk owning path and ch; or -1 (out of
 * memory), the caller keeping them. */
static int walk_push(struct walk *w, char *path, const struct children *ch)
{
	if (w->depth == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 16;
		struct level *s = realloc(w->stack, cap * sizeof(*s));
		if (!s)
			return -1;
		w->stack = s;
		w->cap = cap;
	}
	w->stack[w->depth++] = (struct level){ .path = path, .ch = *ch };
	return 0;
}

static void walk_free(struct walk *w)
{
	while (w->depth > 0) {
		w->depth--;
		free(w->stack[w->depth].path);
		children_free(&w->stack[w->depth].ch);
	}
	free(w->stack);
	w->stack = NULL;
}

/* Reads the children of n (a child of parent) and pushes them to be printed
 * next, if it has any. Returns 0 to go on, with *status set when the server
 * refused (a node deleted meanwhile is simply not shown); -1 to stop the
 * walk, with *status. */
static int descend(struct ctx *x, struct walk *w, const char *parent, const struct name *n,
		   int *status)
{
	struct children ch;
	int32_t err;
	char *path = child_path(parent, n);
	if (!path) {
		fprintf(stderr, "corralctl: out of memory\n");
		*status = EXIT_NO;
		return -1;
	}
	if (get_children(x, path, &ch, &err) < 0) {
		free(path);
		*status = unreachable(x);
		return -1;
	}
	if (err != ZOK) {
		/* deleted meanwhile: nothing to show; anything else: say so */
		if (err != ZNONODE)
			*status = answered_error(path, err);
		free(path);
		return 0;
	}
	if (ch.count == 0) {
		free(path);
		children_free(&ch);
		return 0;
	}
	if (walk_push(w, path, &ch) < 0) {
		free(path);
		children_free(&ch);
		fprintf(stderr, "corralctl: out of memory\n");
		*status = EXIT_NO;
		return -1;
	}
	return 0;
}

/* Prints the nodes under the levels on the stack, depth first, until the
 * stack is empty or the walk stops. Returns the exit status. */
static int walk_print(struct ctx *x, struct walk *w)
{
	int status = EXIT_SUCCESS;
	while (w->depth > 0) {
		struct level *top = &w->stack[w->depth - 1];
		if (top->next == top->ch.count) {
			free(top->path);
			children_free(&top->ch);
			w->depth--;
			continue;
		}
		const struct name *n = &top->ch.names[top->next++];
		if (x->max_nodes > 0 && w->printed >= x->max_nodes) {
			w->stopped = true;
			break;
		}
		if (x->json) {
			char *path = child_path(top->path, n);
			if (!path) {
				fprintf(stderr, "corralctl: out of memory\n");
				status = EXIT_NO;
				break;
			}
			json_str(NULL, path);
			free(path);
		} else {
			for (size_t i = 0; i < w->depth; i++)
				fputs("  ", stdout);
			fwrite(n->p, 1, (size_t)n->len, stdout);
			putchar('\n');
		}
		w->printed++;
		if (x->max_depth >= 0 && (long)w->depth >= x->max_depth)
			continue;
		if (descend(x, w, top->path, n, &status) < 0)
			break;
	}
	return status;
}

/* --json: closes what cmd_tree opened; returns status. */
static int tree_json_end(const struct ctx *x, bool stopped, int status)
{
	if (x->json) {
		json_close(']');
		json_bool("truncated", stopped);
		json_close('}');
	}
	return status;
}

/* Depth first, children sorted, with an explicit stack (a deep tree must not
 * exhaust the C stack). */
static int cmd_tree(struct ctx *x, char **args, int nargs)
{
	const char *root = nargs > 0 ? args[0] : "/";
	struct walk w = { 0 };
	int32_t err;
	struct children ch;

	if (get_children(x, root, &ch, &err) < 0)
		return unreachable(x);
	if (err != ZOK)
		return answered_error(root, err);
	if (x->json) {
		json_open(NULL, '{');
		json_str("path", root);
		json_open("nodes", '[');
		json_str(NULL, root);
	} else {
		puts(root);
	}
	w.printed = 1;
	if (x->max_depth == 0) {
		children_free(&ch);
		return tree_json_end(x, false, EXIT_SUCCESS);
	}
	char *root_copy = strdup(root);
	if (!root_copy || walk_push(&w, root_copy, &ch) < 0) {
		free(root_copy);
		children_free(&ch);
		fprintf(stderr, "corralctl: out of memory\n");
		return tree_json_end(x, false, EXIT_NO);
	}
	int status = walk_print(x, &w);
	walk_free(&w);
	if (w.stopped) {
		fflush(stdout);
		fprintf(stderr, "corralctl: tree: stopped after %ld nodes (--max-nodes); "
			"more remain\n", w.printed);
	}
	return tree_json_end(x, w.stopped, status);
}

/* ---- main ---- */

/* ---- writes ---- */

static void write_open_acl(struct jute_buf *b)
{
	jute_write_int(b, 1);
	jute_write_int(b, ZK_PERM_ALL);
	jute_write_string(b, "world", 5);
	jute_write_string(b, "anyone", 6);
}

static int cmd_create(struct ctx *x, char **args, int nargs)
{
	const char *data = nargs > 1 ? args[1] : "";
	struct jute_buf b = { 0 };
	struct jute_reader body;
	int32_t err;
	jute_write_string(&b, args[0], (int32_t)strlen(args[0]));
	jute_write_buffer(&b, data, (int32_t)strlen(data));
	write_open_acl(&b);
	jute_write_int(&b, 0);	/* persistent */
	int r = zkc_call(&x->zk, ZK_OP_CREATE, &b, &err, &body);
	jute_buf_free(&b);
	if (r < 0)
		return unreachable(x);
	if (err != ZOK)
		return answered_error(args[0], err);
	const char *path;
	int32_t len;
	jute_read_string(&body, &path, &len);
	if (body.error || len < 0) {
		snprintf(x->zk.error, sizeof(x->zk.error), "the create reply does not parse");
		return unreachable(x);
	}
	if (x->json) {
		json_open(NULL, '{');
		json_strn("path", path, (size_t)len);
		json_close('}');
	} else {
		printf("%.*s\n", (int)len, path);
	}
	return EXIT_SUCCESS;
}

/* A write that answers nothing: {"path": PATH, "ok": true} with --json. */
static int json_done(const struct ctx *x, const char *path)
{
	if (x->json) {
		json_open(NULL, '{');
		json_str("path", path);
		json_bool("ok", true);
		json_close('}');
	}
	return EXIT_SUCCESS;
}

static int cmd_set(struct ctx *x, char **args, int nargs)
{
	struct jute_buf b = { 0 };
	struct jute_reader body;
	int32_t err;
	jute_write_string(&b, args[0], (int32_t)strlen(args[0]));
	jute_write_buffer(&b, args[1], (int32_t)strlen(args[1]));
	jute_write_int(&b, -1);	/* any version */
	int r = zkc_call(&x->zk, ZK_OP_SET_DATA, &b, &err, &body);
	jute_buf_free(&b);
	if (r < 0)
		return unreachable(x);
	return err == ZOK ? json_done(x, args[0]) : answered_error(args[0], err);
}

static int cmd_delete(struct ctx *x, char **args, int nargs)
{
	struct jute_buf b = { 0 };
	struct jute_reader body;
	int32_t err;
	jute_write_string(&b, args[0], (int32_t)strlen(args[0]));
	jute_write_int(&b, -1);	/* any version */
	int r = zkc_call(&x->zk, ZK_OP_DELETE, &b, &err, &body);
	jute_buf_free(&b);
	if (r < 0)
		return unreachable(x);
	return err == ZOK ? json_done(x, args[0]) : answered_error(args[0], err);
}

struct command {
	const char *name;
	int min_args, max_args;
	bool session;		/* needs a session (else: four-letter words) */
	int (*run)(struct ctx *x, char **args, int nargs);
};

static const struct command commands[] = {
	{ "ruok", 0, 0, false, cmd_ruok },
	{ "status", 0, 0, false, cmd_status },
	{ "ls", 1, 1, true, cmd_ls },
	{ "get", 1, 1, true, cmd_get },
	{ "stat", 1, 1, true, cmd_stat },
	{ "tree", 0, 1, true, cmd_tree },
	{ "create", 1, 2, true, cmd_create },
	{ "set", 2, 2, true, cmd_set },
	{ "delete", 1, 1, true, cmd_delete },
	{ "members", 0, 5, false, cmd_members },
	{ "backup", 1, 1, true, cmd_backup },
	{ "getacl", 1, 1, true, cmd_getacl },
	{ "setacl", 2, 2, true, cmd_setacl },
	{ "sessions", 0, 2, false, cmd_sessions },
	{ "watches", 0, 1, false, cmd_watches },
	{ "health", 0, 0, false, cmd_health },
	{ "doctor", 0, 1, false, cmd_doctor },
};

static int parse_long(const char *text, long min, long max, long *ret)
{
	char *end;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (end == text || *end || errno || v < min || v > max)
		return -1;
	*ret = v;
	return 0;
}

enum { OPT_MAX_NODES = 256, OPT_MAX_DEPTH, OPT_AUTH, OPT_OBSERVER, OPT_JSON };

/* Reads the options into x (the server from $CORRAL_SERVER unless -s),
 * *timeout and *tree_option (--max-nodes or --max-depth given). Returns -1
 * to go on with optind at the command, else the exit status: bad usage
 * (said on stderr), or --help and --version done. */
static int parse_options(int argc, char **argv, struct ctx *x, long *timeout, bool *tree_option)
{
	static const struct option options[] = {
		{ "server", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "max-nodes", required_argument, NULL, OPT_MAX_NODES },
		{ "max-depth", required_argument, NULL, OPT_MAX_DEPTH },
		{ "auth", required_argument, NULL, OPT_AUTH },
		{ "observer", no_argument, NULL, OPT_OBSERVER },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int opt;

	x->server = getenv("CORRAL_SERVER");
	if (!x->server || !*x->server)
		x->server = DEFAULT_SERVER;
	while ((opt = getopt_long(argc, argv, "s:t:hV", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			x->server = optarg;
			break;
		case 't':
			if (parse_long(optarg, 1, MAX_TIMEOUT_MS, timeout) < 0)
				return usage_error("-t: '%s' is not a timeout in ms (1 to %d)", optarg,
						   MAX_TIMEOUT_MS);
			break;
		case OPT_MAX_NODES:
			if (parse_long(optarg, 0, 1000000000L, &x->max_nodes) < 0)
				return usage_error("--max-nodes: '%s' is not a count (0: no limit)", optarg);
			*tree_option = true;
			break;
		case OPT_MAX_DEPTH:
			if (parse_long(optarg, 0, 1000000000L, &x->max_depth) < 0)
				return usage_error("--max-depth: '%s' is not a depth", optarg);
			*tree_option = true;
			break;
		case OPT_AUTH:
			if (!strchr(optarg, ':') || optarg[0] == ':')
				return usage_error("--auth: expected USER:PASSWORD");
			x->auth = optarg;
			break;
		case OPT_OBSERVER:
			x->observer = true;
			break;
		case OPT_JSON:
			x->json = true;
			break;
		case 'h':
			print_help();
			return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_NO;
		case 'V':
			printf("corralctl %s\n", CORRAL_VERSION);
			return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_NO;
		default:
			fprintf(stderr, "%sTry 'corralctl --help' for more.\n", usage_text);
			return EXIT_USAGE;
		}
	}
	return -1;
}

static const struct command *find_command(const char *name)
{
	const struct command *cmd = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			cmd = &commands[i];
	return cmd;
}

/* Checks the command's arguments and that the options given are for it.
 * Returns 0, or EXIT_USAGE with the message printed. */
static int check_arguments(const struct ctx *x, const struct command *cmd, const char *name,
			   char **args, int nargs, bool tree_option)
{
	if (nargs < cmd->min_args)
		return usage_error(cmd->run == cmd_backup ? "%s: FILE is missing"
				   : cmd->run == cmd_setacl && nargs ? "%s: ACL is missing"
				   : nargs ? "%s: DATA is missing" : "%s: PATH is missing", name);
	if (nargs > cmd->max_args)
		return usage_error("%s: unexpected argument '%s'", name, args[cmd->max_args]);
	if (tree_option && cmd->run != cmd_tree)
		return usage_error("--max-nodes and --max-depth are for tree only");
	if (x->auth && !cmd->session && cmd->run != cmd_members && cmd->run != cmd_sessions)
		return usage_error("--auth is for commands that open a session, not %s", name);
	if (x->observer && cmd->run != cmd_members)
		return usage_error("--observer is for members add only");
	/* Every argument is a path, but for the DATA of create and set (and
	 * members, which checks its own). */
	int paths = cmd->run == cmd_create || cmd->run == cmd_set || cmd->run == cmd_setacl
		    ? (nargs > 0) : nargs;
	if (cmd->run == cmd_members || cmd->run == cmd_backup || !cmd->session)
		paths = 0;
	for (int i = 0; i < paths; i++) {
		if (args[i][0] != '/')
			return usage_error("%s: '%s' is not a path: it must start with '/'", name,
					   args[i]);
		if (!path_valid(args[i], strlen(args[i]), false))
			return usage_error("%s: '%s' is not a valid znode path", name, args[i]);
	}
	return 0;
}

/* Runs the command (in a session, if it needs one) and checks that its
 * output was written. Returns the exit status. */
static int run(struct ctx *x, const struct command *cmd, char **args, int nargs)
{
	int status = 0;
	if (cmd->session)
		status = session_at(x, &x->zk, x->host, x->port, x->server);
	if (status == 0)
		status = cmd->run(x, args, nargs);
	zkc_close(&x->zk);
	errno = 0;
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "corralctl: cannot write the output: %s\n",
			errno ? strerror(errno) : "write error");
		if (status == EXIT_SUCCESS)
			status = EXIT_NO;
	}
	return status;
}

int main(int argc, char **argv)
{
	struct ctx x = { .max_nodes = DEFAULT_MAX_NODES, .max_depth = -1 };
	bool tree_option = false;
	long timeout = DEFAULT_TIMEOUT_MS;

	int status = parse_options(argc, argv, &x, &timeout, &tree_option);
	if (status >= 0)
		return status;
	if (optind >= argc)
		return usage_error("no command");
	const char *name = argv[optind];
	char **args = argv + optind + 1;
	int nargs = argc - optind - 1;
	const struct command *cmd = find_command(name);
	if (!cmd)
		return usage_error("unknown command '%s'", name);
	status = check_arguments(&x, cmd, name, args, nargs, tree_option);
	if (status != 0)
		return status;

	char why[128];
	if (zkc_split_server(x.server, x.host, sizeof(x.host), x.port, sizeof(x.port), why,
			     sizeof(why)) < 0)
		return usage_error("server '%s': %s", x.server, why);
	x.timeout_ms = (int)timeout;
	zkc_init(&x.zk, x.timeout_ms);
	return run(&x, cmd, args, nargs);
}
