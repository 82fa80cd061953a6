/* config_ensemble: the ensemble section of corral.yaml: this server's id,
 * the initial members (id, client and peer address, voter or observer), and
 * the checks between them. See config.h and etc/corral.yaml. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_ensemble.h"
#include "config_yaml.h"
#include "secret.h"

#define MEMBERS_MAX 255

static void free_members(struct ensemble_member *m, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(m[i].client.host);
		free(m[i].peer.host);
	}
	free(m);
}

static int load_address(struct loader *l, const yaml_node_t *n, const char *key,
			struct listen_address *ret)
{
	const char *why;
	int r = cfg_expect_scalar(l, n, key, "a \"host:port\" string");
	if (r < 0)
		return r;
	r = cfg_parse_listen(cfg_scalar(n), ret, &why);
	if (r == -EINVAL)
		return cfg_fail(l, n, key, "'%.64s': %s", cfg_scalar(n), why);
	return r;
}

/* One member: a mapping of id, client, peer and role. */
static int load_member(struct loader *l, const yaml_node_t *n, const char *prefix,
		       struct ensemble_member *m)
{
	char key[128];
	bool has_id = false;

	if (n->type != YAML_MAPPING_NODE)
		return cfg_fail(l, n, prefix, "expected a mapping {id, client, peer, role}, got %s",
				cfg_node_kind(n));
	m->line = n->start_mark.line + 1;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		const yaml_node_t *kn = yaml_document_get_node(l->doc, p->key);
		const yaml_node_t *vn = yaml_document_get_node(l->doc, p->value);
		int r;
		if (kn->type != YAML_SCALAR_NODE)
			return cfg_fail(l, kn, prefix, "a key must be a string, got %s",
					cfg_node_kind(kn));
		const char *k = cfg_scalar(kn);
		snprintf(key, sizeof(key), "%s.%.32s", prefix, k);
		if (strcmp(k, "id") == 0) {
			uint64_t v;
			r = cfg_expect_scalar(l, vn, key, "an integer");
			if (r < 0)
				return r;
			if (cfg_parse_uint(cfg_scalar(vn), &v) < 0 || v < 1 || v > 255)
				return cfg_fail(l, vn, key, "expected a server id in 1..255, got '%.64s'",
						cfg_scalar(vn));
			m->id = (uint32_t)v;
			has_id = true;
		} else if (strcmp(k, "client") == 0 || strcmp(k, "peer") == 0) {
			struct listen_address *a = k[0] == 'c' ? &m->client : &m->peer;
			if (a->host)
				return cfg_fail(l, kn, key, "given twice");
			r = load_address(l, vn, key, a);
			if (r < 0)
				return r;
		} else if (strcmp(k, "role") == 0) {
			r = cfg_expect_scalar(l, vn, key, "voter or observer");
			if (r < 0)
				return r;
			if (strcmp(cfg_scalar(vn), "voter") == 0)
				m->observer = false;
			else if (strcmp(cfg_scalar(vn), "observer") == 0)
				m->observer = true;
			else
				return cfg_fail(l, vn, key, "expected voter or observer, got '%.64s'",
						cfg_scalar(vn));
		} else {
			return cfg_fail(l, kn, key, "unknown key (a member has id, client, peer, role)");
		}
	}
	if (!has_id)
		return cfg_fail(l, n, prefix, "the member has no id");
	if (!m->client.host)
		return cfg_fail(l, n, prefix, "member %u has no client address", m->id);
	if (!m->peer.host)
		return cfg_fail(l, n, prefix, "member %u has no peer address", m->id);
	return 0;
}

static bool same_address(const struct listen_address *a, const struct listen_address *b)
{
	return a->port == b->port && strcmp(a->host, b->host) == 0;
}

