/* sasl: see sasl.h. */
#include "sasl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <krb5.h>
#include <openssl/crypto.h>
#include <sasl/sasl.h>
#include <sasl/saslplug.h>

#include "log.h"

#define ZK_SASL_SERVICE "zookeeper"
#define DIGEST_SERVER_NAME "zk-sasl-md5"	/* ZooKeeper's DIGEST-MD5 server name and realm */
#define SASL_HOST_MAX 256

struct sasl_exchange {
	sasl_conn_t *conn;
	bool gssapi;
};

/* The process's configuration (the library's callbacks read it). */
static struct {
	bool initialized;
	char *users;			/* a copy of the users text, wiped when replaced */
	size_t users_len;
	char *keytab;
	char service[SASL_HOST_MAX];	/* of the GSSAPI principal */
	char host[SASL_HOST_MAX];
	char mech_list[32];
	char default_realm[SASL_HOST_MAX];	/* Kerberos' (krb5.conf), for GSSAPI names */
} g;

/* The next "name: password" line at *pos: 1 with its parts, 0 at the end,
 * -EINVAL (*ret_why) for a line that is not one. */
static int next_user(const char *text, size_t len, size_t *pos, const char **name,
		     size_t *name_len, const char **pass, size_t *pass_len, const char **ret_why)
{
	while (*pos < len) {
		const char *line = text + *pos;
		const char *nl = memchr(line, '\n', len - *pos);
		size_t n = nl ? (size_t)(nl - line) : len - *pos;
		*pos += n + (nl ? 1 : 0);
		while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
			n--;
		if (n == 0 || line[0] == '#')
			continue;
		const char *colon = memchr(line, ':', n);
		if (!colon || colon == line) {
			*ret_why = "expected \"name: password\"";
			return -EINVAL;
		}
		*name = line;
		*name_len = (size_t)(colon - line);
		if (memchr(line, ' ', *name_len) || memchr(line, '\t', *name_len) ||
		    memchr(line, '@', *name_len)) {
			*ret_why = "a user name holds no blank and no '@'";
			return -EINVAL;
		}
		const char *p = colon + 1;
		while (p < line + n && (*p == ' ' || *p == '\t'))
			p++;
		if (p == line + n) {
			*ret_why = "the password is empty";
			return -EINVAL;
		}
		*pass = p;
		*pass_len = (size_t)(line + n - p);
		return 1;
	}
	return 0;
}

int sasl_users_check(const char *text, size_t len, unsigned *ret_line, const char **ret_why)
{
	const char *name, *pass;
	size_t name_len, pass_len, pos = 0;
	int r;
	while ((r = next_user(text, len, &pos, &name, &name_len, &pass, &pass_len, ret_why)) > 0)
		;
	if (r < 0) {
		unsigned line = 1;
		for (size_t i = 0; i + 1 < pos && i < len; i++)
			line += text[i] == '\n';
		*ret_line = line;
	}
	return r;
}

/* The auxiliary property plugin: the user's password for DIGEST-MD5. */
static int users_lookup(void *glob_context, sasl_server_params_t *sparams, unsigned flags,
			const char *user, unsigned ulen)
{
	const struct propval *to_fetch = sparams->utils->prop_get(sparams->propctx);
	const char *at = memchr(user, '@', ulen);
	size_t want = at ? (size_t)(at - user) : ulen;
	const char *name, *pass = NULL, *p;
	size_t name_len, pass_len = 0, plen, pos = 0;
	const char *why;

	/* The authorization id a client may send (Java's DIGEST-MD5 does):
	 * it has no properties here, and names nobody (the identity is the
	 * authenticated user's, see authorize()). */
	if (flags & SASL_AUXPROP_AUTHZID)
		return SASL_OK;
	if (!to_fetch)
		return SASL_NOUSER;
	while (g.users && next_user(g.users, g.users_len, &pos, &name, &name_len, &p, &plen, &why) > 0)
		if (name_len == want && memcmp(name, user, want) == 0) {
			pass = p;
			pass_len = plen;
		}
	if (!pass)
		return SASL_NOUSER;
	for (const struct propval *cur = to_fetch; cur->name; cur++) {
		if (strcmp(cur->name, SASL_AUX_PASSWORD) != 0)
			continue;
		if (cur->values && !(flags & SASL_AUXPROP_OVERRIDE))
			continue;
		if (cur->values)
			sparams->utils->prop_erase(sparams->propctx, cur->name);
		sparams->utils->prop_set(sparams->propctx, cur->name, pass, (int)pass_len);
	}
	return SASL_OK;
}

static sasl_auxprop_plug_t users_plugin = {
	.auxprop_lookup = users_lookup,
	.name = (char *)"corral",
};

