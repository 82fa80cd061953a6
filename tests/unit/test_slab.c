/* test_slab: the znode allocator (base/slab.c). Every size class and the
 * big path, zeroed and aligned chunks, reuse of freed chunks, empty slabs
 * given back (the held-bytes counter), a million objects of one size freed
 * for a million of another without keeping both, a long random run checked
 * against a shadow of every chunk's contents, a fork()ed child reading the
 * parent's chunks, slabs advised for huge pages, 32-bit references to
 * every chunk, a slab given back taken again; and, under AddressSanitizer (the test build), a use
 * after free and a double free caught, and pointers held in chunks seen
 * by the leak checker. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "slab.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#endif

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void fill(void *p, size_t n, uint32_t seed)
{
	unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(seed * 131 + i * 7 + 1);
}

static bool filled(const void *p, size_t n, uint32_t seed)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != (unsigned char)(seed * 131 + i * 7 + 1))
			return false;
	return true;
}

#define BIG_COUNT 5

/* Each size from 1 to past SLAB_CHUNK_MAX, and a few big ones: zeroed,
 * aligned, the whole size writable; the counters follow: one slab for the
 * first chunk of each class, a big chunk's own size beyond the largest. */
static void test_every_class_size_and_the_big_path(void **state)
{
	(void)state;
	static const size_t big[BIG_COUNT] = { SLAB_CHUNK_MAX + 1, SLAB_CHUNK_MAX + 8, 4096, 70000, 1 << 20 };
	enum { SMALL = SLAB_CHUNK_MAX + 16 };
	void *chunks[SMALL + 1 + BIG_COUNT] = { 0 };
	struct slab_pool p;
	slab_init(&p);
	size_t allocated = 0, big_bytes = 0;
	for (size_t size = 1; size <= SMALL; size++) {
		size_t held = p.held_bytes;
		void *c = chunks[size] = slab_alloc(&p, size);
		assert_non_null(c);
		assert_int_equal((uintptr_t)c % SLAB_CHUNK_ALIGN, 0);
		assert_true(all_zero(c, size));
		fill(c, size, (uint32_t)size);
		allocated += size;
		assert_int_equal(p.allocated_bytes, allocated);
		if (size > SLAB_CHUNK_MAX) {
			big_bytes += size;
			assert_int_equal(p.held_bytes, held + size);
		} else {
			bool first_of_class = size % SLAB_CHUNK_ALIGN == 1;
			assert_int_equal(p.held_bytes, held + (first_of_class ? SLAB_BYTES : 0));
		}
	}
	for (size_t i = 0; i < BIG_COUNT; i++) {
		void *c = chunks[SMALL + 1 + i] = slab_alloc(&p, big[i]);
		assert_non_null(c);
		assert_true(all_zero(c, big[i]));
		fill(c, big[i], 7);
		big_bytes += big[i];
	}
	assert_int_equal(p.held_bytes, (size_t)SLAB_CLASS_COUNT * SLAB_BYTES + big_bytes);
	for (size_t size = 1; size <= SMALL; size++) {
		assert_true(filled(chunks[size], size, (uint32_t)size));
		slab_free(&p, chunks[size], size);
	}
	for (size_t i = 0; i < BIG_COUNT; i++) {
		assert_true(filled(chunks[SMALL + 1 + i], big[i], 7));
		slab_free(&p, chunks[SMALL + 1 + i], big[i]);
	}
	assert_int_equal(p.allocated_bytes, 0);
	/* Each class keeps its one empty slab; the big chunks are gone. */
	assert_int_equal(p.held_bytes, (size_t)SLAB_CLASS_COUNT * SLAB_BYTES);
	slab_destroy(&p);
	assert_int_equal(p.held_bytes, 0);
}

