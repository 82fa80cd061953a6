/* auth: see auth.h. */
#include "auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "records.h"

static void peer_address_text(const struct sockaddr_storage *ss, char *out, size_t size)
{
	out[0] = 0;
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)size);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out, (socklen_t)size);
}

void auth_identities_init(struct auth_identities *a, const struct sockaddr_storage *peer)
{
	char text[INET6_ADDRSTRLEN];
	memset(a, 0, sizeof(*a));
	a->peer = *peer;
	peer_address_text(peer, text, sizeof(text));
	a->ids[0].scheme = strdup("ip");
	a->ids[0].id = strdup(text);
	if (a->ids[0].scheme && a->ids[0].id)
		a->count = 1;
	else {
		free(a->ids[0].scheme);
		free(a->ids[0].id);
	}
}

void auth_identities_free(struct auth_identities *a)
{
	for (uint32_t i = 0; i < a->count; i++) {
		free(a->ids[i].scheme);
		free(a->ids[i].id);
	}
	a->count = 0;
}

char *auth_digest(const char *user_password, size_t len)
{
	/* As ZooKeeper's generateDigest: the user is what precedes the first
	 * ':' (all of it when there is none). */
	const char *colon = memchr(user_password, ':', len);
	size_t user_len = colon ? (size_t)(colon - user_password) : len;
	unsigned char sha[SHA_DIGEST_LENGTH];
	if (!EVP_Digest(user_password, len, sha, NULL, EVP_sha1(), NULL))
		return NULL;
	char *out = malloc(user_len + 1 + 4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1);
	if (!out)
		return NULL;
	memcpy(out, user_password, user_len);
	out[user_len] = ':';
	EVP_EncodeBlock((unsigned char *)out + user_len + 1, sha, SHA_DIGEST_LENGTH);
	return out;
}

char *utf8_as_java(const uint8_t *s, size_t len, size_t *ret_len)
{
	/* Each byte that does not start a valid sequence becomes U+FFFD (3 bytes). */
	char *out = malloc(len * 3 + 1);
	size_t o = 0;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len;) {
		uint8_t c = s[i];
		size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
		bool ok = n > 0 && i + n <= len;
		uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1fu) : n == 3 ? (c & 0x0fu) : (c & 0x07u);
		for (size_t k = 1; ok && k < n; k++) {
			ok = (s[i + k] & 0xc0) == 0x80;
			cp = (cp << 6) | (s[i + k] & 0x3fu);
		}
		if (ok && n > 1) {
			static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
			ok = cp >= min[n] && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
		}
		if (ok) {
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	out[o] = 0;
	*ret_len = o;
	return out;
}

static bool has_identity(const struct auth_identities *a, const char *scheme, const char *id)
{
	for (uint32_t i = 0; i < a->count; i++)
		if (strcmp(a->ids[i].scheme, scheme) == 0 && strcmp(a->ids[i].id, id) == 0)
			return true;
	return false;
}

/* Adds (scheme, id), taking id; frees it on failure. */
static int add_identity(struct auth_identities *a, const char *scheme, char *id)
{
	if (a->count == AUTH_IDS_MAX) {
		free(id);
		return -ENOSPC;
	}
	char *s = strdup(scheme);
	if (!s) {
		free(id);
		return -ENOMEM;
	}
	a->ids[a->count].scheme = s;
	a->ids[a->count].id = id;
	a->count++;
	return 0;
}

/* Adds (scheme, name) and, when name is the configured super user, the
 * ("super", super_id) ZooKeeper adds beside it. */
static int add_named(struct auth_identities *a, const char *scheme, const char *name,
		     const char *super_user, const char *super_id)
{
	if (has_identity(a, scheme, name))
		return 0;
	char *id = strdup(name);
	if (!id)
		return -ENOMEM;
	int r = add_identity(a, scheme, id);
	if (r == 0 && super_user && strcmp(name, super_user) == 0 && !a->super) {
		char *sid = strdup(super_id);
		if (!sid)
			return -ENOMEM;
		r = add_identity(a, "super", sid);
		if (r == 0)
			a->super = true;
	}
	return r;
}