static int users_plugin_init(const sasl_utils_t *utils, int max_version, int *out_version,
			     sasl_auxprop_plug_t **plug, const char *plugname)
{
	if (max_version < SASL_AUXPROP_PLUG_VERSION)
		return SASL_BADVERS;
	*out_version = SASL_AUXPROP_PLUG_VERSION;
	*plug = &users_plugin;
	return SASL_OK;
}

static int get_option(void *context, const char *plugin, const char *option, const char **result,
		      unsigned *len)
{
	if (strcmp(option, "auxprop_plugin") == 0)
		*result = "corral";
	else if (strcmp(option, "mech_list") == 0)
		*result = g.mech_list;
	else if (strcmp(option, "pwcheck_method") == 0)
		*result = "auxprop";
	else if (strcmp(option, "keytab") == 0 && g.keytab)
		*result = g.keytab;
	else
		return SASL_FAIL;
	if (len)
		*len = (unsigned)strlen(*result);
	return SASL_OK;
}

/* The library's own messages: debug lines (a failure is logged once, by
 * the caller, with the reason sasl_errdetail gives). */
static int library_log(void *context, int level, const char *message)
{
	if (level <= SASL_LOG_ERR)
		log_warning("sasl: %s", message);
	else
		log_debug("sasl: %s", message);
	return SASL_OK;
}

/* Any authorization id is accepted, as ZooKeeper's handleAuthorizeCallback
 * does: the identity is made from the authenticated id (SASL_AUTHUSER),
 * whatever the client asked to act as (pure-sasl's GSSAPI sends its
 * principal with the realm, which the library compares as a string). */
static int authorize(sasl_conn_t *conn, void *context, const char *requested_user,
		     unsigned rlen, const char *auth_identity, unsigned alen,
		     const char *def_realm, unsigned urlen, struct propctx *propctx)
{
	return SASL_OK;
}

static const sasl_callback_t callbacks[] = {
	{ SASL_CB_PROXY_POLICY, (int (*)(void))(void (*)(void))authorize, NULL },
	{ SASL_CB_GETOPT, (int (*)(void))(void (*)(void))get_option, NULL },
	{ SASL_CB_LOG, (int (*)(void))(void (*)(void))library_log, NULL },
	{ SASL_CB_LIST_END, NULL, NULL },
};

static void forget_users(void)
{
	if (g.users) {
		OPENSSL_cleanse(g.users, g.users_len);
		free(g.users);
	}
	g.users = NULL;
	g.users_len = 0;
}

/* "service/host[@REALM]" into g.service and g.host. */
static int set_principal(const char *principal, const char **ret_why)
{
	char hostname[SASL_HOST_MAX];
	if (!principal) {
		if (gethostname(hostname, sizeof(hostname)) < 0)
			return -errno;
		hostname[sizeof(hostname) - 1] = 0;
		snprintf(g.service, sizeof(g.service), "%s", ZK_SASL_SERVICE);
		snprintf(g.host, sizeof(g.host), "%s", hostname);
		return 0;
	}
	const char *slash = strchr(principal, '/');
	size_t host_len = slash ? strcspn(slash + 1, "@") : 0;
	if (!slash || slash == principal || host_len == 0 ||
	    (size_t)(slash - principal) >= sizeof(g.service) || host_len >= sizeof(g.host)) {
		*ret_why = "the principal is not \"service/host[@REALM]\"";
		return -EINVAL;
	}
	snprintf(g.service, sizeof(g.service), "%.*s", (int)(slash - principal), principal);
	snprintf(g.host, sizeof(g.host), "%.*s", (int)host_len, slash + 1);
	return 0;
}

/* The default realm of krb5.conf: a GSSAPI principal of that realm comes
 * from the library without it. None when Kerberos has no configuration. */
static void read_default_realm(void)
{
	krb5_context ctx;
	char *realm = NULL;
	g.default_realm[0] = 0;
	if (krb5_init_context(&ctx) != 0)
		return;
	if (krb5_get_default_realm(ctx, &realm) == 0) {
		snprintf(g.default_realm, sizeof(g.default_realm), "%s", realm);
		krb5_free_default_realm(ctx, realm);
	}
	krb5_free_context(ctx);
}