/* A freed chunk is the next one of its class handed out, zeroed again. */
static void test_freed_chunk_is_reused_zeroed(void **state)
{
	(void)state;
	struct slab_pool p;
	slab_init(&p);
	unsigned char *a = slab_alloc(&p, 150), *b = slab_alloc(&p, 150);
	assert_ptr_not_equal(a, b);
	memset(a, 0xff, 150);
	memset(b, 0xff, 150);
	slab_free(&p, a, 150);
	/* 145..152 is one class: the same chunk for another size in it */
	unsigned char *c = slab_alloc(&p, 147);
	assert_ptr_equal(c, a);
	assert_true(all_zero(c, 147));
	/* another class does not take it */
	slab_free(&p, c, 147);
	unsigned char *d = slab_alloc(&p, 160);
	assert_ptr_not_equal(d, a);
	slab_free(&p, d, 160);
	slab_free(&p, b, 150);
	slab_destroy(&p);
}

/* Chunks of one class fill a slab, then the next: one more slab each time
 * the last is full; when every chunk of a slab is freed it goes back (one
 * empty slab per class is kept), and freeing and taking one chunk at that
 * boundary again and again does not get or give back a slab each time. */
static void test_empty_slab_goes_back_to_the_system(void **state)
{
	(void)state;
	enum { SIZE = 200, MAX = 4 * SLAB_BYTES / SIZE };
	void **chunks = calloc(MAX, sizeof(*chunks));
	assert_non_null(chunks);
	struct slab_pool p;
	slab_init(&p);
	size_t n = 0, per_slab = 0;
	while (p.held_bytes < 3 * (size_t)SLAB_BYTES) {
		assert_true(n < MAX);
		chunks[n] = slab_alloc(&p, SIZE);
		assert_non_null(chunks[n]);
		if (p.held_bytes == 2 * (size_t)SLAB_BYTES && !per_slab)
			per_slab = n;	/* chunk n opened the second slab */
		n++;
	}
	/* chunk n-1 opened the third slab: the first two hold per_slab each */
	assert_int_equal(n - 1, 2 * per_slab);
	assert_true(per_slab * SIZE <= SLAB_BYTES && per_slab * SIZE > SLAB_BYTES - 2 * SIZE);

	/* the third slab's only chunk: freed, its slab is kept (the one empty) */
	slab_free(&p, chunks[--n], SIZE);
	assert_int_equal(p.held_bytes, 3 * (size_t)SLAB_BYTES);
	for (int i = 0; i < 100; i++) {
		/* a free chunk in a full slab now: no slab used or given */
		slab_free(&p, chunks[0], SIZE);
		chunks[0] = slab_alloc(&p, SIZE);
		assert_int_equal(p.held_bytes, 3 * (size_t)SLAB_BYTES);
	}
	/* the second slab emptied: given back, since one empty is kept already */
	for (size_t i = per_slab; i < n; i++)
		slab_free(&p, chunks[i], SIZE);
	assert_int_equal(p.held_bytes, 2 * (size_t)SLAB_BYTES);
	for (size_t i = 0; i < per_slab; i++)
		slab_free(&p, chunks[i], SIZE);
	assert_int_equal(p.held_bytes, 1 * (size_t)SLAB_BYTES);
	assert_int_equal(p.allocated_bytes, 0);
	slab_destroy(&p);
	assert_int_equal(p.held_bytes, 0);
	free(chunks);
}

/* A million objects of one size, all freed, then a million of another: the
 * pool holds what the second needs (and the first size's one empty slab),
 * not both. */
static void test_memory_of_one_size_freed_serves_another(void **state)
{
	(void)state;
	enum { COUNT = 1000000, FIRST = 152, SECOND = 264 };
	void **chunks = calloc(COUNT, sizeof(*chunks));
	assert_non_null(chunks);
	struct slab_pool p;
	slab_init(&p);
	for (size_t i = 0; i < COUNT; i++)
		assert_non_null(chunks[i] = slab_alloc(&p, FIRST));
	size_t held_first = p.held_bytes;
	/* at most one slab's tail and header per slab lost: under 1% here */
	assert_true(held_first < (size_t)COUNT * FIRST / 100 * 101);
	for (size_t i = 0; i < COUNT; i++)
		slab_free(&p, chunks[i], FIRST);
	assert_int_equal(p.held_bytes, SLAB_BYTES);
	for (size_t i = 0; i < COUNT; i++)
		assert_non_null(chunks[i] = slab_alloc(&p, SECOND));
	size_t held_second = p.held_bytes;
	assert_true(held_second < (size_t)COUNT * SECOND / 100 * 101 + SLAB_BYTES);
	assert_true(held_second < held_first + (size_t)COUNT * SECOND);
	for (size_t i = 0; i < COUNT; i++)
		slab_free(&p, chunks[i], SECOND);
	assert_int_equal(p.held_bytes, 2 * (size_t)SLAB_BYTES);
	slab_destroy(&p);
	free(chunks);
}

