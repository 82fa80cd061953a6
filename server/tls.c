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

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "jute.h"

/* OpenSSL's reason for the last failure, and the queue emptied. */
static void last_error(char *buf, size_t size)
{
	unsigned long e = ERR_get_error();
	if (e)
		ERR_error_string_n(e, buf, size);
	else
		snprintf(buf, size, "unknown error");
	ERR_clear_error();
}

static int ctx_fail(SSL_CTX *ctx, char *why, size_t why_size, const char *what, const char *path)
{
	char reason[256];
	last_error(reason, sizeof(reason));
	snprintf(why, why_size, "client.tls.%s%s%s: %s", what, path ? " " : "", path ?: "", reason);
	SSL_CTX_free(ctx);
	return -EINVAL;
}

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
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(ctx, cfg->tls_min_version == TLS_MIN_1_3 ? TLS1_3_VERSION
									    : TLS1_2_VERSION);
	/* No renegotiation (a client could make the server work at will), no
	 * session tickets or cache (nothing to keep per client); the memory of
	 * an idle connection's record buffers goes back. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
				 SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_certificate) != 1)
		return ctx_fail(ctx, why, why_size, "certificate", cfg->tls_certificate);
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_private_key, SSL_FILETYPE_PEM) != 1)
		return ctx_fail(ctx, why, why_size, "private_key", cfg->tls_private_key);
	if (SSL_CTX_check_private_key(ctx) != 1)
		return ctx_fail(ctx, why, why_size, "private_key", cfg->tls_private_key);
	if (cfg->tls_ca) {
		if (SSL_CTX_load_verify_locations(ctx, cfg->tls_ca, NULL) != 1)
			return ctx_fail(ctx, why, why_size, "ca", cfg->tls_ca);
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->tls_ca);
		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
	}
	SSL_CTX_set_verify(ctx, verify_mode(cfg->tls_client_auth), NULL);
	if (cfg->tls_ciphers && SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers) != 1)
		return ctx_fail(ctx, why, why_size, "ciphers", cfg->tls_ciphers);
	if (cfg->tls_ciphersuites && SSL_CTX_set_ciphersuites(ctx, cfg->tls_ciphersuites) != 1)
		return ctx_fail(ctx, why, why_size, "ciphersuites", cfg->tls_ciphersuites);
	*ret = ctx;
	return 0;
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

int tls_conn_new(SSL_CTX *ctx, struct tls_conn **ret)
{
	struct tls_conn *t = calloc(1, sizeof(*t));
	BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
	SSL *ssl = SSL_new(ctx);
	if (!t || !in || !out || !ssl) {
		free(t);
		BIO_free(in);
		BIO_free(out);
		SSL_free(ssl);
		return -ENOMEM;
	}
	/* An empty input is "try again", not the end of the stream. */
	BIO_set_mem_eof_return(in, -1);
	SSL_set_bio(ssl, in, out);
	SSL_set_accept_state(ssl);
	t->ssl = ssl;
	*ret = t;
	return 0;
}

void tls_conn_free(struct tls_conn *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	free(t);
}

int tls_conn_feed(struct tls_conn *t, const uint8_t *data, size_t len)
{
	if (len == 0)
		return 0;
	return BIO_write(SSL_get_rbio(t->ssl), data, (int)len) == (int)len ? 0 : -ENOMEM;
}

static int read_error(struct tls_conn *t, int r, char *why, size_t why_size)
{
	int e = SSL_get_error(t->ssl, r);
	char reason[256];
	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:	/* a memory BIO takes all: output just waits */
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return -ECONNRESET;
	case SSL_ERROR_SSL:
		last_error(reason, sizeof(reason));
		if (!t->handshake_done && SSL_get_verify_result(t->ssl) != X509_V_OK)
			snprintf(why, why_size, "TLS handshake failed: client certificate: %s",
				 X509_verify_cert_error_string(SSL_get_verify_result(t->ssl)));
		else
			snprintf(why, why_size, "TLS %s failed: %s",
				 t->handshake_done ? "record" : "handshake", reason);
		return -EPROTO;
	default:
		ERR_clear_error();
		snprintf(why, why_size, "TLS error %d", e);
		return -EPROTO;
	}
}

int tls_conn_read(struct tls_conn *t, uint8_t *buf, size_t cap, size_t *ret_len, char *why,
		  size_t why_size)
{
	ERR_clear_error();
	if (!t->handshake_done) {
		int r = SSL_do_handshake(t->ssl);
		if (r != 1)
			return read_error(t, r, why, why_size);
		t->handshake_done = true;
	}
	if (cap == 0)
		return -EAGAIN;
	size_t n = 0;
	int r = SSL_read_ex(t->ssl, buf, cap, &n);
	if (r != 1)
		return read_error(t, r, why, why_size);
	*ret_len = n;
	return 0;
}

int tls_conn_write(struct tls_conn *t, const uint8_t *data, size_t len)
{
	size_t done = 0;
	ERR_clear_error();
	while (done < len) {
		size_t n = 0;
		if (SSL_write_ex(t->ssl, data + done, len - done, &n) != 1) {
			int e = SSL_get_error(t->ssl, 0);
			ERR_clear_error();
			return e == SSL_ERROR_SYSCALL ? -ENOMEM : -EPROTO;
		}
		done += n;
	}
	return 0;
}

void tls_conn_shutdown(struct tls_conn *t)
{
	if (t->shutdown_sent || !t->handshake_done)
		return;
	t->shutdown_sent = true;
	SSL_shutdown(t->ssl);
	ERR_clear_error();
}

size_t tls_conn_pending(const struct tls_conn *t)
{
	return BIO_ctrl_pending(SSL_get_wbio(t->ssl));
}

size_t tls_conn_take(struct tls_conn *t, uint8_t *buf, size_t cap)
{
	int n = BIO_read(SSL_get_wbio(t->ssl), buf, (int)(cap > INT32_MAX ? INT32_MAX : cap));
	return n > 0 ? (size_t)n : 0;
}

const char *tls_conn_version(const struct tls_conn *t)
{
	return SSL_get_version(t->ssl);
}

const char *tls_conn_cipher(const struct tls_conn *t)
{
	return SSL_get_cipher_name(t->ssl);
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
