/* loop: see loop.h. */
#include "loop.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int read_io_uring_disabled(void)
{
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "re");
	int v = -1;
	if (!f)
		return -1;
	if (fscanf(f, "%d", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

int loop_init(struct loop *l, unsigned entries, char *why, size_t why_size)
{
	struct io_uring_params p;
	int r;

	memset(l, 0, sizeof(*l));
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		  IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
	p.cq_entries = entries * 4;
	r = io_uring_queue_init_params(entries, &l->ring, &p);
	if (r == 0)
		return 0;

	int disabled = read_io_uring_disabled();
	if (disabled > 0)
		snprintf(why, why_size, "io_uring is disabled by sysctl kernel.io_uring_disabled=%d: %s",
			 disabled, strerror(-r));
	else if (r == -EPERM || r == -ENOSYS)
		snprintf(why, why_size,
			 "io_uring_setup() was refused (%s): a seccomp filter or a container "
			 "policy blocks io_uring, or the kernel lacks it", strerror(-r));
	else if (r == -EINVAL)
		snprintf(why, why_size,
			 "io_uring_setup() rejected SINGLE_ISSUER/DEFER_TASKRUN (%s): "
			 "corrald needs Linux 6.1 or newer", strerror(-r));
	else if (r == -ENOMEM)
		snprintf(why, why_size, "io_uring_setup() could not lock memory for the ring (%s): "
			 "raise RLIMIT_MEMLOCK", strerror(-r));
	else
		snprintf(why, why_size, "io_uring_setup() failed: %s", strerror(-r));
	return r;
}

void loop_free(struct loop *l)
{
	io_uring_queue_exit(&l->ring);
}

struct io_uring_sqe *loop_sqe(struct loop *l, struct loop_op *op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
	while (!sqe) {
		io_uring_submit(&l->ring);
		sqe = io_uring_get_sqe(&l->ring);
	}
	io_uring_sqe_set_data(sqe, op);
	return sqe;
}

int loop_run(struct loop *l)
{
	while (!l->stop) {
		if (l->before_wait)
			l->before_wait(l->ctx);
		if (l->stop)
			break;
		int r = io_uring_submit_and_wait(&l->ring, 1);
		if (r < 0 && r != -EINTR && r != -ETIME && r != -EBUSY)
			return r;
		if (l->after_wait)
			l->after_wait(l->ctx);

		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&l->ring, head, cqe) {
			struct loop_op *op = io_uring_cqe_get_data(cqe);
			seen++;
			if (op)
				op->complete(op, cqe->res, cqe->flags);
		}
		io_uring_cq_advance(&l->ring, seen);
		l->iterations++;
	}
	return 0;
}

uint64_t loop_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t loop_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t loop_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
