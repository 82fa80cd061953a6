/* config_yaml: the parts of reading corral.yaml that every section's loader
 * uses (config.c, config_ensemble.c): errors with file, line and key,
 * scalars, numbers, addresses, one-or-many values. See config_yaml.h. */
#include "config_yaml.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* "PATH:LINE: KEY: message", without LINE when it is 0 and KEY when NULL. */
__attribute__((format(printf, 6, 0)))
void cfg_format_error(char *error, size_t error_size, const char *path, size_t line,
			 const char *key, const char *fmt, va_list ap)
{
	char prefix[64] = "";
	size_t n;

	if (!error || error_size == 0)
		return;
	if (line > 0)
		snprintf(prefix, sizeof(prefix), ":%zu", line);
	snprintf(error, error_size, "%s%s: %s%s", path, prefix, key ?: "", key ? ": " : "");
	n = strlen(error);
	vsnprintf(error + n, error_size - n, fmt, ap);
}

/* Writes the error at node's line for key; returns -EINVAL. */
int cfg_fail(struct loader *l, const yaml_node_t *node, const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cfg_format_error(l->error, l->error_size, l->path, node->start_mark.line + 1, key, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

const char *cfg_node_kind(const yaml_node_t *n)
{
	return n->type == YAML_MAPPING_NODE ? "a mapping" :
	       n->type == YAML_SEQUENCE_NODE ? "a sequence" : "a scalar";
}

const char *cfg_scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* A plain empty, "~" or "null" scalar: YAML's null. */
bool cfg_is_null(const yaml_node_t *n)
{
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return strcmp(cfg_scalar(n), "") == 0 || strcmp(cfg_scalar(n), "~") == 0 ||
	       strcasecmp(cfg_scalar(n), "null") == 0;
}

int cfg_expect_scalar(struct loader *l, const yaml_node_t *n, const char *key, const char *what)
{
	if (n->type != YAML_SCALAR_NODE)
		return cfg_fail(l, n, key, "expected %s, got %s", what, cfg_node_kind(n));
	if (strlen(cfg_scalar(n)) != n->data.scalar.length)
		return cfg_fail(l, n, key, "contains a NUL character");
	return 0;
}

/* Decimal digits only: no sign, blanks, point or 0x. Returns -EINVAL when s
 * is not such a number, -ERANGE when it is above UINT64_MAX. */
int cfg_parse_uint(const char *s, uint64_t *ret)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

/* "host:port" or "[v6]:port" into *ret (host malloc'd, without brackets).
 * Returns 0, -ENOMEM, or -EINVAL with *ret_why saying what is wrong. */
int cfg_parse_listen(const char *text, struct listen_address *ret, const char **ret_why)
{
	bool v6 = text[0] == '[';
	const char *end = v6 ? strchr(text, ']') : strrchr(text, ':');
	const char *host = text + v6;
	char buf[256];	/* a host name: 253 characters at most */
	struct in6_addr addr;
	uint64_t port = 0;
	size_t len;

	*ret_why = NULL;
	if (v6 && !end)
		*ret_why = "missing ']' after the IPv6 address";
	else if (!end || (v6 && end[1] != ':'))
		*ret_why = "missing :PORT";
	else if (!v6 && memchr(text, ':', (size_t)(end - text)))
		*ret_why = "an IPv6 address is written in brackets, as in [::1]:2181";
	if (*ret_why)
		return -EINVAL;
	len = (size_t)(end - host);
	if (len < sizeof(buf)) {
		memcpy(buf, host, len);
		buf[len] = '\0';
	}
	if (len >= sizeof(buf))
		*ret_why = v6 ? "the host is not a numeric IPv6 address"
			      : "the host is neither a numeric IPv4 address nor a host name";
	else if (v6 && inet_pton(AF_INET6, buf, &addr) != 1)
		*ret_why = "the host is not a numeric IPv6 address";
	else if (!v6 && inet_pton(AF_INET, buf, &addr) != 1 && !sockaddr_name_valid(buf))
		*ret_why = "the host is neither a numeric IPv4 address nor a host name";
	else if (cfg_parse_uint(end + 1 + v6, &port) < 0 || port < 1 || port > 65535)
		*ret_why = "the port is not a number in 1..65535";
	if (*ret_why)
		return -EINVAL;
	ret->host = strdup(buf);
	ret->port = (uint16_t)port;
	return ret->host ? 0 : -ENOMEM;
}

void cfg_free_listen(struct listen_address *list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(list[i].host);
	free(list);
}

/* For values that are one scalar or a sequence of them: how many items. */
int cfg_count_items(struct loader *l, const yaml_node_t *n, const char *key, const char *what,
		       size_t *ret_count)
{
	if (n->type == YAML_MAPPING_NODE)
		return cfg_fail(l, n, key, "expected %s or a sequence of them, got a mapping", what);
	*ret_count = n->type == YAML_SCALAR_NODE ? !cfg_is_null(n) :
		(size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	return 0;
}

const yaml_node_t *cfg_item(struct loader *l, const yaml_node_t *n, size_t i)
{
	if (n->type == YAML_SCALAR_NODE)
		return n;
	return yaml_document_get_node(l->doc, n->data.sequence.items.start[i]);
}

