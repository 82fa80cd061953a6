/* config: owns struct server_config's defaults, the loading of corral.yaml
 * (libyaml's document parser) and the checks that span keys (config_finish).
 *
 * Each key is a row of a table (name, kind, field, range); a section (client,
 * session, ...) is a key whose value is another table. A load works on a copy
 * of the config and replaces it only when the whole file is good, so a refused
 * file leaves *cfg as it was. Errors read "FILE:LINE: KEY: what is wrong". */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <yaml.h>

#include "assertions.h"
#include "config_ensemble.h"
#include "config_yaml.h"
#include "fourletter.h"
#include "sasl.h"
#include "secret.h"
#include "auth.h"

static const char *const log_level_names[] = {
	[LOG_LEVEL_ERR] = "err", [LOG_LEVEL_WARNING] = "warning", [LOG_LEVEL_NOTICE] = "notice",
	[LOG_LEVEL_INFO] = "info", [LOG_LEVEL_DEBUG] = "debug",
};

/* Spelt as in fourletter.c, which the unit tests do not link. */
static const char *const word_names[FLW_COUNT] = {
	[FLW_CONF] = "conf", [FLW_CONS] = "cons", [FLW_CRST] = "crst", [FLW_DIRS] = "dirs",
	[FLW_DUMP] = "dump", [FLW_ENVI] = "envi", [FLW_RUOK] = "ruok", [FLW_SRST] = "srst",
	[FLW_SRVR] = "srvr", [FLW_STAT] = "stat", [FLW_WCHC] = "wchc", [FLW_WCHP] = "wchp",
	[FLW_WCHS] = "wchs", [FLW_MNTR] = "mntr", [FLW_ISRO] = "isro", [FLW_HASH] = "hash",
};

enum key_kind {
	KEY_SECTION,	/* a mapping of the keys in .section */
	KEY_STRING,	/* char *, non-empty */
	KEY_OPTIONAL_STRING,	/* char *, non-empty, or null for none (NULL) */
	KEY_U32,	/* uint32_t in min..max */
	KEY_U64,	/* uint64_t in min..max */
	KEY_BOOL,	/* bool: true|false */
	KEY_LOG_LEVEL,	/* enum log_level by name */
	KEY_LISTEN,	/* listen + listen_count */
	KEY_WORDS,	/* uint32_t bit set of four-letter words */
	KEY_DIGEST,	/* char *, "user:digest" or null for none */
	KEY_ADDRESS,	/* struct listen_address, one "host:port" */
	KEY_MEMBERS,	/* ensemble.members (config_ensemble.c) */
	KEY_DIGEST_FILE,	/* char *, a secret's file (secret.h) holding "user:digest" */
	KEY_SECRET_FILE,	/* ensemble.secret_file (config_ensemble.c) */
	KEY_PEER_AUTH,	/* enum peer_auth_mode: required | optional */
	KEY_TLS_LISTEN,	/* tls_listen + tls_listen_count, may be empty */
	KEY_CHOICE,	/* uint32_t: the index of one of .choices */
	KEY_SASL_USERS_FILE,	/* auth.sasl.users_file: a secret's file of "name: password" lines */
	KEY_SCHEMES,	/* uint32_t AUTH_SCHEME_* bits: "sasl", "digest,sasl", ... */
	KEY_SECRET_PATH,	/* char *, the path of a secret a library reads (secret_locate) */
};

static const char *const client_auth_names[] = { "none", "optional", "required", NULL };
static const char *const tls_version_names[] = { "TLSv1.2", "TLSv1.3", NULL };
static const char *const peer_tls_mode_names[] = { "required", "optional", NULL };

/* A key. live: a reload (SIGHUP) puts its new value in force; the others
 * are named in the reload's log as waiting for a restart, with `restart`
 * saying why when there is more to it. */
struct key {
	const char *name;
	enum key_kind kind;
	size_t offset;
	uint64_t min, max;
	const struct key *section;
	bool live;
	const char *restart;
	const char *const *choices;	/* KEY_CHOICE's names, NULL-terminated */
};

#define FIELD(k, n, f) { .name = n, .kind = k, .offset = offsetof(struct server_config, f) }
#define NUMBER(k, n, f, lo, hi) \
	{ .name = n, .kind = k, .offset = offsetof(struct server_config, f), .min = lo, .max = hi }
#define LIVE_FIELD(k, n, f) \
	{ .name = n, .kind = k, .offset = offsetof(struct server_config, f), .live = true }
#define LIVE_NUMBER(k, n, f, lo, hi) \
	{ .name = n, .kind = k, .offset = offsetof(struct server_config, f), .min = lo, .max = hi, \
	  .live = true }
#define SECTION(n, keys) { .name = n, .kind = KEY_SECTION, .section = keys }
#define LIVE_CHOICE(n, f, names) \
	{ .name = n, .kind = KEY_CHOICE, .offset = offsetof(struct server_config, f), .live = true, \
	  .choices = names }

/* The certificate, key and CA files are read again on every reload (a new
 * SSL_CTX for new connections), changed or not: a renewed certificate is
 * put in place under the same name. */
static const struct key client_tls_keys[] = {
	FIELD(KEY_TLS_LISTEN, "listen", tls_listen),
	LIVE_FIELD(KEY_OPTIONAL_STRING, "certificate", tls_certificate),
	LIVE_FIELD(KEY_SECRET_PATH, "private_key", tls_private_key),
	LIVE_FIELD(KEY_OPTIONAL_STRING, "ca", tls_ca),
	LIVE_CHOICE("client_auth", tls_client_auth, client_auth_names),
	LIVE_CHOICE("min_protocol", tls_min_version, tls_version_names),
	LIVE_FIELD(KEY_OPTIONAL_STRING, "ciphers", tls_ciphers),
	LIVE_FIELD(KEY_OPTIONAL_STRING, "ciphersuites", tls_ciphersuites),
	{ 0 },
};