int cfg_load_members(struct loader *l, const yaml_node_t *n, const char *key)
{
	if (n->type != YAML_SEQUENCE_NODE)
		return cfg_fail(l, n, key, "expected a sequence of members, got %s", cfg_node_kind(n));
	size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (count == 0)
		return cfg_fail(l, n, key, "must list at least one member");
	if (count > MEMBERS_MAX)
		return cfg_fail(l, n, key, "more than %d members", MEMBERS_MAX);
	struct ensemble_member *list = calloc(count, sizeof(*list));
	if (!list)
		return -ENOMEM;
	int r = 0;
	for (size_t i = 0; i < count && r == 0; i++) {
		const yaml_node_t *it = cfg_item(l, n, i);
		char prefix[64];
		snprintf(prefix, sizeof(prefix), "%s[%zu]", key, i);
		r = load_member(l, it, prefix, &list[i]);
		for (size_t j = 0; j < i && r == 0; j++) {
			if (list[j].id == list[i].id)
				r = cfg_fail(l, it, prefix, "id %u is also member %zu's (line %zu)",
					     list[i].id, j, list[j].line);
			else if (same_address(&list[j].peer, &list[i].peer))
				r = cfg_fail(l, it, prefix, "peer address %s:%u is also member %u's",
					     list[i].peer.host, list[i].peer.port, list[j].id);
			else if (same_address(&list[j].client, &list[i].client))
				r = cfg_fail(l, it, prefix, "client address %s:%u is also member %u's",
					     list[i].client.host, list[i].client.port, list[j].id);
		}
	}
	if (r < 0) {
		free_members(list, count);
		return r;
	}
	free_members(l->cfg->ensemble.members, l->cfg->ensemble.member_count);
	l->cfg->ensemble.members = list;
	l->cfg->ensemble.member_count = count;
	return 0;
}

int cfg_load_secret_file(struct loader *l, const yaml_node_t *n, const char *key)
{
	struct ensemble_config *e = &l->cfg->ensemble;
	char why[512];
	uint8_t *secret = NULL;
	size_t len = 0;
	char *path = NULL;
	int r = cfg_expect_scalar(l, n, key, "a file name or credential:NAME");
	if (r < 0)
		return r;
	if (!cfg_is_null(n) && *cfg_scalar(n)) {
		r = secret_read(cfg_scalar(n), PEER_AUTH_SECRET_MAX_BYTES, &secret, &len, why,
				sizeof(why));
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			return cfg_fail(l, n, key, "%s", why);
		if (len < PEER_AUTH_SECRET_MIN_BYTES) {
			secret_free(secret, len);
			return cfg_fail(l, n, key, "%s: the secret has %zu bytes, fewer than %d (make "
					"one with: openssl rand -base64 32)", cfg_scalar(n), len,
					PEER_AUTH_SECRET_MIN_BYTES);
		}
		path = strdup(cfg_scalar(n));
		if (!path) {
			secret_free(secret, len);
			return -ENOMEM;
		}
	}
	secret_free(e->secret, e->secret_len);
	free(e->secret_file);
	e->secret = secret;
	e->secret_len = len;
	e->secret_file = path;
	return 0;
}

static int copy_address(struct listen_address *dst, const struct listen_address *src)
{
	dst->port = src->port;
	dst->host = src->host ? strdup(src->host) : NULL;
	return src->host && !dst->host ? -ENOMEM : 0;
}

