"""Crash rounds: corrald is SIGKILLed while four clients write as fast as
they can; after each restart every acknowledged write is there, in order,
and the tree is exactly a replay of the acknowledged history plus a prefix
of what was in flight.

Each round r: corrald starts on the persistent data directory (a new port
each time, so no client of a killed server can reach the new one); four
kazoo clients, each alone under its own subtree /r<r>/c<k>, pipeline
creates (persistent, sequential, ephemeral, ephemeral sequential, nested),
setData (with and without a version), deletes and multi transactions (some
built to fail) for a random 0.2-1.5 s; then corrald is killed with SIGKILL.
Every operation is recorded in issue order with what its reply said; an
operation with no reply (connection loss at the kill) is "unknown".

The check is exact per client. A client's operations reach the server in
order and are logged in order, and the log that survives a crash is a
prefix of the log; so after the restart the client's subtree must equal a
replay, with ZooKeeper's semantics, of its operations in order where every
replied one is included (and must reproduce its recorded reply: the same
sequential path, the same version, the same error), and of each run of
unknown operations exactly a prefix is included. Compared per node: data,
version, ephemeral owner, numChildren and cversion.

Sessions survive the restart: the ephemerals of the killed clients are
there right after it, and (checked every few rounds) all of them go after
a fresh full session timeout, never sooner. Every few rounds and at the
end, every earlier round's subtree is checked again. Finally
`corrald --verify` must call the data directory sound.

Environment: CORRAL_CRASH_ROUNDS (default 20; more for a long run),
CORRAL_CRASH_SEED (default fixed; printed on failure).
"""
import collections
import itertools
import json
import os
import random
import threading
import time

from kazoo.exceptions import (ConnectionClosedError, ConnectionLoss, NoNodeError,
                              SessionExpiredError, ZookeeperError, ZookeeperStoppedError)

from conftest import verify
from harness import make_kazoo, mntr, stop_kazoo, wait_until

ROUNDS = int(os.environ.get("CORRAL_CRASH_ROUNDS", "20"))
SEED = int(os.environ.get("CORRAL_CRASH_SEED", "20261123"))
CLIENTS = 4
SESSION_TIMEOUT_S = 4.0		# negotiated as is (tick 200 ms: 400..4000 ms)
EXPIRY_EVERY = 5		# wait for the killed sessions to expire every this many rounds
MAX_LIVE_NODES = 120		# per client; past it the generator favours deletes

CONFIG = {
    "session": {"tick_time_ms": 200, "min_timeout_ms": 400, "max_timeout_ms": 4000},
    # Small segments and frequent snapshots: crashes land across segment
    # switches and while a snapshot is being written too.
    "storage": {"segment_bytes": 1048576, "snapshot_entries": 8000},
}

UNKNOWN = None	# the outcome of an operation that got no reply


# ---------------------------------------------------------------------------
# A subtree's state and ZooKeeper's semantics for the operations used here.
# state: path -> (data, version, ephemeral, child creates, numChildren)

def parent_of(path):
    return path.rsplit("/", 1)[0] or "/"


class OpError(Exception):
    def __init__(self, name):
        self.name = name


def _apply1(st, op):
    kind = op[0]
    if kind == "create":
        _, path, data, eph, seq = op
        par = parent_of(path)
        p = st.get(par)
        if p is None:
            raise OpError("NoNodeError")
        actual = path + "%010d" % p[3] if seq else path
        if actual in st:
            raise OpError("NodeExistsError")
        if p[2]:
            raise OpError("NoChildrenForEphemeralsError")
        st[actual] = (data, 0, eph, 0, 0)
        st[par] = (p[0], p[1], p[2], p[3] + 1, p[4] + 1)
        return actual
    if kind == "set":
        _, path, data, version = op
        n = st.get(path)
        if n is None:
            raise OpError("NoNodeError")
        if version != -1 and version != n[1]:
            raise OpError("BadVersionError")
        st[path] = (data, n[1] + 1, n[2], n[3], n[4])
        return n[1] + 1
    if kind == "delete":
        _, path, version = op
        n = st.get(path)
        if n is None:
            raise OpError("NoNodeError")
        if version != -1 and version != n[1]:
            raise OpError("BadVersionError")
        if n[4]:
            raise OpError("NotEmptyError")
        del st[path]
        par = parent_of(path)
        p = st[par]
        st[par] = (p[0], p[1], p[2], p[3], p[4] - 1)
        return None
    if kind == "check":
        _, path, version = op
        n = st.get(path)
        if n is None:
            raise OpError("NoNodeError")
        if version != -1 and version != n[1]:
            raise OpError("BadVersionError")
        return None
    raise AssertionError(op)


