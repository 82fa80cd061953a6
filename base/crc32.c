/* crc32: see crc32.h. */
#include "crc32.h"

#if CORRAL_HAVE_ISAL
#include <stdbool.h>

#include <isa-l/crc.h>

#if defined(__x86_64__)
/* ISA-L picks its code by the CPU: on one with AVX-512 that is
 * crc32_gzip_refl_by16_10, which returns with the upper halves of the
 * vector registers in use (no vzeroupper). The first SSE instruction the
 * compiler's code runs after it then waits for the state to be saved: a
 * snapshot's load measured 95% of znode_stat's time on its first movdqu,
 * and the load of 800,000 nodes went from 1.3 s to 0.7 s with the upper
 * halves cleared here. vzeroupper is an AVX instruction: only where the
 * CPU has AVX (ISA-L uses no wider registers than SSE's elsewhere). */
static bool clear_upper;

__attribute__((constructor)) static void crc32_init(void)
{
	__builtin_cpu_init();
	clear_upper = __builtin_cpu_supports("avx");
}
#endif

uint32_t corral_crc32(uint32_t crc, const void *p, size_t len)
{
	/* ISA-L takes a 64-bit length; zlib's chaining convention is its own */
	uint32_t r = crc32_gzip_refl(crc, (const unsigned char *)p, (uint64_t)len);
#if defined(__x86_64__)
	if (clear_upper)
		__asm__ volatile("vzeroupper" ::: "memory");
#endif
	return r;
}

const char *crc32_backend(void)
{
	return "isa-l";
}
#else
#include <zlib.h>

uint32_t corral_crc32(uint32_t crc, const void *p, size_t len)
{
	return (uint32_t)crc32_z(crc, (const Bytef *)p, len);
}

const char *crc32_backend(void)
{
	return "zlib";
}
#endif
