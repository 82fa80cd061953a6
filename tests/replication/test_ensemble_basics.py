"""An ensemble of 3 and of 5 servers behaves as one ZooKeeper: one leader
that all follow; a write through any server is read on every server after
sync; ephemerals go everywhere when their session closes; sequential names
are unique across clients of different servers; a watch fires on the
server its watcher is connected to for a write made through another.

Every client here is connected to one server alone, so each assertion is
about that server."""
import threading
import time

import pytest

from harness import wait_until

SIZES = [3, 5]


def on(ensemble, cluster, sid):
    """A kazoo client connected to server sid only."""
    return ensemble.kazoo(cluster.hosts(only=[sid]))


@pytest.mark.parametrize("n", SIZES)
def test_exactly_one_leader_is_elected_and_every_other_server_follows_it(ensemble, n):
    c = ensemble(n)
    lid = c.first_leader
    modes = c.modes()
    assert sorted(modes.values()) == sorted(["leader"] + ["follower"] * (n - 1)), modes
    for s in c:
        m = s.mntr()
        assert m.get("corral_server_id") == str(s.id), m
        assert m.get("corral_leader_id") == str(lid), (s.id, m)
        want = "leader" if s.id == lid else "follower"
        assert s.srvr().get("Mode") == want, (s.id, s.srvr())
    # the leader counts every other server as a learner (ZooKeeper 3.8's name), and as synced
    def synced():
        m = c[lid].mntr()
        return (m.get("zk_learners") == str(n - 1)
                and m.get("zk_synced_followers") == str(n - 1)) and m
    wait_until(synced, 20, what=f"the leader to report {n - 1} synced followers")
    # and it stays the only leader: over two election timeouts, every poll
    # of every server finds the same one (a server that kept timing out its
    # leader would start elections and change terms)
    end = time.monotonic() + 2 * c.election_timeout_ms / 1000
    polls = 0
    while time.monotonic() < end:
        assert c.leader() == lid, f"leadership changed while nothing failed: {c.describe()}"
        polls += 1
    assert polls > 0


@pytest.mark.parametrize("n", SIZES)
def test_a_write_through_any_server_is_read_on_every_server_after_sync(ensemble, n):
    c = ensemble(n)
    clients = {sid: on(ensemble, c, sid) for sid in c.ids}
    clients[1].ensure_path("/w")
    written = {}
    for sid, zk in clients.items():
        path = f"/w/from-{sid}"
        zk.create(path, f"written through {sid}".encode())
        zk.set(path, f"updated through {sid}".encode())
        written[path] = f"updated through {sid}".encode()
    for sid, zk in clients.items():
        zk.sync("/w")
        assert sorted(zk.get_children("/w")) == sorted(p.split("/")[-1] for p in written), sid
        for path, data in written.items():
            got, st = zk.get(path)
            assert got == data, (sid, path, got)
            assert st.version == 1, (sid, path, st)
    # the Stat is the replicated one: the same zxids on every server
    stats = {sid: zk.get("/w/from-1")[1] for sid, zk in clients.items()}
    assert len({(s.czxid, s.mzxid, s.version) for s in stats.values()}) == 1, stats


@pytest.mark.parametrize("n", SIZES)
def test_ephemerals_go_on_every_server_when_their_session_closes(ensemble, n):
    c = ensemble(n)
    observers = {sid: on(ensemble, c, sid) for sid in c.ids}
    observers[1].ensure_path("/eph")
    owners = {}
    for sid in c.ids:   # one owner per server, each with its own session
        zk = on(ensemble, c, sid)
        zk.create(f"/eph/of-{sid}", b"x", ephemeral=True)
        owners[sid] = zk
    for sid, zk in observers.items():
        zk.sync("/eph")
        for osid, owner in owners.items():
            st = zk.exists(f"/eph/of-{osid}")
            assert st is not None, f"server {sid} does not see {osid}'s ephemeral"
            assert st.ephemeralOwner == owner.client_id[0], (sid, osid, st)
    for owner in owners.values():
        owner.stop()   # closeSession
    for sid, zk in observers.items():
        zk.sync("/eph")
        assert zk.get_children("/eph") == [], f"server {sid} still has ephemerals of closed sessions"
    assert all(int(s.mntr().get("zk_ephemerals_count", "0")) == 0 for s in c)


