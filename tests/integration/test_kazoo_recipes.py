"""kazoo's recipes against the server: each recipe works across real clients.

Every wait is bounded (threading.Event / queue timeouts); nothing sleeps and hopes.
"""
import queue
import threading

import pytest
from kazoo.client import KazooClient
from kazoo.recipe.cache import TreeCache, TreeEvent

WAIT_S = 10


@pytest.fixture
def clients(server):
    made = []

    def make():
        c = KazooClient(hosts=server.hosts, timeout=10)
        c.start(timeout=15)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()
        c.close()


def run_in_thread(fn):
    done = threading.Event()
    box = {}

    def body():
        try:
            box["value"] = fn()
        except Exception as e:  # surfaced by the caller
            box["error"] = e
        done.set()

    threading.Thread(target=body, daemon=True).start()
    return done, box


def test_lock_is_exclusive_and_handed_over(clients):
    a, b = clients(), clients()
    la, lb = a.Lock("/r/lock", "a"), b.Lock("/r/lock", "b")
    assert la.acquire(timeout=WAIT_S)
    done, _ = run_in_thread(lambda: lb.acquire(timeout=WAIT_S))
    assert not done.wait(0.3), "second client got the lock while the first held it"
    assert la.contenders() == ["a", "b"]
    la.release()
    assert done.wait(WAIT_S)
    assert lb.is_acquired
    lb.release()


def test_read_locks_share_and_write_lock_excludes(clients):
    a, b, c = clients(), clients(), clients()
    ra, rb = a.ReadLock("/r/rw", "ra"), b.ReadLock("/r/rw", "rb")
    wc = c.WriteLock("/r/rw", "wc")
    assert ra.acquire(timeout=WAIT_S) and rb.acquire(timeout=WAIT_S)
    done, _ = run_in_thread(lambda: wc.acquire(timeout=WAIT_S))
    assert not done.wait(0.3)
    ra.release()
    assert not done.wait(0.3)
    rb.release()
    assert done.wait(WAIT_S) and wc.is_acquired
    wc.release()


def test_semaphore_admits_at_most_its_leases(clients):
    a, b, c = clients(), clients(), clients()
    sa = a.Semaphore("/r/sem", "a", max_leases=2)
    sb = b.Semaphore("/r/sem", "b", max_leases=2)
    sc = c.Semaphore("/r/sem", "c", max_leases=2)
    assert sa.acquire(timeout=WAIT_S) and sb.acquire(timeout=WAIT_S)
    assert sorted(sa.lease_holders()) == ["a", "b"]
    done, _ = run_in_thread(lambda: sc.acquire(timeout=WAIT_S))
    assert not done.wait(0.3)
    sa.release()
    assert done.wait(WAIT_S) and sc.is_acquired
    sb.release()
    sc.release()


def test_election_has_one_leader_and_a_successor(clients):
    a, b = clients(), clients()
    ea, eb = a.Election("/r/election", "a"), b.Election("/r/election", "b")
    leaders = queue.Queue()
    stop_a = threading.Event()

    def lead_a():
        leaders.put("a")
        stop_a.wait(WAIT_S)

    ta = threading.Thread(target=ea.run, args=(lead_a,), daemon=True)
    ta.start()
    assert leaders.get(timeout=WAIT_S) == "a"
    tb = threading.Thread(target=eb.run, args=(lambda: leaders.put("b"),), daemon=True)
    tb.start()
    waited = threading.Event()
    for _ in range(200):  # until b has entered the election (bounded)
        if sorted(ea.contenders()) == ["a", "b"]:
            break
        waited.wait(0.05)
    assert sorted(ea.contenders()) == ["a", "b"]
    assert leaders.empty()
    stop_a.set()
    assert leaders.get(timeout=WAIT_S) == "b"
    ta.join(WAIT_S)
    tb.join(WAIT_S)


def test_queue_is_fifo_within_a_priority(clients):
    a, b = clients(), clients()
    qa, qb = a.Queue("/r/queue"), b.Queue("/r/queue")
    for item in (b"one", b"two", b"three"):
        qa.put(item)
    qa.put(b"urgent", priority=10)  # lower number: served first
    assert len(qb) == 4
    assert [qb.get() for _ in range(4)] == [b"urgent", b"one", b"two", b"three"]
    assert qb.get() is None


def test_locking_queue_consumes_once(clients):
    a, b = clients(), clients()
    qa, qb = a.LockingQueue("/r/lq"), b.LockingQueue("/r/lq")
    qa.put(b"job")
    assert qb.get(timeout=WAIT_S) == b"job"
    assert qa.get(timeout=0.3) is None, "a locked item was handed out twice"
    assert qb.consume()
    assert len(qa) == 0