/* Random sizes (big ones too), allocated and freed in random order, each
 * chunk filled with its own pattern and checked before it is freed: no
 * chunk overlaps another, none is handed out twice, the counters add up. */
static void test_random_alloc_free_keeps_every_chunk_intact(void **state)
{
	(void)state;
	enum { SLOTS = 20000, STEPS = 400000 };
	struct { void *p; size_t size; uint32_t seed; } *slots = calloc(SLOTS, sizeof(*slots));
	assert_non_null(slots);
	struct slab_pool p;
	slab_init(&p);
	uint64_t rng = 0x9e3779b97f4a7c15ULL;
	size_t allocated = 0;
	for (uint32_t step = 0; step < STEPS; step++) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		size_t i = (size_t)(rng % SLOTS);
		if (slots[i].p) {
			assert_true(filled(slots[i].p, slots[i].size, slots[i].seed));
			slab_free(&p, slots[i].p, slots[i].size);
			allocated -= slots[i].size;
			slots[i].p = NULL;
			continue;
		}
		/* mostly a znode's sizes, sometimes the big path */
		size_t size = (rng >> 20) % 16 == 0 ? SLAB_CHUNK_MAX + 1 + (rng >> 32) % 3000
						     : 1 + (rng >> 32) % SLAB_CHUNK_MAX;
		slots[i].p = slab_alloc(&p, size);
		assert_non_null(slots[i].p);
		assert_int_equal((uintptr_t)slots[i].p % SLAB_CHUNK_ALIGN, 0);
		assert_true(all_zero(slots[i].p, size));
		slots[i].size = size;
		slots[i].seed = step;
		fill(slots[i].p, size, step);
		allocated += size;
		assert_int_equal(p.allocated_bytes, allocated);
		assert_true(p.held_bytes >= allocated);
	}
	for (size_t i = 0; i < SLOTS; i++) {
		if (!slots[i].p)
			continue;
		assert_true(filled(slots[i].p, slots[i].size, slots[i].seed));
		slab_free(&p, slots[i].p, slots[i].size);
	}
	assert_int_equal(p.allocated_bytes, 0);
	assert_true(p.held_bytes <= (size_t)SLAB_CLASS_COUNT * SLAB_BYTES);
	slab_destroy(&p);
	free(slots);
}

/* A child after fork() (a snapshot writer) reads every chunk it inherited,
 * and may even allocate, with nothing set up for it. */
static void test_forked_child_reads_the_chunks(void **state)
{
	(void)state;
	enum { COUNT = 5000 };
	void *chunks[COUNT];
	struct slab_pool p;
	slab_init(&p);
	for (size_t i = 0; i < COUNT; i++) {
		chunks[i] = slab_alloc(&p, 120 + i % 300);
		assert_non_null(chunks[i]);
		fill(chunks[i], 120 + i % 300, (uint32_t)i);
	}
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (size_t i = 0; i < COUNT; i++)
			if (!filled(chunks[i], 120 + i % 300, (uint32_t)i))
				_exit(1);
		void *c = slab_alloc(&p, 200);
		_exit(c && all_zero(c, 200) ? 0 : 2);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	for (size_t i = 0; i < COUNT; i++)
		slab_free(&p, chunks[i], 120 + i % 300);
	slab_destroy(&p);
}

/* The VmFlags line of the mapping that holds addr in /proc/self/smaps, in
 * line (of size n); false when none holds it. */
static bool mapping_flags(const void *addr, char *line, size_t n)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	assert_non_null(f);
	bool in = false, found = false;
	while (!found && fgets(line, (int)n, f)) {
		unsigned long start, end;
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2)
			in = (uintptr_t)addr >= start && (uintptr_t)addr < end;
		else if (in && strncmp(line, "VmFlags:", 8) == 0)
			found = true;
	}
	fclose(f);
	return found;
}

