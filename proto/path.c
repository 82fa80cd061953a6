/* path: see path.h.
 *
 * ZooKeeper decodes a path as Java UTF-16 and then refuses, besides the
 * structural rules, the code units U+0001-001F, U+007F-009F, U+D800-F8FF and
 * U+FFF0-FFFF. So: bytes that are not valid UTF-8 become U+FFFD in Java (refused);
 * characters above U+FFFF become surrogate pairs (refused). We decode strictly
 * and apply the same ranges, which gives the same verdict for every input. */
#include "path.h"

#include <endian.h>
#include <stdint.h>
#include <string.h>

/* Decodes one UTF-8 sequence at s[*i]; returns the code point or -1 when the
 * bytes are not valid UTF-8 (overlong, surrogate, truncated, out of range). */
static int32_t utf8_next(const unsigned char *s, size_t len, size_t *i)
{
	unsigned char c = s[*i];
	int32_t cp, min;
	size_t n;

	if (c < 0x80) {
		(*i)++;
		return c;
	} else if ((c & 0xe0) == 0xc0) {
		cp = c & 0x1f; n = 1; min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		cp = c & 0x0f; n = 2; min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		cp = c & 0x07; n = 3; min = 0x10000;
	} else {
		return -1;
	}
	if (len - *i - 1 < n)
		return -1;
	for (size_t k = 1; k <= n; k++) {
		unsigned char cc = s[*i + k];
		if ((cc & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (cc & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*i += n + 1;
	return cp;
}

static bool code_point_allowed(int32_t cp)
{
	if (cp < 0 || cp >= 0x10000)	/* invalid, or a surrogate pair in Java */
		return false;
	if (cp >= 0x01 && cp <= 0x1f)
		return false;
	if (cp >= 0x7f && cp <= 0x9f)
		return false;
	if (cp >= 0xd800 && cp <= 0xf8ff)
		return false;
	if (cp >= 0xfff0)
		return false;
	return true;
}

/* The bytes of x (eight of a path, the first in the lowest bits) that
 * need a closer look: one not printable ASCII (0x20-0x7e) or a '/'. Each
 * such byte has its high bit set in the result. Bit tricks over the whole
 * word (Sean Anderson's "Bit Twiddling Hacks": hasless, hasmore, haszero):
 * a borrow or carry can mark a byte above a marked one, never below, so the
 * lowest marked byte is the first to look at. */
static inline uint64_t word_special(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	uint64_t below = (x - ones * 0x20) & ~x & highs;		/* < 0x20 */
	uint64_t above = ((x + ones * (0x7f - 0x7e)) | x) & highs;	/* > 0x7e */
	uint64_t s = x ^ (ones * '/');
	uint64_t slash = (s - ones) & ~s & highs;			/* == '/' */
	return below | above | slash;
}

bool path_valid(const char *path, size_t len, bool sequential)
{
	const unsigned char *s = (const unsigned char *)path;

	if (len == 0 || s[0] != '/')
		return false;
	if (len == 1)
		return true;
	/* A sequential create is checked as path + "1", so a trailing '/' passes. */
	if (s[len - 1] == '/' && !sequential)
		return false;

	size_t component_start = 1;
	for (size_t i = 1; i <= len;) {
		/* Most of a path is printable ASCII: eight bytes at a time, on
		 * to the next '/' or byte that is not. */
		uint64_t word;
		if (len - i >= sizeof(word)) {
			memcpy(&word, s + i, sizeof(word));
			uint64_t special = word_special(le64toh(word));
			if (special == 0) {
				i += sizeof(word);
				continue;
			}
			i += (size_t)__builtin_ctzll(special) / 8;
		}
		if (i == len || s[i] == '/') {
			size_t clen = i - component_start;
			bool last = (i == len);
			if (clen == 0 && !(last && sequential))
				return false;	/* "//" */
			const char *c = path + component_start;
			bool dots = (clen == 1 && c[0] == '.') ||
				    (clen == 2 && c[0] == '.' && c[1] == '.');
			if (dots && !(last && sequential))
				return false;
			component_start = i + 1;
			i++;
			continue;
		}
		if (s[i] >= 0x20 && s[i] < 0x7f) {	/* printable ASCII: allowed */
			i++;
			continue;
		}
		if (s[i] == 0)
			return false;
		int32_t cp = utf8_next(s, len, &i);
		if (!code_point_allowed(cp))
			return false;
	}
	return true;
}

size_t path_parent_len(const char *path, size_t len)
{
	const char *slash = memrchr(path, '/', len);
	size_t n = (size_t)(slash - path);
	return n == 0 ? 1 : n;
}
