/* json: see json.h. A stack of "has this container a member yet" flags;
 * the shapes are corralctl's own (never deeper than JSON_MAX_DEPTH), the
 * server's data only ever fills strings and numbers. */
#include "json.h"

#include <stdio.h>
#include <string.h>

#define JSON_MAX_DEPTH 16

static bool has_member[JSON_MAX_DEPTH];
static int depth;

static void escaped(const char *p, size_t len)
{
	putchar('"');
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", stdout);
		else if (ch < 0x20 || ch >= 0x7f)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void member(const char *key)
{
	if (depth > 0) {
		if (has_member[depth - 1])
			putchar(',');
		has_member[depth - 1] = true;
	}
	if (key) {
		escaped(key, strlen(key));
		putchar(':');
	}
}

void json_open(const char *key, char kind)
{
	member(key);
	putchar(kind);
	if (depth < JSON_MAX_DEPTH)
		has_member[depth] = false;
	depth++;
}

void json_close(char kind)
{
	putchar(kind);
	if (depth > 0)
		depth--;
	if (depth == 0)
		putchar('\n');
}

void json_strn(const char *key, const char *value, size_t len)
{
	member(key);
	escaped(value, len);
}

void json_str(const char *key, const char *value)
{
	if (!value) {
		json_null(key);
		return;
	}
	json_strn(key, value, strlen(value));
}

void json_int(const char *key, long long value)
{
	member(key);
	printf("%lld", value);
}

void json_bool(const char *key, bool value)
{
	member(key);
	fputs(value ? "true" : "false", stdout);
}

void json_null(const char *key)
{
	member(key);
	fputs("null", stdout);
}
