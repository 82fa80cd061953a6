"""Compare-and-set on an ensemble stays linearizable while servers crash
(SIGKILL) and restart, and are paused (SIGSTOP) and resumed, leaders and
followers alike; checked by the WGL checker (linearizability.py).

Clients, each with its own session and each connected first to a different
server (the others follow in its connect string), run on three registers:
  - setData with the version last read: a conditional write (ok with the
    new version, BADVERSION, or unknown: connection lost, timed out);
  - sync then getData: a read that must see every write acknowledged
    before the sync was sent;
  - getData alone.
The history of the writes and the sync+getData reads goes to the checker:
one sequential order of them must explain every result. A plain getData is
answered by the client's server from its own copy, which ZooKeeper allows to
lag the leader (reads are sequentially consistent, not linearizable), so it
is not in that history; what ZooKeeper does promise for it is checked
instead: a client never sees a register go back to an older version than
one it has seen (on any server, across reconnects: lastZxidSeen).

No session may expire: faults last seconds, sessions 10 s, and sessions are
global, so a client moves to another server and resumes.
"""
import random
import threading
import time


from harness import make_kazoo, stop_kazoo, wait_until
from linearizability import Recorder, assert_linearizable

KEYS = ["/lin/k0", "/lin/k1", "/lin/k2"]
CALL_TIMEOUT_S = 10
SESSION_TIMEOUT_S = 10.0
ELECTION_TIMEOUT_MS = 1000


class Clients:
    def __init__(self, cluster, count, rec):
        self.rec = rec
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.errors = []
        self.regressions = []     # plain reads older than what the client had seen
        self.expired = []
        self.ok_ops = 0
        self.plain_reads = 0
        self.threads = []
        self.clients = []
        ids = cluster.ids
        for cid in range(count):
            zk = make_kazoo(cluster.hosts(first=ids[cid % len(ids)]), timeout=SESSION_TIMEOUT_S)
            self.clients.append(zk)
            self.threads.append(threading.Thread(target=self.run, args=(cid, zk), daemon=True))

    def start(self):
        for zk in self.clients:
            zk.start(timeout=30)
        for t in self.threads:
            t.start()

    def count_ok(self):
        with self.lock:
            return self.ok_ops

    def _ok(self):
        with self.lock:
            self.ok_ops += 1

    def run(self, cid, zk):
        from kazoo.exceptions import (BadVersionError, ConnectionLoss, OperationTimeoutError,
                                      SessionExpiredError)
        from kazoo.handlers.threading import KazooTimeoutError
        unknown = (ConnectionLoss, OperationTimeoutError, KazooTimeoutError)
        rnd = random.Random(cid)
        versions = {k: 0 for k in KEYS}   # what the next CAS expects
        seen = {k: 0 for k in KEYS}       # the highest version this client has seen
        n = 0

        def saw(key, version, what):
            if version < seen[key]:
                with self.lock:
                    self.regressions.append(f"client {cid} {what} {key}: version {version} "
                                            f"after it had seen {seen[key]}")
            seen[key] = max(seen[key], version)
            versions[key] = version

        try:
            while not self.stop.is_set():
                key = rnd.choice(KEYS)
                roll = rnd.random()
                try:
                    if roll < 0.45:
                        value = f"c{cid}-{n}".encode()
                        n += 1
                        p = self.rec.invoke(cid, key, "write", (value, versions[key]))
                        try:
                            st = zk.set_async(key, value, version=versions[key]).get(CALL_TIMEOUT_S)
                            p.ok(st.version)
                            saw(key, st.version, "wrote")
                        except BadVersionError:
                            p.fail("BADVERSION")
                        except unknown:
                            p.unknown()
                            continue
                        except SessionExpiredError:
                            p.unknown()
                            raise
                    elif roll < 0.75:
                        try:
                            data, st = zk.get_async(key).get(CALL_TIMEOUT_S)
                        except unknown:
                            continue
                        with self.lock:
                            self.plain_reads += 1
                        saw(key, st.version, "read (getData)")
                    else:
                        p = self.rec.invoke(cid, key, "read")
                        try:
                            zk.sync_async(key).get(CALL_TIMEOUT_S)
                            data, st = zk.get_async(key).get(CALL_TIMEOUT_S)
                            p.ok((data, st.version))
                            saw(key, st.version, "read (sync+getData)")
                        except unknown:
                            p.unknown()
                            continue
                        except SessionExpiredError:
                            p.unknown()
                            raise
                    self._ok()
                except SessionExpiredError as e:
                    with self.lock:
                        self.expired.append(f"client {cid}: {e!r}")
                    # kazoo makes a new session; versions seen stay valid
        except Exception as e:
            with self.lock:
                self.errors.append(f"client {cid}: {e!r}")

    def wait_progress(self, n, timeout, what):
        start = self.count_ok()

        def enough():
            assert not self.errors, self.errors
            return self.count_ok() - start >= n
        wait_until(enough, timeout,
                   what=f"{n} successful operations {what} (have {self.count_ok() - start})")

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(2 * CALL_TIMEOUT_S + 5)
        stop_kazoo(self.clients)
        alive = sum(t.is_alive() for t in self.threads)
        assert alive == 0, f"{alive} client threads did not stop"