/* Slabs come from mappings advised for transparent huge pages (as the
 * unit has malloc's heap): a snapshot's fork copies few page tables. */
static void test_slabs_are_advised_huge_pages(void **state)
{
	(void)state;
	struct slab_pool p;
	slab_init(&p);
	void *a = slab_alloc(&p, 200);
	assert_non_null(a);
	char line[512];
	assert_true(mapping_flags(a, line, sizeof(line)));
	assert_non_null(strstr(line, " hg"));
	slab_free(&p, a, 200);
	slab_destroy(&p);
}

/* Every chunk, a slab's or a big one, is named by a 32-bit reference that
 * gives it back (0 is NULL); a slab's chunks' references are offsets in
 * the one range, below SLAB_REF_BIG, a big chunk's from it, and a freed
 * big chunk's entry is reused. A forked child follows the references. */
static void test_references_name_every_chunk_in_32_bits(void **state)
{
	(void)state;
	enum { COUNT = 3000 };
	static void *chunks[COUNT];
	static uint32_t refs[COUNT];
	struct slab_pool p;
	slab_init(&p);
	assert_int_equal(slab_ref(NULL), 0);
	assert_null(slab_deref(0));
	for (size_t i = 0; i < COUNT; i++) {
		size_t size = i % 10 == 0 ? SLAB_CHUNK_MAX + 1 + i : 8 + i % SLAB_CHUNK_MAX;
		chunks[i] = slab_alloc(&p, size);
		assert_non_null(chunks[i]);
		refs[i] = slab_ref(chunks[i]);
		assert_int_not_equal(refs[i], 0);
		assert_true(size > SLAB_CHUNK_MAX ? refs[i] >= SLAB_REF_BIG : refs[i] < SLAB_REF_BIG);
		assert_ptr_equal(slab_deref(refs[i]), chunks[i]);
		fill(chunks[i], 8, (uint32_t)i);
	}
	for (size_t i = 0; i < COUNT; i++)
		for (size_t j = i + 1; j < i + 20 && j < COUNT; j++)
			assert_int_not_equal(refs[i], refs[j]);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (size_t i = 0; i < COUNT; i++)
			if (!filled(slab_deref(refs[i]), 8, (uint32_t)i))
				_exit(1);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* a big chunk freed: the next big one takes its entry */
	slab_free(&p, chunks[10], SLAB_CHUNK_MAX + 11);
	void *again = slab_alloc(&p, 5000);
	assert_int_equal(slab_ref(again), refs[10]);
	assert_ptr_equal(slab_deref(refs[10]), again);
	chunks[10] = again;
	for (size_t i = 0; i < COUNT; i++) {
		assert_ptr_equal(slab_deref(refs[i]), chunks[i]);
		size_t size = i == 10 ? 5000 : i % 10 == 0 ? SLAB_CHUNK_MAX + 1 + i : 8 + i % SLAB_CHUNK_MAX;
		slab_free(&p, chunks[i], size);
	}
	slab_destroy(&p);
}

/* A slab given back (its class already keeps an empty one) is the next
 * slab taken, by any class, zeroed: the range is not used up by sizes that
 * come and go. */
static void test_slab_given_back_is_taken_again_zeroed(void **state)
{
	(void)state;
	struct slab_pool p;
	slab_init(&p);
	enum { SIZE = 512, PER = SLAB_BYTES / SIZE };
	void *chunks[3 * PER];
	size_t n = 0;
	while (p.held_bytes < 3 * (size_t)SLAB_BYTES) {
		assert_true(n < 3 * PER);
		chunks[n] = slab_alloc(&p, SIZE);
		assert_non_null(chunks[n]);
		memset(chunks[n], 0xaa, SIZE);
		n++;
	}
	/* the first slab emptied (kept as the class's one empty), then the
	 * second (given back) */
	uintptr_t second = (uintptr_t)chunks[PER] & ~(uintptr_t)(SLAB_BYTES - 1);
	for (size_t i = 0; i < n - 1; i++)
		slab_free(&p, chunks[i], SIZE);
	unsigned char *other = slab_alloc(&p, 24);
	assert_non_null(other);
	assert_int_equal((uintptr_t)other & ~(uintptr_t)(SLAB_BYTES - 1), second);
	assert_true(all_zero(other, 24));
	slab_free(&p, other, 24);
	slab_free(&p, chunks[n - 1], SIZE);
	slab_destroy(&p);
}