static const struct key client_keys[] = {
	FIELD(KEY_LISTEN, "listen", listen),
	SECTION("tls", client_tls_keys),
	LIVE_NUMBER(KEY_U32, "max_connections", max_connections, 1, 1000000),
	LIVE_NUMBER(KEY_U32, "max_connections_per_address", max_connections_per_address, 1, 1000000),
	LIVE_NUMBER(KEY_U32, "max_frame_bytes", max_frame_bytes, 1024, 67108864),
	LIVE_NUMBER(KEY_U32, "max_outstanding_requests", max_outstanding_requests, 1, 100000),
	LIVE_NUMBER(KEY_U64, "max_output_bytes", max_output_bytes, 65536, UINT64_C(4294967296)),
	LIVE_FIELD(KEY_WORDS, "four_letter_words", four_letter_words),
	LIVE_NUMBER(KEY_U32, "handshake_timeout_ms", handshake_timeout_ms, 100, 3600000),
	LIVE_NUMBER(KEY_U32, "frame_timeout_ms", frame_timeout_ms, 100, 3600000),
	{ 0 },
};

/* admin.listen: a "host:port", or null for no endpoint. */
static const struct key admin_keys[] = {
	FIELD(KEY_ADDRESS, "listen", admin_listen),
	NUMBER(KEY_U32, "max_connections", admin_max_connections, 1, 10000),
	NUMBER(KEY_U32, "max_connections_per_address", admin_max_connections_per_address, 1, 10000),
	NUMBER(KEY_U32, "timeout_ms", admin_timeout_ms, 1000, 3600000),
	{ 0 },
};

static const struct key memory_keys[] = {
	LIVE_NUMBER(KEY_U64, "budget_bytes", memory_budget_bytes, 0, UINT64_C(1) << 50),
	{ 0 },
};

static const struct key session_keys[] = {
	LIVE_NUMBER(KEY_U32, "tick_time_ms", tick_time_ms, 1, 60000),
	LIVE_NUMBER(KEY_U32, "min_timeout_ms", min_session_timeout_ms, 0, INT32_MAX),
	LIVE_NUMBER(KEY_U32, "max_timeout_ms", max_session_timeout_ms, 0, INT32_MAX),
	LIVE_NUMBER(KEY_U32, "max_sessions", max_sessions, 1, 10000000),
	LIVE_NUMBER(KEY_U32, "max_watches", max_watches_per_session, 1, 100000000),
	{ 0 },
};

static const struct key znode_keys[] = {
	LIVE_FIELD(KEY_BOOL, "extended_types", extended_types),
	LIVE_FIELD(KEY_BOOL, "enforce_quota", enforce_quota),
	LIVE_NUMBER(KEY_U32, "container_check_interval_ms", container_check_interval_ms, 10, 86400000),
	LIVE_NUMBER(KEY_U32, "container_max_per_minute", container_max_per_minute, 1, 1000000),
	{ 0 },
};

/* The storage's sizes are fixed when the data directory is opened. */
static const struct key storage_keys[] = {
	NUMBER(KEY_U64, "segment_bytes", segment_bytes, 1048576, UINT64_C(4294967296)),
	NUMBER(KEY_U64, "snapshot_entries", snapshot_entries, 100, UINT64_C(1000000000)),
	NUMBER(KEY_U64, "snapshot_log_bytes", snapshot_log_bytes, 1048576, UINT64_C(1099511627776)),
	NUMBER(KEY_U32, "keep_snapshots", keep_snapshots, 1, 1000),
	FIELD(KEY_OPTIONAL_STRING, "archive_dir", archive_dir),
	NUMBER(KEY_U32, "archive_keep_snapshots", archive_keep_snapshots, 1, 100000),
	{ 0 },
};

/* Read when the server starts (the library's state is the process's). */
static const struct key auth_sasl_keys[] = {
	{ .name = "users_file", .kind = KEY_SASL_USERS_FILE,
	  .offset = offsetof(struct server_config, sasl_users_file),
	  .restart = "the users are read when the server starts" },
	FIELD(KEY_SECRET_PATH, "keytab", sasl_keytab),
	FIELD(KEY_OPTIONAL_STRING, "principal", sasl_principal),
	LIVE_FIELD(KEY_OPTIONAL_STRING, "super_user", sasl_super_user),
	LIVE_FIELD(KEY_BOOL, "remove_host_from_principal", sasl_remove_host),
	LIVE_FIELD(KEY_BOOL, "remove_realm_from_principal", sasl_remove_realm),
	{ 0 },
};

static const struct key auth_enforce_keys[] = {
	LIVE_FIELD(KEY_BOOL, "enabled", enforce_auth),
	LIVE_FIELD(KEY_SCHEMES, "schemes", enforce_auth_schemes),
	{ 0 },
};

static const struct key auth_keys[] = {
	LIVE_FIELD(KEY_DIGEST, "super_digest", super_digest),
	/* its value is super_digest's, which a reload compares and swaps */
	LIVE_FIELD(KEY_DIGEST_FILE, "super_digest_file", super_digest_file),
	LIVE_FIELD(KEY_OPTIONAL_STRING, "x509_super_user", x509_super_user),
	SECTION("sasl", auth_sasl_keys),
	SECTION("enforce", auth_enforce_keys),
	{ 0 },
};

/* ensemble.tls: read when the server starts; peer connections keep it. */
#define PEER_TLS_RESTART "the peers' TLS is set up when the server starts"
static const struct key ensemble_tls_keys[] = {
	{ .name = "certificate", .kind = KEY_OPTIONAL_STRING, .restart = PEER_TLS_RESTART,
	  .offset = offsetof(struct server_config, ensemble.tls_certificate) },
	{ .name = "private_key", .kind = KEY_SECRET_PATH, .restart = PEER_TLS_RESTART,
	  .offset = offsetof(struct server_config, ensemble.tls_private_key) },
	{ .name = "ca", .kind = KEY_OPTIONAL_STRING, .restart = PEER_TLS_RESTART,
	  .offset = offsetof(struct server_config, ensemble.tls_ca) },
	{ .name = "mode", .kind = KEY_CHOICE, .restart = PEER_TLS_RESTART,
	  .offset = offsetof(struct server_config, ensemble.tls_mode_choice),
	  .choices = peer_tls_mode_names },
	{ 0 },
};

