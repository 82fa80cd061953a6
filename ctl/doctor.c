/* doctor: see doctor.h. The checks, each "ok", "warn" or "fail" with a
 * value and a sentence:
 *   config      corral.yaml parses (libyaml); data_dir, client.max_connections
 *               and ensemble.members are read from it, with corrald's
 *               defaults when absent
 *   data_dir    exists and takes a file; tmpfs is a warning (lost at reboot)
 *   fdatasync   4 KiB written and fdatasync'ed DOCTOR_SYNCS times in a temp
 *               file there: the average and worst latency (warn over
 *               DOCTOR_SLOW_SYNC_MS on average: every write waits for one)
 *   free_space  statvfs of the data directory (warn under 1 GiB)
 *   open_files  RLIMIT_NOFILE against client.max_connections plus room for
 *               the log, snapshots and peers (DOCTOR_FD_MARGIN)
 *   io_uring    io_uring_queue_init works (corrald needs it: exit 69)
 *   clock       adjtimex: the kernel says the clock is synchronised
 *   member N    each member's peer and client addresses accept a TCP
 *               connection, and the versions their mntr gives
 * Nothing is left behind: the temp file is removed. */
#include "doctor.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#include "client.h"
#include "json.h"

#define DOCTOR_SYNCS 8
#define DOCTOR_SLOW_SYNC_MS 10.0
#define DOCTOR_MIN_FREE_BYTES (1ull << 30)
#define DOCTOR_FD_MARGIN 64
#define DOCTOR_DEFAULT_DATA_DIR "/var/lib/corral"
#define DOCTOR_DEFAULT_MAX_CONNECTIONS 4096
#define DOCTOR_MAX_MEMBERS 16

struct doctor_config {
	char data_dir[1024];
	long max_connections;
	size_t members;
	struct { long id; char client[160], peer[160]; } m[DOCTOR_MAX_MEMBERS];
};

struct report {
	const struct ctx *x;
	int worst;		/* 0 ok, 1 warn, 2 fail */
};

