/* Unit tests of the sasl scheme's names (core/auth.c): a principal named
 * as ZooKeeper's SaslServerCallbackHandler names it, with and without
 * zookeeper.kerberos.removeHostFromPrincipal / removeRealmFromPrincipal; the ACL ids
 * SASLAuthenticationProvider takes (what KerberosName parses); the super
 * user; the enforced schemes; and the DIGEST-MD5 users file's lines. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "sasl.h"

static void name_is(const char *authid, bool remove_host, bool remove_realm, const char *want)
{
	char *got = auth_sasl_name(authid, remove_host, remove_realm);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_principal_keeps_host_and_realm_by_default(void **state)
{
	name_is("zkcli/client.example.com@EXAMPLE.COM", false, false,
		"zkcli/client.example.com@EXAMPLE.COM");
	name_is("bob@EXAMPLE.COM", false, false, "bob@EXAMPLE.COM");
	name_is("bob", false, false, "bob");
}

static void test_remove_host_and_realm_from_principal(void **state)
{
	const char *p = "zkcli/client.example.com@EXAMPLE.COM";
	name_is(p, true, false, "zkcli@EXAMPLE.COM");
	name_is(p, false, true, "zkcli/client.example.com");
	name_is(p, true, true, "zkcli");
	name_is("bob@EXAMPLE.COM", true, true, "bob");
	/* no realm: KerberosName keeps the whole name (a DIGEST-MD5 user) */
	name_is("a/b", true, true, "a/b");
	/* what KerberosName cannot parse stays whole */
	name_is("a@b@c", true, true, "a@b@c");
}

static struct acl_entry sasl_entry(const char *id)
{
	return (struct acl_entry){ .perms = 31, .scheme = (char *)"sasl", .id = (char *)id };
}

static bool acl_accepted(const char *id)
{
	struct auth_identities a;
	struct sockaddr_storage peer = { .ss_family = AF_INET };
	struct acl_entry in = sasl_entry(id), *out = NULL;
	uint32_t n = 0;
	auth_identities_init(&a, &peer);
	int r = auth_fixup_acl(&a, &in, 1, &out, &n);
	if (r == 0)
		acl_entries_free(out, n);
	auth_identities_free(&a);
	return r == 0;
}

static void test_sasl_acl_ids_are_kerberos_names(void **state)
{
	assert_true(acl_accepted("bob"));
	assert_true(acl_accepted("a/b"));
	assert_true(acl_accepted("svc/host@REALM"));
	assert_true(acl_accepted("bob@REALM"));
	assert_false(acl_accepted("a@b@c"));
	assert_false(acl_accepted("svc/h/x@R"));
	assert_false(acl_accepted("svc/h@R/x"));
}

static void test_sasl_identity_and_super_user(void **state)
{
	struct auth_identities a;
	struct sockaddr_storage peer = { .ss_family = AF_INET };
	auth_identities_init(&a, &peer);
	assert_int_equal(auth_add_sasl(&a, "bob", "alice"), 0);
	assert_false(a.super);
	assert_true(auth_has_scheme_of(&a, AUTH_SCHEME_SASL));
	assert_false(auth_has_scheme_of(&a, AUTH_SCHEME_DIGEST | AUTH_SCHEME_X509));
	assert_int_equal(auth_add_sasl(&a, "bob", "alice"), 0);	/* again: nothing new */
	uint32_t count = a.count;
	assert_int_equal(auth_add_sasl(&a, "alice", "alice"), 0);
	assert_true(a.super);
	assert_int_equal(a.count, count + 2);			/* sasl:alice and super */
	auth_identities_free(&a);
}

static void test_enforced_schemes_parse(void **state)
{
	uint32_t bits = 0;
	const char *bad = NULL;
	assert_int_equal(auth_schemes_parse("sasl", &bits, &bad), 0);
	assert_int_equal(bits, AUTH_SCHEME_SASL);
	assert_int_equal(auth_schemes_parse(" digest, sasl ,x509", &bits, &bad), 0);
	assert_int_equal(bits, AUTH_SCHEME_DIGEST | AUTH_SCHEME_SASL | AUTH_SCHEME_X509);
	assert_int_equal(auth_schemes_parse("sasl,kerberos", &bits, &bad), -22);
	assert_string_equal(bad, "kerberos");
}

static void test_users_file_lines(void **state)
{
	unsigned line = 0;
	const char *why = NULL;
	const char ok[] = "# users\n\nbob: secret\r\nalice:wonder land  \n";
	assert_int_equal(sasl_users_check(ok, sizeof(ok) - 1, &line, &why), 0);
	const char no_colon[] = "bob: secret\n# fine\nalice\n";
	assert_int_equal(sasl_users_check(no_colon, sizeof(no_colon) - 1, &line, &why), -22);
	assert_int_equal(line, 3);
	const char empty[] = "bob:   \n";
	assert_int_equal(sasl_users_check(empty, sizeof(empty) - 1, &line, &why), -22);
	assert_int_equal(line, 1);
	const char at[] = "bob@REALM: x\n";
	assert_int_equal(sasl_users_check(at, sizeof(at) - 1, &line, &why), -22);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_principal_keeps_host_and_realm_by_default),
		cmocka_unit_test(test_remove_host_and_realm_from_principal),
		cmocka_unit_test(test_sasl_acl_ids_are_kerberos_names),
		cmocka_unit_test(test_sasl_identity_and_super_user),
		cmocka_unit_test(test_enforced_schemes_parse),
		cmocka_unit_test(test_users_file_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