def apply_op(st, op):
    """Applies op to st (in place when it succeeds); returns its outcome as
    normalize() would record the server's reply."""
    if op[0] == "multi":
        copy = dict(st)
        results = []
        subs = op[1]
        for i, sub in enumerate(subs):
            try:
                results.append(_apply1(copy, sub))
            except OpError as e:
                return ("fail", tuple(["RolledBackError"] * i + [e.name] +
                                      ["RuntimeInconsistency"] * (len(subs) - i - 1)))
        st.clear()
        st.update(copy)
        return ("ok", tuple(results))
    try:
        return ("ok", _apply1(st, op))
    except OpError as e:
        return ("err", e.name)


def normalize(op, result):
    """A kazoo reply in the form apply_op() returns."""
    def one(kind, r):
        if kind == "create":
            return r
        if kind == "set":
            return r.version
        return None
    if op[0] == "multi":
        if any(isinstance(x, Exception) for x in result):
            return ("fail", tuple(type(x).__name__ for x in result))
        return ("ok", tuple(one(sub[0], x) for sub, x in zip(op[1], result)))
    return ("ok", one(op[0], result))


LOST = (ConnectionLoss, ConnectionClosedError, SessionExpiredError, ZookeeperStoppedError)


# ---------------------------------------------------------------------------
# One writer client.

