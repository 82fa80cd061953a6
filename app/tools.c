/* tools: see tools.h. They read with offline.c and write with the storage
 * layer (a snapshot, raft.meta); the configuration only tells restore which
 * server and cluster the new data directory is for. */
#include "tools.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commit.h"
#include "config.h"
#include "datadir.h"
#include "offline.h"
#include "proto.h"
#include "snapshot.h"
#include "tree.h"

#define EXIT_TOOL_USAGE 64	/* EX_USAGE */

static int parse_zxid(const char *text, uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 0);
	if (end == text || *end || errno || text[0] == '-')
		return -EINVAL;
	*ret = v;
	return 0;
}

/* Milliseconds since the epoch, or an ISO 8601 UTC time
 * (2026-12-02T11:50:00Z, with optional .mmm). */
static int parse_time(const char *text, int64_t *ret)
{
	char *end;
	struct tm tm = { 0 };
	if (isdigit((unsigned char)text[0])) {
		errno = 0;
		long long v = strtoll(text, &end, 10);
		if (!*end && !errno) {
			*ret = v;
			return 0;
		}
	}
	end = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return -EINVAL;
	long ms = 0;
	if (*end == '.') {
		char *frac = end + 1;
		ms = strtol(frac, &end, 10);
		if (end - frac != 3)
			return -EINVAL;
	}
	if (strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0)
		return -EINVAL;
	*ret = (int64_t)timegm(&tm) * 1000 + ms;
	return 0;
}

static void print_escaped(FILE *out, const uint8_t *p, int32_t len)
{
	if (len < 0) {
		fputs("null", out);
		return;
	}
	fputc('"', out);
	for (int32_t i = 0; i < len; i++) {
		if (p[i] == '"' || p[i] == '\\')
			fprintf(out, "\\%c", p[i]);
		else if (p[i] >= 0x20 && p[i] < 0x7f)
			fputc(p[i], out);
		else
			fprintf(out, "\\x%02x", p[i]);
	}
	fputc('"', out);
}

static void print_acl(FILE *out, const struct acl_list *acl)
{
	static const struct { int32_t bit; char c; } perms[] = {
		{ ZK_PERM_CREATE, 'c' }, { ZK_PERM_DELETE, 'd' }, { ZK_PERM_READ, 'r' },
		{ ZK_PERM_WRITE, 'w' }, { ZK_PERM_ADMIN, 'a' },
	};
	fputs("  acl:", out);
	for (uint32_t i = 0; i < acl->count; i++) {
		fprintf(out, " %s:%s=", acl->entries[i].scheme, acl->entries[i].id);
		for (size_t k = 0; k < sizeof(perms) / sizeof(perms[0]); k++)
			if (acl->entries[i].perms & perms[k].bit)
				fputc(perms[k].c, out);
	}
	fputc('\n', out);
}

static void print_node(FILE *out, const char *path, const struct znode *n)
{
	struct zk_stat st;
	znode_stat(n, &st);
	fprintf(out, "%s\n  stat: czxid=0x%" PRIx64 " mzxid=0x%" PRIx64 " pzxid=0x%" PRIx64
		" ctime=%" PRId64 " mtime=%" PRId64 " version=%d cversion=%d aversion=%d"
		" ephemeralOwner=0x%" PRIx64 " dataLength=%d numChildren=%d\n",
		path, (uint64_t)st.czxid, (uint64_t)st.mzxid, (uint64_t)st.pzxid, st.ctime,
		st.mtime, st.version, st.cversion, st.aversion, (uint64_t)st.ephemeral_owner,
		st.data_length, st.num_children);
	print_acl(out, znode_acl(n));
	fputs("  data: ", out);
	print_escaped(out, znode_data(n), n->data_len);
	fputc('\n', out);
}

/* A node and its path, built for sorting (a node keeps only its name). */
struct dump_entry {
	const char *path;
	const struct znode *node;
};

static int node_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dump_entry *)a)->path, ((const struct dump_entry *)b)->path);
}