static const struct key ensemble_keys[] = {
	{ .name = "id", .kind = KEY_U32, .offset = offsetof(struct server_config, ensemble.id),
	  .min = 1, .max = 255, .restart = "a server's id is fixed by its data directory" },
	{ .name = "cluster", .kind = KEY_STRING,
	  .offset = offsetof(struct server_config, ensemble.cluster_name),
	  .restart = "the cluster's name is fixed by its data directory" },
	NUMBER(KEY_U32, "election_timeout_ms", ensemble.election_timeout_ms, 100, 60000),
	NUMBER(KEY_U64, "entry_cache_bytes", ensemble.entry_cache_bytes, 4096, UINT64_C(1) << 40),
	LIVE_FIELD(KEY_BOOL, "read_only", read_only),
	LIVE_FIELD(KEY_BOOL, "reconfig", reconfig_enabled),
	FIELD(KEY_ADDRESS, "peer_listen", ensemble.peer_listen),
	FIELD(KEY_SECRET_FILE, "secret_file", ensemble.secret_file),
	FIELD(KEY_PEER_AUTH, "peer_auth", ensemble.peer_auth),
	SECTION("tls", ensemble_tls_keys),
	{ .name = "members", .kind = KEY_MEMBERS,
	  .offset = offsetof(struct server_config, ensemble.members),
	  .restart = "the members only bootstrap a new data directory; change the membership of "
		     "a running ensemble with reconfig (corralctl members)" },
	{ 0 },
};

static const struct key top_keys[] = {
	FIELD(KEY_STRING, "data_dir", data_dir),
	LIVE_FIELD(KEY_LOG_LEVEL, "log_level", log_level),
	LIVE_FIELD(KEY_BOOL, "audit_log", audit_log),
	SECTION("client", client_keys),
	SECTION("session", session_keys),
	SECTION("znode", znode_keys),
	SECTION("storage", storage_keys),
	SECTION("auth", auth_keys),
	SECTION("memory", memory_keys),
	SECTION("admin", admin_keys),
	SECTION("ensemble", ensemble_keys),
	{ 0 },
};

int config_parse_listen_address(const char *text, struct listen_address *ret)
{
	const char *why;

	return cfg_parse_listen(text, ret, &why);
}

/* A list of "host:port"; client.listen may be empty ([]) only when
 * client.tls.listen is not (config_finish checks). */
static int load_listen(struct loader *l, const yaml_node_t *n, const char *key,
		       struct listen_address **ret_list, size_t *ret_count)
{
	struct listen_address *list;
	const char *what = "a \"host:port\" string", *why;
	size_t count = 0;
	int r;

	r = cfg_count_items(l, n, key, what, &count);
	if (r < 0)
		return r;
	list = calloc(count ?: 1, sizeof(*list));
	if (!list)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		const yaml_node_t *it = cfg_item(l, n, i);

		r = cfg_expect_scalar(l, it, key, what);
		if (r < 0)
			goto fail;
		r = cfg_parse_listen(cfg_scalar(it), &list[i], &why);
		if (r == -EINVAL)
			r = cfg_fail(l, it, key, "'%.64s': %s", cfg_scalar(it), why);
		if (r < 0)
			goto fail;
		for (size_t j = 0; j < i; j++)
			if (list[j].port == list[i].port && strcmp(list[j].host, list[i].host) == 0) {
				r = cfg_fail(l, it, key, "'%.64s' is listed twice", cfg_scalar(it));
				goto fail;
			}
	}
	cfg_free_listen(*ret_list, *ret_count);
	*ret_list = list;
	*ret_count = count;
	return 0;
fail:
	cfg_free_listen(list, count);
	return r;
}

/* A sequence of names, or one string of them split by commas or blanks;
 * "*" is every word, null or [] none. */
static int load_words(struct loader *l, const yaml_node_t *n, const char *key, uint32_t *ret)
{
	uint32_t words = 0;
	size_t count = 0;
	int r;

	r = cfg_count_items(l, n, key, "a string of four-letter words", &count);
	if (r < 0)
		return r;
	for (size_t i = 0; i < count; i++) {
		const yaml_node_t *it = cfg_item(l, n, i);

		r = cfg_expect_scalar(l, it, key, "a four-letter word");
		if (r < 0)
			return r;
		for (const char *s = cfg_scalar(it) + strspn(cfg_scalar(it), ", \t"); *s; ) {
			size_t len = strcspn(s, ", \t");
			uint32_t w = len == 1 && s[0] == '*' ? FLW_ALL : 0;

			for (int k = 0; k < FLW_COUNT && len == 4; k++)
				if (memcmp(s, word_names[k], 4) == 0)
					w = 1u << k;
			if (w == 0)
				return cfg_fail(l, it, key, "unknown four-letter word '%.*s' (known: conf "
					    "cons crst dirs dump envi ruok srst srvr stat wchc wchp "
					    "wchs mntr isro, or \"*\" for all)", (int)(len > 16 ? 16 : len), s);
			words |= w;
			s += len;
			s += strspn(s, ", \t");
		}
	}
	*ret = words;
	return 0;
}

/* "user:base64(sha1(user:password))", ZooKeeper's superDigest. */
static bool digest_valid(const char *s)
{
	static const char base64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *colon = strchr(s, ':');
	return colon && colon != s && strlen(colon + 1) == 28 && colon[28] == '=' &&
	       strspn(colon + 1, base64) == 27;
}

/* "user:base64(sha1(user:password))", ZooKeeper's superDigest; null is none. */
static int load_digest(struct loader *l, const yaml_node_t *n, const char *key, char **field)
{
	const char *s;
	char *copy = NULL;
	int r;

	r = cfg_expect_scalar(l, n, key, "a \"user:digest\" string");
	if (r < 0)
		return r;
	s = cfg_scalar(n);
	if ((cfg_is_null(n) || !*s) && l->cfg->super_digest_file)
		return 0;	/* none here: auth.super_digest_file's stands */
	if (!cfg_is_null(n) && *s) {
		if (l->cfg->super_digest_file)
			return cfg_fail(l, n, key, "auth.super_digest_file gives it already; give one "
					"of the two");
		l->super_digest_given = true;
		if (!digest_valid(s))
			return cfg_fail(l, n, key, "expected \"user:digest\" where digest is the 28 "
				    "characters of base64(sha1(\"user:password\"))");
		copy = strdup(s);
		if (!copy)
			return -ENOMEM;
	}
	free(*field);
	*field = copy;
	return 0;
}

/* auth.super_digest_file: a secret's file (secret.h) holding the digest
 * that auth.super_digest would; null is none. */
