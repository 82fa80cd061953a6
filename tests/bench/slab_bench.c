/* slab_bench: base/slab.c against calloc/free for a tree's worth of
 * node-sized objects. One run, one allocator ("slab" or "calloc"):
 * COUNT objects of znode sizes (the fixed part, a path of 10-70 bytes, a
 * slot of 8, a quarter with up to 200 bytes of data) allocated, freed in
 * random order, allocated again, then each freed and replaced by another
 * size (a delete and a create). Prints the payload, the RSS growth, the
 * pool's held bytes, fork()'s time with them all live (a snapshot's pause)
 * and each phase's time per object. Run it with the unit's environment
 * to compare like with like:
 *
 *	GLIBC_TUNABLES=glibc.malloc.hugetlb=1 build-rel/tests/bench/slab_bench slab
 *	GLIBC_TUNABLES=glibc.malloc.hugetlb=1 build-rel/tests/bench/slab_bench calloc */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "slab.h"

enum { COUNT = 1000000 };

static size_t sizes[COUNT];
static void *objects[COUNT];
static size_t order[COUNT];
static struct slab_pool pool;
static bool use_slab;

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double rss_mb(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "re");
	if (!f || fscanf(f, "%ld %ld", &pages, &resident) != 2) {
		perror("/proc/self/statm");
		exit(1);
	}
	fclose(f);
	return (double)resident * (double)sysconf(_SC_PAGESIZE) / 1e6;
}

static uint64_t next_random(uint64_t *r)
{
	*r ^= *r << 13;
	*r ^= *r >> 7;
	*r ^= *r << 17;
	return *r;
}

static void *alloc(size_t size)
{
	void *p = use_slab ? slab_alloc(&pool, size) : calloc(1, size);
	if (!p) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	return p;
}

static void release(void *p, size_t size)
{
	if (use_slab)
		slab_free(&pool, p, size);
	else
		free(p);
}

static double fork_ms(void)
{
	double t0 = now_s();
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	double t1 = now_s();
	if (pid < 0 || waitpid(pid, NULL, 0) != pid) {
		perror("fork");
		exit(1);
	}
	return (t1 - t0) * 1e3;
}

int main(int argc, char **argv)
{
	if (argc != 2 || (strcmp(argv[1], "slab") && strcmp(argv[1], "calloc"))) {
		fprintf(stderr, "usage: %s slab|calloc\n", argv[0]);
		return 2;
	}
	use_slab = !strcmp(argv[1], "slab");
	slab_init(&pool);
	uint64_t r = 88172645463325252ULL;
	size_t payload = 0;
	for (size_t i = 0; i < COUNT; i++) {
		uint64_t v = next_random(&r);
		sizes[i] = 114 + 10 + v % 60 + 1 + 8 + ((v >> 8) % 4 == 0 ? (v >> 16) % 200 : 0);
		payload += sizes[i];
		order[i] = i;
	}
	for (size_t i = COUNT - 1; i > 0; i--) {
		size_t j = next_random(&r) % (i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	memset(objects, 0, sizeof(objects));
	double rss0 = rss_mb(), t0 = now_s();
	for (size_t i = 0; i < COUNT; i++)
		objects[i] = alloc(sizes[i]);
	double t1 = now_s(), rss1 = rss_mb(), fork_time = fork_ms(), t2 = now_s();
	for (size_t k = 0; k < COUNT; k++)
		release(objects[order[k]], sizes[order[k]]);
	double t3 = now_s();
	for (size_t i = 0; i < COUNT; i++)
		objects[i] = alloc(sizes[i]);
	double t4 = now_s();
	for (size_t k = 0; k < COUNT; k++) {
		size_t i = order[k], size = sizes[(i * 7) % COUNT];
		release(objects[i], sizes[i]);
		objects[i] = alloc(size);
		sizes[i] = size;
	}
	double t5 = now_s();
	printf("%s: %d objects, payload %.1f MB, RSS growth %.1f MB, held %.1f MB, fork %.2f ms; "
	       "per object: alloc %.0f ns, free %.0f ns, free and alloc %.0f ns\n",
	       argv[1], COUNT, (double)payload / 1e6, rss1 - rss0, (double)pool.held_bytes / 1e6,
	       fork_time, (t1 - t0) / COUNT * 1e9, (t3 - t2) / COUNT * 1e9, (t5 - t4) / COUNT * 1e9);
	for (size_t i = 0; i < COUNT; i++)
		release(objects[i], sizes[i]);
	slab_destroy(&pool);
	return 0;
}