/* Every node, sorted by path (bytewise). */
static int dump_tree(FILE *out, const struct offline_state *s)
{
	const struct tree *tree = &s->st.tree;
	size_t n = 0, cap = tree->nodes.count, room = 0;
	tree_for_each_node(tree, z)
		room += znode_path_len(z) + 1;
	struct dump_entry *all = calloc(cap ? cap : 1, sizeof(*all));
	char *paths = malloc(room ? room : 1), *w = paths;
	if (!all || !paths) {
		free(all);
		free(paths);
		return -ENOMEM;
	}
	for (const struct znode *z = tree->root; z && n < cap;) {
		size_t len = znode_path_len(z);
		znode_path_write(z, w, len);
		all[n++] = (struct dump_entry){ .path = w, .node = z };
		w += len + 1;
		if (znode_first_child(z)) {
			z = znode_first_child(z);
			continue;
		}
		while (z && z != tree->root && !z->next_sibling)
			z = znode_parent(z);
		z = (z && z != tree->root) ? znode_next_sibling(z) : NULL;
	}
	qsort(all, n, sizeof(*all), node_cmp);
	fprintf(out, "# corral dump: zxid 0x%" PRIx64 ", %zu nodes\n", s->index, n);
	for (size_t i = 0; i < n; i++)
		print_node(out, all[i].path, all[i].node);
	free(all);
	free(paths);
	return 0;
}

static int dump_usage_error(void)
{
	fprintf(stderr, "Usage: corrald dump [--at-zxid Z] SOURCE...\n"
		"Try 'corrald dump --help' for more.\n");
	return EXIT_TOOL_USAGE;
}

static void dump_usage(FILE *out)
{
	fprintf(out, "Usage: corrald dump [--at-zxid Z] SOURCE...\n"
		"Prints the tree (every node's path, Stat, ACL and data, sorted by path) as it\n"
		"is in SOURCE: a data directory (read-only: safe beside a running corrald),\n"
		"an archive (storage.archive_dir), several of these, or a backup file.\n"
		"  --at-zxid Z   as it was at zxid Z (decimal or 0x hex), not the latest\n");
}

int tool_dump(int argc, char **argv)
{
	static const struct option options[] = {
		{ "at-zxid", required_argument, NULL, 'z' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct offline_point pt = OFFLINE_POINT_ALL;
	int opt;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		if (opt == 'z' && parse_zxid(optarg, &pt.zxid) == 0)
			continue;
		if (opt == 'h') {
			dump_usage(stdout);
			return EXIT_SUCCESS;
		}
		if (opt == 'z')
			fprintf(stderr, "corrald dump: --at-zxid: '%s' is not a zxid\n", optarg);
		else
			fprintf(stderr, "corrald dump: %s '%s'\n", opt == ':' ?
				"a value is missing after" : "bad option", argv[optind - 1]);
		return dump_usage_error();
	}
	if (optind >= argc) {
		fprintf(stderr, "corrald dump: no SOURCE given\n");
		return dump_usage_error();
	}
	struct offline_state s;
	char why[1024];
	int r = offline_load(argv + optind, (size_t)(argc - optind), &pt, &s, why, sizeof(why));
	if (r < 0) {
		fprintf(stderr, "corrald dump: %s\n", why);
		return EXIT_FAILURE;
	}
	r = dump_tree(stdout, &s);
	offline_free(&s);
	if (r < 0 || fflush(stdout) != 0) {
		fprintf(stderr, "corrald dump: cannot write the dump: %s\n",
			strerror(r < 0 ? -r : errno));
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}

int tool_verify_backup(const char *path)
{
	struct offline_state s;
	char why[1024];
	char *sources[1] = { (char *)path };
	struct stat st;
	int r = offline_load(sources, 1, &OFFLINE_POINT_ALL, &s, why, sizeof(why));
	if (r < 0) {
		printf("DAMAGED: %s\n", why);
		return EXIT_FAILURE;
	}
	printf("%s: backup at zxid 0x%" PRIx64 " (term %" PRIu64 "), cluster ", path, s.index,
	       s.term);
	for (int i = 0; i < WAL_CLUSTER_ID_BYTES; i++)
		printf("%02x", s.id.cluster_id[i]);
	printf(", server %" PRIu64 ", %zu nodes, %zu sessions, %lld bytes: sound\n",
	       s.id.server_id, s.st.tree.nodes.count, s.st.sessions.by_id.count,
	       stat(path, &st) == 0 ? (long long)st.st_size : -1LL);
	offline_free(&s);
	return EXIT_SUCCESS;
}

static int restore_usage_error(void)
{
	fprintf(stderr, "Usage: corrald restore [-c CONFIG] [--to-zxid Z | --to-time T] SOURCE... "
		"DATA_DIR\nTry 'corrald restore --help' for more.\n");
	return EXIT_TOOL_USAGE;
}

static void restore_usage(FILE *out)
{
	fprintf(out, "Usage: corrald restore [-c CONFIG] [--to-zxid Z | --to-time T] SOURCE... DATA_DIR\n"
		"Makes DATA_DIR (new, or empty) a data directory holding the state of SOURCE:\n"
		"a backup file (corralctl backup), or for a point in time the archive\n"
		"(storage.archive_dir) and the data directory it came from. The restored\n"
		"server is the only member of a NEW cluster (the server, ensemble and\n"
		"addresses of CONFIG, default " CONFIG_DEFAULT_PATH "): a standalone\n"
		"server gets a new random cluster identity; an ensemble's is derived from\n"
		"ensemble.cluster, which must differ from the old cluster's. Others join it\n"
		"with corralctl members add.\n"
		"  -c, --config FILE  the restored server's configuration\n"
		"  --to-zxid Z        the state right after zxid Z (decimal or 0x hex)\n"
		"  --to-time T        the state after the last txn at or before T (UTC,\n"
		"                     2026-12-02T11:50:00Z, or milliseconds since the epoch)\n");
}

struct restore_args {
	const char *config_path;
	struct offline_point pt;
	char **sources;
	size_t source_count;
	const char *data_dir;
};

/* Returns -1 to go on, else the exit status. */
static int parse_restore(int argc, char **argv, struct restore_args *a)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "to-zxid", required_argument, NULL, 'z' },
		{ "to-time", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int opt;
	a->pt = OFFLINE_POINT_ALL;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":c:h", options, NULL)) != -1) {
		if (opt == 'c')
			a->config_path = optarg;
		else if (opt == 'z' && parse_zxid(optarg, &a->pt.zxid) == 0)
			continue;
		else if (opt == 't' && parse_time(optarg, &a->pt.time_ms) == 0)
			continue;
		else if (opt == 'h') {
			restore_usage(stdout);
			return EXIT_SUCCESS;
		} else {
			if (opt == 'z' || opt == 't')
				fprintf(stderr, "corrald restore: %s: '%s' is not a %s\n",
					opt == 'z' ? "--to-zxid" : "--to-time", optarg,
					opt == 'z' ? "zxid" : "time (2026-12-02T11:50:00Z or ms)");
			else
				fprintf(stderr, "corrald restore: %s '%s'\n", opt == ':' ?
					"a value is missing after" : "bad option", argv[optind - 1]);
			return restore_usage_error();
		}
	}
	if (a->pt.zxid != UINT64_MAX && a->pt.time_ms != INT64_MAX) {
		fprintf(stderr, "corrald restore: --to-zxid or --to-time, not both\n");
		return EXIT_TOOL_USAGE;
	}
	if (argc - optind < 2) {
		fprintf(stderr, "corrald restore: SOURCE and DATA_DIR are needed\n");
		return restore_usage_error();
	}
	a->sources = argv + optind;
	a->source_count = (size_t)(argc - optind - 1);
	a->data_dir = argv[argc - 1];
	return -1;
}