static int load_digest_file(struct loader *l, const yaml_node_t *n, const char *key)
{
	char why[CONFIG_ERROR_MAX];
	uint8_t *digest;
	size_t len;
	char *path;
	int r;

	r = cfg_expect_scalar(l, n, key, "a file name or credential:NAME");
	if (r < 0)
		return r;
	if (cfg_is_null(n) || !*cfg_scalar(n))
		return 0;
	if (l->super_digest_given)
		return cfg_fail(l, n, key, "auth.super_digest gives it already; give one of the two");
	r = secret_read(cfg_scalar(n), 256, &digest, &len, why, sizeof(why));
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return cfg_fail(l, n, key, "%s", why);
	if (strlen((char *)digest) != len || !digest_valid((char *)digest)) {
		secret_free(digest, len);
		return cfg_fail(l, n, key, "%s: expected one line \"user:digest\" where digest is the "
				"28 characters of base64(sha1(\"user:password\"))", cfg_scalar(n));
	}
	path = strdup(cfg_scalar(n));
	if (!path) {
		secret_free(digest, len);
		return -ENOMEM;
	}
	free(l->cfg->super_digest_file);
	l->cfg->super_digest_file = path;
	free(l->cfg->super_digest);
	l->cfg->super_digest = (char *)digest;
	return 0;
}

/* auth.sasl.users_file: a secret's file (secret.h) of "name: password"
 * lines, ZooKeeper's user_NAME="password" of a JAAS DigestLoginModule;
 * null is none (no DIGEST-MD5). */
static int load_sasl_users_file(struct loader *l, const yaml_node_t *n, const char *key)
{
	char why[CONFIG_ERROR_MAX];
	const char *bad;
	unsigned line;
	uint8_t *text;
	size_t len;
	int r;

	r = cfg_expect_scalar(l, n, key, "a file name or credential:NAME");
	if (r < 0)
		return r;
	if (cfg_is_null(n) || !*cfg_scalar(n))
		return 0;
	r = secret_read(cfg_scalar(n), 1 << 20, &text, &len, why, sizeof(why));
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return cfg_fail(l, n, key, "%s", why);
	if (sasl_users_check((const char *)text, len, &line, &bad) < 0) {
		secret_free(text, len);
		return cfg_fail(l, n, key, "%s:%u: %s", cfg_scalar(n), line, bad);
	}
	char *path = strdup(cfg_scalar(n));
	if (!path) {
		secret_free(text, len);
		return -ENOMEM;
	}
	free(l->cfg->sasl_users_file);
	l->cfg->sasl_users_file = path;
	if (l->cfg->sasl_users)
		secret_free((uint8_t *)l->cfg->sasl_users, l->cfg->sasl_users_len);
	l->cfg->sasl_users = (char *)text;
	l->cfg->sasl_users_len = len;
	return 0;
}

/* auth.sasl.keytab, client.tls.private_key: a secret's file (secret.h) the
 * library reads itself; the field holds the path found. null is none. */
static int load_secret_path(struct loader *l, const yaml_node_t *n, const char *key, char **field)
{
	char why[CONFIG_ERROR_MAX];
	char *path = NULL;
	int r = cfg_expect_scalar(l, n, key, "a file name or credential:NAME");
	if (r < 0)
		return r;
	if (!cfg_is_null(n) && *cfg_scalar(n)) {
		r = secret_locate(cfg_scalar(n), &path, why, sizeof(why));
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			return cfg_fail(l, n, key, "%s", why);
	}
	free(*field);
	*field = path;
	return 0;
}

/* auth.enforce.schemes: names of ZooKeeper's authentication schemes. */
static int load_schemes(struct loader *l, const yaml_node_t *n, const char *key, uint32_t *ret)
{
	const char *bad;
	int r = cfg_expect_scalar(l, n, key, "a string of scheme names");
	if (r < 0)
		return r;
	if (cfg_is_null(n)) {
		*ret = 0;
		return 0;
	}
	if (auth_schemes_parse(cfg_scalar(n), ret, &bad) < 0)
		return cfg_fail(l, n, key, "unknown scheme '%.*s' (known: digest, sasl, x509, ip)",
				(int)strcspn(bad, ", \t") > 32 ? 32 : (int)strcspn(bad, ", \t"), bad);
	return 0;
}

/* ensemble.peer_auth: required | optional (with ensemble.secret_file). */
static int load_peer_auth(struct loader *l, const yaml_node_t *n, const char *key,
			  enum peer_auth_mode *ret)
{
	int r = cfg_expect_scalar(l, n, key, "required or optional");

	if (r == 0 && strcmp(cfg_scalar(n), "required") == 0)
		*ret = PEER_AUTH_REQUIRED;
	else if (r == 0 && strcmp(cfg_scalar(n), "optional") == 0)
		*ret = PEER_AUTH_OPTIONAL;
	else if (r == 0)
		r = cfg_fail(l, n, key, "expected required or optional, got '%.64s'", cfg_scalar(n));
	return r;
}

static int load_uint(struct loader *l, const yaml_node_t *n, const char *key,
		     const struct key *k, uint64_t *ret)
{
	int r;

	r = cfg_expect_scalar(l, n, key, "an integer");
	if (r < 0)
		return r;
	r = cfg_parse_uint(cfg_scalar(n), ret);
	if (r == -EINVAL)
		return cfg_fail(l, n, key, "expected an unsigned decimal integer, got '%.64s'", cfg_scalar(n));
	if (r < 0 || *ret < k->min || *ret > k->max)
		return cfg_fail(l, n, key, "out of range: %.64s is not in %llu..%llu", cfg_scalar(n),
			    (unsigned long long)k->min, (unsigned long long)k->max);
	return 0;
}

static int load_mapping(struct loader *l, const yaml_node_t *n, const char *prefix,
			const struct key *table);

