/* migrate: moving from Apache ZooKeeper to corral and back, offline:
 * `corrald import-zookeeper` and `corrald export-zookeeper` (tools.h).
 *
 * They are corrald's verbs, not corralctl's, for the reason restore is:
 * they read and write data directories on this machine, with no server
 * running on them, and need nothing corralctl has (a connection, a
 * session). The reading and writing of ZooKeeper's files is the storage
 * layer's (zookeeper.h); corral's data directory is written as restore
 * writes it (tool_write_data_dir()), into a temporary directory beside the
 * target that is renamed over it at the end, so an import that fails
 * leaves nothing half written; into the target itself where it is a mount
 * point or holds the log's (write_in_place()). */
#include "tools.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sys/socket.h>

#include "config.h"
#include "sockaddr.h"
#include "offline.h"
#include "zookeeper.h"

#define EXIT_TOOL_USAGE 64	/* EX_USAGE */

static void import_usage(FILE *out)
{
	fprintf(out, "Usage: corrald import-zookeeper [-c CONFIG] [--log-dir DIR] [--follow IP:PORT]\n"
		"       [--accept-torn-tail] [--accept-digest-mismatch] ZK_DATA_DIR DATA_DIR\n"
		"Makes DATA_DIR (new, or empty) a corral data directory holding Apache\n"
		"ZooKeeper's state, read from ZK_DATA_DIR (ZooKeeper's dataDir, or its\n"
		"version-2/ directory; ZooKeeper 3.4 to 3.9, stopped, or followed): the\n"
		"newest sound snapshot, then every txn of the logs after it. Every node\n"
		"keeps its Stat and ACL; sessions keep their ids, timeouts and ephemerals\n"
		"and accept the password each client holds; corral's zxids continue above\n"
		"ZooKeeper's last. The server is the only member of a new cluster (the\n"
		"server, ensemble and addresses of CONFIG, default " CONFIG_DEFAULT_PATH ").\n"
		"  -c, --config FILE     the new server's configuration\n"
		"  --log-dir DIR         ZooKeeper's dataLogDir, when its logs are kept apart\n"
		"  --follow IP:PORT      ZooKeeper runs, serving clients at IP:PORT: after the\n"
		"                        import, keep applying what it appends to its logs\n"
		"                        until it stops answering there; then apply its last\n"
		"                        txns and become corrald serving DATA_DIR on IP:PORT\n"
		"  --accept-torn-tail    a record cut short at the end of the last log (never\n"
		"                        acknowledged by ZooKeeper) ends the import there\n"
		"  --accept-digest-mismatch  a tree whose digest differs from the last one\n"
		"                        ZooKeeper logged is written all the same, with a\n"
		"                        warning, to see what differs (corrald dump); without\n"
		"                        it such an import fails and writes nothing\n");
}

static int import_usage_error(void)
{
	fprintf(stderr, "Usage: corrald import-zookeeper [-c CONFIG] [--log-dir DIR] "
		"[--follow IP:PORT] [--accept-torn-tail] [--accept-digest-mismatch] ZK_DATA_DIR "
		"DATA_DIR\nTry 'corrald import-zookeeper --help' for more.\n");
	return EXIT_TOOL_USAGE;
}

/* Removes what a failed import wrote into its temporary directory. */
static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	for (struct dirent *e; d && (e = readdir(d));) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char path[4300];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (unlink(path) < 0 && (errno == EISDIR || errno == EPERM))
			remove_tree(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

/* Whether data_dir is a mount point (a file system of its own). */
static bool mount_point(const char *data_dir)
{
	char path[4200];
	struct stat dir, parent;
	snprintf(path, sizeof(path), "%s/..", data_dir);
	return stat(data_dir, &dir) == 0 && stat(path, &parent) == 0 && dir.st_dev != parent.st_dev;
}

/* A data directory that is a mount point, or holds wal/ as one (the log on
 * a device of its own), cannot be replaced by a rename: s is written into
 * it as restore does, and what was written is removed again on failure
 * (wal/ is left alone). */
static int write_in_place(const char *data_dir, const struct server_config *cfg,
			  const struct offline_state *s, char *why, size_t why_size)
{
	int r = tool_write_data_dir(data_dir, cfg, s, why, why_size);
	if (r < 0) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/snap", data_dir);
		remove_tree(path);
		snprintf(path, sizeof(path), "%s/raft.meta", data_dir);
		unlink(path);
		return r;
	}
	return fsync_dir(data_dir);
}

