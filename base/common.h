/* common: the few macros every layer uses: container_of (from a member
 * back to the struct that embeds it, as the ring's completions and the
 * intrusive lists and tables need) and ARRAY_SIZE. */
#pragma once

#include <stddef.h>

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