static int load_value(struct loader *l, const yaml_node_t *n, const char *key, const struct key *k)
{
	void *field = (char *)l->cfg + k->offset;
	uint64_t v = 0;
	char *copy;
	int r;

	switch (k->kind) {
	case KEY_SECTION:
		if (k->section == ensemble_keys)
			l->cfg->in_ensemble = true;
		return load_mapping(l, n, key, k->section);
	case KEY_ADDRESS: {
		struct listen_address a;
		const char *why;
		if (cfg_is_null(n)) {
			free(((struct listen_address *)field)->host);
			*(struct listen_address *)field = (struct listen_address){ 0 };
			return 0;
		}
		r = cfg_expect_scalar(l, n, key, "a \"host:port\" string");
		if (r < 0)
			return r;
		r = cfg_parse_listen(cfg_scalar(n), &a, &why);
		if (r == -EINVAL)
			return cfg_fail(l, n, key, "'%.64s': %s", cfg_scalar(n), why);
		if (r < 0)
			return r;
		free(((struct listen_address *)field)->host);
		*(struct listen_address *)field = a;
		return 0;
	}
	case KEY_MEMBERS:
		return cfg_load_members(l, n, key);
	case KEY_OPTIONAL_STRING:
	case KEY_STRING:
		r = cfg_expect_scalar(l, n, key, "a string");
		if (r < 0)
			return r;
		if (k->kind == KEY_OPTIONAL_STRING && cfg_is_null(n)) {
			free(*(char **)field);
			*(char **)field = NULL;
			return 0;
		}
		if (cfg_is_null(n) || !*cfg_scalar(n))
			return cfg_fail(l, n, key, "must not be empty");
		copy = strdup(cfg_scalar(n));
		if (!copy)
			return -ENOMEM;
		free(*(char **)field);
		*(char **)field = copy;
		return 0;
	case KEY_U32:
	case KEY_U64:
		r = load_uint(l, n, key, k, &v);
		if (r == 0 && k->kind == KEY_U32)
			*(uint32_t *)field = (uint32_t)v;
		else if (r == 0)
			*(uint64_t *)field = v;
		return r;
	case KEY_BOOL:
		r = cfg_expect_scalar(l, n, key, "true or false");
		if (r == 0 && strcmp(cfg_scalar(n), "true") != 0 && strcmp(cfg_scalar(n), "false") != 0)
			r = cfg_fail(l, n, key, "expected true or false, got '%.64s'", cfg_scalar(n));
		if (r == 0)
			*(bool *)field = strcmp(cfg_scalar(n), "true") == 0;
		return r;
	case KEY_LOG_LEVEL:
		r = cfg_expect_scalar(l, n, key, "a log level");
		if (r < 0)
			return r;
		for (int i = LOG_LEVEL_ERR; i <= LOG_LEVEL_DEBUG; i++)
			if (strcmp(cfg_scalar(n), log_level_names[i]) == 0) {
				*(enum log_level *)field = (enum log_level)i;
				return 0;
			}
		return cfg_fail(l, n, key, "expected err, warning, notice, info or debug, got '%.64s'",
			    cfg_scalar(n));
	case KEY_LISTEN:
		l->cfg->listen_given = true;
		return load_listen(l, n, key, &l->cfg->listen, &l->cfg->listen_count);
	case KEY_TLS_LISTEN:
		return load_listen(l, n, key, &l->cfg->tls_listen, &l->cfg->tls_listen_count);
	case KEY_CHOICE:
		r = cfg_expect_scalar(l, n, key, "a name");
		if (r < 0)
			return r;
		for (uint32_t i = 0; k->choices[i]; i++)
			if (strcmp(cfg_scalar(n), k->choices[i]) == 0) {
				*(uint32_t *)field = i;
				return 0;
			}
		return cfg_fail(l, n, key, "expected %s, got '%.64s'",
			    k->choices == client_auth_names ? "none, optional or required"
			    : k->choices == peer_tls_mode_names ? "required or optional"
							    : "TLSv1.2 or TLSv1.3", cfg_scalar(n));
	case KEY_WORDS:
		return load_words(l, n, key, field);
	case KEY_DIGEST:
		return load_digest(l, n, key, field);
	case KEY_DIGEST_FILE:
		return load_digest_file(l, n, key);
	case KEY_SECRET_FILE:
		return cfg_load_secret_file(l, n, key);
	case KEY_PEER_AUTH:
		return load_peer_auth(l, n, key, field);
	case KEY_SASL_USERS_FILE:
		return load_sasl_users_file(l, n, key);
	case KEY_SCHEMES:
		return load_schemes(l, n, key, field);
	case KEY_SECRET_PATH:
		return load_secret_path(l, n, key, field);
	}
	return -EINVAL;
}

/* A mapping of the keys in table. A null value is an empty mapping, so a
 * section whose keys are all commented out is fine. */
static int load_mapping(struct loader *l, const yaml_node_t *n, const char *prefix,
			const struct key *table)
{
	const yaml_node_pair_t *pairs;

	if (cfg_is_null(n))
		return 0;
	if (n->type != YAML_MAPPING_NODE && !prefix)
		return cfg_fail(l, n, NULL, "expected a mapping of keys at the top level, got %s",
			    cfg_node_kind(n));
	if (n->type != YAML_MAPPING_NODE)
		return cfg_fail(l, n, prefix, "expected a mapping, got %s", cfg_node_kind(n));
	pairs = n->data.mapping.pairs.start;
	for (size_t i = 0; pairs + i < n->data.mapping.pairs.top; i++) {
		const yaml_node_t *kn = yaml_document_get_node(l->doc, pairs[i].key);
		const struct key *k;
		char key[256];
		int r;

		if (kn->type != YAML_SCALAR_NODE)
			return cfg_fail(l, kn, prefix, "a key must be a string, got %s", cfg_node_kind(kn));
		snprintf(key, sizeof(key), "%s%s%.128s", prefix ?: "", prefix ? "." : "", cfg_scalar(kn));
		for (size_t j = 0; j < i; j++) {
			const yaml_node_t *prev = yaml_document_get_node(l->doc, pairs[j].key);
			if (strcmp(cfg_scalar(prev), cfg_scalar(kn)) == 0)
				return cfg_fail(l, kn, key, "duplicate key (first given at line %zu)",
					    prev->start_mark.line + 1);
		}
		for (k = table; k->name && strcmp(k->name, cfg_scalar(kn)) != 0; k++)
			;
		if (!k->name)
			return cfg_fail(l, kn, key, "unknown key");
		r = load_value(l, yaml_document_get_node(l->doc, pairs[i].value), key, k);
		if (r < 0)
			return r;
	}
	return 0;
}