#ifdef TEST_ASAN
/* Runs fn in a child whose stderr is discarded; returns its wait status. */
static int in_child(void (*fn)(struct slab_pool *p))
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (null >= 0)
			dup2(null, STDERR_FILENO);
		struct slab_pool p;
		slab_init(&p);
		fn(&p);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void write_after_free(struct slab_pool *p)
{
	volatile char *a = slab_alloc(p, 180);
	slab_alloc(p, 180);	/* a's slab stays in use */
	slab_free(p, (void *)a, 180);
	a[100] = 1;
}

static void free_twice(struct slab_pool *p)
{
	void *a = slab_alloc(p, 180);
	slab_alloc(p, 180);
	slab_free(p, a, 180);
	slab_free(p, a, 180);
}

/* A free chunk, the bytes past a chunk's size and a slab's fresh space are
 * poisoned; a write to a freed chunk and a second free stop the process. */
static void test_sanitizer_sees_free_chunks(void **state)
{
	(void)state;
	struct slab_pool p;
	slab_init(&p);
	char *a = slab_alloc(&p, 13), *b = slab_alloc(&p, 13);
	assert_false(__asan_address_is_poisoned(a + 12));
	assert_true(__asan_address_is_poisoned(a + 13));	/* past the size, in the class */
	assert_true(__asan_address_is_poisoned(b + 16));	/* never handed out */
	slab_free(&p, a, 13);
	assert_true(__asan_address_is_poisoned(a));
	slab_free(&p, b, 13);
	slab_destroy(&p);

	int status = in_child(write_after_free);
	assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	status = in_child(free_twice);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

static void *held_in_chunk;

static __attribute__((noinline)) void store_buffer_in_chunk(struct slab_pool *p)
{
	void *buffer = malloc(100);
	assert_non_null(buffer);
	held_in_chunk = slab_alloc(p, 64);
	assert_non_null(held_in_chunk);
	memcpy(held_in_chunk, &buffer, sizeof(buffer));
}

/* Overwrites the stack below the caller's frame, where the buffer's
 * address may linger. */
static __attribute__((noinline)) void scrub_stack(void)
{
	volatile char junk[4096];
	memset((char *)junk, 0, sizeof(junk));
}

/* A heap buffer that only a chunk points to (a node's data kept outside
 * it) is not reported leaked: LeakSanitizer scans the slabs. */
static void test_leak_checker_sees_pointers_in_chunks(void **state)
{
	(void)state;
	struct slab_pool p;
	slab_init(&p);
	store_buffer_in_chunk(&p);
	scrub_stack();
	assert_int_equal(__lsan_do_recoverable_leak_check(), 0);
	void *buffer;
	memcpy(&buffer, held_in_chunk, sizeof(buffer));
	free(buffer);
	slab_free(&p, held_in_chunk, 64);
	slab_destroy(&p);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_class_size_and_the_big_path),
		cmocka_unit_test(test_freed_chunk_is_reused_zeroed),
		cmocka_unit_test(test_empty_slab_goes_back_to_the_system),
		cmocka_unit_test(test_memory_of_one_size_freed_serves_another),
		cmocka_unit_test(test_random_alloc_free_keeps_every_chunk_intact),
		cmocka_unit_test(test_forked_child_reads_the_chunks),
		cmocka_unit_test(test_slabs_are_advised_huge_pages),
		cmocka_unit_test(test_references_name_every_chunk_in_32_bits),
		cmocka_unit_test(test_slab_given_back_is_taken_again_zeroed),
#ifdef TEST_ASAN
		cmocka_unit_test(test_sanitizer_sees_free_chunks),
		cmocka_unit_test(test_leak_checker_sees_pointers_in_chunks),
#endif
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