@pytest.mark.parametrize("n", SIZES)
def test_sequential_names_are_unique_across_clients_of_different_servers(ensemble, n):
    c = ensemble(n)
    per_client = 40
    writers = {}
    for sid in c.ids:   # two clients per server
        writers[(sid, 0)] = on(ensemble, c, sid)
        writers[(sid, 1)] = on(ensemble, c, sid)
    writers[(1, 0)].ensure_path("/seq")
    names = {}
    errors = []
    go = threading.Event()

    def run(key, zk):
        try:
            go.wait(10)
            # pipelined: every create in flight at once
            futs = [zk.create_async("/seq/n-", f"{key}".encode(), sequence=True)
                    for _ in range(per_client)]
            names[key] = [f.get(30) for f in futs]
        except Exception as e:
            errors.append(f"{key}: {e!r}")

    threads = [threading.Thread(target=run, args=(k, zk)) for k, zk in writers.items()]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(60)
    assert not errors, errors
    every = [p for ps in names.values() for p in ps]
    total = len(writers) * per_client
    assert len(every) == total
    assert len(set(every)) == total, "a sequential name was handed out twice"
    seqs = sorted(int(p.rsplit("-", 1)[1]) for p in every)
    assert seqs == list(range(total)), "sequence numbers are not 0..N-1 under one parent"
    for key, ps in names.items():
        ns = [int(p.rsplit("-", 1)[1]) for p in ps]
        assert ns == sorted(ns), f"{key}: one session's pipelined creates out of order: {ns}"
    for sid in c.ids:
        zk = writers[(sid, 0)]
        zk.sync("/seq")
        assert sorted(zk.get_children("/seq")) == sorted(p.split("/")[-1] for p in every), sid


@pytest.mark.parametrize("n", SIZES)
def test_a_watch_fires_on_the_watchers_server_for_a_write_through_another(ensemble, n):
    c = ensemble(n)
    clients = {sid: on(ensemble, c, sid) for sid in c.ids}
    clients[1].ensure_path("/watch")
    for a in c.ids:
        b = a % n + 1   # the writer is on the next server
        watcher, writer = clients[a], clients[b]
        base = f"/watch/{a}-{b}"
        got = {"data": [], "child": [], "exists": []}
        fired = {k: threading.Event() for k in got}

        def cb(kind):
            def f(ev):
                got[kind].append((ev.type, ev.path))
                fired[kind].set()
            return f
        writer.create(base, b"0")
        watcher.sync(base)
        watcher.get(base, watch=cb("data"))
        watcher.get_children(base, watch=cb("child"))
        assert watcher.exists(base + "/new", watch=cb("exists")) is None
        writer.set(base, b"1")
        writer.create(base + "/new", b"")
        for kind, ev in fired.items():
            assert ev.wait(15), (f"{kind} watch set on server {a} did not fire for a write "
                                 f"through server {b}")
        assert got["data"] == [("CHANGED", base)], got
        assert got["child"] == [("CHILD", base)], got
        assert got["exists"] == [("CREATED", base + "/new")], got
        # the watcher's server has applied the write by the time it tells
        assert watcher.get(base)[0] == b"1"
        assert watcher.exists(base + "/new") is not None


def test_observers_serve_reads_forward_writes_and_do_not_count_in_the_quorum(ensemble):
    """Five servers, two of them observers (role: observer): they say so in
    mntr, serve reads and forward writes like followers, and never lead; with
    two of the three voters gone no write commits, even though three servers
    still run (the observers do not count)."""
    c = ensemble(5, observers=(4, 5))
    leader = c.first_leader
    assert leader in (1, 2, 3), c.describe()
    for sid in (4, 5):
        assert c[sid].mntr()["zk_server_state"] == "observer", c.describe()
    obs = on(ensemble, c, 4)
    obs.create("/through-observer", b"o")
    other = on(ensemble, c, 5)
    other.sync("/")
    assert other.get("/through-observer")[0] == b"o"
    voter = on(ensemble, c, leader)
    voter.sync("/")
    assert voter.get("/through-observer")[0] == b"o"
    # two voters down: the third and both observers run, but no quorum
    for sid in [v for v in (1, 2, 3) if v != leader][:1] + [leader]:
        c[sid].kill()
    late = other.create_async("/without-quorum", b"")
    with pytest.raises(Exception):
        late.get(timeout=3 * c.election_timeout_ms / 1000)
    # nobody became leader meanwhile, and certainly not an observer
    for sid in (4, 5):
        assert c[sid].mntr()["zk_server_state"] in ("observer", "looking"), c.describe()