def nemesis(c, clients, faults, progress, log):
    """Applies each fault in turn: waits for progress, breaks something,
    waits for progress with it broken (a majority is always left), heals,
    waits for every server to agree on a leader again."""
    for fault in faults:
        clients.wait_progress(progress, 40, "before the next fault")
        lid = c.wait_for_leader(30)
        followers = [s for s in c.ids if s != lid]
        random.shuffle(followers)
        kind, targets = fault
        victims = [lid if t == "leader" else followers.pop() for t in targets]
        t0 = time.monotonic()
        for v in victims:
            if kind == "kill":
                c[v].kill()
            else:
                c[v].pause()
        if lid in victims:
            new = c.wait_for_leader(30, not_id=lid)
            log.append(f"{kind} {victims} (leader {lid}): server {new} leads after "
                       f"{time.monotonic() - t0:.2f} s")
        else:
            log.append(f"{kind} {victims} (followers; leader {lid})")
        clients.wait_progress(progress, 40, f"with servers {victims} {kind}ed")
        for v in victims:
            if kind == "kill":
                c[v].start()
            else:
                c[v].resume()
        c.wait_for_leader(30)


def run_linearizability(ensemble, tmp_path, n, n_clients, faults, progress):
    c = ensemble(n, election_timeout_ms=ELECTION_TIMEOUT_MS,
                 config={"session": {"max_timeout_ms": 60000}})
    setup = ensemble.kazoo(c.hosts())
    for k in KEYS:
        setup.ensure_path(k)
    setup.sync("/lin")
    rec = Recorder()
    clients = Clients(c, n_clients, rec)
    log = []
    t0 = time.monotonic()
    clients.start()
    try:
        nemesis(c, clients, faults, progress, log)
        clients.wait_progress(progress, 40, "after the last fault healed")
    finally:
        clients.finish()
    took = time.monotonic() - t0
    history = rec.history()
    acked = sum(1 for op in history if op.kind == "write" and op.status == "ok")
    badv = sum(1 for op in history if op.kind == "write" and op.status == "fail")
    reads = sum(1 for op in history if op.kind == "read" and op.status == "ok")
    unknown = sum(1 for op in history if op.status == "unknown")
    print(f"\n{n} servers, {n_clients} clients, {took:.1f} s: " + "; ".join(log))
    print(f"{len(history)} ops in the history: {acked} acknowledged writes, {badv} BADVERSION, "
          f"{reads} sync+getData reads, {unknown} unknown; {clients.plain_reads} plain getData "
          f"checked for going back")
    assert not clients.errors, clients.errors
    assert acked >= 50, f"only {acked} acknowledged writes: the run proves little"
    assert reads >= 50, f"only {reads} sync+getData reads: the run proves little"
    res = assert_linearizable(history, initial=(b"", 0),
                              artifact=str(tmp_path / f"history-{n}-servers.jsonl"))
    print(f"linearizable ({res.steps} search steps)")
    assert not clients.regressions, ("a client saw a register go back to an older version:\n"
                                     + "\n".join(clients.regressions[:20]))
    assert not clients.expired, ("sessions expired although every fault was shorter than "
                                 f"their {SESSION_TIMEOUT_S} s timeout:\n"
                                 + "\n".join(clients.expired[:20]))
    # and every server ends with the same registers
    state = c.wait_converged(c.ids, timeout=60)
    print("registers at the end: " + ", ".join(f"{k}={state[k][1]}" for k in KEYS))


FAULTS_3 = [
    ("kill", ["leader"]),
    ("kill", ["follower"]),
    ("pause", ["leader"]),
    ("pause", ["follower"]),
    ("kill", ["leader"]),
]

FAULTS_5 = [
    ("kill", ["leader"]),
    ("kill", ["leader", "follower"]),
    ("pause", ["leader"]),
    ("pause", ["follower", "follower"]),
    ("kill", ["follower"]),
]


def test_compare_and_set_on_3_servers_stays_linearizable_across_crashes_and_pauses(ensemble,
                                                                                    tmp_path):
    run_linearizability(ensemble, tmp_path, 3, 6, FAULTS_3, progress=300)


def test_compare_and_set_on_5_servers_stays_linearizable_across_crashes_and_pauses(ensemble,
                                                                                    tmp_path):
    run_linearizability(ensemble, tmp_path, 5, 8, FAULTS_5, progress=300)