int auth_add_x509(struct auth_identities *a, const char *dn, const char *super_user)
{
	/* ZooKeeper's X509AuthenticationProvider adds ("super", dn). */
	return add_named(a, "x509", dn, super_user, dn);
}

int auth_add_sasl(struct auth_identities *a, const char *name, const char *super_user)
{
	/* ZooKeeper's SaslServerCallbackHandler path adds ("super", ""). */
	return add_named(a, "sasl", name, super_user, "");
}

/* Splits a principal as Kerberos' KerberosName does: service, then
 * "/host" and "@REALM" when present. False when it has an '@' and is not
 * "service[/host]@REALM" (ZooKeeper keeps such a name whole). */
static bool principal_split(const char *p, size_t *ret_service, const char **ret_host,
			    size_t *ret_host_len, const char **ret_realm)
{
	size_t service = strcspn(p, "/@");
	const char *host = NULL, *realm = NULL;
	size_t host_len = 0;
	const char *at = strchr(p, '@');
	if (!at) {
		/* no realm: KerberosName keeps the whole name as the service */
		*ret_service = strlen(p);
		*ret_host = NULL;
		*ret_host_len = 0;
		*ret_realm = NULL;
		return true;
	}
	if (p[service] == '/') {
		host = p + service + 1;
		host_len = strcspn(host, "/@");
		if (host[host_len] != '@')
			return false;
	}
	realm = at + 1;
	if (strpbrk(realm, "/@"))
		return false;
	*ret_service = service;
	*ret_host = host;
	*ret_host_len = host_len;
	*ret_realm = realm;
	return true;
}

char *auth_sasl_name(const char *authid, bool remove_host, bool remove_realm)
{
	size_t service, host_len;
	const char *host, *realm;
	if (!principal_split(authid, &service, &host, &host_len, &realm))
		return strdup(authid);
	size_t size = strlen(authid) + 1;
	char *out = malloc(size);
	if (!out)
		return NULL;
	int n = snprintf(out, size, "%.*s", (int)service, authid);
	if (host && !remove_host)
		n += snprintf(out + n, size - (size_t)n, "/%.*s", (int)host_len, host);
	if (realm && !remove_realm)
		snprintf(out + n, size - (size_t)n, "@%s", realm);
	return out;
}

int auth_schemes_parse(const char *text, uint32_t *ret, const char **ret_bad)
{
	static const struct { const char *name; uint32_t bit; } known[] = {
		{ "digest", AUTH_SCHEME_DIGEST }, { "sasl", AUTH_SCHEME_SASL },
		{ "x509", AUTH_SCHEME_X509 }, { "ip", AUTH_SCHEME_IP },
	};
	uint32_t bits = 0;
	for (const char *s = text + strspn(text, ", \t"); *s; s += strspn(s, ", \t")) {
		size_t len = strcspn(s, ", \t");
		uint32_t bit = 0;
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (strlen(known[i].name) == len && memcmp(known[i].name, s, len) == 0)
				bit = known[i].bit;
		if (!bit) {
			*ret_bad = s;
			return -EINVAL;
		}
		bits |= bit;
		s += len;
	}
	*ret = bits;
	return 0;
}

bool auth_has_scheme_of(const struct auth_identities *a, uint32_t schemes)
{
	static const char *const names[] = { "digest", "sasl", "x509", "ip" };
	for (uint32_t i = 0; i < a->count; i++)
		for (uint32_t b = 0; b < 4; b++)
			if ((schemes & (1u << b)) && strcmp(a->ids[i].scheme, names[b]) == 0)
				return true;
	return false;
}

static bool has_scheme(const struct auth_identities *a, const char *scheme)
{
	for (uint32_t i = 0; i < a->count; i++)
		if (strcmp(a->ids[i].scheme, scheme) == 0)
			return true;
	return false;
}

