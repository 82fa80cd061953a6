/* config_ensemble: the ensemble section of corral.yaml (config_ensemble.c),
 * as the rest of the configuration's loader (config.c) uses it. */
#pragma once

#include <stddef.h>
#include <yaml.h>

#include "config_yaml.h"
#include "server_config.h"

/* ensemble.members (config_ensemble.c). */
int cfg_load_members(struct loader *l, const yaml_node_t *n, const char *key);
/* ensemble.secret_file: the peer secret, read now (secret.h). */
int cfg_load_secret_file(struct loader *l, const yaml_node_t *n, const char *key);
/* Deep copies and frees of the ensemble part of a config. */
int cfg_copy_ensemble(struct server_config *dst, const struct server_config *src);
void cfg_free_ensemble(struct server_config *cfg);
/* Cross-key checks of the ensemble section, and client.listen's default. */
int cfg_finish_ensemble(struct server_config *cfg, char *error, size_t error_size);
