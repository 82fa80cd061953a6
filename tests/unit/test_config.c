/* test_config: config.c's defaults, loading of corral.yaml, its error messages
 * ("FILE:LINE: KEY: message"), config_finish and config_parse_listen_address.
 * Each case writes its YAML to a temporary file (under $TMPDIR or /tmp). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"
#include "fourletter.h"

struct loaded {
	struct server_config cfg;
	char *path;
	char error[CONFIG_ERROR_MAX];
	int r;
};

static char *write_temp(const char *text)
{
	const char *dir = getenv("TMPDIR");
	char *path;

	if (!dir || !*dir)
		dir = "/tmp";
	assert_true(asprintf(&path, "%s/test_config.XXXXXX", dir) > 0);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	return path;
}

/* Loads text over the defaults into t. */
static void load(struct loaded *t, const char *text)
{
	assert_int_equal(config_init_defaults(&t->cfg), 0);
	t->path = write_temp(text);
	t->error[0] = '\0';
	t->r = config_load(&t->cfg, t->path, t->error, sizeof(t->error));
}

static void loaded_free(struct loaded *t)
{
	unlink(t->path);
	free(t->path);
	config_free(&t->cfg);
}

/* Loads text, which must succeed. */
static void load_ok(struct loaded *t, const char *text)
{
	load(t, text);
	if (t->r != 0)
		print_error("unexpected error %d: %s\n", t->r, t->error);
	assert_int_equal(t->r, 0);
}

/* text must be refused with "FILE:LINE: KEY: ..." (no "KEY: " when key is
 * NULL) and the message must contain needle. */
static void assert_refused(const char *text, unsigned line, const char *key, const char *needle)
{
	struct loaded t;
	char prefix[512];

	load(&t, text);
	snprintf(prefix, sizeof(prefix), "%s:%u: %s%s", t.path, line, key ? key : "", key ? ": " : "");
	bool ok = t.r == -EINVAL && strncmp(t.error, prefix, strlen(prefix)) == 0 &&
		  strstr(t.error + strlen(prefix), needle);
	if (!ok)
		print_error("for:\n%s\nexpected -EINVAL and \"%s...%s...\"\ngot %d and \"%s\"\n",
			    text, prefix, needle, t.r, t.error);
	loaded_free(&t);
	assert_true(ok);
}

static void assert_config_equal(const struct server_config *a, const struct server_config *b)
{
	assert_string_equal(a->data_dir, b->data_dir);
	assert_int_equal(a->log_level, b->log_level);
	assert_int_equal(a->listen_count, b->listen_count);
	for (size_t i = 0; i < a->listen_count; i++) {
		assert_string_equal(a->listen[i].host, b->listen[i].host);
		assert_int_equal(a->listen[i].port, b->listen[i].port);
	}
	assert_int_equal(a->max_connections, b->max_connections);
	assert_int_equal(a->max_connections_per_address, b->max_connections_per_address);
	assert_int_equal(a->max_frame_bytes, b->max_frame_bytes);
	assert_int_equal(a->max_outstanding_requests, b->max_outstanding_requests);
	assert_int_equal(a->max_output_bytes, b->max_output_bytes);
	assert_int_equal(a->four_letter_words, b->four_letter_words);
	assert_int_equal(a->tick_time_ms, b->tick_time_ms);
	assert_int_equal(a->min_session_timeout_ms, b->min_session_timeout_ms);
	assert_int_equal(a->max_session_timeout_ms, b->max_session_timeout_ms);
	assert_int_equal(a->max_sessions, b->max_sessions);
	assert_int_equal(a->max_watches_per_session, b->max_watches_per_session);
	assert_int_equal(a->extended_types, b->extended_types);
	assert_int_equal(a->container_check_interval_ms, b->container_check_interval_ms);
	assert_int_equal(a->container_max_per_minute, b->container_max_per_minute);
	assert_int_equal(a->keep_snapshots, b->keep_snapshots);
	assert_int_equal(a->archive_keep_snapshots, b->archive_keep_snapshots);
	assert_true((a->archive_dir == NULL) == (b->archive_dir == NULL));
	if (a->archive_dir)
		assert_string_equal(a->archive_dir, b->archive_dir);
	assert_int_equal(!!a->admin_listen.host, !!b->admin_listen.host);
	if (a->admin_listen.host) {
		assert_string_equal(a->admin_listen.host, b->admin_listen.host);
		assert_int_equal(a->admin_listen.port, b->admin_listen.port);
	}
	assert_int_equal(a->admin_max_connections, b->admin_max_connections);
	assert_int_equal(a->admin_max_connections_per_address, b->admin_max_connections_per_address);
	assert_int_equal(a->admin_timeout_ms, b->admin_timeout_ms);
	if (a->super_digest || b->super_digest) {
		assert_non_null(a->super_digest);
		assert_non_null(b->super_digest);
		assert_string_equal(a->super_digest, b->super_digest);
	}
}

static void assert_equals_defaults(const struct server_config *cfg)
{
	struct server_config defaults;

	assert_int_equal(config_init_defaults(&defaults), 0);
	assert_config_equal(cfg, &defaults);
	config_free(&defaults);
}

static void test_defaults_are_the_documented_values(void **state)
{
	struct server_config cfg;

	(void)state;
	assert_int_equal(config_init_defaults(&cfg), 0);
	assert_null(cfg.source_path);
	assert_string_equal(cfg.data_dir, "/var/lib/corral");
	assert_int_equal(cfg.log_level, LOG_LEVEL_INFO);
	assert_int_equal(cfg.listen_count, 1);
	assert_string_equal(cfg.listen[0].host, "127.0.0.1");
	assert_int_equal(cfg.listen[0].port, 2181);
	assert_int_equal(cfg.max_connections, 4096);
	assert_int_equal(cfg.max_connections_per_address, 1024);
	assert_int_equal(cfg.max_frame_bytes, 1048575);
	assert_int_equal(cfg.max_outstanding_requests, 1000);
	assert_int_equal(cfg.max_output_bytes, 16777216);
	assert_int_equal(cfg.four_letter_words,
			 1u << FLW_RUOK | 1u << FLW_SRVR | 1u << FLW_STAT | 1u << FLW_MNTR | 1u << FLW_ISRO |
			 1u << FLW_CONF | 1u << FLW_ENVI | 1u << FLW_DIRS | 1u << FLW_WCHS |
			 1u << FLW_HASH);
	assert_int_equal(cfg.tick_time_ms, 2000);
	assert_int_equal(cfg.min_session_timeout_ms, 0);
	assert_int_equal(cfg.max_session_timeout_ms, 0);
	assert_int_equal(cfg.max_sessions, 100000);
	assert_int_equal(cfg.max_watches_per_session, 1000000);
	assert_true(cfg.extended_types);
	assert_int_equal(cfg.container_check_interval_ms, 60000);
	assert_int_equal(cfg.container_max_per_minute, 10000);
	assert_null(cfg.super_digest);
	assert_null(cfg.archive_dir);
	assert_int_equal(cfg.archive_keep_snapshots, 24);
	assert_null(cfg.admin_listen.host);	/* no HTTP endpoint unless asked */
	assert_int_equal(cfg.admin_max_connections, 64);
	assert_int_equal(cfg.admin_max_connections_per_address, 16);
	assert_int_equal(cfg.admin_timeout_ms, 10000);
	config_free(&cfg);
}