int cfg_copy_ensemble(struct server_config *dst, const struct server_config *src)
{
	dst->ensemble.members = NULL;
	dst->ensemble.member_count = 0;
	dst->ensemble.secret = NULL;
	dst->ensemble.secret_len = 0;
	dst->ensemble.secret_file = NULL;
	dst->ensemble.tls_certificate = dst->ensemble.tls_private_key = dst->ensemble.tls_ca = NULL;
	if ((src->ensemble.tls_certificate &&
	     !(dst->ensemble.tls_certificate = strdup(src->ensemble.tls_certificate))) ||
	    (src->ensemble.tls_private_key &&
	     !(dst->ensemble.tls_private_key = strdup(src->ensemble.tls_private_key))) ||
	    (src->ensemble.tls_ca && !(dst->ensemble.tls_ca = strdup(src->ensemble.tls_ca))))
		return -ENOMEM;
	if (src->ensemble.secret_file && !(dst->ensemble.secret_file = strdup(src->ensemble.secret_file)))
		return -ENOMEM;
	if (src->ensemble.secret) {
		dst->ensemble.secret = malloc(src->ensemble.secret_len);
		if (!dst->ensemble.secret)
			return -ENOMEM;
		memcpy(dst->ensemble.secret, src->ensemble.secret, src->ensemble.secret_len);
		dst->ensemble.secret_len = src->ensemble.secret_len;
	}
	if (copy_address(&dst->ensemble.peer_listen, &src->ensemble.peer_listen) < 0)
		return -ENOMEM;
	if (src->ensemble.cluster_name && !(dst->ensemble.cluster_name = strdup(src->ensemble.cluster_name)))
		return -ENOMEM;
	if (!src->ensemble.member_count)
		return 0;
	dst->ensemble.members = calloc(src->ensemble.member_count, sizeof(*dst->ensemble.members));
	if (!dst->ensemble.members)
		return -ENOMEM;
	for (size_t i = 0; i < src->ensemble.member_count; i++) {
		dst->ensemble.members[i] = src->ensemble.members[i];
		dst->ensemble.members[i].client.host = dst->ensemble.members[i].peer.host = NULL;
		dst->ensemble.member_count = i + 1;
		if (copy_address(&dst->ensemble.members[i].client, &src->ensemble.members[i].client) < 0 ||
		    copy_address(&dst->ensemble.members[i].peer, &src->ensemble.members[i].peer) < 0)
			return -ENOMEM;
	}
	return 0;
}

void cfg_free_ensemble(struct server_config *cfg)
{
	free_members(cfg->ensemble.members, cfg->ensemble.member_count);
	free(cfg->ensemble.cluster_name);
	free(cfg->ensemble.peer_listen.host);
	secret_free(cfg->ensemble.secret, cfg->ensemble.secret_len);
	free(cfg->ensemble.secret_file);
	free(cfg->ensemble.tls_certificate);
	free(cfg->ensemble.tls_private_key);
	free(cfg->ensemble.tls_ca);
	cfg->ensemble.tls_certificate = cfg->ensemble.tls_private_key = cfg->ensemble.tls_ca = NULL;
	cfg->ensemble.secret = NULL;
	cfg->ensemble.secret_len = 0;
	cfg->ensemble.secret_file = NULL;
	cfg->ensemble.members = NULL;
	cfg->ensemble.member_count = 0;
	cfg->ensemble.cluster_name = NULL;
	cfg->ensemble.peer_listen.host = NULL;
}