/* Whether dir holds nothing (or cannot be read: then not) but a new file
 * system's lost+found. A data directory (log_dir false) may hold wal/ as
 * the mount point of the log's own device (README, Durability) if that is
 * empty so. */
static bool directory_empty(const char *dir, bool log_dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool empty = d != NULL;
	while (d && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		/* a fresh ext4's, where dir (or its wal/) is a mount point */
		if (strcmp(e->d_name, "lost+found") == 0)
			continue;
		if (!log_dir && strcmp(e->d_name, "wal") == 0) {
			char sub[4200];
			snprintf(sub, sizeof(sub), "%s/wal", dir);
			if (directory_empty(sub, true))
				continue;
		}
		empty = false;
	}
	if (d)
		closedir(d);
	return empty;
}

bool tool_data_dir_empty(const char *dir)
{
	return directory_empty(dir, false);
}

/* DATA_DIR must be new or empty (but for an empty log mount point): a
 * restore never mixes with a data directory's files. Made here when new;
 * an empty one is kept as it is (its owner and mode, as tmpfiles.d made
 * /var/lib/corral). */
static int prepare_data_dir(const char *dir, char *why, size_t why_size)
{
	char snap[4200];
	if (mkdir(dir, 0750) < 0) {
		if (errno != EEXIST) {
			snprintf(why, why_size, "%s: %s", dir, strerror(errno));
			return -errno;
		}
		if (!directory_empty(dir, false)) {
			snprintf(why, why_size, "%s: not an empty directory; restore into a new or "
				 "empty one", dir);
			return -EEXIST;
		}
	}
	snprintf(snap, sizeof(snap), "%s/snap", dir);
	if (mkdir(snap, 0750) < 0) {
		snprintf(why, why_size, "%.900s: %s", snap, strerror(errno));
		return -errno;
	}
	return 0;
}

