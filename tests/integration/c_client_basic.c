/* c_client_basic: the C client (libzookeeper-mt) against a server: the core
 * operations, their error codes, sequential and ephemeral nodes, and a
 * reconnect that resumes the session after the server restarts. Prints one line per check;
 * exits 0 only if all pass. Usage: c_client_basic HOST:PORT */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>

#include <zookeeper/zookeeper.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int connected_count;
static int failures;

static void watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	(void)zh; (void)path; (void)ctx;
	if (type == ZOO_SESSION_EVENT && state == ZOO_CONNECTED_STATE) {
		pthread_mutex_lock(&lock);
		connected_count++;
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
	}
}

static int wait_connected(int count)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 15;
	pthread_mutex_lock(&lock);
	while (connected_count < count)
		if (pthread_cond_timedwait(&cond, &lock, &deadline) != 0)
			break;
	int ok = connected_count >= count;
	pthread_mutex_unlock(&lock);
	return ok;
}

#define CHECK(name, cond) do {                                              \
	if (cond) printf("PASS %s\n", name);                                \
	else { printf("FAIL %s (line %d)\n", name, __LINE__); failures++; } \
} while (0)

int main(int argc, char **argv)
{
	char buf[256], path[256];
	int len;
	struct Stat st;
	struct String_vector children;

	if (argc != 2) {
		fprintf(stderr, "usage: c_client_basic HOST:PORT\n");
		return 2;
	}
	zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
	zhandle_t *zh = zookeeper_init(argv[1], watcher, 10000, NULL, NULL, 0);
	CHECK("connect", zh && wait_connected(1));
	if (!zh)
		return 1;

	CHECK("create", zoo_create(zh, "/c", "hello", 5, &ZOO_OPEN_ACL_UNSAFE, 0, path, sizeof(path)) == ZOK
	      && strcmp(path, "/c") == 0);
	len = sizeof(buf);
	CHECK("get", zoo_get(zh, "/c", 0, buf, &len, &st) == ZOK && len == 5 && memcmp(buf, "hello", 5) == 0
	      && st.version == 0 && st.czxid == st.mzxid);
	CHECK("set", zoo_set(zh, "/c", "bye", 3, 0) == ZOK);
	CHECK("set with a stale version is ZBADVERSION", zoo_set(zh, "/c", "x", 1, 0) == ZBADVERSION);
	CHECK("exists", zoo_exists(zh, "/c", 0, &st) == ZOK && st.version == 1 && st.dataLength == 3);
	CHECK("exists of a missing node is ZNONODE", zoo_exists(zh, "/nope", 0, &st) == ZNONODE);
	CHECK("create twice is ZNODEEXISTS", zoo_create(zh, "/c", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0) == ZNODEEXISTS);
	CHECK("create under a missing parent is ZNONODE",
	      zoo_create(zh, "/nope/x", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0) == ZNONODE);
	CHECK("sequential", zoo_create(zh, "/c/s-", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_SEQUENCE, path,
				       sizeof(path)) == ZOK && strcmp(path, "/c/s-0000000000") == 0);
	CHECK("delete with children is ZNOTEMPTY", zoo_delete(zh, "/c", -1) == ZNOTEMPTY);
	CHECK("get_children", zoo_get_children(zh, "/c", 0, &children) == ZOK && children.count == 1
	      && strcmp(children.data[0], "s-0000000000") == 0);
	deallocate_String_vector(&children);
	CHECK("ephemeral", zoo_create(zh, "/eph", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0) == ZOK);
	CHECK("child of an ephemeral is ZNOCHILDRENFOREPHEMERALS",
	      zoo_create(zh, "/eph/x", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0) == ZNOCHILDRENFOREPHEMERALS);
	CHECK("delete", zoo_delete(zh, "/c/s-0000000000", -1) == ZOK && zoo_delete(zh, "/c", 1) == ZOK);
	CHECK("delete of a missing node is ZNONODE", zoo_delete(zh, "/c", -1) == ZNONODE);

	/* Reconnect: the test restarts the server while this handle waits; the
	 * client reconnects by itself and resumes its session (sessions live in
	 * the log), so the ephemeral is still there, owned by the same session. */
	int64_t session = zoo_client_id(zh)->client_id;
	printf("READY\n");
	fflush(stdout);
	if (!fgets(buf, sizeof(buf), stdin))
		return 1;
	CHECK("reconnects after the restart", wait_connected(2));
	CHECK("resumed the same session", zoo_client_id(zh)->client_id == session);
	CHECK("the ephemeral survived", zoo_exists(zh, "/eph", 0, &st) == ZOK && st.ephemeralOwner == session);
	zookeeper_close(zh);	/* closes the session: the ephemeral goes */
	return failures ? 1 : 0;
}