/* Where an import into data_dir writes: its parent directory, and the
 * name prefix of its temporary directory there (".NAME.import-"). */
struct beside {
	char parent_copy[4096], name_copy[4096], prefix[300];
	const char *parent;
	size_t prefix_len;
};

static void beside_of(const char *data_dir, struct beside *b)
{
	snprintf(b->parent_copy, sizeof(b->parent_copy), "%s", data_dir);
	snprintf(b->name_copy, sizeof(b->name_copy), "%s", data_dir);
	b->parent = dirname(b->parent_copy);
	snprintf(b->prefix, sizeof(b->prefix), ".%s.import-", basename(b->name_copy));
	b->prefix_len = strlen(b->prefix);
}

/* An import killed while it wrote left its temporary directory beside the
 * target (".NAME.import-XXXXXX", as big as the tree). An import holds a
 * lock (flock) on its own while it lives, so one that can be locked was
 * left over: it is removed, and said so. One that cannot is another import
 * into the same target, writing now: refused. */
static int clear_leftovers(const char *data_dir, char *why, size_t why_size)
{
	struct beside b;
	beside_of(data_dir, &b);
	DIR *d = opendir(b.parent);
	if (!d)
		return 0;	/* mkdtemp() says why, if it matters */
	int r = 0;
	for (struct dirent *e; r == 0 && (e = readdir(d));) {
		if (strncmp(e->d_name, b.prefix, b.prefix_len) != 0)
			continue;
		char path[4400];
		snprintf(path, sizeof(path), "%s/%s", b.parent, e->d_name);
		int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			snprintf(why, why_size, "%.700s: another import into the same directory is "
				 "writing it now", path);
			r = -EBUSY;
		} else {
			fprintf(stderr, "corrald import-zookeeper: removing %s, left by an import that "
				"did not finish\n", path);
			remove_tree(path);
		}
		close(fd);
	}
	closedir(d);
	return r;
}

/* Writes s into a temporary directory beside data_dir, then renames it to
 * data_dir (which, when it exists, is empty: it keeps its owner and mode),
 * or into data_dir itself where a rename cannot replace it. */
static int write_beside(const char *data_dir, const struct server_config *cfg,
			const struct offline_state *s, char *why, size_t why_size)
{
	struct stat target;
	bool exists = stat(data_dir, &target) == 0;
	if (exists && !tool_data_dir_empty(data_dir)) {
		snprintf(why, why_size, "%s: not an empty directory; import into a new or empty one",
			 data_dir);
		return -EEXIST;
	}
	char wal[4200];
	snprintf(wal, sizeof(wal), "%s/wal", data_dir);
	if (exists && (mount_point(data_dir) || access(wal, F_OK) == 0))
		return write_in_place(data_dir, cfg, s, why, why_size);
	struct beside b;
	beside_of(data_dir, &b);
	const char *parent = b.parent;
	char tmp[4400];
	snprintf(tmp, sizeof(tmp), "%s/%sXXXXXX", parent, b.prefix);
	if (!mkdtemp(tmp)) {
		snprintf(why, why_size, "%s: cannot make a temporary directory: %s", parent,
			 strerror(errno));
		return -errno;
	}
	/* Held until the import ends (its exit, killed or not, lets it go). */
	int lock = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lock < 0 || flock(lock, LOCK_EX) < 0) {
		int r = -errno;
		snprintf(why, why_size, "%.700s: cannot lock it: %s", tmp, strerror(-r));
		if (lock >= 0)
			close(lock);
		rmdir(tmp);
		return r;
	}
	if (exists) {
		(void)chmod(tmp, target.st_mode & 07777);
		if (chown(tmp, target.st_uid, target.st_gid) < 0 && getuid() == 0)
			(void)0;	/* an unprivileged import keeps its own owner */
	} else {
		(void)chmod(tmp, 0750);
	}
	int r = tool_write_data_dir(tmp, cfg, s, why, why_size);
	if (r == 0 && rename(tmp, data_dir) < 0) {
		r = -errno;
		snprintf(why, why_size, "cannot rename %.400s to %.400s: %s", tmp, data_dir,
			 strerror(-r));
	}
	if (r < 0)
		remove_tree(tmp);
	else
		r = fsync_dir(parent);
	close(lock);
	return r;
}

static void report_skipped(const char *file, const char *reason)
{
	(void)file;
	fprintf(stderr, "corrald import-zookeeper: skipping a damaged snapshot: %s\n", reason);
}