static void test_admin_section(void **state)
{
	struct loaded t;

	(void)state;
	load_ok(&t, "admin:\n  listen: \"127.0.0.1:7000\"\n  max_connections: 8\n"
		"  max_connections_per_address: 2\n  timeout_ms: 5000\n");
	assert_string_equal(t.cfg.admin_listen.host, "127.0.0.1");
	assert_int_equal(t.cfg.admin_listen.port, 7000);
	assert_int_equal(t.cfg.admin_max_connections, 8);
	assert_int_equal(t.cfg.admin_max_connections_per_address, 2);
	assert_int_equal(t.cfg.admin_timeout_ms, 5000);
	loaded_free(&t);
	load_ok(&t, "admin:\n  listen: null\n");
	assert_null(t.cfg.admin_listen.host);
	loaded_free(&t);
	assert_refused("admin:\n  listen: \"local host:7000\"\n", 2, "admin.listen", "nor a host name");
	assert_refused("admin:\n  timeout_ms: 10\n", 2, "admin.timeout_ms", "");
	assert_refused("admin:\n  port: 7000\n", 2, "admin.port", "");
}

static void test_shipped_file_loads_and_equals_defaults(void **state)
{
	const char *root = getenv("CORRAL_SOURCE_ROOT");
	struct server_config cfg;
	char error[CONFIG_ERROR_MAX] = "";
	char *path;

	(void)state;
	if (!root || !*root)
		skip();
	assert_true(asprintf(&path, "%s/etc/corral.yaml", root) > 0);
	assert_int_equal(config_init_defaults(&cfg), 0);
	int r = config_load(&cfg, path, error, sizeof(error));
	if (r != 0)
		print_error("%s\n", error);
	assert_int_equal(r, 0);
	assert_string_equal(cfg.source_path, path);
	assert_equals_defaults(&cfg);
	free(path);
	config_free(&cfg);
}

static void test_empty_or_comment_only_file_keeps_defaults(void **state)
{
	static const char *const texts[] = { "", "\n\n", "# nothing here\n  # indented\n",
					     "---\n", "---\n# only a comment\n...\n" };
	struct loaded t;

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		load_ok(&t, texts[i]);
		assert_string_equal(t.cfg.source_path, t.path);
		assert_equals_defaults(&t.cfg);
		loaded_free(&t);
	}
}

static void test_empty_section_keeps_defaults(void **state)
{
	struct loaded t;

	(void)state;
	load_ok(&t, "client:\n  # max_connections: 10\nsession: ~\nznode: {}\n");
	assert_equals_defaults(&t.cfg);
	loaded_free(&t);
}

static void test_missing_file_returns_enoent_and_names_the_file(void **state)
{
	struct server_config cfg;
	char error[CONFIG_ERROR_MAX];

	(void)state;
	assert_int_equal(config_init_defaults(&cfg), 0);
	int r = config_load(&cfg, "/nonexistent/corral.yaml", error, sizeof(error));
	assert_int_equal(r, -ENOENT);
	assert_string_equal(error, "/nonexistent/corral.yaml: cannot open: No such file or directory");
	assert_equals_defaults(&cfg);
	config_free(&cfg);
}

static void test_directory_is_refused(void **state)
{
	struct server_config cfg;
	char error[CONFIG_ERROR_MAX];

	(void)state;
	assert_int_equal(config_init_defaults(&cfg), 0);
	assert_int_equal(config_load(&cfg, "/", error, sizeof(error)), -EISDIR);
	assert_string_equal(error, "/: cannot open: Is a directory");
	config_free(&cfg);
}

