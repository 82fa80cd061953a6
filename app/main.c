/* main: corrald's command line, startup and signals. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "config.h"
#include "log.h"
#include "server.h"
#include "service.h"
#include "datadir.h"
#include "fdstore.h"
#include "snapshot.h"
#include "tls.h"
#include "tools.h"
#include "wal.h"

/* Exit statuses beyond 0/1, so a supervisor can tell causes apart. */
#define EXIT_CONFIG 78		/* EX_CONFIG: bad configuration */
#define EXIT_IO_URING 69	/* EX_UNAVAILABLE: io_uring cannot be used here */
#define EXIT_LISTEN 71		/* EX_OSERR: cannot listen or set up */
#define EXIT_DATA_DIR 74	/* EX_IOERR: data directory locked, damaged or foreign */

struct signal_watch {
	struct loop_op op;
	struct service *svc;
	int fd;
	struct signalfd_siginfo info;
	bool stop_audited;	/* serverStop is recorded once, for the first signal */
};

static void arm_signals(struct signal_watch *w);

static void on_signal(struct loop_op *op, int res, uint32_t flags)
{
	struct signal_watch *w = (struct signal_watch *)op;
	if (res == (int)sizeof(w->info)) {
		switch (w->info.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			log_event(LOG_NOTICE, { .message_id = LOG_MSGID_STOPPING },
				  "received %s; finishing the writes in flight and %s",
				  strsignal((int)w->info.ssi_signo),
				  w->svc->fdstore_max ? "handing the clients over to systemd's fd store"
						      : "stopping");
			if (!w->stop_audited)
				audit_server(w->svc->srv->cfg, "serverStop", "invoked");
			w->stop_audited = true;
			if (w->svc->fdstore_max)
				server_request_handover(w->svc->srv);
			else
				server_request_stop(w->svc->srv);
			break;
		case SIGHUP:
			service_reload(w->svc);
			break;
		}
	}
	/* Keep reading signals while stopping: a second SIGTERM must not kill us
	 * by default action (the signals stay blocked), and SIGHUP is harmless. */
	arm_signals(w);
}

static void arm_signals(struct signal_watch *w)
{
	struct io_uring_sqe *sqe = loop_sqe(&w->svc->srv->loop, &w->op);
	io_uring_prep_read(sqe, w->fd, &w->info, sizeof(w->info), 0);
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: corrald [OPTIONS]\n"
		"       corrald dump [--at-zxid Z] SOURCE...\n"
		"       corrald restore [-c FILE] [--to-zxid Z | --to-time T] SOURCE... DATA_DIR\n"
		"       corrald import-zookeeper [-c FILE] [--log-dir DIR] [--follow IP:PORT] [--accept-torn-tail] [--accept-digest-mismatch] ZK_DATA_DIR DATA_DIR\n"
		"       corrald export-zookeeper SOURCE... ZK_DATA_DIR\n"
		"A ZooKeeper-compatible coordination service.\n\n"
		"  -c, --config FILE      configuration file (default " CONFIG_DEFAULT_PATH ";\n"
		"                         when that file is missing, built-in defaults)\n"
		"  -d, --data-dir DIR     data directory (overrides data_dir)\n"
		"  -l, --listen HOST:PORT client address (overrides client.listen; repeatable)\n"
		"      --check-config     load and check the configuration, then exit\n"
		"      --verify DATA_DIR  check every log segment of a data directory, print\n"
		"                         what is there (records, index range, damage with\n"
		"                         file and offset); exit 0 only when all is sound\n"
		"      --verify FILE      check a backup (corralctl backup) whole: checksum,\n"
		"                         contents; print its zxid and cluster\n"
		"  -h, --help             show this help\n"
		"  -V, --version          show the version\n");
}