/* Following: ZooKeeper's client address, tried every poll. */
struct follow {
	const char *address;
	struct sockaddr_storage ss;
	socklen_t len;
	uint64_t reported_zxid;
	struct timespec reported_at;
};

/* Whether ZooKeeper still takes connections at its client address. */
static bool zookeeper_answers(void *ctx, const struct zookeeper_import *progress)
{
	struct follow *f = ctx;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (progress->last_zxid != f->reported_zxid && now.tv_sec > f->reported_at.tv_sec) {
		printf("following %s: zxid 0x%" PRIx64 ", %" PRIu64 " txns applied\n", f->address,
		       progress->last_zxid, progress->txns_applied);
		fflush(stdout);
		f->reported_zxid = progress->last_zxid;
		f->reported_at = now;
	}
	int fd = socket(f->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool up = fd >= 0 && connect(fd, (const struct sockaddr *)&f->ss, f->len) == 0;
	if (fd >= 0)
		close(fd);
	return up;
}

static int parse_import(int argc, char **argv, const char **ret_config,
			struct zookeeper_import_options *opt, struct follow *follow)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "accept-torn-tail", no_argument, NULL, 't' },
		{ "accept-digest-mismatch", no_argument, NULL, 'D' },
		{ "log-dir", required_argument, NULL, 'L' },
		{ "follow", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int o;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":c:h", options, NULL)) != -1) {
		if (o == 'c') {
			*ret_config = optarg;
		} else if (o == 't') {
			opt->accept_torn_tail = true;
		} else if (o == 'D') {
			opt->accept_digest_mismatch = true;
		} else if (o == 'L') {
			opt->log_dir = optarg;
		} else if (o == 'f') {
			if (sockaddr_parse(optarg, false, &follow->ss, &follow->len) < 0) {
				fprintf(stderr, "corrald import-zookeeper: --follow: '%s' is not "
					"IP:PORT\n", optarg);
				return EXIT_TOOL_USAGE;
			}
			follow->address = optarg;
			opt->keep_following = zookeeper_answers;
			opt->ctx = follow;
		} else if (o == 'h') {
			import_usage(stdout);
			return EXIT_SUCCESS;
		} else {
			fprintf(stderr, "corrald import-zookeeper: %s '%s'\n", o == ':' ?
				"a value is missing after" : "bad option", argv[optind - 1]);
			return import_usage_error();
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "corrald import-zookeeper: ZK_DATA_DIR and DATA_DIR are needed\n");
		return import_usage_error();
	}
	return -1;
}

static void print_imported(const char *data_dir, const struct zookeeper_import *res,
			   const struct offline_state *s, double seconds)
{
	printf("imported ZooKeeper's snapshot at zxid 0x%" PRIx64 " and %" PRIu64 " txns from %u "
	       "log files, up to zxid 0x%" PRIx64 ": %zu nodes, %zu sessions, into %s in %.1f s%s\n",
	       res->snapshot_zxid, res->txns_applied, res->log_files, res->last_zxid,
	       s->st.tree.nodes.count, s->st.sessions.by_id.count, data_dir, seconds,
	       res->digest_checked ? "; the tree's digest equals ZooKeeper's" : "");
	if (res->digest_mismatch)
		fprintf(stderr, "corrald import-zookeeper: warning: the imported tree's digest (%"
			PRIx64 ") differs from ZooKeeper's at zxid 0x%" PRIx64 " (%" PRIx64 "): "
			"imported all the same (--accept-digest-mismatch), but it is not ZooKeeper's "
			"tree; compare `corrald dump %s` with ZooKeeper's\n", res->digest_tree,
			res->digest_zxid, res->digest_zookeeper, data_dir);
	if (res->log_files == 0)
		fprintf(stderr, "corrald import-zookeeper: warning: no log file was read: only the "
			"snapshot's state was imported. If ZooKeeper keeps its logs apart "
			"(dataLogDir), give --log-dir\n");
	if (res->snapshots_skipped)
		printf("  %u newer snapshot%s damaged and skipped\n", res->snapshots_skipped,
		       res->snapshots_skipped == 1 ? " was" : "s were");
	if (res->orphan_ephemerals)
		printf("  %u ephemerals belonged to sessions ZooKeeper no longer had: they go when "
		       "those sessions expire, %u ms after corral starts\n", res->orphan_ephemerals,
		       ZOOKEEPER_ORPHAN_TIMEOUT_MS);
}

/* The cut-over: this process becomes corrald, serving the imported data
 * on ZooKeeper's address, so clients reconnect where they were. */