int auth_add(struct auth_identities *a, const char *scheme, size_t scheme_len,
	     const uint8_t *auth, size_t auth_len, const char *super_digest)
{
	if (scheme_len == 2 && memcmp(scheme, "ip", 2) == 0)
		return 0;	/* every connection already has its ip identity */
	/* x509 comes from the TLS handshake, whatever the packet says: it
	 * succeeds for a client that presented a verified certificate. */
	if (scheme_len == 4 && memcmp(scheme, "x509", 4) == 0)
		return has_scheme(a, "x509") ? 0 : -EACCES;
	if (!(scheme_len == 6 && memcmp(scheme, "digest", 6) == 0))
		return -EACCES;
	/* ZooKeeper decodes the bytes as Java does (bad UTF-8 becomes U+FFFD)
	 * and digests the re-encoded string: do the same, so ids match. */
	size_t clen;
	char *clean = utf8_as_java(auth, auth_len, &clen);
	if (!clean)
		return -ENOMEM;
	char *id = auth_digest(clean, clen);
	free(clean);
	if (!id)
		return -ENOMEM;
	if (super_digest && strcmp(id, super_digest) == 0 && !a->super) {
		/* ZooKeeper records super as an identity too (whoAmI shows it). */
		if (a->count == AUTH_IDS_MAX) {
			free(id);
			return -ENOSPC;
		}
		a->ids[a->count].scheme = strdup("super");
		a->ids[a->count].id = strdup("");
		if (!a->ids[a->count].scheme || !a->ids[a->count].id) {
			free(a->ids[a->count].scheme);
			free(a->ids[a->count].id);
			free(id);
			return -ENOMEM;
		}
		a->count++;
		a->super = true;
	}
	if (has_identity(a, "digest", id)) {
		free(id);
		return 0;
	}
	if (a->count == AUTH_IDS_MAX) {
		free(id);
		return -ENOSPC;
	}
	char *s = strdup("digest");
	if (!s) {
		free(id);
		return -ENOMEM;
	}
	a->ids[a->count].scheme = s;
	a->ids[a->count].id = id;
	a->count++;
	return 0;
}

/* Parses "addr" or "addr/bits"; returns the family or -1. */
static int parse_ip_acl(const char *acl_id, uint8_t addr[16], int *ret_bits)
{
	char buf[INET6_ADDRSTRLEN + 8];
	size_t len = strlen(acl_id);
	if (len >= sizeof(buf))
		return -1;
	memcpy(buf, acl_id, len + 1);
	char *slash = strchr(buf, '/');
	int bits = -1;
	if (slash) {
		*slash = 0;
		char *end;
		long b = strtol(slash + 1, &end, 10);
		if (!slash[1] || *end || b < 0)
			return -1;
		bits = (int)b;
	}
	if (inet_pton(AF_INET, buf, addr) == 1) {
		if (bits > 32)
			return -1;
		*ret_bits = bits < 0 ? 32 : bits;
		return AF_INET;
	}
	if (inet_pton(AF_INET6, buf, addr) == 1) {
		if (bits > 128)
			return -1;
		*ret_bits = bits < 0 ? 128 : bits;
		return AF_INET6;
	}
	return -1;
}

bool auth_ip_matches(const char *acl_id, const struct sockaddr_storage *peer)
{
	uint8_t want[16], have[16];
	int bits;
	int family = parse_ip_acl(acl_id, want, &bits);
	if (family < 0 || family != peer->ss_family)
		return false;
	if (family == AF_INET)
		memcpy(have, &((const struct sockaddr_in *)peer)->sin_addr, 4);
	else
		memcpy(have, &((const struct sockaddr_in6 *)peer)->sin6_addr, 16);
	for (int i = 0; i < bits; i++) {
		uint8_t mask = (uint8_t)(0x80 >> (i % 8));
		if ((want[i / 8] & mask) != (have[i / 8] & mask))
			return false;
	}
	return true;
}

