/* json: corralctl's --json output, written to stdout as it goes: one
 * object per run, keys in the order written, strings escaped as RFC 8259
 * asks (control characters and bytes that are not ASCII as \u00XX, so
 * binary data stays valid JSON). See json.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Opens an object ('{') or array ('['), as the value of key in an object
 * (key NULL: in an array, or at the top). */
void json_open(const char *key, char kind);
/* Closes the innermost ('}' or ']'); at the top level, ends the line. */
void json_close(char kind);
void json_str(const char *key, const char *value);
void json_strn(const char *key, const char *value, size_t len);
void json_int(const char *key, long long value);
void json_bool(const char *key, bool value);
void json_null(const char *key);