static void test_every_key_replaces_its_default(void **state)
{
	struct loaded t;

	(void)state;
	load_ok(&t,
		"data_dir: /srv/corral\n"
		"log_level: debug\n"
		"client:\n"
		"  listen: [\"10.0.0.1:2281\", \"[::]:2182\"]\n"
		"  max_connections: 10\n"
		"  max_connections_per_address: 5\n"
		"  max_frame_bytes: 1024\n"
		"  max_outstanding_requests: 100000\n"
		"  max_output_bytes: 4294967296\n"
		"  four_letter_words: [ruok, mntr]\n"
		"session:\n"
		"  tick_time_ms: 500\n"
		"  min_timeout_ms: 1000\n"
		"  max_timeout_ms: 2147483647\n"
		"  max_sessions: 1\n"
		"  max_watches: 7\n"
		"znode:\n"
		"  extended_types: false\n"
		"  container_check_interval_ms: 10\n"
		"  container_max_per_minute: 1000000\n"
		"auth:\n"
		"  super_digest: \"super:D/InIHSb7yEEbrWz8b9l71RjZJU=\"\n");
	const struct server_config *c = &t.cfg;
	assert_string_equal(c->data_dir, "/srv/corral");
	assert_int_equal(c->log_level, LOG_LEVEL_DEBUG);
	assert_int_equal(c->listen_count, 2);
	assert_string_equal(c->listen[0].host, "10.0.0.1");
	assert_int_equal(c->listen[0].port, 2281);
	assert_string_equal(c->listen[1].host, "::");
	assert_int_equal(c->listen[1].port, 2182);
	assert_int_equal(c->max_connections, 10);
	assert_int_equal(c->max_connections_per_address, 5);
	assert_int_equal(c->max_frame_bytes, 1024);
	assert_int_equal(c->max_outstanding_requests, 100000);
	assert_int_equal(c->max_output_bytes, UINT64_C(4294967296));
	assert_int_equal(c->four_letter_words, (1u << FLW_RUOK) | (1u << FLW_MNTR));
	assert_int_equal(c->tick_time_ms, 500);
	assert_int_equal(c->min_session_timeout_ms, 1000);
	assert_int_equal(c->max_session_timeout_ms, 2147483647);
	assert_int_equal(c->max_sessions, 1);
	assert_int_equal(c->max_watches_per_session, 7);
	assert_false(c->extended_types);
	assert_int_equal(c->container_check_interval_ms, 10);
	assert_int_equal(c->container_max_per_minute, 1000000);
	assert_string_equal(c->super_digest, "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
	loaded_free(&t);
}

static void test_unknown_key_names_file_line_and_key(void **state)
{
	(void)state;
	assert_refused("session:\n  tick_time_ms: 100\n  no_such_key: 1\n", 3,
		       "session.no_such_key", "unknown key");
	assert_refused("data_dir: /x\n\nlisten: 127.0.0.1:2181\n", 3, "listen", "unknown key");
	assert_refused("client:\n  listen: 127.0.0.1:1\nserver:\n  id: 1\n", 3, "server",
		       "unknown key");
}

static void test_mapping_where_scalar_expected_is_a_type_error(void **state)
{
	(void)state;
	assert_refused("data_dir:\n  path: /x\n", 2, "data_dir", "expected a string, got a mapping");
	assert_refused("client:\n  max_connections: {a: 1}\n", 2, "client.max_connections",
		       "expected an integer, got a mapping");
	assert_refused("log_level: [info]\n", 1, "log_level", "got a sequence");
	assert_refused("client:\n  listen:\n    a: 1\n", 3, "client.listen", "got a mapping");
}

static void test_sequence_where_mapping_expected_is_a_type_error(void **state)
{
	(void)state;
	assert_refused("client:\n  - listen\n", 2, "client", "expected a mapping, got a sequence");
	assert_refused("session: 5\n", 1, "session", "expected a mapping, got a scalar");
}

static void test_top_level_that_is_not_a_mapping_is_refused(void **state)
{
	(void)state;
	assert_refused("# a list\n- data_dir: /x\n", 2, NULL,
		       "expected a mapping of keys at the top level, got a sequence");
	assert_refused("just words\n", 1, NULL, "got a scalar");
}

static void test_non_integer_is_refused(void **state)
{
	static const char *const bad[] = { "12abc", "1.5", "-5", "+5", "0x10", "1e3", "1_000",
					   "\"\"", "''", "true" };
	char text[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "data_dir: /x\nclient:\n  max_frame_bytes: %s\n", bad[i]);
		assert_refused(text, 3, "client.max_frame_bytes",
			       "expected an unsigned decimal integer, got '");
	}
	assert_refused("data_dir: /x\nclient:\n  max_frame_bytes: 12abc\n", 3,
		       "client.max_frame_bytes", "got '12abc'");
	assert_refused("session:\n  max_sessions:\n", 2, "session.max_sessions", "got ''");
}

static void test_out_of_range_value_is_refused(void **state)
{
	(void)state;
	assert_refused("client:\n  max_frame_bytes: 512\n", 2, "client.max_frame_bytes",
		       "out of range: 512 is not in 1024..67108864");
	assert_refused("client:\n  max_frame_bytes: 67108865\n", 2, "client.max_frame_bytes",
		       "1024..67108864");
	assert_refused("client:\n  max_connections: 0\n", 2, "client.max_connections", "1..1000000");
	assert_refused("client:\n  max_output_bytes: 4294967297\n", 2, "client.max_output_bytes",
		       "65536..4294967296");
	assert_refused("client:\n  max_output_bytes: 65535\n", 2, "client.max_output_bytes",
		       "out of range");
	assert_refused("session:\n  tick_time_ms: 60001\n", 2, "session.tick_time_ms", "1..60000");
	assert_refused("session:\n  min_timeout_ms: 2147483648\n", 2, "session.min_timeout_ms",
		       "0..2147483647");
	assert_refused("session:\n  max_sessions: 10000001\n", 2, "session.max_sessions",
		       "1..10000000");
	assert_refused("client:\n  max_outstanding_requests: 100001\n", 2,
		       "client.max_outstanding_requests", "1..100000");
	assert_refused("znode:\n  container_check_interval_ms: 9\n", 2,
		       "znode.container_check_interval_ms", "10..86400000");
}

static void test_integer_overflow_is_out_of_range(void **state)
{
	(void)state;
	assert_refused("client:\n  max_output_bytes: 18446744073709551616\n", 2,
		       "client.max_output_bytes", "out of range: 18446744073709551616 is not in");
	assert_refused("client:\n  max_connections: 4294967297\n", 2, "client.max_connections",
		       "out of range");
	assert_refused("client:\n  max_frame_bytes: 99999999999999999999999999999\n", 2,
		       "client.max_frame_bytes", "out of range");
}

static void test_range_bounds_are_inclusive(void **state)
{
	struct loaded t;

	(void)state;
	load_ok(&t, "client:\n  max_output_bytes: 65536\n  max_frame_bytes: 67108864\n"
		    "session:\n  tick_time_ms: 1\n  max_timeout_ms: 0\n");
	assert_int_equal(t.cfg.max_output_bytes, 65536);
	assert_int_equal(t.cfg.max_frame_bytes, 67108864);
	assert_int_equal(t.cfg.tick_time_ms, 1);
	loaded_free(&t);
}

static void test_duplicate_key_is_refused_at_its_second_line(void **state)
{
	(void)state;
	assert_refused("data_dir: /a\nlog_level: info\ndata_dir: /b\n", 3, "data_dir",
		       "duplicate key (first given at line 1)");
	assert_refused("client:\n  max_connections: 1\n  listen: 127.0.0.1:1\n  max_connections: 2\n",
		       4, "client.max_connections", "duplicate key (first given at line 2)");
}

static void test_yaml_syntax_error_names_the_line(void **state)
{
	(void)state;
	assert_refused("data_dir: /x\nclient:\n  listen: [127.0.0.1:1\n", 4, NULL, "YAML syntax error: ");
	assert_refused("data_dir: /x\nlog_level: info: debug\n", 2, NULL, "YAML syntax error: ");
	assert_refused("client:\n  listen: 127.0.0.1:1\n max_connections: 1\n", 3, NULL,
		       "YAML syntax error: ");
	assert_refused("data_dir: \"/x\n", 2, NULL, "YAML syntax error: ");
	assert_refused("data_dir: *nowhere\n", 1, NULL, "YAML syntax error: ");
	assert_refused("data_dir: /x\n\nlog_level: \xc3\x28\n", 3, NULL, "UTF-8");
}

static void test_second_document_is_refused(void **state)
{
	(void)state;
	assert_refused("data_dir: /x\n---\nlog_level: info\n", 3, NULL, "second YAML document");
}