def test_barrier_holds_until_removed(clients):
    a, b = clients(), clients()
    ba, bb = a.Barrier("/r/barrier"), b.Barrier("/r/barrier")
    ba.create()
    done, box = run_in_thread(lambda: bb.wait(timeout=WAIT_S))
    assert not done.wait(0.3)
    ba.remove()
    assert done.wait(WAIT_S) and box.get("value") is True


def test_double_barrier_enters_when_all_arrive(clients):
    a, b = clients(), clients()
    da = a.DoubleBarrier("/r/dbarrier", 2, identifier="a")
    db = b.DoubleBarrier("/r/dbarrier", 2, identifier="b")
    done, box = run_in_thread(da.enter)
    assert not done.wait(0.3), "entered before the second member arrived"
    db.enter()
    assert done.wait(WAIT_S) and "error" not in box
    done, box = run_in_thread(da.leave)
    db.leave()
    assert done.wait(WAIT_S) and "error" not in box


def test_counter_adds_atomically_from_many_clients(clients):
    cs = [clients() for _ in range(3)]
    threads = []
    for c in cs:
        counter = c.Counter("/r/counter")

        def add(counter=counter):
            for _ in range(20):
                counter += 1

        t = threading.Thread(target=add, daemon=True)
        threads.append(t)
        t.start()
    for t in threads:
        t.join(WAIT_S * 3)
    assert cs[0].Counter("/r/counter").value == 60


def test_party_lists_its_members(clients):
    a, b = clients(), clients()
    pa, pb = a.Party("/r/party", "a"), b.Party("/r/party", "b")
    pa.join()
    pb.join()
    assert sorted(pa) == ["a", "b"] and len(pb) == 2
    pb.leave()
    assert list(pa) == ["a"]


def test_set_partitioner_splits_the_set(clients):
    a, b = clients(), clients()
    items = ["w%d" % i for i in range(6)]
    spa = a.SetPartitioner("/r/partition", set=items, time_boundary=0.2, identifier="a")
    spb = b.SetPartitioner("/r/partition", set=items, time_boundary=0.2, identifier="b")
    for sp in (spa, spb):
        sp.wait_for_acquire(timeout=WAIT_S)
    deadline = threading.Event()
    for _ in range(100):
        if spa.acquired and spb.acquired:
            break
        for sp in (spa, spb):
            if sp.release:
                sp.release_set()
            if sp.allocating:
                sp.wait_for_acquire(timeout=WAIT_S)
        deadline.wait(0.05)
    assert spa.acquired and spb.acquired
    mine_a, mine_b = set(spa), set(spb)
    assert mine_a | mine_b == set(items) and not (mine_a & mine_b)
    spa.finish()
    spb.finish()


def test_tree_cache_follows_the_subtree(clients):
    a, b = clients(), clients()
    a.ensure_path("/r/tree")
    events = queue.Queue()
    cache = TreeCache(a, "/r/tree")
    cache.listen(lambda ev: events.put(ev))
    cache.start()

    def wait_for(kind, path):
        while True:
            ev = events.get(timeout=WAIT_S)
            if ev.event_type == kind and ev.event_data is not None and ev.event_data.path == path:
                return ev

    b.create("/r/tree/x", b"1")
    wait_for(TreeEvent.NODE_ADDED, "/r/tree/x")
    b.set("/r/tree/x", b"2")
    wait_for(TreeEvent.NODE_UPDATED, "/r/tree/x")
    assert cache.get_data("/r/tree/x").data == b"2"
    b.delete("/r/tree/x")
    wait_for(TreeEvent.NODE_REMOVED, "/r/tree/x")
    assert cache.get_children("/r/tree") == frozenset()
    cache.close()


def test_data_watch_sees_every_change(clients):
    a, b = clients(), clients()
    a.create("/r/dw", b"v0", makepath=True)
    seen = queue.Queue()

    @a.DataWatch("/r/dw")
    def watch(data, stat):
        seen.put(data)

    assert seen.get(timeout=WAIT_S) == b"v0"
    b.set("/r/dw", b"v1")
    assert seen.get(timeout=WAIT_S) == b"v1"
    b.delete("/r/dw")
    assert seen.get(timeout=WAIT_S) is None


def test_children_watch_sees_membership(clients):
    a, b = clients(), clients()
    a.ensure_path("/r/cw")
    seen = queue.Queue()

    @a.ChildrenWatch("/r/cw")
    def watch(children):
        seen.put(sorted(children))

    assert seen.get(timeout=WAIT_S) == []
    b.create("/r/cw/one")
    assert seen.get(timeout=WAIT_S) == ["one"]
    b.create("/r/cw/two", ephemeral=True)
    assert seen.get(timeout=WAIT_S) == ["one", "two"]
    b.stop()
    assert seen.get(timeout=WAIT_S) == ["one"], "the ephemeral did not go with its session"