bool auth_allowed(const struct auth_identities *a, const struct acl_list *acl, int32_t perm)
{
	if (a->super || !acl || acl->count == 0)
		return true;
	for (uint32_t i = 0; i < acl->count; i++) {
		const struct acl_entry *e = &acl->entries[i];
		if (!(e->perms & perm))
			continue;
		if (strcmp(e->scheme, "world") == 0 && strcmp(e->id, "anyone") == 0)
			return true;
		if (strcmp(e->scheme, "ip") == 0) {
			if (auth_ip_matches(e->id, &a->peer))
				return true;
			continue;
		}
		if (has_identity(a, e->scheme, e->id))
			return true;
		/* SASLAuthenticationProvider.matches: the principal "super" matches any */
		if (strcmp(e->scheme, "sasl") == 0 && has_identity(a, "sasl", "super"))
			return true;
	}
	return false;
}

static bool entry_valid(const struct acl_entry *e)
{
	uint8_t addr[16];
	int bits;
	if (strcmp(e->scheme, "world") == 0)
		return strcmp(e->id, "anyone") == 0;
	if (strcmp(e->scheme, "digest") == 0) {
		/* ZooKeeper: id.split(":").length == 2, where Java's split drops
		 * trailing empty parts ("a:" is one part, ":b" and "a:b::" two). */
		size_t len = strlen(e->id);
		while (len > 0 && e->id[len - 1] == ':')
			len--;
		const char *colon = memchr(e->id, ':', len);
		return len > 0 && colon && !memchr(colon + 1, ':', len - (size_t)(colon + 1 - e->id));
	}
	if (strcmp(e->scheme, "ip") == 0)	/* ZooKeeper 3.8 takes IPv4 ids only */
		return parse_ip_acl(e->id, addr, &bits) == AF_INET;
	/* ZooKeeper's X509AuthenticationProvider takes any id: a DN, matched
	 * as a string against the client's. */
	if (strcmp(e->scheme, "x509") == 0)
		return true;
	/* ZooKeeper's SASLAuthenticationProvider: a name Kerberos can parse. */
	if (strcmp(e->scheme, "sasl") == 0) {
		size_t service, host_len;
		const char *host, *realm;
		return principal_split(e->id, &service, &host, &host_len, &realm);
	}
	return false;
}

int auth_fixup_acl(const struct auth_identities *a, const struct acl_entry *in, uint32_t n,
		   struct acl_entry **ret, uint32_t *ret_count)
{
	if (n == 0)
		return -EINVAL;
	/* Each "auth" entry may expand to every authenticated identity. */
	size_t cap = (size_t)n * (a->count + 1);
	struct acl_entry *out = calloc(cap, sizeof(*out));
	uint32_t m = 0;
	int r = -EINVAL;
	if (!out)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		if (strcmp(in[i].scheme, "auth") == 0) {
			bool any = false;
			for (uint32_t k = 0; k < a->count; k++) {
				if (strcmp(a->ids[k].scheme, "ip") == 0)
					continue;	/* ip is not an authenticated identity */
				out[m].perms = in[i].perms;
				out[m].scheme = strdup(a->ids[k].scheme);
				out[m].id = strdup(a->ids[k].id);
				m++;
				if (!out[m - 1].scheme || !out[m - 1].id) {
					r = -ENOMEM;
					goto fail;
				}
				any = true;
			}
			if (!any)
				goto fail;
			continue;
		}
		if (!entry_valid(&in[i]))
			goto fail;
		out[m].perms = in[i].perms;
		out[m].scheme = strdup(in[i].scheme);
		out[m].id = strdup(in[i].id);
		m++;
		if (!out[m - 1].scheme || !out[m - 1].id) {
			r = -ENOMEM;
			goto fail;
		}
	}
	*ret = out;
	*ret_count = m;
	return 0;
fail:
	acl_entries_free(out, m);
	return r;
}