static void test_non_string_key_is_refused(void **state)
{
	(void)state;
	assert_refused("client:\n  ? [a, b]\n  : 1\n", 2, "client", "a key must be a string");
}

static void test_data_dir_must_not_be_empty(void **state)
{
	(void)state;
	assert_refused("data_dir:\n", 1, "data_dir", "must not be empty");
	assert_refused("log_level: info\ndata_dir: \"\"\n", 2, "data_dir", "must not be empty");
	assert_refused("data_dir: \"/a\\0b\"\n", 1, "data_dir", "NUL");
}

static void test_log_level_takes_the_five_syslog_names(void **state)
{
	static const struct { const char *name; enum log_level level; } levels[] = {
		{ "err", LOG_LEVEL_ERR }, { "warning", LOG_LEVEL_WARNING },
		{ "notice", LOG_LEVEL_NOTICE }, { "info", LOG_LEVEL_INFO },
		{ "debug", LOG_LEVEL_DEBUG },
	};
	char text[64];
	struct loaded t;

	(void)state;
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		snprintf(text, sizeof(text), "log_level: %s\n", levels[i].name);
		load_ok(&t, text);
		assert_int_equal(t.cfg.log_level, levels[i].level);
		loaded_free(&t);
	}
	assert_refused("log_level: verbose\n", 1, "log_level",
		       "expected err, warning, notice, info or debug, got 'verbose'");
	assert_refused("log_level: 7\n", 1, "log_level", "got '7'");
}

static void test_listen_as_a_list(void **state)
{
	struct loaded t;

	(void)state;
	load_ok(&t, "client:\n  listen:\n    - 127.0.0.1:2181\n    - \"0.0.0.0:3000\"\n"
		    "    - \"[::1]:65535\"\n");
	assert_int_equal(t.cfg.listen_count, 3);
	assert_string_equal(t.cfg.listen[0].host, "127.0.0.1");
	assert_int_equal(t.cfg.listen[0].port, 2181);
	assert_string_equal(t.cfg.listen[1].host, "0.0.0.0");
	assert_int_equal(t.cfg.listen[1].port, 3000);
	assert_string_equal(t.cfg.listen[2].host, "::1");
	assert_int_equal(t.cfg.listen[2].port, 65535);
	loaded_free(&t);
}

static void test_listen_as_a_single_string(void **state)
{
	struct loaded t;

	(void)state;
	load_ok(&t, "client:\n  listen: 192.168.1.10:2182\n");
	assert_int_equal(t.cfg.listen_count, 1);
	assert_string_equal(t.cfg.listen[0].host, "192.168.1.10");
	assert_int_equal(t.cfg.listen[0].port, 2182);
	loaded_free(&t);
}

static void test_listen_ipv6_is_written_in_brackets(void **state)
{
	struct loaded t;

	(void)state;
	load_ok(&t, "client:\n  listen: \"[fe80::1:2]:2181\"\n");
	assert_int_equal(t.cfg.listen_count, 1);
	assert_string_equal(t.cfg.listen[0].host, "fe80::1:2");
	assert_int_equal(t.cfg.listen[0].port, 2181);
	loaded_free(&t);
	assert_refused("client:\n  listen: \"::1:2181\"\n", 2, "client.listen", "in brackets");
}

static void test_listen_bad_entry_names_its_line(void **state)
{
	(void)state;
	assert_refused("client:\n  listen:\n    - 127.0.0.1:2181\n    - local_host!:2181\n", 4,
		       "client.listen", "'local_host!:2181': the host is neither a numeric IPv4 "
		       "address nor a host name");
	assert_refused("client:\n  listen: 127.0.0.1\n", 2, "client.listen", "missing :PORT");
	assert_refused("client:\n  listen: 127.0.0.1:0\n", 2, "client.listen", "1..65535");
	assert_refused("client:\n  listen: [127.0.0.1:65536]\n", 2, "client.listen", "1..65535");
	assert_refused("client:\n  listen:\n    - [127.0.0.1:1]\n", 3, "client.listen",
		       "expected a \"host:port\" string, got a sequence");
}

static void test_listen_must_name_one_address_once(void **state)
{
	struct loaded t;
	char error[CONFIG_ERROR_MAX];

	(void)state;
	assert_refused("client:\n  listen: [1.2.3.4:5, 1.2.3.4:5]\n", 2, "client.listen",
		       "'1.2.3.4:5' is listed twice");
	/* None loads, and is refused unless the TLS port has an address. */
	load_ok(&t, "client:\n  listen: []\n");
	assert_int_equal(config_finish(&t.cfg, error, sizeof(error)), -EINVAL);
	assert_non_null(strstr(error, "client.listen: no address to listen on"));
	loaded_free(&t);
}

static char *secret_temp(const char *text, mode_t mode);

static void test_tls_keys_load_and_finish_wants_certificate_key_and_ca(void **state)
{
	struct loaded t;
	char error[CONFIG_ERROR_MAX], *text;
	char *key_file = secret_temp("-----BEGIN PRIVATE KEY-----\n", 0600);
	char key[256];

	(void)state;
	snprintf(key, sizeof(key), "%s", key_file);
	free(key_file);
	unsetenv("CREDENTIALS_DIRECTORY");
	assert_true(asprintf(&text, "client:\n  listen: []\n  tls:\n    listen: [127.0.0.1:2281]\n"
			     "    certificate: /c.pem\n    private_key: %s\n    client_auth: optional\n"
			     "    min_protocol: TLSv1.3\n    ciphers: HIGH\n"
			     "auth:\n  x509_super_user: CN=admin\n", key) > 0);
	load_ok(&t, text);
	free(text);
	assert_int_equal(t.cfg.tls_listen_count, 1);
	assert_string_equal(t.cfg.tls_private_key, key);
	assert_int_equal(t.cfg.tls_listen[0].port, 2281);
	assert_string_equal(t.cfg.tls_certificate, "/c.pem");
	assert_int_equal(t.cfg.tls_client_auth, TLS_CLIENT_AUTH_OPTIONAL);
	assert_int_equal(t.cfg.tls_min_version, TLS_MIN_1_3);
	assert_string_equal(t.cfg.x509_super_user, "CN=admin");
	assert_int_equal(config_finish(&t.cfg, error, sizeof(error)), -EINVAL);
	assert_non_null(strstr(error, "client.tls.ca: needed"));
	loaded_free(&t);
	load_ok(&t, "client:\n  tls:\n    listen: [127.0.0.1:2281]\n");
	assert_int_equal(config_finish(&t.cfg, error, sizeof(error)), -EINVAL);
	assert_non_null(strstr(error, "client.tls.certificate: needed with client.tls.listen"));
	loaded_free(&t);
	assert_refused("client:\n  tls:\n    client_auth: want\n", 3, "client.tls.client_auth",
		       "expected none, optional or required");
	assert_refused("client:\n  tls:\n    min_protocol: SSLv3\n", 3, "client.tls.min_protocol",
		       "expected TLSv1.2 or TLSv1.3");
	/* The private key is a secret: a key others may read is refused, a
	 * credential needs systemd's directory. */
	char needle[512];
	assert_int_equal(chmod(key, 0640), 0);
	assert_true(asprintf(&text, "client:\n  tls:\n    private_key: %s\n", key) > 0);
	snprintf(needle, sizeof(needle), "%s holds a secret and its group or others may read it "
		 "(mode 0640)", key);
	assert_refused(text, 3, "client.tls.private_key", needle);
	free(text);
	assert_refused("client:\n  tls:\n    private_key: credential:tls-key\n", 3,
		       "client.tls.private_key", "$CREDENTIALS_DIRECTORY is not set");
	unlink(key);
}