class Writer:
    def __init__(self, k, root, hosts, rng):
        self.k = k
        self.root = root
        self.rng = rng
        self.window = rng.choice([1, 2, 4, 8, 16, 32])
        self.zk = make_kazoo(hosts, SESSION_TIMEOUT_S)
        self.zk.start(timeout=15)
        self.session_id = self.zk.client_id[0]
        self.states = []
        self.zk.add_listener(lambda s: self.states.append((time.monotonic(), str(s))))
        self.model = {root: (b"root", 0, False, 0, 0)}	# as if every issued op succeeds
        self.ops = []		# [op, reply's outcome or UNKNOWN, mzxid of a set or None, predicted]
        self.problems = []	# replies that contradict the model of an undisturbed client
        self.counter = 0
        self.error = None
        self.broken_at = None

    # -- generating operations that are valid on the model --

    def _data(self):
        n = self.rng.choice([1, 8, 40, 100, 200]) if self.rng.random() < 0.95 \
            else self.rng.randint(1000, 8000)
        self.counter += 1
        tag = b"c%d-%d:" % (self.k, self.counter)
        return tag + self.rng.randbytes(max(0, n - len(tag)))

    def _name(self, prefix):
        self.counter += 1
        return f"{prefix}{self.counter}"

    def _gen_single(self, st, allow=("create", "set", "delete", "check")):
        rng = self.rng
        live = len(st)
        persistent = [p for p, n in st.items() if not n[2]]
        leaves = [p for p, n in st.items() if n[4] == 0 and p != self.root]
        full = live >= MAX_LIVE_NODES
        w = {"create": 5 if full else 45, "set": 30, "delete": 60 if full else 20, "check": 5}
        kinds = [k for k in allow if k != "delete" or leaves]
        kind = rng.choices(kinds, [w[k] for k in kinds])[0]
        if kind == "create":
            r = rng.random()
            if r < 0.35:
                return ("create", f"{self.root}/{self._name('n')}", self._data(), False, False)
            if r < 0.50:
                return ("create", f"{self.root}/s-", self._data(), False, True)
            if r < 0.68:
                return ("create", f"{self.root}/{self._name('e')}", self._data(), True, False)
            if r < 0.80:
                return ("create", f"{self.root}/es-", self._data(), True, True)
            par = rng.choice(persistent)
            if rng.random() < 0.3:
                return ("create", f"{par}/q-", self._data(), rng.random() < 0.5, True)
            return ("create", f"{par}/{self._name('x')}", self._data(), rng.random() < 0.3, False)
        if kind == "set":
            p = rng.choice(list(st))
            return ("set", p, self._data(), st[p][1] if rng.random() < 0.7 else -1)
        if kind == "delete":
            p = rng.choice(leaves)
            return ("delete", p, st[p][1] if rng.random() < 0.6 else -1)
        p = rng.choice(list(st))
        return ("check", p, st[p][1])

    def generate(self):
        rng = self.rng
        if rng.random() < 0.15:
            scratch = dict(self.model)
            subs = []
            for _ in range(rng.randint(2, 4)):
                sub = self._gen_single(scratch)
                _apply1(scratch, sub)
                subs.append(sub)
            if rng.random() < 0.15:
                p = rng.choice(list(scratch))
                subs.append(("check", p, scratch[p][1] + 7))	# makes the whole multi fail
            return ("multi", tuple(subs))
        return self._gen_single(self.model, allow=("create", "set", "delete"))

    def _issue(self, op):
        zk = self.zk
        kind = op[0]
        if kind == "create":
            return zk.create_async(op[1], op[2], ephemeral=op[3], sequence=op[4])
        if kind == "set":
            return zk.set_async(op[1], op[2], op[3])
        if kind == "delete":
            return zk.delete_async(op[1], op[2])
        t = zk.transaction()
        for sub in op[1]:
            if sub[0] == "create":
                t.create(sub[1], sub[2], ephemeral=sub[3], sequence=sub[4])
            elif sub[0] == "set":
                t.set_data(sub[1], sub[2], sub[3])
            elif sub[0] == "delete":
                t.delete(sub[1], sub[2])
            else:
                t.check(sub[1], sub[2])
        return t.commit_async()

    def _settle(self, i, fut):
        op = self.ops[i][0]
        try:
            result = fut.get(timeout=30)
        except LOST:
            self.broken_at = self.broken_at or time.monotonic()
            return
        except ZookeeperError as e:
            self.ops[i][1] = ("err", type(e).__name__)
        except Exception as e:	# the handler's timeout: no reply within 30 s
            self.broken_at = self.broken_at or time.monotonic()
            self.problems.append(f"op {i} {op[0]}: no reply within 30 s ({e!r})")
            return
        else:
            self.ops[i][1] = normalize(op, result)
            if op[0] == "set":
                self.ops[i][2] = result.mzxid
            elif op[0] == "multi" and self.ops[i][1][0] == "ok":
                zx = [r.mzxid for sub, r in zip(op[1], result) if sub[0] == "set"]
                self.ops[i][2] = zx[0] if zx else None
        if self.broken_at is None and self.ops[i][1] != self.ops[i][3]:
            self.problems.append(f"op {i} {op!r:.200}: reply {self.ops[i][1]!r:.200}, "
                                 f"expected {self.ops[i][3]!r:.200}")

    def run(self, stop):
        try:
            pending = collections.deque()
            while not stop.is_set() and self.broken_at is None:
                op = self.generate()
                predicted = apply_op(self.model, op)
                fut = self._issue(op)
                self.ops.append([op, UNKNOWN, None, predicted])
                pending.append((len(self.ops) - 1, fut))
                while len(pending) >= self.window or (pending and pending[0][1].ready()):
                    self._settle(*pending.popleft())
            while pending:
                self._settle(*pending.popleft())
        except Exception as e:
            self.error = repr(e)


# ---------------------------------------------------------------------------
# Reading a subtree and checking it.

