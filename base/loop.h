/* loop: the event loop, one io_uring ring driven by one thread.
 *
 * Every I/O is a submission on the ring: accepts, receives, sends, timers
 * (and, with durability, log writes and fsyncs). Each submission carries a
 * struct loop_op whose callback runs when its completion arrives. After each
 * batch of completions the loop runs its idle hook (the server commits what
 * was prepped and flushes replies there), then submits and waits again. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <liburing.h>

struct loop_op;
typedef void (*loop_complete_fn)(struct loop_op *op, int res, uint32_t cqe_flags);

struct loop_op {
	loop_complete_fn complete;
};

struct loop {
	struct io_uring ring;
	bool stop;
	void (*before_wait)(void *ctx);
	/* After each wait, before its completions run (the time to read the
	 * clock they see: the wait may have lasted long). */
	void (*after_wait)(void *ctx);
	void *ctx;
	uint64_t iterations;
};

/* Sets up the ring with SINGLE_ISSUER and DEFER_TASKRUN. On failure returns a
 * negative errno and writes a sentence naming the cause into why. */
int loop_init(struct loop *l, unsigned entries, char *why, size_t why_size);
void loop_free(struct loop *l);

/* Returns an SQE whose user data is op; submits to make room when the
 * submission queue is full. Never NULL. */
struct io_uring_sqe *loop_sqe(struct loop *l, struct loop_op *op);

/* Runs until loop_stop(). Returns 0 or the negative errno of a failed wait. */
int loop_run(struct loop *l);
static inline void loop_stop(struct loop *l)
{
	l->stop = true;
}

uint64_t loop_now_ms(void);		/* CLOCK_MONOTONIC */
uint64_t loop_now_us(void);		/* CLOCK_MONOTONIC, for durations */
int64_t loop_wall_ms(void);		/* CLOCK_REALTIME, for ctime/mtime */
