/* config: corrald's settings, their defaults, and loading them from YAML.
 *
 * Fills struct server_config (server/server_config.h) with the parser of /etc/corral/corral.yaml (libyaml).
 * Every key has a default, so corrald runs with no file at all. A bad file
 * (unknown key, wrong type, value out of range) is refused with file:line and
 * the key in the message. This file does not log: callers print the error. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server_config.h"

#define CONFIG_DEFAULT_PATH "/etc/corral/corral.yaml"
#define CONFIG_ERROR_MAX 512

/* Fills *cfg with the defaults. Returns 0 or -ENOMEM. */
int config_init_defaults(struct server_config *cfg);

/* Loads path over the defaults already in *cfg. On failure returns a negative
 * errno and writes "FILE:LINE: KEY: what is wrong" into error (CONFIG_ERROR_MAX). */
int config_load(struct server_config *cfg, const char *path, char *error, size_t error_size);

/* Derived values: fills min/max session timeouts from the tick when they are 0,
 * and checks cross-key rules (min <= max). Returns 0 or -EINVAL with error set. */
int config_finish(struct server_config *cfg, char *error, size_t error_size);

/* Parses "host:port", "[v6]:port" into *ret. Returns 0 or -EINVAL. */
int config_parse_listen_address(const char *text, struct listen_address *ret);

/* A reload: puts every live key's value of next in force in cur (next
 * keeps the value it replaced, freed with it) and calls restart(key, why,
 * ctx) for each other key whose value differs, the key named in full
 * ("client.listen"); why is NULL (it takes effect after a restart) or what
 * else there is to it ("ensemble.members" only bootstraps a data directory).
 * Which keys are live is in the key table (config.c) and corral.yaml(5). */
typedef void config_restart_fn(const char *key, const char *why, void *ctx);
void config_reload(struct server_config *cur, struct server_config *next,
		   config_restart_fn *restart, void *ctx);

void config_free(struct server_config *cfg);