static int syntax_error(struct loader *l, const yaml_parser_t *p, FILE *f)
{
	size_t line = p->problem_mark.line + 1;
	char context[128] = "";

	if (p->error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	if (p->error == YAML_READER_ERROR && fseek(f, 0, SEEK_SET) == 0) {
		/* the reader knows the byte offset, not the line */
		line = 1;
		for (size_t i = 0; i < p->problem_offset; i++) {
			int c = getc(f);
			if (c == EOF)
				break;
			line += c == '\n';
		}
	}
	if (p->context)
		snprintf(context, sizeof(context), " (%s at line %zu)", p->context,
			 p->context_mark.line + 1);
	if (l->error && l->error_size)
		snprintf(l->error, l->error_size, "%s:%zu: YAML syntax error: %s%s", l->path, line,
			 p->problem ?: "invalid", context);
	return -EINVAL;
}

/* Loads the one document of f into l->cfg. */
static int load_file(struct loader *l, FILE *f)
{
	yaml_parser_t parser;
	yaml_document_t doc, next;
	const yaml_node_t *root;
	int r = 0;

	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		r = syntax_error(l, &parser, f);
		goto out;
	}
	l->doc = &doc;
	root = yaml_document_get_root_node(&doc);
	if (root)
		r = load_mapping(l, root, NULL, top_keys);
	if (r == 0 && root) {
		if (!yaml_parser_load(&parser, &next)) {
			r = syntax_error(l, &parser, f);
		} else {
			root = yaml_document_get_root_node(&next);
			if (root && !cfg_is_null(root))
				r = cfg_fail(l, root, NULL, "a second YAML document; the file must hold one");
			yaml_document_delete(&next);
		}
	}
	yaml_document_delete(&doc);
out:
	yaml_parser_delete(&parser);
	return r;
}

static int copy_string(char **dst, const char *src)
{
	*dst = src ? strdup(src) : NULL;
	return src && !*dst ? -ENOMEM : 0;
}

/* len bytes and a NUL after them. */
static char *memdup_text(const char *src, size_t len)
{
	char *p = malloc(len + 1);
	if (p) {
		memcpy(p, src, len);
		p[len] = 0;
	}
	return p;
}

static int copy_listen(struct listen_address **dst, size_t *dst_count,
		       const struct listen_address *src, size_t src_count)
{
	*dst = calloc(src_count ?: 1, sizeof(**dst));
	if (!*dst)
		return -ENOMEM;
	for (*dst_count = 0; *dst_count < src_count; (*dst_count)++) {
		(*dst)[*dst_count].port = src[*dst_count].port;
		(*dst)[*dst_count].host = strdup(src[*dst_count].host);
		if (!(*dst)[*dst_count].host)
			return -ENOMEM;
	}
	return 0;
}

/* A deep copy of src into dst. Returns 0 or -ENOMEM (dst then empty). */
static int config_copy(struct server_config *dst, const struct server_config *src)
{
	*dst = *src;
	dst->source_path = dst->data_dir = dst->super_digest = dst->archive_dir = NULL;
	dst->super_digest_file = NULL;
	dst->x509_super_user = dst->tls_certificate = dst->tls_private_key = dst->tls_ca = NULL;
	dst->tls_ciphers = dst->tls_ciphersuites = NULL;
	dst->sasl_users = dst->sasl_users_file = dst->sasl_keytab = NULL;
	dst->sasl_principal = dst->sasl_super_user = NULL;
	dst->tls_listen = NULL;
	dst->tls_listen_count = 0;
	dst->ensemble.cluster_name = NULL;
	dst->ensemble.members = NULL;
	dst->ensemble.member_count = 0;
	dst->ensemble.peer_listen.host = NULL;
	dst->admin_listen.host = NULL;
	dst->listen = calloc(src->listen_count ?: 1, sizeof(*dst->listen));
	dst->listen_count = 0;
	if (!dst->listen ||
	    (src->source_path && !(dst->source_path = strdup(src->source_path))) ||
	    (src->data_dir && !(dst->data_dir = strdup(src->data_dir))) ||
	    (src->archive_dir && !(dst->archive_dir = strdup(src->archive_dir))) ||
	    (src->super_digest && !(dst->super_digest = strdup(src->super_digest))) ||
	    (src->super_digest_file && !(dst->super_digest_file = strdup(src->super_digest_file))) ||
	    (src->admin_listen.host && !(dst->admin_listen.host = strdup(src->admin_listen.host))) ||
	    copy_string(&dst->x509_super_user, src->x509_super_user) < 0 ||
	    (src->sasl_users && !(dst->sasl_users = memdup_text(src->sasl_users, src->sasl_users_len))) ||
	    copy_string(&dst->sasl_users_file, src->sasl_users_file) < 0 ||
	    copy_string(&dst->sasl_keytab, src->sasl_keytab) < 0 ||
	    copy_string(&dst->sasl_principal, src->sasl_principal) < 0 ||
	    copy_string(&dst->sasl_super_user, src->sasl_super_user) < 0 ||
	    copy_string(&dst->tls_certificate, src->tls_certificate) < 0 ||
	    copy_string(&dst->tls_private_key, src->tls_private_key) < 0 ||
	    copy_string(&dst->tls_ca, src->tls_ca) < 0 ||
	    copy_string(&dst->tls_ciphers, src->tls_ciphers) < 0 ||
	    copy_string(&dst->tls_ciphersuites, src->tls_ciphersuites) < 0 ||
	    copy_listen(&dst->tls_listen, &dst->tls_listen_count, src->tls_listen,
			src->tls_listen_count) < 0)
		goto fail;
	for (; dst->listen_count < src->listen_count; dst->listen_count++) {
		size_t i = dst->listen_count;
		dst->listen[i].port = src->listen[i].port;
		dst->listen[i].host = strdup(src->listen[i].host);
		if (!dst->listen[i].host)
			goto fail;
	}
	if (cfg_copy_ensemble(dst, src) < 0)
		goto fail;
	return 0;
fail:
	config_free(dst);
	return -ENOMEM;
}