def read_subtree(zk, root):
    """path -> (data, version, ephemeralOwner, cversion, numChildren), read pipelined."""
    out = {}
    level = [root]
    while level:
        gets = [(p, zk.get_async(p)) for p in level]
        kids = [(p, zk.get_children_async(p)) for p in level]
        nxt = []
        for p, f in gets:
            try:
                data, st = f.get(timeout=30)
            except NoNodeError:
                continue	# listed, then gone (an ephemeral whose session expired)
            out[p] = (data, st.version, st.ephemeralOwner, st.cversion, st.numChildren)
        for p, f in kids:
            try:
                nxt += [f"{p}/{c}" for c in f.get(timeout=30)]
            except NoNodeError:
                pass
        level = nxt
    return out


def diff_state(expected, actual, session_id, limit=25):
    """Differences between a model state and a read subtree, as lines."""
    lines = []
    for p in sorted(set(expected) | set(actual)):
        e, a = expected.get(p), actual.get(p)
        if e is None:
            lines.append(f"{p}: present (data {a[0][:24]!r}..., version {a[1]}) but not expected")
        elif a is None:
            lines.append(f"{p}: missing (expected data {e[0][:24]!r}..., version {e[1]})")
        else:
            want = (e[0], e[1], session_id if e[2] else 0, 2 * e[3] - e[4], e[4])
            if want != a:
                names = ("data", "version", "ephemeralOwner", "cversion", "numChildren")
                d = ", ".join(f"{n} {x!r:.40} != expected {y!r:.40}"
                              for n, x, y in zip(names, a, want) if x != y)
                lines.append(f"{p}: {d}")
        if len(lines) >= limit:
            lines.append("...")
            break
    return lines


def states_equal(expected, actual, session_id):
    if set(expected) != set(actual):
        return False
    for p, e in expected.items():
        if actual[p] != (e[0], e[1], session_id if e[2] else 0, 2 * e[3] - e[4], e[4]):
            return False
    return True


def candidates(w):
    """Yields (cut, state, mismatches) for every way the crash could
    have cut this client's history: every replied op included, and of each
    run of unknown ops a prefix."""
    ops = w.ops
    runs = []	# [start, end) of runs of unknown ops
    i = 0
    while i < len(ops):
        if ops[i][1] is UNKNOWN:
            j = i
            while j < len(ops) and ops[j][1] is UNKNOWN:
                j += 1
            runs.append((i, j))
            i = j
        else:
            i += 1
    choices = [range(e - s + 1) for s, e in runs]
    total = 1
    for c in choices:
        total *= len(c)
    assert total <= 100000, f"client {w.k}: {total} candidate histories, too many to check"
    for pick in itertools.product(*choices):
        included = set()
        for (s, e), n in zip(runs, pick):
            included.update(range(s, s + n))
        st = {w.root: (b"root", 0, False, 0, 0)}
        mismatches = []
        for idx, (op, outcome, _, _) in enumerate(ops):
            if outcome is UNKNOWN:
                if idx in included:
                    apply_op(st, op)
                continue
            got = apply_op(st, op)
            if got != outcome:
                mismatches.append((idx, op, outcome, got))
        yield pick, st, mismatches


def check_client(w, actual, log_dir):
    """Returns (state that matched, how many unknown ops it includes) or raises."""
    tried = []
    for pick, st, mismatches in candidates(w):
        if not mismatches and states_equal(st, actual, w.session_id):
            return st, sum(pick)
        tried.append((pick, st, mismatches))
    # No way to explain what is there: say what differs from the most likely cuts.
    dump = os.path.join(log_dir, f"history-{w.root.replace('/', '_')}.json")
    with open(dump, "w") as f:
        json.dump({"root": w.root, "session": w.session_id, "window": w.window,
                   "states": w.states,
                   "ops": [[repr(op), repr(o), zx] for op, o, zx, _ in w.ops]}, f, indent=1)
    unknown = sum(1 for o in w.ops if o[1] is UNKNOWN)
    msg = [f"{w.root} (session 0x{w.session_id:x}, {len(w.ops)} ops, {unknown} unknown, "
           f"window {w.window}): the tree after the restart is no replay of the acknowledged "
           f"history plus a prefix of the unknown ops. History: {dump}"]
    for pick, st, mismatches in (tried[0], tried[-1]) if len(tried) > 1 else tried:
        msg.append(f"  cut {pick}:")
        for idx, op, outcome, got in mismatches[:5]:
            msg.append(f"    op {idx} {op!r:.160}: replied {outcome!r:.120}, replay gives {got!r:.120}")
        msg += ["    " + l for l in diff_state(st, actual, w.session_id)]
    raise AssertionError("\n".join(msg))