static int cut_over(const char *config_path, const char *data_dir, const char *address)
{
	char *argv[8] = { "corrald", "-d", (char *)data_dir, "-l", (char *)address };
	if (config_path) {
		argv[5] = "-c";
		argv[6] = (char *)config_path;
	}
	printf("cutting over: corrald serves %s on %s\n", data_dir, address);
	fflush(stdout);
	execv("/proc/self/exe", argv);
	fprintf(stderr, "corrald import-zookeeper: cannot start corrald: %s\n", strerror(errno));
	return EXIT_FAILURE;
}

int tool_import_zookeeper(int argc, char **argv)
{
	const char *config_path = NULL;
	struct zookeeper_import_options opt = { .skipped = report_skipped };
	struct follow follow = { 0 };
	int status = parse_import(argc, argv, &config_path, &opt, &follow);
	if (status >= 0)
		return status;
	const char *zk_dir = argv[optind], *data_dir = argv[optind + 1];
	char why[1024];
	struct server_config cfg;
	if (tool_load_config(config_path, &cfg, why, sizeof(why)) < 0) {
		fprintf(stderr, "corrald import-zookeeper: configuration: %s\n", why);
		config_free(&cfg);
		return 78;	/* EX_CONFIG, as corrald's */
	}
	if (access(data_dir, F_OK) == 0 && !tool_data_dir_empty(data_dir)) {
		fprintf(stderr, "corrald import-zookeeper: %s: not an empty directory; import into "
			"a new or empty one\n", data_dir);
		config_free(&cfg);
		return EXIT_FAILURE;
	}
	if (clear_leftovers(data_dir, why, sizeof(why)) < 0) {
		fprintf(stderr, "corrald import-zookeeper: %s\n", why);
		config_free(&cfg);
		return EXIT_FAILURE;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct offline_state s = { 0 };
	struct zookeeper_import res;
	int r = zookeeper_import(zk_dir, &opt, &s.st, &res, why, sizeof(why));
	if (r == 0) {
		s.index = res.last_zxid;
		s.term = 1;
		r = write_beside(data_dir, &cfg, &s, why, sizeof(why));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (r == 0)
			print_imported(data_dir, &res, &s, (double)(t1.tv_sec - t0.tv_sec) +
				       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
		state_free(&s.st);
	}
	if (r < 0)
		fprintf(stderr, "corrald import-zookeeper: %s\n", why);
	config_free(&cfg);
	if (r == 0 && follow.address)
		return cut_over(config_path, data_dir, follow.address);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

static void export_usage(FILE *out)
{
	fprintf(out, "Usage: corrald export-zookeeper SOURCE... ZK_DATA_DIR\n"
		"Writes the state of SOURCE (a corral data directory, read-only, with corrald\n"
		"stopped for the state to be final; or a backup file) as Apache ZooKeeper's\n"
		"snapshot and an empty log into ZK_DATA_DIR/version-2/, which ZooKeeper 3.8\n"
		"loads as its own: the same nodes with every Stat field and ACL, and the\n"
		"sessions with their timeouts and ephemerals. For a rollback.\n");
}

int tool_export_zookeeper(int argc, char **argv)
{
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		export_usage(stdout);
		return EXIT_SUCCESS;
	}
	if (argc < 3 || argv[1][0] == '-') {
		fprintf(stderr, "Usage: corrald export-zookeeper SOURCE... ZK_DATA_DIR\n"
			"Try 'corrald export-zookeeper --help' for more.\n");
		return EXIT_TOOL_USAGE;
	}
	char why[1024];
	struct offline_state s;
	int r = offline_load(argv + 1, (size_t)(argc - 2), &OFFLINE_POINT_ALL, &s, why, sizeof(why));
	if (r < 0) {
		fprintf(stderr, "corrald export-zookeeper: %s\n", why);
		return EXIT_FAILURE;
	}
	const char *zk_dir = argv[argc - 1];
	r = zookeeper_export(zk_dir, &s.st, s.index, why, sizeof(why));
	if (r < 0)
		fprintf(stderr, "corrald export-zookeeper: %s\n", why);
	else
		printf("exported zxid 0x%" PRIx64 " (%zu nodes, %zu sessions) into %s/version-2 as "
		       "ZooKeeper's snapshot.%" PRIx64 "\n", s.index, s.st.tree.nodes.count,
		       s.st.sessions.by_id.count, zk_dir, s.index);
	offline_free(&s);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