int config_init_defaults(struct server_config *cfg)
{
	*cfg = (struct server_config) {
		.log_level = LOG_LEVEL_INFO,
		.max_connections = 4096,
		.max_connections_per_address = 1024,
		.max_frame_bytes = 1048575,
		.max_outstanding_requests = 1000,
		.max_output_bytes = 16777216,
		.handshake_timeout_ms = 10000,
		.frame_timeout_ms = 10000,
		.admin_max_connections = 64,
		.admin_max_connections_per_address = 16,
		.admin_timeout_ms = 10000,
		.segment_bytes = 67108864,
		.snapshot_entries = 100000,
		.snapshot_log_bytes = 1073741824,
		.keep_snapshots = 3,
		.archive_keep_snapshots = 24,
		/* The words that only show counters and settings (ZooKeeper allows
		 * just srvr by default); cons, dump, wchc and wchp (sessions and
		 * paths) and the resets crst and srst must be asked for. */
		.four_letter_words = 1u << FLW_RUOK | 1u << FLW_SRVR | 1u << FLW_STAT | 1u << FLW_MNTR |
				     1u << FLW_ISRO | 1u << FLW_CONF | 1u << FLW_ENVI | 1u << FLW_DIRS |
				     1u << FLW_WCHS | 1u << FLW_HASH,
		.tick_time_ms = 2000,
		.max_sessions = 100000,
		.max_watches_per_session = 1000000,
		.extended_types = true,
		.container_check_interval_ms = 60000,
		.container_max_per_minute = 10000,
		.ensemble.election_timeout_ms = 1000,
		.ensemble.entry_cache_bytes = 8388608,
		.tls_client_auth = TLS_CLIENT_AUTH_REQUIRED,
	};
	cfg->data_dir = strdup("/var/lib/corral");
	cfg->listen = calloc(1, sizeof(*cfg->listen));
	if (cfg->listen) {
		cfg->listen_count = 1;
		cfg->listen[0].host = strdup("127.0.0.1");
		cfg->listen[0].port = 2181;
	}
	if (!cfg->data_dir || !cfg->listen || !cfg->listen[0].host) {
		config_free(cfg);
		return -ENOMEM;
	}
	return 0;
}

