/* tls: see tls.h. */
#include "tls.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "jute.h"

/* What client.tls.client_auth asks of a client's certificate. */
static int verify_mode(uint32_t client_auth)
{
	switch (client_auth) {
	case TLS_CLIENT_AUTH_REQUIRED:
		return SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	case TLS_CLIENT_AUTH_OPTIONAL:
		return SSL_VERIFY_PEER;
	default:
		return SSL_VERIFY_NONE;
	}
}

int tls_context_new(const struct server_config *cfg, SSL_CTX **ret, char *why, size_t why_size)
{
	const struct tls_engine_files f = {
		.prefix = "client.tls",
		.certificate = cfg->tls_certificate,
		.private_key = cfg->tls_private_key,
		.ca = cfg->tls_ca,
		.verify = verify_mode(cfg->tls_client_auth),
		.tls13_only = cfg->tls_min_version == TLS_MIN_1_3,
		.ciphers = cfg->tls_ciphers,
		.ciphersuites = cfg->tls_ciphersuites,
	};
	return tls_engine_context(&f, ret, why, why_size);
}

void tls_context_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

#ifndef TCP_ULP
#define TCP_ULP 31
#endif

int tls_kernel_probe(char *why, size_t why_size)
{
	/* The kernel looks the upper-layer protocol up (and loads its module)
	 * before it checks the socket's state: ENOENT means there is none. */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, why_size, "socket(): %s", strerror(errno));
		return 0;
	}
	int r = setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls"));
	int e = errno;
	close(fd);
	if (r < 0 && e == ENOENT) {
		snprintf(why, why_size, "the kernel has no \"tls\" TCP upper-layer protocol (module tls)");
		return 0;
	}
	snprintf(why, why_size, "the kernel offers the \"tls\" TCP upper-layer protocol");
	return 1;
}

/* The attribute types Java's X500Principal writes by keyword in RFC 2253
 * form; every other type is written as its OID, dotted. */
static const char *rfc2253_keyword(int nid)
{
	switch (nid) {
	case NID_commonName: return "CN";
	case NID_countryName: return "C";
	case NID_localityName: return "L";
	case NID_stateOrProvinceName: return "ST";
	case NID_organizationName: return "O";
	case NID_organizationalUnitName: return "OU";
	case NID_streetAddress: return "STREET";
	case NID_domainComponent: return "DC";
	case NID_userId: return "UID";
	default: return NULL;
	}
}

/* A value as Java's AVA.toRFC2253String() writes it: ,=+<>#;"\ escaped
 * with a backslash, NUL as \00, leading and trailing blanks escaped. */
static void write_escaped(struct jute_buf *b, const unsigned char *s, size_t len)
{
	size_t lead = 0, trail = len;
	while (lead < len && (s[lead] == ' ' || s[lead] == '\r'))
		lead++;
	while (trail > lead && (s[trail - 1] == ' ' || s[trail - 1] == '\r'))
		trail--;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == 0) {
			jute_write_raw(b, "\\00", 3);
			continue;
		}
		if (i < lead || i >= trail || strchr(",=+<>#;\"\\", s[i]))
			jute_write_raw(b, "\\", 1);
		jute_write_raw(b, &s[i], 1);
	}
}

/* "#" and the hex of the value's DER encoding: Java's form for a type it
 * has no keyword for. */
static void write_der_hex(struct jute_buf *b, const ASN1_STRING *value)
{
	ASN1_TYPE *t = ASN1_TYPE_new();
	unsigned char *der = NULL;
	int n = -1;
	if (t && ASN1_TYPE_set1(t, ASN1_STRING_type(value), value) == 1)
		n = i2d_ASN1_TYPE(t, &der);
	ASN1_TYPE_free(t);
	if (n < 0) {
		b->error = -ENOMEM;
		return;
	}
	jute_write_raw(b, "#", 1);
	for (int i = 0; i < n; i++) {
		char hex[3];
		snprintf(hex, sizeof(hex), "%02x", der[i]);
		jute_write_raw(b, hex, 2);
	}
	OPENSSL_free(der);
}

static void write_attribute(struct jute_buf *b, const X509_NAME_ENTRY *e)
{
	const ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(e);
	const ASN1_STRING *value = X509_NAME_ENTRY_get_data(e);
	const char *keyword = rfc2253_keyword(OBJ_obj2nid(obj));
	char oid[128];
	if (keyword) {
		jute_write_raw(b, keyword, strlen(keyword));
	} else {
		OBJ_obj2txt(oid, sizeof(oid), obj, 1);
		jute_write_raw(b, oid, strlen(oid));
	}
	jute_write_raw(b, "=", 1);
	unsigned char *utf8 = NULL;
	int n = keyword ? ASN1_STRING_to_UTF8(&utf8, value) : -1;
	if (n >= 0)
		write_escaped(b, utf8, (size_t)n);
	else
		write_der_hex(b, value);
	OPENSSL_free(utf8);
}

int tls_conn_peer_dn(const struct tls_conn *t, char **ret)
{
	X509 *cert = SSL_get0_peer_certificate(t->ssl);
	if (!cert || SSL_get_verify_result(t->ssl) != X509_V_OK)
		return -ENOENT;
	const X509_NAME *name = X509_get_subject_name(cert);
	struct jute_buf b = { 0 };
	/* Most significant last, as RFC 2253 writes it: the RDNs in reverse,
	 * "," between them; the attributes of one RDN in their encoded order,
	 * "+" between them (as Java does). */
	for (int last = X509_NAME_entry_count(name) - 1, first; last >= 0; last = first - 1) {
		int set = X509_NAME_ENTRY_set(X509_NAME_get_entry(name, last));
		for (first = last; first > 0 &&
		     X509_NAME_ENTRY_set(X509_NAME_get_entry(name, first - 1)) == set; first--)
			;
		for (int i = first; i <= last; i++) {
			if (b.len > 0)
				jute_write_raw(&b, i == first ? "," : "+", 1);
			write_attribute(&b, X509_NAME_get_entry(name, i));
		}
	}
	jute_write_raw(&b, "", 1);
	if (b.error) {
		jute_buf_free(&b);
		return -ENOMEM;
	}
	*ret = (char *)b.data;
	return 0;
}