/* --verify: read-only; safe beside a running corrald. */
static int verify_data_dir(const char *dir)
{
	struct datadir_meta meta;
	char why[512] = "";
	int m = datadir_meta_read(dir, &meta, why, sizeof(why));
	if (m < 0 && m != -ENOENT)
		printf("DAMAGED: %s\n", why);
	else if (m == -ENOENT)
		printf("%s/raft.meta: missing (a new or incomplete data directory)\n", dir);
	const struct wal_identity *id = m == 0 ? &meta.identity : NULL;
	int r = wal_verify(dir, id, stdout);
	int s = snapshot_verify(dir, id, stdout);
	if (r == 0 && m < 0 && m != -ENOENT)
		r = m;
	if (r == 0 && s < 0)
		r = s;
	if (r == 0)
		printf("%s: sound\n", dir);
	return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* --verify: a data directory, or a backup file. */
static int verify(const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode))
		return tool_verify_backup(path);
	return verify_data_dir(path);
}

static int ensure_data_dir(const char *dir)
{
	struct stat st;
	if (stat(dir, &st) == 0)
		return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	if (errno != ENOENT)
		return -errno;
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* The sockets it really listens on: socket activation replaces client.listen. */
static void log_started(struct server *srv)
{
	char addrs[512] = "";
	for (size_t i = 0; i < srv->listeners.count; i++) {
		const struct listener *l = &srv->listeners.list[i];
		size_t n = strlen(addrs);
		snprintf(addrs + n, sizeof(addrs) - n, "%s%s%s", i ? ", " : "", l->name,
			 l->adopted ? " (from systemd)" : "");
	}
	for (size_t i = 0; i < srv->tls_listeners.count; i++) {
		size_t n = strlen(addrs);
		snprintf(addrs + n, sizeof(addrs) - n, "%s%s (TLS)", n ? ", " : "",
			 srv->tls_listeners.list[i].name);
	}
	log_event(LOG_NOTICE, { .message_id = LOG_MSGID_STARTED },
		  "corrald %s serving clients on %s, data directory %s", CORRAL_VERSION, addrs,
		  srv->cfg->data_dir);
}

/* What the command line asked for. */
struct options {
	const char *config_path;	/* -c; NULL: the default place */
	const char *data_dir;		/* -d */
	char **listen;			/* -l, listen_count of them */
	size_t listen_count;
	bool check_only;		/* --check-config */
};

/* Parses the command line. Returns -1 to go on, or the exit status
 * (--help, --version, --verify, a usage error). */
static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option long_options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "listen", required_argument, NULL, 'l' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "verify", required_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "c:d:l:hV", long_options, NULL)) != -1) {
		switch (opt) {
		case 'c': o->config_path = optarg; break;
		case 'd': o->data_dir = optarg; break;
		case 'l': o->listen[o->listen_count++] = optarg; break;
		case 'C': o->check_only = true; break;
		case 'v': return verify(optarg);
		case 'h': usage(stdout); return EXIT_SUCCESS;
		case 'V': printf("corrald %s\n", CORRAL_VERSION); return EXIT_SUCCESS;
		default: usage(stderr); return EXIT_CONFIG;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "corrald: unexpected argument '%s'\n", argv[optind]);
		return EXIT_CONFIG;
	}
	return -1;
}

/* -l replaces client.listen. */
static int override_listen(struct server_config *cfg, const struct options *o, char *error,
			   size_t error_size)
{
	for (size_t i = 0; i < cfg->listen_count; i++)
		free(cfg->listen[i].host);
	free(cfg->listen);
	cfg->listen = calloc(o->listen_count, sizeof(*cfg->listen));
	cfg->listen_count = 0;
	cfg->listen_given = true;
	if (!cfg->listen)
		return -ENOMEM;
	for (size_t i = 0; i < o->listen_count; i++) {
		if (config_parse_listen_address(o->listen[i], &cfg->listen[i]) < 0) {
			snprintf(error, error_size, "--listen %s: not HOST:PORT (HOST numeric, [IPv6] or a host name)",
				 o->listen[i]);
			return -EINVAL;
		}
		cfg->listen_count++;
	}
	return 0;
}

/* corral.yaml (or the built-in defaults when the default file is missing),
 * then the command line's overrides. Returns 0 or a negative errno with
 * the cause in error. */
