/* main: corrald's command line, startup and signals. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "listener.h"
#include "log.h"
#include "server.h"
#include "service.h"
#include "datadir.h"
#include "snapshot.h"
#include "wal.h"

/* Exit statuses beyond 0/1, so a supervisor can tell causes apart. */
#define EXIT_CONFIG 78		/* EX_CONFIG: bad configuration */
#define EXIT_IO_URING 69	/* EX_UNAVAILABLE: io_uring cannot be used here */
#define EXIT_LISTEN 71		/* EX_OSERR: cannot listen or set up */
#define EXIT_DATA_DIR 74	/* EX_IOERR: data directory locked, damaged or foreign */

struct signal_watch {
	struct loop_op op;
	struct server *srv;
	int fd;
	struct signalfd_siginfo info;
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
				  "received %s; finishing the writes in flight and stopping",
				  strsignal((int)w->info.ssi_signo));
			server_request_stop(w->srv);
			break;
		case SIGHUP:
			service_reload(w->srv);
			break;
		}
	}
	/* Keep reading signals while stopping: a second SIGTERM must not kill us
	 * by default action (the signals stay blocked), and SIGHUP is harmless. */
	arm_signals(w);
}

static void arm_signals(struct signal_watch *w)
{
	struct io_uring_sqe *sqe = loop_sqe(&w->srv->loop, &w->op);
	io_uring_prep_read(sqe, w->fd, &w->info, sizeof(w->info), 0);
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: corrald [OPTIONS]\n"
		"A ZooKeeper-compatible coordination service.\n\n"
		"  -c, --config FILE      configuration file (default " CONFIG_DEFAULT_PATH ";\n"
		"                         when that file is missing, built-in defaults)\n"
		"  -d, --data-dir DIR     data directory (overrides data_dir)\n"
		"  -l, --listen HOST:PORT client address (overrides client.listen; repeatable)\n"
		"      --check-config     load and check the configuration, then exit\n"
		"      --verify DATA_DIR  check every log segment of a data directory, print\n"
		"                         what is there (records, index range, damage with\n"
		"                         file and offset); exit 0 only when all is sound\n"
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

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "listen", required_argument, NULL, 'l' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "verify", required_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	const char *config_path = NULL, *data_dir = NULL;
	char **listen_args = calloc((size_t)argc, sizeof(char *));
	size_t listen_count = 0;
	bool check_only = false;
	struct server_config cfg;
	char error[CONFIG_ERROR_MAX];
	int opt, r;

	if (!listen_args)
		return EXIT_FAILURE;
	while ((opt = getopt_long(argc, argv, "c:d:l:hV", options, NULL)) != -1) {
		switch (opt) {
		case 'c': config_path = optarg; break;
		case 'd': data_dir = optarg; break;
		case 'l': listen_args[listen_count++] = optarg; break;
		case 'C': check_only = true; break;
		case 'v': free(listen_args); return verify_data_dir(optarg);
		case 'h': usage(stdout); free(listen_args); return EXIT_SUCCESS;
		case 'V': printf("corrald %s\n", CORRAL_VERSION); free(listen_args); return EXIT_SUCCESS;
		default: usage(stderr); free(listen_args); return EXIT_CONFIG;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "corrald: unexpected argument '%s'\n", argv[optind]);
		free(listen_args);
		return EXIT_CONFIG;
	}

	log_setup(LOG_LEVEL_INFO);
	if (config_init_defaults(&cfg) < 0)
		return EXIT_FAILURE;
	const char *path = config_path ? config_path : CONFIG_DEFAULT_PATH;
	r = config_load(&cfg, path, error, sizeof(error));
	if (r == -ENOENT && !config_path) {
		r = 0;	/* no file at the default place: built-in defaults */
	}
	if (r == 0 && data_dir) {
		free(cfg.data_dir);
		cfg.data_dir = strdup(data_dir);
	}
	if (r == 0 && listen_count > 0) {
		for (size_t i = 0; i < cfg.listen_count; i++)
			free(cfg.listen[i].host);
		free(cfg.listen);
		cfg.listen = calloc(listen_count, sizeof(*cfg.listen));
		cfg.listen_count = 0;
		for (size_t i = 0; cfg.listen && i < listen_count; i++) {
			if (config_parse_listen_address(listen_args[i], &cfg.listen[i]) < 0) {
				snprintf(error, sizeof(error), "--listen %s: not HOST:PORT with a numeric host",
					 listen_args[i]);
				r = -EINVAL;
				break;
			}
			cfg.listen_count++;
		}
		cfg.listen_given = true;
	}
	free(listen_args);
	if (r == 0)
		r = config_finish(&cfg, error, sizeof(error));
	if (r < 0) {
		log_error("configuration error: %s", error);
		config_free(&cfg);
		return EXIT_CONFIG;
	}
	if (check_only) {
		printf("%s: configuration is valid\n", cfg.source_path ? cfg.source_path : "(built-in defaults)");
		config_free(&cfg);
		return EXIT_SUCCESS;
	}
	log_setup(cfg.log_level);

	r = ensure_data_dir(cfg.data_dir);
	if (r < 0) {
		log_error("data directory %s: %s", cfg.data_dir, strerror(-r));
		config_free(&cfg);
		return EXIT_LISTEN;
	}

	/* Signals arrive through a signalfd read on the ring, like all other events. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return EXIT_FAILURE;
	r = server_init(srv, &cfg, error, sizeof(error));
	if (r < 0) {
		log_error("fatal: %s", error);
		free(srv);
		config_free(&cfg);
		if (strstr(error, "io_uring"))
			return EXIT_IO_URING;
		return r == -ENOMEM ? EXIT_FAILURE : EXIT_DATA_DIR;
	}
	srv->service.config_path = config_path ? config_path : CONFIG_DEFAULT_PATH;
	srv->service.config_path_given = config_path != NULL;
	srv->service.data_dir_overridden = data_dir != NULL;
	srv->service.listen_overridden = listen_count > 0;
	struct signal_watch sigw = { .op.complete = on_signal, .srv = srv };
	sigw.fd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sigw.fd < 0 || server_listen(srv) < 0) {
		server_free(srv);
		free(srv);
		config_free(&cfg);
		return EXIT_LISTEN;
	}
	arm_signals(&sigw);

	/* The sockets it really listens on: socket activation replaces client.listen. */
	char addrs[512] = "";
	for (size_t i = 0; i < srv->listener_count; i++) {
		size_t n = strlen(addrs);
		snprintf(addrs + n, sizeof(addrs) - n, "%s%s%s", i ? ", " : "", srv->listeners[i].name,
			 srv->listeners[i].adopted ? " (from systemd)" : "");
	}
	log_event(LOG_NOTICE, { .message_id = LOG_MSGID_STARTED },
		  "corrald %s serving clients on %s, data directory %s", CORRAL_VERSION, addrs,
		  cfg.data_dir);

	r = server_run(srv);
	int status = r < 0 ? EXIT_FAILURE : srv->exit_status;
	log_notice("corrald stopped");
	close(sigw.fd);
	server_free(srv);
	free(srv);
	config_free(&cfg);
	return status;
}
