/* crc32: see crc32.h. */
#include "crc32.h"

#if CORRAL_HAVE_ISAL
#include <isa-l/crc.h>

uint32_t corral_crc32(uint32_t crc, const void *p, size_t len)
{
	/* ISA-L takes a 64-bit length; zlib's chaining convention is its own */
	return crc32_gzip_refl(crc, (const unsigned char *)p, (uint64_t)len);
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