int config_load(struct server_config *cfg, const char *path, char *error, size_t error_size)
{
	struct server_config next;
	struct loader l = { .path = path, .cfg = &next, .error = error, .error_size = error_size };
	struct stat st;
	FILE *f;
	int r;

	if (error && error_size)
		error[0] = '\0';
	f = fopen(path, "re");
	r = !f ? -errno : fstat(fileno(f), &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? -EISDIR : 0;
	if (r < 0) {
		if (f)
			fclose(f);
		if (error && error_size)
			snprintf(error, error_size, "%s: cannot open: %s", path, strerror(-r));
		return r;
	}
	r = config_copy(&next, cfg);
	if (r == 0)
		r = load_file(&l, f);
	fclose(f);
	if (r == 0) {
		free(next.source_path);
		next.source_path = strdup(path);
		r = next.source_path ? 0 : -ENOMEM;
	}
	if (r == -ENOMEM && error && error_size)
		snprintf(error, error_size, "%s: out of memory", path);
	if (r < 0) {
		config_free(&next);
		return r;
	}
	config_free(cfg);
	*cfg = next;
	return 0;
}

__attribute__((format(printf, 4, 5)))
static int finish_error(const struct server_config *cfg, char *error, size_t error_size,
			const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cfg_format_error(error, error_size, cfg->source_path ?: "(defaults)", 0, NULL, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* The memory this server may use: the machine's, or its cgroup's limit
 * (systemd's MemoryMax=, a container's) when that is lower. */
static uint64_t machine_memory_bytes(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	uint64_t total = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : UINT64_C(1) << 30;
	char line[4096], path[4200];
	FILE *f = fopen("/proc/self/cgroup", "re");
	bool found = false;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = 0;
			snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.max", line + 3);
			found = true;
			break;
		}
	if (f)
		fclose(f);
	f = found ? fopen(path, "re") : NULL;
	unsigned long long limit;
	if (f && fscanf(f, "%llu", &limit) == 1 && limit < total)	/* "max": none */
		total = limit;
	if (f)
		fclose(f);
	return total;
}

/* Whether two paths name one directory (by name when either does not
 * exist yet). */
static bool same_directory(const char *a, const char *b)
{
	struct stat sa, sb;
	if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
		return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
	size_t la = strlen(a), lb = strlen(b);
	while (la > 1 && a[la - 1] == '/')
		la--;
	while (lb > 1 && b[lb - 1] == '/')
		lb--;
	return la == lb && memcmp(a, b, la) == 0;
}

/* The TLS port needs its certificate and key, and a CA to check the
 * clients' certificates against unless it asks for none. */
static int finish_tls(struct server_config *cfg, char *error, size_t error_size)
{
	if (cfg->tls_listen_count == 0)
		return 0;
	if (!cfg->tls_certificate || !cfg->tls_private_key)
		return finish_error(cfg, error, error_size, "client.tls.%s: needed with client.tls.listen",
				    cfg->tls_certificate ? "private_key" : "certificate");
	if (!cfg->tls_ca && cfg->tls_client_auth != TLS_CLIENT_AUTH_NONE)
		return finish_error(cfg, error, error_size, "client.tls.ca: needed to verify the "
				    "clients' certificates (client.tls.client_auth: %s)",
				    client_auth_names[cfg->tls_client_auth]);
	return 0;
}

int config_finish(struct server_config *cfg, char *error, size_t error_size)
{
	if (cfg->memory_budget_bytes == 0)
		cfg->memory_budget_bytes = machine_memory_bytes() / 2;
	if (cfg->memory_budget_bytes < (UINT64_C(1) << 20))
		return finish_error(cfg, error, error_size,
				    "memory.budget_bytes: %llu is below 1 MiB (1048576); 0 is half "
				    "the machine's memory", (unsigned long long)cfg->memory_budget_bytes);
	if (cfg->min_session_timeout_ms == 0)
		cfg->min_session_timeout_ms = 2 * cfg->tick_time_ms;
	if (cfg->max_session_timeout_ms == 0)
		cfg->max_session_timeout_ms = 20 * cfg->tick_time_ms;
	if (cfg->min_session_timeout_ms > cfg->max_session_timeout_ms)
		return finish_error(cfg, error, error_size,
				    "session.min_timeout_ms: greater than session.max_timeout_ms "
				    "(%u > %u)", cfg->min_session_timeout_ms,
				    cfg->max_session_timeout_ms);
	if (cfg->listen_count == 0 && cfg->tls_listen_count == 0)
		return finish_error(cfg, error, error_size, "client.listen: no address to listen on "
				    "(and no client.tls.listen)");
	int r = finish_tls(cfg, error, error_size);
	if (r < 0)
		return r;
	if (cfg->enforce_auth && cfg->enforce_auth_schemes == 0)
		return finish_error(cfg, error, error_size, "auth.enforce.enabled: true needs "
				    "auth.enforce.schemes (e.g. sasl)");
	if (cfg->archive_dir && same_directory(cfg->archive_dir, cfg->data_dir))
		return finish_error(cfg, error, error_size, "storage.archive_dir: %s is the data "
				    "directory; the archive must be a directory of its own",
				    cfg->archive_dir);
	return cfg_finish_ensemble(cfg, error, error_size);
}

void config_free(struct server_config *cfg)
{
	free(cfg->source_path);
	free(cfg->data_dir);
	free(cfg->archive_dir);
	if (cfg->super_digest)
		OPENSSL_cleanse(cfg->super_digest, strlen(cfg->super_digest));
	free(cfg->super_digest);
	free(cfg->super_digest_file);
	free(cfg->x509_super_user);
	if (cfg->sasl_users)
		OPENSSL_cleanse(cfg->sasl_users, cfg->sasl_users_len);
	free(cfg->sasl_users);
	free(cfg->sasl_users_file);
	free(cfg->sasl_keytab);
	free(cfg->sasl_principal);
	free(cfg->sasl_super_user);
	free(cfg->tls_certificate);
	free(cfg->tls_private_key);
	free(cfg->tls_ca);
	free(cfg->tls_ciphers);
	free(cfg->tls_ciphersuites);
	free(cfg->admin_listen.host);
	cfg_free_listen(cfg->listen, cfg->listen_count);
	cfg_free_listen(cfg->tls_listen, cfg->tls_listen_count);
	cfg_free_ensemble(cfg);
	*cfg = (struct server_config) { 0 };
}

static bool address_equal(const struct listen_address *a, const struct listen_address *b)
{
	if (!a->host || !b->host)
		return !a->host && !b->host;
	return a->port == b->port && strcmp(a->host, b->host) == 0;
}

static bool listen_equal(const struct listen_address *a, size_t a_count,
			 const struct listen_address *b, size_t b_count)
{
	if (a_count != b_count)
		return false;
	for (size_t i = 0; i < a_count; i++)
		if (!address_equal(&a[i], &b[i]))
			return false;
	return true;
}

static bool members_equal(const struct ensemble_config *a, const struct ensemble_config *b)
{
	if (a->member_count != b->member_count)
		return false;
	for (size_t i = 0; i < a->member_count; i++) {
		const struct ensemble_member *x = &a->members[i], *y = &b->members[i];
		if (x->id != y->id || x->observer != y->observer || !address_equal(&x->client, &y->client) ||
		    !address_equal(&x->peer, &y->peer))
			return false;
	}
	return true;
}

/* The size of a value that a reload can swap in place, 0 for the others. */
static size_t swappable_size(enum key_kind kind)
{
	switch (kind) {
	case KEY_STRING:
	case KEY_OPTIONAL_STRING:
	case KEY_DIGEST:
	case KEY_DIGEST_FILE:
	case KEY_SECRET_PATH:
		return sizeof(char *);
	case KEY_PEER_AUTH:
		return sizeof(enum peer_auth_mode);
	case KEY_U32:
	case KEY_WORDS:
	case KEY_CHOICE:
	case KEY_SCHEMES:
		return sizeof(uint32_t);
	case KEY_U64:
		return sizeof(uint64_t);
	case KEY_BOOL:
		return sizeof(bool);
	case KEY_LOG_LEVEL:
		return sizeof(enum log_level);
	default:
		return 0;
	}
}

static bool value_equal(const struct key *k, const struct server_config *a,
			const struct server_config *b)
{
	const char *pa = (const char *)a + k->offset, *pb = (const char *)b + k->offset;

	switch (k->kind) {
	case KEY_STRING:
	case KEY_OPTIONAL_STRING:
	case KEY_DIGEST:
	case KEY_DIGEST_FILE:
	case KEY_SASL_USERS_FILE:
	case KEY_SECRET_PATH:
	case KEY_SECRET_FILE: {
		const char *x = *(char *const *)(const void *)pa, *y = *(char *const *)(const void *)pb;
		return x == y || (x && y && strcmp(x, y) == 0);
	}
	case KEY_LISTEN:
		return listen_equal(a->listen, a->listen_count, b->listen, b->listen_count);
	case KEY_TLS_LISTEN:
		return listen_equal(a->tls_listen, a->tls_listen_count, b->tls_listen,
				    b->tls_listen_count);
	case KEY_ADDRESS:
		return address_equal((const struct listen_address *)(const void *)pa,
				     (const struct listen_address *)(const void *)pb);
	case KEY_MEMBERS:
		return members_equal(&a->ensemble, &b->ensemble);
	case KEY_SECTION:
		return true;
	default:
		return memcmp(pa, pb, swappable_size(k->kind)) == 0;
	}
}

static void reload_keys(const struct key *keys, const char *prefix, struct server_config *cur,
			struct server_config *next, config_restart_fn *restart, void *ctx)
{
	for (const struct key *k = keys; k->name; k++) {
		char name[128];
		snprintf(name, sizeof(name), "%s%s%s", prefix ?: "", prefix ? "." : "", k->name);
		if (k->kind == KEY_SECTION) {
			reload_keys(k->section, name, cur, next, restart, ctx);
			continue;
		}
		if (value_equal(k, cur, next))
			continue;
		if (!k->live) {
			restart(name, k->restart, ctx);
			continue;
		}
		/* swapped: next keeps the old value, freed with it */
		size_t size = swappable_size(k->kind);
		ASSERT(size > 0 && size <= sizeof(uint64_t));
		char tmp[sizeof(uint64_t)];
		memcpy(tmp, (char *)cur + k->offset, size);
		memcpy((char *)cur + k->offset, (char *)next + k->offset, size);
		memcpy((char *)next + k->offset, tmp, size);
	}
}

void config_reload(struct server_config *cur, struct server_config *next,
		   config_restart_fn *restart, void *ctx)
{
	reload_keys(top_keys, NULL, cur, next, restart, ctx);
}
