/* Unit tests of path validation (daemon/path.c), which must give ZooKeeper's
 * verdict (PathUtils.validatePath on the Java string) for every input. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "path.h"

static bool valid(const char *p) { return path_valid(p, strlen(p), false); }

static void test_ordinary_paths_are_valid(void **state)
{
	static const char *ok[] = { "/", "/a", "/a/b", "/a.b", "/..a", "/a..", "/.a/b.",
				    "/\xc3\xa9", "/\xe6\x97\xa5\xe6\x9c\xac", "/a b", "/~-_" };
	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++)
		assert_true(valid(ok[i]));
}

static void test_structurally_bad_paths_are_refused(void **state)
{
	static const char *bad[] = { "", "a", "a/b", "/a/", "//", "/a//b", "/.", "/..", "/a/./b",
				     "/a/..", "/a/../b" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		assert_false(valid(bad[i]));
}

static void test_nul_inside_is_refused(void **state)
{
	assert_false(path_valid("/a\0b", 4, false));
}

static void test_forbidden_code_points_are_refused(void **state)
{
	static const char *controls[] = { "/\x01", "/\x1f", "/\x7f", "/\xc2\x80", "/\xc2\x9f" };
	for (size_t i = 0; i < sizeof(controls) / sizeof(*controls); i++)
		assert_false(valid(controls[i]));
	assert_true(valid("/\xed\x9f\xbf"));		/* U+D7FF */
	assert_false(valid("/\xee\x80\x80"));		/* U+E000, private use */
	assert_false(valid("/\xef\xa3\xbf"));		/* U+F8FF */
	assert_true(valid("/\xef\xa4\x80"));		/* U+F900 */
	assert_false(valid("/\xef\xbf\xb0"));		/* U+FFF0 */
	assert_false(valid("/\xef\xbf\xbd"));		/* U+FFFD */
	assert_false(valid("/\xf0\x9f\x98\x80"));	/* a surrogate pair in Java */
}

static void test_invalid_utf8_is_refused_like_java_replacement(void **state)
{
	assert_false(valid("/\xff"));
	assert_false(valid("/\xc0\xaf"));		/* overlong */
	assert_false(valid("/\xe6\x97"));		/* truncated */
	assert_false(valid("/\xed\xa0\x80"));		/* an encoded surrogate */
}

static void test_sequential_allows_a_trailing_slash_and_dots_at_the_end(void **state)
{
	assert_true(path_valid("/a/", 3, true));
	assert_true(path_valid("/a/.", 4, true));
	assert_false(path_valid("/a//b/", 6, true));
	assert_false(path_valid("/a/", 3, false));
}

/* path_valid looks at plain ASCII eight bytes at a time: whatever word of a
 * long path a byte falls in, and wherever in the word, the verdict is the
 * byte's own. */
static void test_a_byte_gets_its_verdict_wherever_it_falls_in_a_long_path(void **state)
{
	static const struct {
		const char *insert;
		bool ok;
	} cases[] = {
		{ "\x01", false }, { "\x1f", false }, { "\x7f", false }, { "\xff", false },
		{ "\xc2\x80", false }, { "\xef\xbf\xbd", false }, { "\xc3\xa9", true },
		{ " ", true }, { "~", true }, { "/", true }, { "//", false }, { "/./", false },
		{ "/../", false }, { "/.../", true }, { "/.", true }, /* then ".aaa": a name */
	};
	char path[80];
	for (size_t c = 0; c < sizeof(cases) / sizeof(*cases); c++) {
		size_t ins = strlen(cases[c].insert);
		for (size_t at = 1; at + ins + 1 < 40; at++) {
			/* "/aaa...a", 40 bytes, the insert at position at, an 'a' after it */
			memset(path, 'a', 40);
			path[0] = '/';
			memcpy(path + at, cases[c].insert, ins);
			bool ok = cases[c].ok;
			if (at == 1 && cases[c].insert[0] == '/')
				ok = false;	/* "//": an empty first component */
			if (!ok == path_valid(path, 40, false)) {
				print_error("insert %zu at %zu: expected %s\n", c, at,
					    ok ? "valid" : "invalid");
				fail();
			}
		}
	}
	/* a NUL inside a long path, in every position of a word */
	for (size_t at = 1; at < 40; at++) {
		memset(path, 'a', 40);
		path[0] = '/';
		path[at] = 0;
		assert_false(path_valid(path, 40, false));
	}
}

static void test_parent_length(void **state)
{
	assert_int_equal(path_parent_len("/a", 2), 1);
	assert_int_equal(path_parent_len("/a/b", 4), 2);
	assert_int_equal(path_parent_len("/a/b/cde", 8), 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ordinary_paths_are_valid),
		cmocka_unit_test(test_structurally_bad_paths_are_refused),
		cmocka_unit_test(test_nul_inside_is_refused),
		cmocka_unit_test(test_forbidden_code_points_are_refused),
		cmocka_unit_test(test_invalid_utf8_is_refused_like_java_replacement),
		cmocka_unit_test(test_sequential_allows_a_trailing_slash_and_dots_at_the_end),
		cmocka_unit_test(test_a_byte_gets_its_verdict_wherever_it_falls_in_a_long_path),
		cmocka_unit_test(test_parent_length),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