def without_ephemerals(st):
    """The state once the owning session's ephemerals are gone."""
    out = dict(st)
    for p, n in st.items():
        if n[2]:
            del out[p]
            par = parent_of(p)
            q = out[par]
            out[par] = (q[0], q[1], q[2], q[3], q[4] - 1)
    return out


# ---------------------------------------------------------------------------

def test_every_acknowledged_write_survives_sigkill_and_the_tree_is_a_prefix_replay(
        corrald, kazoo, tmp_path):
    rng = random.Random(SEED)
    server = corrald(config=CONFIG, name="crash")
    known = {}		# root -> (state, session id) confirmed after its round
    rechecked = set()	# roots checked again after their sessions expired
    stats = collections.Counter()
    summary = []
    checker = None

    def fail_context():
        return f"(seed {SEED}, data dir {server.data_dir}, logs in {tmp_path})"

    def start_and_check(prev_writers, expiry_round, final=False):
        """Starts corrald, checks the round just killed, and, when asked, waits
        for the killed sessions to expire and checks every earlier round."""
        nonlocal checker
        server.start(timeout=120)
        stats["restart_ms"] = max(stats["restart_ms"], int((server.ready_at - server.spawned_at) * 1000))
        log = server.log()
        stats["torn_tails_cut"] += log.count("torn write")
        stats["snapshot_loads"] += log.count("loaded the snapshot")
        checker = kazoo(server.hosts, timeout=SESSION_TIMEOUT_S)
        for w in prev_writers:
            actual = read_subtree(checker, w.root)
            elapsed = time.monotonic() - server.spawned_at
            try:
                st, applied_unknown = check_client(w, actual, str(tmp_path))
            except AssertionError as e:
                extra = ""
                if elapsed >= SESSION_TIMEOUT_S:
                    extra = (f"\n(the read ended {elapsed:.1f} s after the restart, past the "
                             f"session timeout: ephemerals may have expired meanwhile)")
                raise AssertionError(f"{e}{extra}\n{fail_context()}") from None
            stats["max_check_after_restart_ms"] = max(stats["max_check_after_restart_ms"],
                                                      int(elapsed * 1000))
            assert elapsed < SESSION_TIMEOUT_S, (
                f"checking {w.root} ended {elapsed:.1f} s after the restart, past the session "
                f"timeout: the test could not see the ephemerals before expiry {fail_context()}")
            known[w.root] = (st, w.session_id)
            stats["acked"] += sum(1 for o in w.ops if o[1] is not UNKNOWN)
            stats["unknown"] += sum(1 for o in w.ops if o[1] is UNKNOWN)
            stats["unknown_applied"] += applied_unknown
            stats["ephemerals_checked"] += sum(1 for n in st.values() if n[2])
        if not expiry_round:
            return
        # All sessions but the checker's were killed: their ephemerals must go
        # after a fresh full timeout from this start, not sooner, and all at once.
        ephemerals = int(mntr(server.port)["zk_ephemerals_count"])
        expected_eph = sum(1 for st, _ in known.values() for n in st.values() if n[2])
        first_drop = None

        def gone():
            nonlocal first_drop
            m = mntr(server.port)
            n = int(m["zk_ephemerals_count"])
            if n < ephemerals and first_drop is None:
                first_drop = time.monotonic()
            return n == 0 and int(m["zk_global_sessions"]) == 1
        wait_until(gone, SESSION_TIMEOUT_S + 15, interval=0.05,
                   what="the killed sessions to expire and take their ephemerals")
        if ephemerals:
            assert first_drop - server.spawned_at >= SESSION_TIMEOUT_S - 0.05, (
                f"ephemerals of killed sessions went {first_drop - server.spawned_at:.2f} s after "
                f"the restart, before the session timeout of {SESSION_TIMEOUT_S} s {fail_context()}")
        stats["expiry_checks"] += 1
        stats["ephemerals_expired"] += ephemerals
        just_checked = sum(1 for w in prev_writers for n in known[w.root][0].values() if n[2])
        assert just_checked <= ephemerals <= expected_eph, (just_checked, ephemerals, expected_eph)
        # Every round not checked again since its own check (all of them at the
        # end): persistent nodes exactly as confirmed, no ephemerals.
        roots = list(known) if final else [r for r in known if r not in rechecked]
        for root in roots:
            st, sid = known[root]
            actual = read_subtree(checker, root)
            want = without_ephemerals(st)
            assert states_equal(want, actual, sid), (
                f"{root} changed since its round was checked:\n" +
                "\n".join(diff_state(want, actual, sid)) + f"\n{fail_context()}")
            known[root] = (want, sid)
            rechecked.add(root)

    live = []		# writers' clients not stopped yet
    prev = [[]]

    def run_rounds():
        for rnd in range(ROUNDS):
            start_and_check(prev[0], expiry_round=rnd > 0 and rnd % EXPIRY_EVERY == 0)
            # This round's subtrees, acknowledged before any writer starts.
            checker.create(f"/r{rnd}", b"round")
            writers = []
            for k in range(CLIENTS):
                checker.create(f"/r{rnd}/c{k}", b"root")
            for k in range(CLIENTS):
                writers.append(Writer(k, f"/r{rnd}/c{k}", server.hosts, random.Random(rng.random())))
                live.append(writers[-1].zk)
            stop = threading.Event()
            threads = [threading.Thread(target=w.run, args=(stop,), daemon=True) for w in writers]
            duration = rng.uniform(0.2, 1.5)
            for t in threads:
                t.start()
            time.sleep(duration)
            killed_at = time.monotonic()
            server.kill()
            stop.set()
            # checker's and the writers' sessions stay open on the server side: killed.
            stop_kazoo([w.zk for w in writers] + [checker], timeout=30)
            live.clear()
            for t in threads:
                t.join(60)
            assert not any(t.is_alive() for t in threads), f"a writer did not finish {fail_context()}"
            for w in writers:
                assert w.error is None, f"writer {w.k} failed: {w.error} {fail_context()}"
                if any(t < killed_at for t, _ in w.states):
                    stats["clients_disconnected_before_the_kill"] += 1
                zx = [o[2] for o in w.ops if o[2] is not None]
                assert zx == sorted(zx) and len(set(zx)) == len(zx), (
                    f"round {rnd}, {w.root}: the mzxids of the acknowledged setData replies do not "
                    f"increase in the client's order: {zx} {fail_context()}")
                assert not w.problems, (
                    f"round {rnd}, {w.root}: replies that contradict the client's own history "
                    f"(order or semantics):\n  " + "\n  ".join(w.problems[:10]) + f"\n{fail_context()}")
                stats["ops"] += len(w.ops)
            summary.append((rnd, round(duration, 2), [len(w.ops) for w in writers],
                            [w.window for w in writers]))
            prev[0] = writers

    try:
        run_rounds()
    finally:
        stop_kazoo(live)	# the writers of a round that failed half-way

    # After the last crash: --verify (a torn tail is allowed), then a last check.
    r = verify(server.data_dir)
    assert r.returncode == 0 and "sound" in r.stdout, (r.returncode, r.stdout, r.stderr)
    start_and_check(prev[0], expiry_round=True, final=True)
    stop_kazoo([checker])
    status = server.stop()
    assert status == 0, f"corrald exited with {status} after SIGTERM:\n{server.log()[-3000:]}"
    r = verify(server.data_dir)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "sound" in r.stdout, r.stdout
    assert "torn tail" not in r.stdout, r.stdout
    report = {"seed": SEED, "rounds": ROUNDS, **stats, "rounds_detail": summary,
              "verify": r.stdout.strip().splitlines()}
    with open(tmp_path / "summary.json", "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps({k: v for k, v in report.items() if k != "rounds_detail"}))