static void check(struct report *r, const char *name, int level, const char *value,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void check(struct report *r, const char *name, int level, const char *value,
		  const char *fmt, ...)
{
	static const char *const levels[] = { "ok", "warn", "fail" };
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (level > r->worst)
		r->worst = level;
	if (r->x->json) {
		json_open(NULL, '{');
		json_str("check", name);
		json_str("status", levels[level]);
		json_str("value", value);
		json_str("detail", text);
		json_close('}');
	} else {
		printf("%-4s  %-12s  %-24s  %s\n", levels[level], name, value, text);
	}
}

static const yaml_node_t *map_get(yaml_document_t *d, const yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		const yaml_node_t *k = yaml_document_get_node(d, p->key);
		if (k && k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(d, p->value);
	}
	return NULL;
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static void read_members(yaml_document_t *d, const yaml_node_t *list, struct doctor_config *c)
{
	if (!list || list->type != YAML_SEQUENCE_NODE)
		return;
	for (yaml_node_item_t *i = list->data.sequence.items.start;
	     i < list->data.sequence.items.top && c->members < DOCTOR_MAX_MEMBERS; i++) {
		const yaml_node_t *m = yaml_document_get_node(d, *i);
		const char *id = scalar(map_get(d, m, "id"));
		const char *client = scalar(map_get(d, m, "client"));
		const char *peer = scalar(map_get(d, m, "peer"));
		c->m[c->members].id = id ? strtol(id, NULL, 10) : 0;
		snprintf(c->m[c->members].client, sizeof(c->m[0].client), "%s", client ? client : "");
		snprintf(c->m[c->members].peer, sizeof(c->m[0].peer), "%s", peer ? peer : "");
		c->members++;
	}
}

/* Returns 0, or -1 with why. */
static int read_config(const char *path, struct doctor_config *c, char *why, size_t size)
{
	FILE *f = fopen(path, "r");
	yaml_parser_t p;
	yaml_document_t d;
	snprintf(c->data_dir, sizeof(c->data_dir), DOCTOR_DEFAULT_DATA_DIR);
	c->max_connections = DOCTOR_DEFAULT_MAX_CONNECTIONS;
	if (!f) {
		snprintf(why, size, "%s", strerror(errno));
		return -1;
	}
	yaml_parser_initialize(&p);
	yaml_parser_set_input_file(&p, f);
	if (!yaml_parser_load(&p, &d)) {
		snprintf(why, size, "line %zu: %s", p.problem_mark.line + 1,
			 p.problem ? p.problem : "does not parse");
		yaml_parser_delete(&p);
		fclose(f);
		return -1;
	}
	const yaml_node_t *root = yaml_document_get_root_node(&d);
	const char *dd = scalar(map_get(&d, root, "data_dir"));
	const char *mc = scalar(map_get(&d, map_get(&d, root, "client"), "max_connections"));
	if (dd)
		snprintf(c->data_dir, sizeof(c->data_dir), "%s", dd);
	if (mc)
		c->max_connections = strtol(mc, NULL, 10);
	read_members(&d, map_get(&d, map_get(&d, root, "ensemble"), "members"), c);
	yaml_document_delete(&d);
	yaml_parser_delete(&p);
	fclose(f);
	return 0;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* data_dir and fdatasync: a temp file written and synced DOCTOR_SYNCS
 * times. */
static void check_sync(struct report *r, const char *dir)
{
	char path[1100], value[64];
	static char block[4096];
	struct statfs fs;
	snprintf(path, sizeof(path), "%s/.corralctl-doctor-XXXXXX", dir);
	int fd = mkstemp(path);
	if (fd < 0) {
		check(r, "data_dir", 2, dir, "cannot create a file there: %s", strerror(errno));
		check(r, "fdatasync", 2, "-", "not measured");
		return;
	}
	unlink(path);
	bool tmpfs = fstatfs(fd, &fs) == 0 && fs.f_type == TMPFS_MAGIC;
	if (tmpfs)
		check(r, "data_dir", 1, dir, "on tmpfs: the data is lost when the machine stops");
	else
		check(r, "data_dir", 0, dir, "takes files");
	double total = 0, worst = 0;
	int done = 0;
	for (; done < DOCTOR_SYNCS; done++) {
		double t0 = now_ms();
		if (pwrite(fd, block, sizeof(block), (off_t)done * (off_t)sizeof(block)) !=
		    (ssize_t)sizeof(block) || fdatasync(fd) < 0)
			break;
		double t = now_ms() - t0;
		total += t;
		worst = t > worst ? t : worst;
	}
	int err = errno;
	close(fd);
	if (done < DOCTOR_SYNCS) {
		check(r, "fdatasync", 2, "-", "write or fdatasync failed: %s", strerror(err));
		return;
	}
	snprintf(value, sizeof(value), "%.3f/%.3f ms", total / done, worst);
	check(r, "fdatasync", total / done > DOCTOR_SLOW_SYNC_MS ? 1 : 0, value,
	      "average/worst of %d 4 KiB writes each followed by fdatasync%s", DOCTOR_SYNCS,
	      total / done > DOCTOR_SLOW_SYNC_MS ? ": slow, every write waits for one" : "");
}

static void check_space_and_files(struct report *r, const struct doctor_config *c)
{
	struct statvfs vfs;
	struct rlimit rl;
	char value[64];
	if (statvfs(c->data_dir, &vfs) == 0) {
		unsigned long long avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
		snprintf(value, sizeof(value), "%llu", avail);
		check(r, "free_space", avail < DOCTOR_MIN_FREE_BYTES ? 1 : 0, value,
		      "bytes free for corrald in the data directory (warn under 1 GiB)");
	} else {
		check(r, "free_space", 2, "-", "statvfs: %s", strerror(errno));
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	long need = c->max_connections + DOCTOR_FD_MARGIN;
	snprintf(value, sizeof(value), "%llu", (unsigned long long)rl.rlim_cur);
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need)
		check(r, "open_files", 1, value, "below client.max_connections %ld + %d: raise "
		      "LimitNOFILE (the unit) or ulimit -n", c->max_connections, DOCTOR_FD_MARGIN);
	else
		check(r, "open_files", 0, value, "enough for client.max_connections %ld + %d",
		      c->max_connections, DOCTOR_FD_MARGIN);
}

static void check_kernel(struct report *r)
{
	struct io_uring ring;
	int e = io_uring_queue_init(4, &ring, 0);
	if (e == 0) {
		io_uring_queue_exit(&ring);
		check(r, "io_uring", 0, "allowed", "io_uring_queue_init works");
	} else {
		check(r, "io_uring", 2, "denied", "io_uring_queue_init: %s: corrald cannot run "
		      "(a seccomp filter, kernel.io_uring_disabled or a container's policy)",
		      strerror(-e));
	}
	struct timex tx = { 0 };
	int state = adjtimex(&tx);
	if (state < 0)
		check(r, "clock", 1, "-", "adjtimex: %s", strerror(errno));
	else if (state == TIME_ERROR || (tx.status & STA_UNSYNC))
		check(r, "clock", 1, "unsynchronised", "no time service keeps the clock in sync: "
		      "session and snapshot times drift");
	else
		check(r, "clock", 0, "synchronised", "estimated error %ld us", tx.esterror);
}

/* A TCP connect to host:port (as "HOST:PORT"). Returns true on success. */
static bool connects(const struct ctx *x, const char *addr)
{
	char host[256], port[16], why[128];
	struct zk_client c;
	if (!addr[0] || zkc_split_server(addr, host, sizeof(host), port, sizeof(port), why,
					 sizeof(why)) < 0)
		return false;
	zkc_init(&c, x->timeout_ms);
	bool ok = zkc_connect(&c, host, port) == 0;
	zkc_close(&c);
	return ok;
}

/* The version a member's srvr gives, into buf ("?" when none). */
static void member_version(const struct ctx *x, const char *addr, char *buf, size_t size)
{
	char host[256], port[16], why[128], *text;
	size_t len;
	struct zk_client c;
	struct zkc_kv kv = { 0 };
	snprintf(buf, size, "?");
	if (zkc_split_server(addr, host, sizeof(host), port, sizeof(port), why, sizeof(why)) < 0)
		return;
	zkc_init(&c, x->timeout_ms);
	if (zkc_word(&c, host, port, "srvr", &text, &len) < 0)
		return;
	if (zkc_kv_parse(&kv, text, ": ") == 0 && zkc_kv_get(&kv, "Zookeeper version"))
		snprintf(buf, size, "%.*s", (int)strcspn(zkc_kv_get(&kv, "Zookeeper version"), ","),
			 zkc_kv_get(&kv, "Zookeeper version"));
	zkc_kv_free(&kv);
}

static void check_members(struct report *r, const struct doctor_config *c)
{
	char name[32], version[128];
	for (size_t i = 0; i < c->members; i++) {
		bool peer = connects(r->x, c->m[i].peer), client = connects(r->x, c->m[i].client);
		snprintf(name, sizeof(name), "member %ld", c->m[i].id);
		if (client)
			member_version(r->x, c->m[i].client, version, sizeof(version));
		else
			snprintf(version, sizeof(version), "-");
		check(r, name, peer && client ? 0 : 1, peer && client ? "reachable" : "unreachable",
		      "peer %s %s, client %s %s, version %s", c->m[i].peer, peer ? "accepts" : "refuses",
		      c->m[i].client, client ? "accepts" : "refuses", version);
	}
}

int cmd_doctor(struct ctx *x, char **args, int nargs)
{
	const char *path = nargs > 0 ? args[0] : DOCTOR_DEFAULT_CONFIG;
	struct doctor_config *c = calloc(1, sizeof(*c));
	struct report r = { .x = x };
	char why[256];
	if (!c) {
		fprintf(stderr, "corralctl: out of memory\n");
		return EXIT_NO;
	}
	if (x->json) {
		json_open(NULL, '{');
		json_str("config", path);
		json_str("corralctl_version", CORRAL_VERSION);
		json_open("checks", '[');
	}
	if (read_config(path, c, why, sizeof(why)) < 0)
		check(&r, "config", 2, path, "%s (checking with the defaults)", why);
	else
		check(&r, "config", 0, path, "data_dir %s, client.max_connections %ld, %zu members",
		      c->data_dir, c->max_connections, c->members);
	check_sync(&r, c->data_dir);
	check_space_and_files(&r, c);
	check_kernel(&r);
	check_members(&r, c);
	if (x->json) {
		json_close(']');
		json_str("result", r.worst == 0 ? "ok" : r.worst == 1 ? "warn" : "fail");
		json_close('}');
	} else {
		printf("doctor: %s (corralctl %s)\n",
		       r.worst == 0 ? "ok" : r.worst == 1 ? "warnings" : "failed", CORRAL_VERSION);
	}
	free(c);
	return r.worst == 0 ? EXIT_SUCCESS : EXIT_NO;
}