int tool_load_config(const char *path, struct server_config *cfg, char *why,
			       size_t why_size)
{
	int r = config_init_defaults(cfg);
	if (r < 0) {
		snprintf(why, why_size, "out of memory");
		return r;
	}
	r = config_load(cfg, path ? path : CONFIG_DEFAULT_PATH, why, why_size);
	if (r == -ENOENT && !path)
		r = 0;
	if (r == 0)
		r = config_finish(cfg, why, why_size);
	return r;
}

void tool_print_cluster(const struct wal_identity *id)
{
	for (int i = 0; i < WAL_CLUSTER_ID_BYTES; i++)
		printf("%02x", id->cluster_id[i]);
}

int tool_write_data_dir(const char *data_dir, const struct server_config *cfg,
			const struct offline_state *s, char *why, size_t why_size)
{
	const struct ensemble_config *ens = cfg->in_ensemble ? &cfg->ensemble : NULL;
	struct datadir_meta meta = { .term = s->term ? s->term : 1 };
	struct snapshot_meta m = { .index = s->index, .term = meta.term, .conf_index = s->index };
	int r = commit_restore_identity(ens, cfg->ensemble.id, cfg->listen_count ? &cfg->listen[0] : NULL,
					&meta.identity, &m.conf, &m.conf_len);
	if (r < 0) {
		snprintf(why, why_size, "cannot make the new cluster's identity: %s", strerror(-r));
		return r;
	}
	if (s->have_id && memcmp(s->id.cluster_id, meta.identity.cluster_id, WAL_CLUSTER_ID_BYTES) == 0) {
		snprintf(why, why_size, "ensemble.cluster \"%s\" is the old cluster's name: the restored "
			 "server would be taken for a member of it. Name the new ensemble differently "
			 "(ensemble.cluster in %s)", cfg->ensemble.cluster_name,
			 cfg->source_path ? cfg->source_path : "the configuration");
		free(m.conf);
		return -EEXIST;
	}
	r = prepare_data_dir(data_dir, why, why_size);
	char path[4200];
	snapshot_path(data_dir, m.index, path, sizeof(path));
	if (r == 0 && (r = snapshot_write_file(path, &meta.identity, &s->st, &m)) < 0)
		snprintf(why, why_size, "%.900s: %s", path, strerror(-r));
	if (r == 0 && (r = datadir_meta_write(data_dir, &meta)) < 0)
		snprintf(why, why_size, "%s/raft.meta: %s", data_dir, strerror(-r));
	free(m.conf);
	return r;
}

/* Writes the state into the new data directory as cfg's server, alone in a
 * new cluster. */
static int write_restored(const struct restore_args *a, const struct server_config *cfg,
			  const struct offline_state *s, char *why, size_t why_size)
{
	int r = tool_write_data_dir(a->data_dir, cfg, s, why, why_size);
	if (r == 0) {
		struct datadir_meta meta;
		char ignored[256];
		datadir_meta_read(a->data_dir, &meta, ignored, sizeof(ignored));
		printf("restored zxid 0x%" PRIx64 " (%zu nodes, %zu sessions) into %s: server %u, alone "
		       "in the new cluster ", s->index, s->st.tree.nodes.count,
		       s->st.sessions.by_id.count, a->data_dir, cfg->ensemble.id);
		tool_print_cluster(&meta.identity);
		printf("\n");
	}
	return r;
}

int tool_restore(int argc, char **argv)
{
	struct restore_args a = { 0 };
	int status = parse_restore(argc, argv, &a);
	if (status >= 0)
		return status;
	char why[1024];
	struct server_config cfg;
	if (tool_load_config(a.config_path, &cfg, why, sizeof(why)) < 0) {
		fprintf(stderr, "corrald restore: configuration: %s\n", why);
		config_free(&cfg);
		return 78;	/* EX_CONFIG, as corrald's */
	}
	struct offline_state s;
	int r = offline_load(a.sources, a.source_count, &a.pt, &s, why, sizeof(why));
	if (r < 0) {
		fprintf(stderr, "corrald restore: %s\n", why);
		config_free(&cfg);
		return EXIT_FAILURE;
	}
	if (a.pt.time_ms != INT64_MAX)
		printf("the last txn at or before the time given: zxid 0x%" PRIx64 "\n", s.index);
	r = write_restored(&a, &cfg, &s, why, sizeof(why));
	if (r < 0)
		fprintf(stderr, "corrald restore: %s\n", why);
	offline_free(&s);
	config_free(&cfg);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