static void test_sasl_and_enforce_keys(void **state)
{
	struct loaded t;
	char error[CONFIG_ERROR_MAX];
	char *users = write_temp("# users\nbob: secret\n");
	char *text;

	(void)state;
	assert_non_null(users);
	char path[256];
	snprintf(path, sizeof(path), "%s", users);
	assert_int_equal(chmod(users, 0600), 0);
	assert_true(asprintf(&text, "auth:\n  sasl:\n    users_file: %s\n    super_user: alice\n"
			     "    remove_host_from_principal: true\n"
			     "  enforce:\n    enabled: true\n    schemes: sasl, digest\n", users) > 0);
	load_ok(&t, text);
	assert_string_equal(t.cfg.sasl_users_file, users);
	assert_int_equal(t.cfg.sasl_users_len, strlen("# users\nbob: secret"));
	assert_string_equal(t.cfg.sasl_super_user, "alice");
	assert_true(t.cfg.sasl_remove_host);
	assert_false(t.cfg.sasl_remove_realm);
	assert_true(t.cfg.enforce_auth);
	assert_int_equal(t.cfg.enforce_auth_schemes, AUTH_SCHEME_SASL | AUTH_SCHEME_DIGEST);
	assert_int_equal(config_finish(&t.cfg, error, sizeof(error)), 0);
	loaded_free(&t);
	free(text);
	load_ok(&t, "auth:\n  enforce:\n    enabled: true\n");
	assert_int_equal(config_finish(&t.cfg, error, sizeof(error)), -EINVAL);
	assert_non_null(strstr(error, "auth.enforce.enabled: true needs auth.enforce.schemes"));
	loaded_free(&t);
	assert_refused("auth:\n  enforce:\n    schemes: sasl,kerberos\n", 3, "auth.enforce.schemes",
		       "unknown scheme 'kerberos'");
	assert_int_equal(chmod(users, 0644), 0);
	assert_true(asprintf(&text, "auth:\n  sasl:\n    users_file: %s\n", path) > 0);
	assert_refused(text, 3, "auth.sasl.users_file", "group or others may read it");
	free(text);
	unlink(users);
	free(users);
}

static void test_later_load_replaces_listen(void **state)
{
	struct loaded t;
	char error[CONFIG_ERROR_MAX];

	(void)state;
	load_ok(&t, "client:\n  listen: [10.0.0.1:1, 10.0.0.2:2]\n");
	char *second = write_temp("client:\n  listen: \"[::1]:3\"\n");
	assert_int_equal(config_load(&t.cfg, second, error, sizeof(error)), 0);
	assert_string_equal(t.cfg.source_path, second);
	assert_int_equal(t.cfg.listen_count, 1);
	assert_string_equal(t.cfg.listen[0].host, "::1");
	assert_int_equal(t.cfg.listen[0].port, 3);
	unlink(second);
	free(second);
	loaded_free(&t);
}

static void test_refused_file_leaves_config_unchanged(void **state)
{
	struct loaded t;
	char error[CONFIG_ERROR_MAX];

	(void)state;
	load_ok(&t, "data_dir: /first\nclient:\n  listen: 10.0.0.1:1\n");
	char *bad = write_temp("data_dir: /second\nclient:\n  listen: 10.0.0.2:2\n  bogus: 1\n");
	assert_int_equal(config_load(&t.cfg, bad, error, sizeof(error)), -EINVAL);
	assert_string_equal(t.cfg.source_path, t.path);
	assert_string_equal(t.cfg.data_dir, "/first");
	assert_int_equal(t.cfg.listen_count, 1);
	assert_string_equal(t.cfg.listen[0].host, "10.0.0.1");
	unlink(bad);
	free(bad);
	loaded_free(&t);
}

/* A secret's file (ensemble.secret_file, auth.super_digest_file): read at
 * load, refused naming file and key when others may read it, a credential's
 * name read from $CREDENTIALS_DIRECTORY. */
