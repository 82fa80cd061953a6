/* config: corrald's settings, their defaults, and loading them from YAML.
 *
 * Owns struct corral_config and the parser of /etc/corral/corral.yaml (libyaml).
 * Every key has a default, so corrald runs with no file at all. A bad file
 * (unknown key, wrong type, value out of range) is refused with file:line and
 * the key in the message. This file does not log: callers print the error. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

#define CONFIG_DEFAULT_PATH "/etc/corral/corral.yaml"
#define CONFIG_ERROR_MAX 512

struct listen_address {
	char *host;		/* numeric IPv4/IPv6 address, e.g. "127.0.0.1" or "::1" */
	uint16_t port;
};

/* A server of the ensemble, as configured (ensemble.members). */
struct ensemble_member {
	uint32_t id;			/* 1..255, ZooKeeper's myid */
	struct listen_address client;	/* where its clients connect */
	struct listen_address peer;	/* where the other servers reach it */
	bool observer;			/* a non-voter: serves reads, forwards writes */
	size_t line;			/* in the file, for messages */
};

struct corral_config {
	char *source_path;		/* file it was loaded from, NULL for built-in defaults */
	char *data_dir;			/* key data_dir */
	enum log_level log_level;	/* key log_level: err|warning|notice|info|debug */

	/* client: */
	struct listen_address *listen;	/* key client.listen: list of "host:port" */
	size_t listen_count;
	uint32_t max_connections;		/* client.max_connections */
	uint32_t max_connections_per_address;	/* client.max_connections_per_address */
	uint32_t max_frame_bytes;		/* client.max_frame_bytes */
	uint32_t max_outstanding_requests;	/* client.max_outstanding_requests */
	uint64_t max_output_bytes;		/* client.max_output_bytes */
	uint32_t four_letter_words;		/* client.four_letter_words: bit per enum four_letter_word */

	/* session: */
	uint32_t tick_time_ms;			/* session.tick_time_ms */
	uint32_t min_session_timeout_ms;	/* session.min_timeout_ms, 0 = 2 x tick */
	uint32_t max_session_timeout_ms;	/* session.max_timeout_ms, 0 = 20 x tick */
	uint32_t max_sessions;			/* session.max_sessions */
	uint32_t max_watches_per_session;	/* session.max_watches */

	/* znode: */
	bool extended_types;			/* znode.extended_types: TTL nodes allowed */
	uint32_t container_check_interval_ms;	/* znode.container_check_interval_ms */
	uint32_t container_max_per_minute;	/* znode.container_max_per_minute */

	/* storage: */
	uint64_t segment_bytes;			/* storage.segment_bytes */
	uint64_t snapshot_entries;		/* storage.snapshot_entries */
	uint64_t snapshot_log_bytes;		/* storage.snapshot_log_bytes */
	uint32_t keep_snapshots;		/* storage.keep_snapshots */

	/* auth: */
	char *super_digest;			/* auth.super_digest: "super:<base64 sha1>", NULL = none */

	/* ensemble: (none: a standalone server, id 1) */
	bool ensemble;				/* the section is given */
	uint32_t server_id;			/* ensemble.id */
	char *cluster_name;			/* ensemble.cluster */
	uint32_t election_timeout_ms;		/* ensemble.election_timeout_ms */
	bool read_only;				/* ensemble.read_only */
	bool reconfig_enabled;			/* ensemble.reconfig */
	struct listen_address peer_listen;	/* ensemble.peer_listen; host NULL when not given */
	struct ensemble_member *members;	/* ensemble.members: the initial membership */
	size_t member_count;
	bool listen_given;			/* client.listen came from the file or -l */
};

/* This server's entry in cfg->members, or NULL (a server that joins later). */
const struct ensemble_member *config_self(const struct corral_config *cfg);

/* Fills *cfg with the defaults. Returns 0 or -ENOMEM. */
int config_init_defaults(struct corral_config *cfg);

/* Loads path over the defaults already in *cfg. On failure returns a negative
 * errno and writes "FILE:LINE: KEY: what is wrong" into error (CONFIG_ERROR_MAX). */
int config_load(struct corral_config *cfg, const char *path, char *error, size_t error_size);

/* Derived values: fills min/max session timeouts from the tick when they are 0,
 * and checks cross-key rules (min <= max). Returns 0 or -EINVAL with error set. */
int config_finish(struct corral_config *cfg, char *error, size_t error_size);

/* Parses "host:port", "[v6]:port" into *ret. Returns 0 or -EINVAL. */
int config_parse_listen_address(const char *text, struct listen_address *ret);

void config_free(struct corral_config *cfg);