int sasl_setup(const struct sasl_settings *s, const char **ret_why)
{
	int r = set_principal(s->principal, ret_why);
	if (r < 0)
		return r;
	forget_users();
	free(g.keytab);
	g.keytab = NULL;
	if (s->users) {
		g.users = malloc(s->users_len + 1);
		if (!g.users)
			return -ENOMEM;
		memcpy(g.users, s->users, s->users_len);
		g.users[s->users_len] = 0;
		g.users_len = s->users_len;
	}
	if (s->keytab && !(g.keytab = strdup(s->keytab)))
		return -ENOMEM;
	if (s->keytab)
		read_default_realm();
	snprintf(g.mech_list, sizeof(g.mech_list), "%s%s%s", s->users ? "DIGEST-MD5" : "",
		 s->users && s->keytab ? " " : "", s->keytab ? "GSSAPI" : "");
	if (g.initialized || !sasl_enabled())
		return 0;
	if (sasl_auxprop_add_plugin("corral", users_plugin_init) != SASL_OK) {
		*ret_why = "the users plugin could not be added";
		return -EIO;
	}
	if (sasl_server_init(callbacks, "corrald") != SASL_OK) {
		*ret_why = "sasl_server_init failed";
		return -EIO;
	}
	g.initialized = true;
	return 0;
}

void sasl_teardown(void)
{
	forget_users();
	free(g.keytab);
	g.keytab = NULL;
	g.mech_list[0] = 0;
	/* sasl_server_done is left alone: the library's state is the
	 * process's, and a server made again in this process (the tests)
	 * would find it gone. */
}

bool sasl_enabled(void)
{
	return g.users || g.keytab;
}

static int exchange_new(bool gssapi, struct sasl_exchange **ret)
{
	struct sasl_exchange *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	const char *service = gssapi ? g.service : ZK_SASL_SERVICE;
	const char *host = gssapi ? g.host : DIGEST_SERVER_NAME;
	/* SASL_SUCCESS_DATA: the last token (DIGEST-MD5's rspauth) goes with
	 * the success, as Java's SaslServer completes, not in one more round. */
	if (sasl_server_new(service, host, NULL, NULL, NULL, NULL, SASL_SUCCESS_DATA,
			    &x->conn) != SASL_OK) {
		free(x);
		return -ENOMEM;
	}
	/* ZooKeeper never wraps the connection: authentication only. */
	sasl_security_properties_t props = { .min_ssf = 0, .max_ssf = 0, .maxbufsize = 0 };
	sasl_setprop(x->conn, SASL_SEC_PROPS, &props);
	x->gssapi = gssapi;
	*ret = x;
	return 0;
}

/* Who authenticated: for GSSAPI the client's whole principal, realm
 * included, as ZooKeeper sees it (the library leaves out the realm when it
 * is the default one: it is put back); for DIGEST-MD5 the user. malloc'd,
 * or NULL. */
static char *authenticated_id(struct sasl_exchange *x)
{
	const void *user = NULL;
	if (sasl_getprop(x->conn, SASL_AUTHUSER, &user) != SASL_OK || !user)
		return NULL;
	if (!x->gssapi || strchr(user, '@') || !g.default_realm[0])
		return strdup(user);
	char *id;
	if (asprintf(&id, "%s@%s", (const char *)user, g.default_realm) < 0)
		return NULL;
	return id;
}

int sasl_step(struct sasl_exchange **x, const uint8_t *in, size_t in_len,
	      const uint8_t **ret_out, uint32_t *ret_out_len, char **ret_authid,
	      const char **ret_why)
{
	const char *out = NULL;
	unsigned out_len = 0;
	int r;
	bool first = !*x;

	if (first) {
		bool gssapi = in_len > 0;
		if (gssapi ? !g.keytab : !g.users) {
			*ret_why = gssapi ? "GSSAPI is not configured (auth.sasl.keytab)"
					  : "DIGEST-MD5 is not configured (auth.sasl.users_file)";
			return -EACCES;
		}
		r = exchange_new(gssapi, x);
		if (r < 0)
			return r;
		r = sasl_server_start((*x)->conn, gssapi ? "GSSAPI" : "DIGEST-MD5",
				      in_len ? (const char *)in : NULL, (unsigned)in_len, &out, &out_len);
	} else {
		r = sasl_server_step((*x)->conn, (const char *)in, (unsigned)in_len, &out, &out_len);
	}
	if (r == SASL_NOMEM)
		return -ENOMEM;
	if (r != SASL_OK && r != SASL_CONTINUE) {
		*ret_why = sasl_errdetail((*x)->conn);
		return -EACCES;
	}
	*ret_out = (const uint8_t *)out;
	*ret_out_len = out_len;
	if (r == SASL_CONTINUE)
		return 0;
	*ret_authid = authenticated_id(*x);
	if (!*ret_authid) {
		*ret_why = "the library named no user";
		return -EACCES;
	}
	return 1;
}

void sasl_exchange_free(struct sasl_exchange *x)
{
	if (!x)
		return;
	sasl_dispose(&x->conn);
	free(x);
}
