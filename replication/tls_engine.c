/* tls_engine: see tls_engine.h. */
#include "tls_engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "sockaddr.h"

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

static int ctx_fail(SSL_CTX *ctx, const struct tls_engine_files *f, char *why, size_t why_size,
		    const char *what, const char *path)
{
	char reason[256];
	last_error(reason, sizeof(reason));
	snprintf(why, why_size, "%s.%s%s%s: %s", f->prefix, what, path ? " " : "", path ?: "",
		 reason);
	SSL_CTX_free(ctx);
	return -EINVAL;
}

int tls_engine_context(const struct tls_engine_files *f, SSL_CTX **ret, char *why,
		       size_t why_size)
{
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(f->both_roles ? TLS_method() : TLS_server_method());
	if (!ctx)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(ctx, f->tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
	/* No renegotiation (the other side could make this one work at will),
	 * no session tickets or cache (nothing to keep per connection); the
	 * memory of an idle connection's record buffers goes back. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
				 SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (SSL_CTX_use_certificate_chain_file(ctx, f->certificate) != 1)
		return ctx_fail(ctx, f, why, why_size, "certificate", f->certificate);
	if (SSL_CTX_use_PrivateKey_file(ctx, f->private_key, SSL_FILETYPE_PEM) != 1)
		return ctx_fail(ctx, f, why, why_size, "private_key", f->private_key);
	if (SSL_CTX_check_private_key(ctx) != 1)
		return ctx_fail(ctx, f, why, why_size, "private_key", f->private_key);
	if (f->ca) {
		if (SSL_CTX_load_verify_locations(ctx, f->ca, NULL) != 1)
			return ctx_fail(ctx, f, why, why_size, "ca", f->ca);
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(f->ca);
		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
	}
	SSL_CTX_set_verify(ctx, f->verify, NULL);
	if (f->ciphers && SSL_CTX_set_cipher_list(ctx, f->ciphers) != 1)
		return ctx_fail(ctx, f, why, why_size, "ciphers", f->ciphers);
	if (f->ciphersuites && SSL_CTX_set_ciphersuites(ctx, f->ciphersuites) != 1)
		return ctx_fail(ctx, f, why, why_size, "ciphersuites", f->ciphersuites);
	*ret = ctx;
	return 0;
}

int tls_conn_new(SSL_CTX *ctx, bool connector, struct tls_conn **ret)
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
	if (connector)
		SSL_set_connect_state(ssl);
	else
		SSL_set_accept_state(ssl);
	t->ssl = ssl;
	t->connector = connector;
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

/* Whether host is an IP address (text), not a name. */
static bool is_ip(const char *host)
{
	struct sockaddr_storage ss;
	socklen_t len;
	return sockaddr_from_host(host, 0, &ss, &len) == 0;
}

int tls_conn_expect_name(struct tls_conn *t, const char *host)
{
	X509_VERIFY_PARAM *param = SSL_get0_param(t->ssl);
	int ok = is_ip(host) ? X509_VERIFY_PARAM_set1_ip_asc(param, host)
			     : X509_VERIFY_PARAM_set1_host(param, host, 0);
	ERR_clear_error();
	return ok == 1 ? 0 : -ENOMEM;
}

bool tls_conn_peer_names(const struct tls_conn *t, const char *host)
{
	X509 *cert = SSL_get0_peer_certificate(t->ssl);
	if (!cert || SSL_get_verify_result(t->ssl) != X509_V_OK)
		return false;
	int r = is_ip(host) ? X509_check_ip_asc(cert, host, 0)
			    : X509_check_host(cert, host, strlen(host), 0, NULL);
	ERR_clear_error();
	return r == 1;
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
			snprintf(why, why_size, "TLS handshake failed: %s certificate: %s",
				 t->connector ? "server" : "client",
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

int tls_conn_handshake(struct tls_conn *t, char *why, size_t why_size)
{
	if (t->handshake_done)
		return 0;
	ERR_clear_error();
	int r = SSL_do_handshake(t->ssl);
	if (r != 1)
		return read_error(t, r, why, why_size);
	t->handshake_done = true;
	return 0;
}

int tls_conn_read(struct tls_conn *t, uint8_t *buf, size_t cap, size_t *ret_len, char *why,
		  size_t why_size)
{
	int r = tls_conn_handshake(t, why, why_size);
	if (r < 0)
		return r;
	if (cap == 0)
		return -EAGAIN;
	size_t n = 0;
	ERR_clear_error();
	r = SSL_read_ex(t->ssl, buf, cap, &n);
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

int tls_conn_take_all(struct tls_conn *t, struct jute_buf *b)
{
	size_t n = tls_conn_pending(t);
	b->len = 0;
	if (n == 0)
		return 0;
	uint8_t *d = jute_buf_extend(b, n);
	if (!d)
		return -ENOMEM;
	b->len = tls_conn_take(t, d, n);
	return 0;
}

const char *tls_conn_version(const struct tls_conn *t)
{
	return SSL_get_version(t->ssl);
}

const char *tls_conn_cipher(const struct tls_conn *t)
{
	return SSL_get_cipher_name(t->ssl);
}
