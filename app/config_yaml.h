/* config_yaml: what the loaders of corral.yaml's sections share (config.c,
 * config_ensemble.c): the loader's state, errors with file, line and key,
 * and the readers of scalars, numbers and addresses. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <yaml.h>

#include "server_config.h"

struct loader {
	const char *path;
	yaml_document_t *doc;
	struct server_config *cfg;	/* the copy being loaded into */
	char *error;
	size_t error_size;
	bool super_digest_given;	/* auth.super_digest is in this file */
};

/* "PATH:LINE: KEY: message" into error, without LINE when it is 0 and KEY
 * when NULL. */
__attribute__((format(printf, 6, 0)))
void cfg_format_error(char *error, size_t error_size, const char *path, size_t line,
		      const char *key, const char *fmt, va_list ap);
/* Writes "PATH:LINE: KEY: message" for node; returns -EINVAL. */
__attribute__((format(printf, 4, 5)))
int cfg_fail(struct loader *l, const yaml_node_t *node, const char *key, const char *fmt, ...);
const char *cfg_node_kind(const yaml_node_t *n);
const char *cfg_scalar(const yaml_node_t *n);
bool cfg_is_null(const yaml_node_t *n);
int cfg_expect_scalar(struct loader *l, const yaml_node_t *n, const char *key, const char *what);
/* Decimal digits only. -EINVAL, -ERANGE. */
int cfg_parse_uint(const char *s, uint64_t *ret);
/* "host:port" or "[v6]:port"; -EINVAL with *ret_why, or -ENOMEM. */
int cfg_parse_listen(const char *text, struct listen_address *ret, const char **ret_why);
void cfg_free_listen(struct listen_address *list, size_t count);
/* One scalar or a sequence of them: how many items, and the i'th. */
int cfg_count_items(struct loader *l, const yaml_node_t *n, const char *key, const char *what,
		    size_t *ret_count);
const yaml_node_t *cfg_item(struct loader *l, const yaml_node_t *n, size_t i);