static int load_configuration(struct server_config *cfg, const struct options *o, char *error,
			      size_t error_size)
{
	int r = config_init_defaults(cfg);
	if (r < 0) {
		snprintf(error, error_size, "out of memory");
		return r;
	}
	r = config_load(cfg, o->config_path ? o->config_path : CONFIG_DEFAULT_PATH, error,
			error_size);
	if (r == -ENOENT && !o->config_path)
		r = 0;	/* no file at the default place: built-in defaults */
	if (r == 0 && o->data_dir) {
		free(cfg->data_dir);
		cfg->data_dir = strdup(o->data_dir);
		r = cfg->data_dir ? 0 : -ENOMEM;
	}
	if (r == 0 && o->listen_count > 0)
		r = override_listen(cfg, o, error, error_size);
	if (r == 0)
		r = config_finish(cfg, error, error_size);
	if (r == 0 && cfg->tls_listen_count > 0) {
		/* The certificate, key and CA load (--check-config says so too). */
		SSL_CTX *ctx = NULL;
		r = tls_context_new(cfg, &ctx, error, error_size);
		tls_context_free(ctx);
	}
	if (r == -ENOMEM)
		snprintf(error, error_size, "out of memory");
	return r;
}

/* Signals arrive through a signalfd read on the ring, like all other
 * events. Returns the signalfd, or -1. */
static int block_signals(void)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &mask, SFD_CLOEXEC);
}

/* Listens on systemd's sockets, or on client.listen. */
static int listen_for_clients(struct server *srv, struct fdstore *st)
{
	size_t n = st->socket_count;
	if (n > 0)
		log_info("listening on %zu socket%s passed by systemd; client.listen is not used", n,
			 n == 1 ? "" : "s");
	int r = server_listen(srv, st->sockets, n, st->kept, st->kept_count);
	fdstore_listeners_done(st);
	return r;
}

/* The connections a previous process stored, taken back (or closed); an
 * ensemble member's are held until it has caught up (handover_hold.h). */
static void take_clients_back(struct server *srv, struct fdstore *st)
{
	struct handover_result res;
	if (st->conn_count == 0 && !st->image)
		return;
	if (srv->cfg->in_ensemble && st->conn_count > 0)
		server_hold_clients(srv, st->image, st->image_len, st->conns, st->conn_count);
	else {
		handover_restore(&srv->path, st->image, st->image_len, st->conns, st->conn_count,
				 fdstore_unstore, NULL, &res);
		handover_log_result(&res, st->conn_count);
	}
	fdstore_image_done(st);
}

/* The store is on (fdstore.h): sized for client.max_connections. */
static void check_store(struct fdstore *st, const struct server_config *cfg)
{
	if (st->max && cfg->max_connections + 1 > st->max)
		log_warning("FileDescriptorStoreMax=%zu keeps fewer than client.max_connections "
			    "(%u) and the state: connections beyond are closed on restart",
			    st->max, cfg->max_connections);
}

/* SIGTERM with the store on: the listening sockets, the connections and
 * their state go to systemd. */
static void hand_clients_over(struct server *srv, size_t max)
{
	struct handover_image img;
	size_t room = max > srv->kept_listener_count + 1 ? max - srv->kept_listener_count - 1 : 0;
	if (handover_save(&srv->path, &img, room) < 0) {
		log_error("out of memory writing the hand-over state: the clients reconnect");
		return;
	}
	size_t stored = fdstore_push(&img, srv->kept_listeners, srv->kept_listener_count);
	log_notice("%zu client connections handed over to systemd's fd store (state %zu bytes)",
		   stored, img.bytes.len);
	handover_image_free(&img);
}

