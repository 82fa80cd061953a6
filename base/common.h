/* common: the few macros every layer uses: container_of (from a member
 * back to the struct that embeds it, as the ring's completions and the
 * intrusive lists and tables need), ARRAY_SIZE and STRINGIFY (a macro's
 * value as a string literal, for log lines). */
#pragma once

#include <stddef.h>

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)
