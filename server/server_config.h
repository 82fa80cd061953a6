/* server_config: everything a server is configured with (corral.yaml's
 * keys, see etc/corral.yaml), as the layers below app/ read it. The file's
 * loader (app/config.c) fills it; reload (app/service.c) changes what can
 * change live. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ensemble_config.h"
#include "log.h"
#include "sockaddr.h"

/* client.tls.client_auth: what a TLS client's certificate must be. */
enum tls_client_auth {
	TLS_CLIENT_AUTH_NONE,		/* not asked for */
	TLS_CLIENT_AUTH_OPTIONAL,	/* asked for; when given, it must verify */
	TLS_CLIENT_AUTH_REQUIRED,	/* asked for and needed (ZooKeeper's default, "need") */
};

/* client.tls.min_protocol */
enum tls_min_version {
	TLS_MIN_1_2,
	TLS_MIN_1_3,
};

struct server_config {
	char *source_path;		/* file it was loaded from, NULL for built-in defaults */
	char *data_dir;			/* key data_dir */
	enum log_level log_level;	/* key log_level: err|warning|notice|info|debug */
	bool audit_log;			/* key audit_log: every write's audit record (audit.h) */

	/* client: */
	struct listen_address *listen;	/* key client.listen: list of "host:port" */
	size_t listen_count;
	uint32_t max_connections;		/* client.max_connections */
	uint32_t max_connections_per_address;	/* client.max_connections_per_address */
	uint32_t max_frame_bytes;		/* client.max_frame_bytes */
	uint32_t max_outstanding_requests;	/* client.max_outstanding_requests */
	uint64_t max_output_bytes;		/* client.max_output_bytes */
	uint32_t four_letter_words;		/* client.four_letter_words: bit per enum four_letter_word */
	uint32_t handshake_timeout_ms;		/* client.handshake_timeout_ms */
	uint32_t frame_timeout_ms;		/* client.frame_timeout_ms */

	/* client.tls: the TLS port (ZooKeeper's secureClientPort, server/tls.h) */
	struct listen_address *tls_listen;	/* client.tls.listen: list of "host:port", none: off */
	size_t tls_listen_count;
	char *tls_certificate;			/* client.tls.certificate: PEM chain file */
	char *tls_private_key;			/* client.tls.private_key: PEM file */
	char *tls_ca;				/* client.tls.ca: PEM file of the CAs clients' certificates chain to */
	uint32_t tls_client_auth;		/* client.tls.client_auth: enum tls_client_auth */
	uint32_t tls_min_version;		/* client.tls.min_protocol: enum tls_min_version */
	char *tls_ciphers;			/* client.tls.ciphers: OpenSSL's list for TLS 1.2, NULL: its default */
	char *tls_ciphersuites;			/* client.tls.ciphersuites: TLS 1.3's, NULL: its default */

	/* admin: the HTTP endpoint (server/admin_http.h) */
	struct listen_address admin_listen;	/* admin.listen; host NULL: none (off) */
	uint32_t admin_max_connections;		/* admin.max_connections */
	uint32_t admin_max_connections_per_address;	/* admin.max_connections_per_address */
	uint32_t admin_timeout_ms;		/* admin.timeout_ms */

	/* memory: */
	uint64_t memory_budget_bytes;		/* memory.budget_bytes (0 in the file: half the
						 * machine's memory, app/config.c) */

	/* session: */
	uint32_t tick_time_ms;			/* session.tick_time_ms */
	uint32_t min_session_timeout_ms;	/* session.min_timeout_ms, 0 = 2 x tick */
	uint32_t max_session_timeout_ms;	/* session.max_timeout_ms, 0 = 20 x tick */
	uint32_t max_sessions;			/* session.max_sessions */
	uint32_t max_watches_per_session;	/* session.max_watches */

	/* znode: */
	bool extended_types;			/* znode.extended_types: TTL nodes allowed */
	bool enforce_quota;			/* znode.enforce_quota: hard quotas refuse writes */
	uint32_t container_check_interval_ms;	/* znode.container_check_interval_ms */
	uint32_t container_max_per_minute;	/* znode.container_max_per_minute */

	/* storage: */
	uint64_t segment_bytes;			/* storage.segment_bytes */
	uint64_t snapshot_entries;		/* storage.snapshot_entries */
	uint64_t snapshot_log_bytes;		/* storage.snapshot_log_bytes */
	uint32_t keep_snapshots;		/* storage.keep_snapshots */
	char *archive_dir;			/* storage.archive_dir, NULL = none */
	uint32_t archive_keep_snapshots;	/* storage.archive_keep_snapshots */

	/* auth: */
	char *super_digest;			/* auth.super_digest: "super:<base64 sha1>", NULL = none */
	char *super_digest_file;		/* auth.super_digest_file: where super_digest was read */
	char *x509_super_user;			/* auth.x509_super_user: a certificate subject DN, NULL = none */
	char *sasl_users;			/* auth.sasl.users_file's text ("name: password" lines), NULL = none */
	size_t sasl_users_len;
	char *sasl_users_file;			/* auth.sasl.users_file: where sasl_users was read */
	char *sasl_keytab;			/* auth.sasl.keytab: GSSAPI's keytab, NULL = no GSSAPI */
	char *sasl_principal;			/* auth.sasl.principal, NULL = zookeeper/<hostname> */
	char *sasl_super_user;			/* auth.sasl.super_user (zookeeper.superUser), NULL = none */
	bool sasl_remove_host;			/* auth.sasl.remove_host_from_principal */
	bool sasl_remove_realm;			/* auth.sasl.remove_realm_from_principal */
	bool enforce_auth;			/* auth.enforce.enabled (zookeeper.enforce.auth.enabled) */
	uint32_t enforce_auth_schemes;		/* auth.enforce.schemes: AUTH_SCHEME_* bits */

	/* ensemble: (none: a standalone server, id 1) */
	bool in_ensemble;			/* the section is given */
	struct ensemble_config ensemble;	/* id, members, cluster, peers, timeouts */
	bool read_only;				/* ensemble.read_only */
	bool reconfig_enabled;			/* ensemble.reconfig */
	bool listen_given;			/* client.listen came from the file or -l */
};