/* The daemon: the log replayed, the clients served until a signal. */
static int run(struct server_config *cfg, const struct options *o)
{
	char error[CONFIG_ERROR_MAX];
	struct server *srv = calloc(1, sizeof(*srv));
	struct service svc = {
		.srv = srv,
		.config_path = o->config_path ? o->config_path : CONFIG_DEFAULT_PATH,
		.config_path_given = o->config_path != NULL,
		.data_dir_overridden = o->data_dir != NULL,
		.listen_overridden = o->listen_count > 0,
	};
	struct server_hooks hooks;
	struct signal_watch sigw = { .op.complete = on_signal, .svc = &svc };
	struct fdstore st;
	if (!srv)
		return EXIT_FAILURE;
	if (fdstore_take(&st, error, sizeof(error)) < 0) {
		log_error("%s", error);
		fdstore_free(&st);
		free(srv);
		return EXIT_LISTEN;
	}
	check_store(&st, cfg);
	svc.fdstore_max = st.max;
	service_hooks(&svc, &hooks);
	hooks.conn_unstored = fdstore_unstore;
	service_notify_recovering();
	int r = server_init(srv, cfg, &hooks, error, sizeof(error));
	if (r < 0) {
		log_error("fatal: %s", error);
		audit_server(cfg, "serverStart", "failure");
		fdstore_free(&st);
		free(srv);
		if (strstr(error, "io_uring"))
			return EXIT_IO_URING;
		return r == -ENOMEM ? EXIT_FAILURE : EXIT_DATA_DIR;
	}
	/* Recovery freed what it read and decoded in malloc's heap; the nodes
	 * it made are in the tree's slabs, which never reuse that: give the
	 * free pages back (with 1,000,000 znodes after a crash, some 50 MB). */
	malloc_trim(0);
	sigw.fd = block_signals();
	if (sigw.fd < 0 || listen_for_clients(srv, &st) < 0) {
		audit_server(cfg, "serverStart", "failure");
		if (sigw.fd >= 0)
			close(sigw.fd);
		fdstore_free(&st);
		server_free(srv);
		free(srv);
		return EXIT_LISTEN;
	}
	take_clients_back(srv, &st);
	fdstore_free(&st);
	arm_signals(&sigw);
	service_notify_ready(&svc);
	log_started(srv);
	audit_server(srv->cfg, "serverStart", "success");

	r = server_run(srv);
	int status = r < 0 ? EXIT_FAILURE : srv->exit_status;
	if (r == 0 && srv->handing_over) {
		hand_clients_over(srv, svc.fdstore_max);
#ifndef __SANITIZE_ADDRESS__
		/* The next corrald starts once this one has exited: nothing is
		 * freed (a sanitizer build frees all, so leaks still show). */
		server_leave(srv);
		log_notice("corrald stopped");
		_exit(status);
#endif
	}
	log_notice("corrald stopped");
	close(sigw.fd);
	server_free(srv);
	free(srv);
	return status;
}

int main(int argc, char **argv)
{
	struct options o = { .listen = calloc((size_t)argc, sizeof(char *)) };
	struct server_config cfg;
	char error[CONFIG_ERROR_MAX];

	if (!o.listen)
		return EXIT_FAILURE;
	/* The commands on files, without a server. */
	if (argc > 1 && strcmp(argv[1], "import-zookeeper") == 0) {
		free(o.listen);
		return tool_import_zookeeper(argc - 1, argv + 1);
	}
	if (argc > 1 && strcmp(argv[1], "export-zookeeper") == 0) {
		free(o.listen);
		return tool_export_zookeeper(argc - 1, argv + 1);
	}
	if (argc > 1 && (strcmp(argv[1], "dump") == 0 || strcmp(argv[1], "restore") == 0)) {
		free(o.listen);
		return strcmp(argv[1], "dump") == 0 ? tool_dump(argc - 1, argv + 1)
						    : tool_restore(argc - 1, argv + 1);
	}
	int status = parse_options(argc, argv, &o);
	if (status >= 0) {
		free(o.listen);
		return status;
	}
	log_setup(LOG_LEVEL_INFO);
	int r = load_configuration(&cfg, &o, error, sizeof(error));
	if (r < 0) {
		log_error("configuration error: %s", error);
		status = EXIT_CONFIG;
	} else if (o.check_only) {
		printf("%s: configuration is valid\n",
		       cfg.source_path ? cfg.source_path : "(built-in defaults)");
		status = EXIT_SUCCESS;
	} else if ((r = ensure_data_dir(cfg.data_dir)) < 0) {
		log_error("data directory %s: %s", cfg.data_dir, strerror(-r));
		audit_server(&cfg, "serverStart", "failure");
		status = EXIT_LISTEN;
	} else {
		log_setup(cfg.log_level);
		status = run(&cfg, &o);
	}
	config_free(&cfg);
	free(o.listen);
	return status;
}