static char *secret_temp(const char *text, mode_t mode)
{
	char *path = write_temp(text);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static void test_secret_files_are_read_and_checked(void **state)
{
	struct loaded t;
	char text[1024], needle[512];
	(void)state;
	unsetenv("CREDENTIALS_DIRECTORY");
	char *open_secret = secret_temp("a secret that others may read!!\n", 0644);
	char *secret = secret_temp("the ensemble's secret, 32 bytes.\n", 0600);
	char *digest = secret_temp("super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n", 0600);

	snprintf(text, sizeof(text), "ensemble:\n  secret_file: %s\n", open_secret);
	snprintf(needle, sizeof(needle), "%s holds a secret and its group or others may read it "
		 "(mode 0644)", open_secret);
	assert_refused(text, 2, "ensemble.secret_file", needle);
	assert_refused("ensemble:\n  secret_file: credential:peer\n", 2, "ensemble.secret_file",
		       "$CREDENTIALS_DIRECTORY is not set");
	assert_refused("ensemble:\n  peer_auth: sometimes\n", 2, "ensemble.peer_auth",
		       "expected required or optional");

	snprintf(text, sizeof(text), "ensemble:\n  secret_file: %s\n", secret);
	load_ok(&t, text);
	assert_int_equal(t.cfg.ensemble.secret_len, 32);	/* the line end cut */
	assert_memory_equal(t.cfg.ensemble.secret, "the ensemble's secret, 32 bytes.", 32);
	loaded_free(&t);

	/* the credentials directory: a name, or a relative one, and no mode check there */
	char *slash = strrchr(open_secret, '/');
	*slash = '\0';
	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", open_secret, 1), 0);
	snprintf(text, sizeof(text), "ensemble:\n  secret_file: credential:%s\n", slash + 1);
	load_ok(&t, text);
	assert_int_equal(t.cfg.ensemble.secret_len, 31);
	loaded_free(&t);
	unsetenv("CREDENTIALS_DIRECTORY");
	*slash = '/';

	snprintf(text, sizeof(text), "auth:\n  super_digest_file: %s\n", digest);
	load_ok(&t, text);
	assert_string_equal(t.cfg.super_digest, "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
	loaded_free(&t);
	snprintf(text, sizeof(text), "auth:\n  super_digest: \"super:D/InIHSb7yEEbrWz8b9l71RjZJU=\"\n"
		 "  super_digest_file: %s\n", digest);
	assert_refused(text, 3, "auth.super_digest_file", "auth.super_digest gives it already");
	snprintf(text, sizeof(text), "auth:\n  super_digest_file: %s\n", secret);
	assert_refused(text, 2, "auth.super_digest_file", "expected one line \"user:digest\"");
	snprintf(text, sizeof(text), "ensemble:\n  secret_file: %s\n", digest);
	load_ok(&t, text);	/* 35 bytes: long enough */
	loaded_free(&t);
	char *short_secret = secret_temp("too short\n", 0600);
	snprintf(text, sizeof(text), "ensemble:\n  secret_file: %s\n", short_secret);
	assert_refused(text, 2, "ensemble.secret_file", "fewer than 16");

	unlink(open_secret);
	unlink(secret);
	unlink(digest);
	unlink(short_secret);
	free(open_secret);
	free(secret);
	free(digest);
	free(short_secret);
}

static void test_peer_auth_needs_a_secret_and_is_required_with_one(void **state)
{
	struct loaded t;
	char text[1024];
	(void)state;
	char *secret = secret_temp("the ensemble's secret, 32 bytes.", 0600);
	load_ok(&t, "ensemble:\n  id: 1\n  peer_auth: optional\n  members:\n"
		"    - {id: 1, client: \"127.0.0.1:2181\", peer: \"127.0.0.1:2888\"}\n");
	assert_int_equal(config_finish(&t.cfg, t.error, sizeof(t.error)), -EINVAL);
	assert_non_null(strstr(t.error, "ensemble.peer_auth: given without ensemble.secret_file"));
	loaded_free(&t);
	snprintf(text, sizeof(text), "ensemble:\n  id: 1\n  secret_file: %s\n  members:\n"
		 "    - {id: 1, client: \"127.0.0.1:2181\", peer: \"127.0.0.1:2888\"}\n", secret);
	load_ok(&t, text);
	assert_int_equal(config_finish(&t.cfg, t.error, sizeof(t.error)), 0);
	assert_int_equal(t.cfg.ensemble.peer_auth, PEER_AUTH_REQUIRED);
	loaded_free(&t);
	unlink(secret);
	free(secret);
}

static void test_parse_listen_address_takes_numeric_hosts_and_names(void **state)
{
	static const struct { const char *text, *host; uint16_t port; } good[] = {
		{ "127.0.0.1:2181", "127.0.0.1", 2181 }, { "[::1]:2181", "::1", 2181 },
		{ "0.0.0.0:2181", "0.0.0.0", 2181 }, { "[::]:1", "::", 1 },
		{ "255.255.255.255:65535", "255.255.255.255", 65535 },
		{ "localhost:2181", "localhost", 2181 }, { "zk-1.example.com:2888", "zk-1.example.com", 2888 },
		{ "corral-0.corral.default.svc:1", "corral-0.corral.default.svc", 1 },
	};
	static const char *const bad[] = {
		"127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:99999999999",
		"127.0.0.1:-1", "127.0.0.1:+1", "127.0.0.1:21a", "local host:2181", "-a.com:2181",
		"a-.com:1", "a..b:1", ".a:1", "a!:1",
		":2181", "[::1]", "[::1]2181", "[::1:2181", "::1:2181", "[127.0.0.1]:2181",
		"[localhost]:2181", "1.2.3:2181", "", "[]:1",
	};
	struct listen_address a;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(config_parse_listen_address(good[i].text, &a), 0);
		assert_string_equal(a.host, good[i].host);
		assert_int_equal(a.port, good[i].port);
		free(a.host);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		a = (struct listen_address) { .host = NULL, .port = 7 };
		if (config_parse_listen_address(bad[i], &a) != -EINVAL)
			print_error("accepted '%s'\n", bad[i]);
		assert_null(a.host);
		assert_int_equal(a.port, 7);
	}
}

static void test_finish_derives_session_timeouts_from_tick(void **state)
{
	struct loaded t;
	char error[CONFIG_ERROR_MAX];

	(void)state;
	load_ok(&t, "session:\n  tick_time_ms: 300\n");
	assert_int_equal(config_finish(&t.cfg, error, sizeof(error)), 0);
	assert_int_equal(t.cfg.min_session_timeout_ms, 600);
	assert_int_equal(t.cfg.max_session_timeout_ms, 6000);
	loaded_free(&t);

	struct server_config cfg;
	assert_int_equal(config_init_defaults(&cfg), 0);
	assert_int_equal(config_finish(&cfg, error, sizeof(error)), 0);
	assert_int_equal(cfg.min_session_timeout_ms, 4000);
	assert_int_equal(cfg.max_session_timeout_ms, 40000);
	config_free(&cfg);
}

static void test_finish_keeps_explicit_timeouts(void **state)
{
	struct loaded t;
	char error[CONFIG_ERROR_MAX];

	(void)state;
	load_ok(&t, "session:\n  min_timeout_ms: 1000\n  max_timeout_ms: 1000\n");
	assert_int_equal(config_finish(&t.cfg, error, sizeof(error)), 0);
	assert_int_equal(t.cfg.min_session_timeout_ms, 1000);
	assert_int_equal(t.cfg.max_session_timeout_ms, 1000);
	loaded_free(&t);
}

static void test_finish_refuses_min_timeout_greater_than_max(void **state)
{
	struct loaded t;
	char error[CONFIG_ERROR_MAX], expected[512];

	(void)state;
	load_ok(&t, "session:\n  min_timeout_ms: 5000\n  max_timeout_ms: 4000\n");
	assert_int_equal(config_finish(&t.cfg, error, sizeof(error)), -EINVAL);
	snprintf(expected, sizeof(expected),
		 "%s: session.min_timeout_ms: greater than session.max_timeout_ms (5000 > 4000)",
		 t.path);
	assert_string_equal(error, expected);
	loaded_free(&t);

	/* a derived min above an explicit max, with no file */
	struct server_config cfg;
	assert_int_equal(config_init_defaults(&cfg), 0);
	cfg.max_session_timeout_ms = 3000;
	assert_int_equal(config_finish(&cfg, error, sizeof(error)), -EINVAL);
	assert_string_equal(error, "(defaults): session.min_timeout_ms: greater than "
			    "session.max_timeout_ms (4000 > 3000)");
	config_free(&cfg);
}

static void test_four_letter_words_take_a_list_a_string_or_star(void **state)
{
	struct loaded t;

	(void)state;
	load_ok(&t, "client:\n  four_letter_words: [ruok, srvr]\n");
	assert_int_equal(t.cfg.four_letter_words, (1u << FLW_RUOK) | (1u << FLW_SRVR));
	loaded_free(&t);
	load_ok(&t, "client:\n  four_letter_words: \"stat, mntr isro\"\n");
	assert_int_equal(t.cfg.four_letter_words,
			 (1u << FLW_STAT) | (1u << FLW_MNTR) | (1u << FLW_ISRO));
	loaded_free(&t);
	load_ok(&t, "client:\n  four_letter_words: []\n");
	assert_int_equal(t.cfg.four_letter_words, 0);
	loaded_free(&t);
	load_ok(&t, "client:\n  four_letter_words: \"*\"\n");
	assert_int_equal(t.cfg.four_letter_words, FLW_ALL);
	loaded_free(&t);
	assert_refused("client:\n  four_letter_words:\n    - ruok\n    - kill\n", 4,
		       "client.four_letter_words", "unknown four-letter word 'kill'");
	assert_refused("client:\n  four_letter_words: {ruok: 1}\n", 2, "client.four_letter_words",
		       "got a mapping");
}

static void test_extended_types_is_true_or_false(void **state)
{
	struct loaded t;

	(void)state;
	load_ok(&t, "znode:\n  extended_types: false\n");
	assert_false(t.cfg.extended_types);
	loaded_free(&t);
	assert_refused("znode:\n  extended_types: yes\n", 2, "znode.extended_types",
		       "expected true or false, got 'yes'");
}

static void test_super_digest_is_user_colon_digest_or_null(void **state)
{
	struct loaded t;

	(void)state;
	load_ok(&t, "auth:\n  super_digest: super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n");
	assert_string_equal(t.cfg.super_digest, "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
	loaded_free(&t);
	load_ok(&t, "auth:\n  super_digest: null\n");
	assert_null(t.cfg.super_digest);
	loaded_free(&t);
	assert_refused("auth:\n  super_digest: super:test\n", 2, "auth.super_digest",
		       "expected \"user:digest\"");
	assert_refused("auth:\n  super_digest: \":D/InIHSb7yEEbrWz8b9l71RjZJU=\"\n", 2,
		       "auth.super_digest", "expected \"user:digest\"");
}

static void test_error_is_cut_to_the_buffer(void **state)
{
	struct server_config cfg;
	char error[16];
	char *path = write_temp("client:\n  max_frame_bytes: 1\n");

	(void)state;
	assert_int_equal(config_init_defaults(&cfg), 0);
	assert_int_equal(config_load(&cfg, path, error, sizeof(error)), -EINVAL);
	assert_int_equal(strlen(error), sizeof(error) - 1);
	assert_int_equal(config_load(&cfg, path, NULL, 0), -EINVAL);
	unlink(path);
	free(path);
	config_free(&cfg);
}


#define MEMBERS \
	"  members:\n" \
	"    - { id: 1, client: \"127.0.0.1:2181\", peer: \"127.0.0.1:2888\" }\n" \
	"    - { id: 2, client: \"127.0.0.2:2181\", peer: \"127.0.0.2:2888\" }\n" \
	"    - { id: 3, client: \"127.0.0.3:2181\", peer: \"127.0.0.3:2888\", role: observer }\n"

/* Without the section: a standalone server, id 1. */
static void test_no_ensemble_section_is_a_standalone_server(void **state)
{
	struct loaded t;
	(void)state;
	load_ok(&t, "data_dir: /tmp/x\n");
	assert_int_equal(config_finish(&t.cfg, t.error, sizeof(t.error)), 0);
	assert_false(t.cfg.in_ensemble);
	assert_int_equal(t.cfg.ensemble.id, 1);
	assert_null(ensemble_config_self(&t.cfg.ensemble));
	loaded_free(&t);
}

/* The members load with their addresses and roles; this server listens on
 * its member's client address, and its peer address is the member's. */
static void test_ensemble_members_and_defaults_from_the_own_member(void **state)
{
	struct loaded t;
	(void)state;
	load_ok(&t, "ensemble:\n  id: 2\n" MEMBERS);
	assert_int_equal(config_finish(&t.cfg, t.error, sizeof(t.error)), 0);
	assert_true(t.cfg.in_ensemble);
	assert_int_equal(t.cfg.ensemble.id, 2);
	assert_int_equal(t.cfg.ensemble.member_count, 3);
	assert_true(t.cfg.ensemble.members[2].observer);
	assert_false(t.cfg.ensemble.members[0].observer);
	assert_int_equal(t.cfg.listen_count, 1);
	assert_string_equal(t.cfg.listen[0].host, "127.0.0.2");
	assert_int_equal(t.cfg.listen[0].port, 2181);
	assert_string_equal(t.cfg.ensemble.peer_listen.host, "127.0.0.2");
	assert_int_equal(t.cfg.ensemble.peer_listen.port, 2888);
	assert_string_equal(t.cfg.ensemble.cluster_name, "corral");
	assert_int_equal(t.cfg.ensemble.election_timeout_ms, 1000);
	assert_int_equal(t.cfg.ensemble.entry_cache_bytes, 8388608);
	loaded_free(&t);
}

/* client.listen, when given, wins over the member's client address. */
static void test_ensemble_client_listen_given_is_kept(void **state)
{
	struct loaded t;
	(void)state;
	load_ok(&t, "client:\n  listen: \"0.0.0.0:2181\"\nensemble:\n  id: 1\n" MEMBERS);
	assert_int_equal(config_finish(&t.cfg, t.error, sizeof(t.error)), 0);
	assert_string_equal(t.cfg.listen[0].host, "0.0.0.0");
	loaded_free(&t);
}

static void test_ensemble_member_errors_name_line_and_key(void **state)
{
	(void)state;
	assert_refused("ensemble:\n  id: 1\n  members:\n    - { id: 1, client: \"127.0.0.1:1\", "
		       "peer: \"127.0.0.1:2\" }\n    - { id: 1, client: \"127.0.0.1:3\", "
		       "peer: \"127.0.0.1:4\" }\n", 5, "ensemble.members[1]", "id 1 is also");
	assert_refused("ensemble:\n  id: 1\n  members:\n    - { id: 1, client: \"127.0.0.1:1\" }\n",
		       4, "ensemble.members[0]", "no peer address");
	assert_refused("ensemble:\n  id: 1\n  members:\n    - { id: 1, client: \"127.0.0.1:1\", "
		       "peer: \"ho st:2\" }\n", 4, "ensemble.members[0].peer",
		       "neither a numeric IPv4 address nor a host name");
	assert_refused("ensemble:\n  id: 1\n  members:\n    - { id: 1, client: \"127.0.0.1:1\", "
		       "peer: \"127.0.0.1:2\", role: leader }\n", 4, "ensemble.members[0].role",
		       "voter or observer");
	assert_refused("ensemble:\n  id: 1\n  members:\n    - { id: 256, client: \"127.0.0.1:1\", "
		       "peer: \"127.0.0.1:2\" }\n", 4, "ensemble.members[0].id", "1..255");
	assert_refused("ensemble:\n  id: 1\n  members:\n    - { id: 1, port: 3 }\n", 4,
		       "ensemble.members[0].port", "unknown key");
	assert_refused("ensemble:\n  id: 1\n  members: []\n", 3, "ensemble.members",
		       "at least one");
	assert_refused("ensemble:\n  id: 300\n", 2, "ensemble.id", "out of range");
}

/* Cross-key rules: the id must be given; a server not among the members
 * needs its own peer address; at least one voter. */
static void test_ensemble_finish_rules(void **state)
{
	struct loaded t;
	(void)state;
	load_ok(&t, "ensemble:\n" MEMBERS);
	assert_int_equal(config_finish(&t.cfg, t.error, sizeof(t.error)), -EINVAL);
	assert_non_null(strstr(t.error, "ensemble.id: missing"));
	loaded_free(&t);
	load_ok(&t, "ensemble:\n  id: 9\n" MEMBERS);
	assert_int_equal(config_finish(&t.cfg, t.error, sizeof(t.error)), -EINVAL);
	assert_non_null(strstr(t.error, "ensemble.peer_listen"));
	loaded_free(&t);
	load_ok(&t, "ensemble:\n  id: 9\n  peer_listen: \"127.0.0.9:2888\"\n" MEMBERS);
	assert_int_equal(config_finish(&t.cfg, t.error, sizeof(t.error)), 0);
	assert_null(ensemble_config_self(&t.cfg.ensemble));
	loaded_free(&t);
	load_ok(&t, "ensemble:\n  id: 1\n  members:\n    - { id: 1, client: \"127.0.0.1:1\", "
		"peer: \"127.0.0.1:2\", role: observer }\n");
	assert_int_equal(config_finish(&t.cfg, t.error, sizeof(t.error)), -EINVAL);
	assert_non_null(strstr(t.error, "no voter"));
	loaded_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_are_the_documented_values),
		cmocka_unit_test(test_shipped_file_loads_and_equals_defaults),
		cmocka_unit_test(test_empty_or_comment_only_file_keeps_defaults),
		cmocka_unit_test(test_empty_section_keeps_defaults),
		cmocka_unit_test(test_missing_file_returns_enoent_and_names_the_file),
		cmocka_unit_test(test_directory_is_refused),
		cmocka_unit_test(test_every_key_replaces_its_default),
		cmocka_unit_test(test_unknown_key_names_file_line_and_key),
		cmocka_unit_test(test_mapping_where_scalar_expected_is_a_type_error),
		cmocka_unit_test(test_sequence_where_mapping_expected_is_a_type_error),
		cmocka_unit_test(test_top_level_that_is_not_a_mapping_is_refused),
		cmocka_unit_test(test_non_integer_is_refused),
		cmocka_unit_test(test_out_of_range_value_is_refused),
		cmocka_unit_test(test_integer_overflow_is_out_of_range),
		cmocka_unit_test(test_range_bounds_are_inclusive),
		cmocka_unit_test(test_duplicate_key_is_refused_at_its_second_line),
		cmocka_unit_test(test_yaml_syntax_error_names_the_line),
		cmocka_unit_test(test_second_document_is_refused),
		cmocka_unit_test(test_non_string_key_is_refused),
		cmocka_unit_test(test_data_dir_must_not_be_empty),
		cmocka_unit_test(test_log_level_takes_the_five_syslog_names),
		cmocka_unit_test(test_listen_as_a_list),
		cmocka_unit_test(test_listen_as_a_single_string),
		cmocka_unit_test(test_listen_ipv6_is_written_in_brackets),
		cmocka_unit_test(test_listen_bad_entry_names_its_line),
		cmocka_unit_test(test_listen_must_name_one_address_once),
		cmocka_unit_test(test_tls_keys_load_and_finish_wants_certificate_key_and_ca),
		cmocka_unit_test(test_sasl_and_enforce_keys),
		cmocka_unit_test(test_later_load_replaces_listen),
		cmocka_unit_test(test_refused_file_leaves_config_unchanged),
		cmocka_unit_test(test_parse_listen_address_takes_numeric_hosts_and_names),
		cmocka_unit_test(test_secret_files_are_read_and_checked),
		cmocka_unit_test(test_peer_auth_needs_a_secret_and_is_required_with_one),
		cmocka_unit_test(test_finish_derives_session_timeouts_from_tick),
		cmocka_unit_test(test_finish_keeps_explicit_timeouts),
		cmocka_unit_test(test_finish_refuses_min_timeout_greater_than_max),
		cmocka_unit_test(test_four_letter_words_take_a_list_a_string_or_star),
		cmocka_unit_test(test_extended_types_is_true_or_false),
		cmocka_unit_test(test_super_digest_is_user_colon_digest_or_null),
		cmocka_unit_test(test_error_is_cut_to_the_buffer),
		cmocka_unit_test(test_no_ensemble_section_is_a_standalone_server),
		cmocka_unit_test(test_ensemble_members_and_defaults_from_the_own_member),
		cmocka_unit_test(test_ensemble_client_listen_given_is_kept),
		cmocka_unit_test(test_ensemble_member_errors_name_line_and_key),
		cmocka_unit_test(test_ensemble_finish_rules),
		cmocka_unit_test(test_admin_section),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