__attribute__((format(printf, 5, 6)))
static int finish_fail(const struct server_config *cfg, char *error, size_t error_size,
		       size_t line, const char *fmt, ...)
{
	char prefix[64] = "";
	va_list ap;
	if (!error || !error_size)
		return -EINVAL;
	if (line)
		snprintf(prefix, sizeof(prefix), ":%zu", line);
	snprintf(error, error_size, "%s%s: ", cfg->source_path ?: "(defaults)", prefix);
	size_t n = strlen(error);
	va_start(ap, fmt);
	vsnprintf(error + n, error_size - n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ensemble.tls: the certificate, its key and the CA go together. */
static int finish_tls(struct server_config *cfg, char *error, size_t error_size)
{
	struct ensemble_config *e = &cfg->ensemble;
	bool any = e->tls_certificate || e->tls_private_key || e->tls_ca;
	e->tls_mode = PEER_TLS_OFF;
	if (!any && e->tls_mode_choice == 1)
		return finish_fail(cfg, error, error_size, 0, "ensemble.tls.mode: given without "
				   "ensemble.tls.certificate, private_key and ca");
	if (!any)
		return 0;
	const char *missing = !e->tls_certificate ? "certificate"
			      : !e->tls_private_key ? "private_key" : !e->tls_ca ? "ca" : NULL;
	if (missing)
		return finish_fail(cfg, error, error_size, 0, "ensemble.tls.%s: missing: the peers' "
				   "TLS needs certificate, private_key and ca", missing);
	e->tls_mode = e->tls_mode_choice == 1 ? PEER_TLS_OPTIONAL : PEER_TLS_REQUIRED;
	return 0;
}

int cfg_finish_ensemble(struct server_config *cfg, char *error, size_t error_size)
{
	if (!cfg->ensemble.secret && cfg->ensemble.peer_auth != PEER_AUTH_OFF)
		return finish_fail(cfg, error, error_size, 0, "ensemble.peer_auth: given without "
				   "ensemble.secret_file, the secret the peers prove");
	if (cfg->ensemble.secret && cfg->ensemble.peer_auth == PEER_AUTH_OFF)
		cfg->ensemble.peer_auth = PEER_AUTH_REQUIRED;
	int r = finish_tls(cfg, error, error_size);
	if (r < 0)
		return r;
	if (!cfg->in_ensemble) {
		cfg->ensemble.id = 1;
		return 0;
	}
	if (cfg->ensemble.id == 0)
		return finish_fail(cfg, error, error_size, 0, "ensemble.id: missing: every server "
				   "of an ensemble needs its id (1..255)");
	if (cfg->ensemble.member_count == 0)
		return finish_fail(cfg, error, error_size, 0, "ensemble.members: missing: list the "
				   "servers of the ensemble (id, client, peer)");
	size_t voters = 0;
	for (size_t i = 0; i < cfg->ensemble.member_count; i++)
		voters += !cfg->ensemble.members[i].observer;
	if (voters == 0)
		return finish_fail(cfg, error, error_size, cfg->ensemble.members[0].line,
				   "ensemble.members: no voter among them; at least one is needed");
	const struct ensemble_member *self = ensemble_config_self(&cfg->ensemble);
	if (!self && !cfg->ensemble.peer_listen.host)
		return finish_fail(cfg, error, error_size, 0, "ensemble.id: %u is not among "
				   "ensemble.members; a server that joins later needs "
				   "ensemble.peer_listen (its own peer address)", cfg->ensemble.id);
	if (self && cfg->ensemble.peer_listen.host && (cfg->ensemble.peer_listen.port != self->peer.port ||
					      strcmp(cfg->ensemble.peer_listen.host, self->peer.host) != 0))
		return finish_fail(cfg, error, error_size, self->line, "ensemble.peer_listen: "
				   "%s:%u differs from member %u's peer address %s:%u",
				   cfg->ensemble.peer_listen.host, cfg->ensemble.peer_listen.port, self->id,
				   self->peer.host, self->peer.port);
	if (!cfg->ensemble.peer_listen.host) {
		cfg->ensemble.peer_listen.port = self->peer.port;
		cfg->ensemble.peer_listen.host = strdup(self->peer.host);
		if (!cfg->ensemble.peer_listen.host)
			return -ENOMEM;
	}
	if (!cfg->listen_given && self) {
		/* The member's client address is where this server listens. */
		char *host = strdup(self->client.host);
		if (!host)
			return -ENOMEM;
		cfg_free_listen(cfg->listen, cfg->listen_count);
		cfg->listen = calloc(1, sizeof(*cfg->listen));
		if (!cfg->listen) {
			free(host);
			cfg->listen_count = 0;
			return -ENOMEM;
		}
		cfg->listen[0].host = host;
		cfg->listen[0].port = self->client.port;
		cfg->listen_count = 1;
	}
	if (!cfg->ensemble.cluster_name && !(cfg->ensemble.cluster_name = strdup("corral")))
		return -ENOMEM;
	return 0;
}
