"""Linearizability checker for histories of register operations (znode data).

What is checked
---------------
A *history* is a list of `Op`s recorded by concurrent clients against a
cluster: each op has a call time (taken just before the request was sent), a
return time (just after the reply arrived), its argument, its result and an
outcome status. `check()` decides whether there is a total order of the ops
that (a) respects real time -- if A returned before B was called, A comes
before B -- and (b) is a legal sequential execution of the model below
starting from the given initial state. Keys are independent registers, so the
history is partitioned by key and each key is checked on its own (Herlihy &
Wing's locality: a history is linearizable iff each per-object sub-history is).

Model: one register per key holding (value, version), like a znode's data and
its Stat.version:

  read                        -> (value, version)   getData (sync+getData is
                                                     also just a read)
  write(value, expected)      -> ok: version becomes version+1, value set;
                                 the precondition is expected == -1
                                 (unconditional) or expected == version.
                                 If the reply's new version is recorded it
                                 must equal version+1.
                              -> fail (BADVERSION): the op did not take effect,
                                 and is legal only where its precondition did
                                 NOT hold (expected != -1 and != version).

Outcomes (`status`):

  "ok"       the op took effect exactly once, at some point in its interval.
  "fail"     definite failure: the op took no effect. For a write whose error
             is BADVERSION (or not recorded) the failure itself is checked:
             it must linearize where the version differs from `expected`.
             A write failing with any other error, and any failed read, carry
             no information about the register and are left out.
  "unknown"  indeterminate (timeout, CONNECTIONLOSS, session expired, or never
             completed): the op may or may not have taken effect, at any point
             after its call. Its return time is taken to be +infinity whatever
             was recorded, and it may either be linearized (as applied -- only
             where its precondition holds) or be left out entirely. An unknown
             read says nothing and is left out.

Two ops whose intervals merely touch (one's return time equals the other's
call time) are treated as concurrent.

Algorithm
---------
Wing & Gong's search (J. M. Wing and C. Gong, "Testing and verifying
concurrent objects", JPDC 17(1), 1993) as improved by Lowe (G. Lowe, "Testing
for linearizability", Concurrency and Computation: Practice and Experience
29(4), 2017), the algorithm porcupine also uses: the call and return events
of the history form a time-ordered doubly linked list; a depth-first search
repeatedly picks a not-yet-linearized op whose call precedes the first pending
return, applies it to the model, and removes ("lifts") both of its events;
meeting a return event means the op it belongs to should already have been
linearized, so the search backtracks. Every configuration reached is memoized
as (bitmask of linearized ops, model state); a configuration seen before is
not explored again. An unknown op's return event sits at +infinity, so
reaching the first such event means every op with a definite outcome has
been placed and the remaining unknown ops are dropped: success.

Before the search, an O(n log n) pre-check looks for two ops that contradict
each other outright (versions only grow, so an op needing version b cannot
follow, in real time, one that left version a > b; one version is one state,
so two ops cannot disagree on its value, nor two writes both create it). Most
real bugs -- stale reads, lost or duplicated writes -- are reported there, by
the pair of ops at fault. `precheck=False` turns it off (the tests use that
to prove the search alone reaches the same verdicts).

The search itself is pruned with facts of this model, each of them checked
against a brute-force checker in the tests:
  * versions only grow: placing an op that takes the version above one that
    a pending op with a definite outcome needs is a dead end;
  * a read or a BADVERSION that fits where it is placed never needs to be
    tried elsewhere (it changes nothing, so any completion placing it later
    could place it here instead), so backtracking past it backtracks past
    the configuration before it too;
  * written values that no read returned are all alike, and unknown writes
    of such values with the same expected version are interchangeable once
    called, so they are applied in call order only.

Complexity: each op placed costs a walk over the ops pending at that point
(those concurrent with it plus the unknown ones, which stay pending until
+infinity), so a linearizable history of n ops with c concurrent and u
unknown costs about n*(c+u) steps when the search needs little backtracking,
which is the case for the histories replication tests produce (5-10
clients, versions pinning the order of writes): 5000 ops check in ~0.1 s,
each step also costing O(n/64) for the bitmask. The memo bounds the search
by (#distinct linearized sets x #model states) configurations, but that is
exponential in the worst case (many overlapping writes whose new versions
were not recorded, refutations deep into a history that the pre-check does
not catch), so each key's search has a step budget (`max_steps`, a step
being one visit of one event); running out gives an "inconclusive" result
(ok=False, inconclusive=True), never a hang.

Use from a test
---------------
    from linearizability import Recorder, assert_linearizable

    rec = Recorder()
    p = rec.invoke(client=3, key="/r1", kind="write", arg=(b"v7", 4))
    try:
        stat = zk.set("/r1", b"v7", version=4)
        p.ok(stat.version)                  # new version, or p.ok()
    except BadVersionError:
        p.fail("BADVERSION")
    except (ConnectionLoss, Timeout):
        p.unknown()
    p = rec.invoke(3, "/r1", "read")
    data, stat = zk.get("/r1")
    p.ok((data, stat.version))
    ...
    assert_linearizable(rec.history(), initial=(b"", 0),
                        artifact="history-r1.jsonl")

`assert_linearizable` saves the history as JSON lines to `artifact` when the
check fails (CI can keep it); `load_history` reads it back, `check` returns a
`Result` whose `explanation` shows the key and either the two ops that
contradict each other (pre-check) or the longest linearizable prefix found,
the register state after it, and the ops that could not be placed next and
why, each op with its times, client, argument and result.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

__all__ = [
    "OK", "FAIL", "UNKNOWN", "READ", "WRITE", "Op", "KeyResult", "Result",
    "check", "check_key", "assert_linearizable", "save_history",
    "load_history", "dump_op", "parse_op", "format_op", "Recorder",
    "DEFAULT_MAX_STEPS",
]

OK = "ok"
FAIL = "fail"
UNKNOWN = "unknown"
READ = "read"
WRITE = "write"
BADVERSION = "BADVERSION"

# Search steps per key before giving up as inconclusive. A step is one visit
# of one event in the list; pure-Python speed is a few hundred thousand
# steps a second.
DEFAULT_MAX_STEPS = 2_000_000

INF = math.inf


@dataclass(frozen=True)
class Op:
    """One client operation.

    kind "read":  arg None; result (value, version) when status is "ok".
    kind "write": arg (value, expected_version), expected_version -1 meaning
                  unconditional; result the new version (or None) when "ok",
                  the error name (e.g. "BADVERSION", or None) when "fail".
    return_time is ignored (taken as +infinity) when status is "unknown"
    and may be None then. Values are bytes (str is taken as UTF-8).
    """

    client: Any
    key: Any
    kind: str
    call_time: float
    return_time: Optional[float]
    arg: Any = None
    result: Any = None
    status: str = OK


@dataclass
class KeyResult:
    key: Any
    ok: bool
    inconclusive: bool = False
    steps: int = 0
    n_ops: int = 0                 # ops that took part in the search
    explanation: str = ""
    # on success: one valid linearization (ops in order; unknown ops that
    # were dropped are absent); on failure: the longest linearizable prefix.
    linearization: List[Op] = field(default_factory=list)
    # on failure: the ops that could not be placed after that prefix.
    unplaced: List[Op] = field(default_factory=list)


@dataclass
class Result:
    ok: bool
    key: Any = None                # first key that failed (or was inconclusive)
    explanation: str = ""
    inconclusive: bool = False
    steps: int = 0                 # total over keys
    per_key: Dict[Any, KeyResult] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.explanation


# ---------------------------------------------------------------- model ----

def _val(v: Any) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, str):
        return v.encode("utf-8")
    if v is None:
        return b""
    raise TypeError(f"register values must be bytes or str, not {type(v).__name__}")


# Compiled op codes.
_C_READ, _C_WOK, _C_WFAIL, _C_WUNK = range(4)


def _compile(op: Op) -> Optional[tuple]:
    """(code, ...) for the search, or None if the op carries no information
    and is left out of the check."""
    if op.kind == READ:
        if op.status != OK:
            return None
        if op.result is None or len(op.result) != 2:
            raise ValueError(f"ok read needs result (value, version): {op}")
        return (_C_READ, (_val(op.result[0]), int(op.result[1])))
    if op.kind == WRITE:
        if op.arg is None or len(op.arg) != 2:
            raise ValueError(f"write needs arg (value, expected_version): {op}")
        value, expected = _val(op.arg[0]), int(op.arg[1])
        if op.status == OK:
            nv = None if op.result is None else int(op.result)
            return (_C_WOK, value, expected, nv)
        if op.status == FAIL:
            if op.result not in (None, BADVERSION):
                return None  # definite no-effect, no information
            # (an unconditional write failing with BADVERSION is never legal,
            # so such an op makes the history fail)
            return (_C_WFAIL, expected)
        if op.status == UNKNOWN:
            return (_C_WUNK, value, expected)
        raise ValueError(f"unknown status {op.status!r}: {op}")
    raise ValueError(f"unknown op kind {op.kind!r}: {op}")


def _step(c: tuple, state: Tuple[bytes, int]) -> Optional[Tuple[bytes, int]]:
    code = c[0]
    if code == _C_READ:
        return state if c[1] == state else None
    if code == _C_WFAIL:
        e = c[1]
        return state if (e != -1 and state[1] != e) else None
    # _C_WOK, _C_WUNK
    e = c[2]
    if e != -1 and state[1] != e:
        return None
    nv = state[1] + 1
    if code == _C_WOK and c[3] is not None and c[3] != nv:
        return None
    return (c[1], nv)


def _required_version(c: tuple) -> Optional[int]:
    """The version a definite op must find the register at, if it pins one."""
    code = c[0]
    if code == _C_READ:
        return c[1][1]
    if code == _C_WOK:
        if c[2] != -1:
            return c[2]
        if c[3] is not None:
            return c[3] - 1
    return None


def _why_not(c: tuple, state: Tuple[bytes, int]) -> str:
    code = c[0]
    if code == _C_READ:
        return f"the register holds {_fmt_state(state)}"
    if code == _C_WFAIL:
        if c[1] == -1:
            return "an unconditional write cannot fail with BADVERSION"
        return f"BADVERSION impossible: the register is at version {state[1]}"
    e = c[2]
    if e != -1 and state[1] != e:
        return f"precondition fails: the register is at version {state[1]}"
    return (f"acknowledged new version {c[3]} but the register would go to "
            f"version {state[1] + 1}")


# ------------------------------------------------------------ formatting ---

def _fmt_val(v: Any) -> str:
    if isinstance(v, (bytes, bytearray)):
        b = bytes(v)
        return repr(b) if len(b) <= 40 else repr(b[:37]) + f"...({len(b)}B)"
    return repr(v)


def _fmt_state(s: Tuple[bytes, int]) -> str:
    return f"({_fmt_val(s[0])}, v{s[1]})"


def _fmt_time(t: Any, t0: Any) -> str:
    if t is None or t == INF:
        return "?"
    d = t - t0
    if isinstance(d, float):
        return f"{d:.6f}"
    return str(d)


def format_op(op: Op, t0: Any = 0) -> str:
    """One line: [call .. return] client: op -> result status."""
    ret = None if op.status == UNKNOWN else op.return_time
    when = f"[{_fmt_time(op.call_time, t0)} .. {_fmt_time(ret, t0)}]"
    if op.kind == READ:
        what = "read()"
        if op.status == OK and op.result is not None:
            res = f"-> ({_fmt_val(op.result[0])}, v{op.result[1]})"
        else:
            res = f"-> {op.status}"
    else:
        value, expected = op.arg
        cond = "any" if expected == -1 else f"v{expected}"
        what = f"write({_fmt_val(value)}, expect {cond})"
        if op.status == OK:
            res = "-> ok" + ("" if op.result is None else f" v{op.result}")
        elif op.status == FAIL:
            res = f"-> {op.result or BADVERSION}"
        else:
            res = "-> unknown"
    return f"{when} client {op.client}: {what} {res}"


# ------------------------------------------------------------- search ------

def _precheck(kept: List[Op], code: List[tuple], init: Tuple[bytes, int],
              key: Any) -> Optional[KeyResult]:
    """Contradictions between two ops that need no search, O(n log n):
    versions only grow, so an op that completed at version a before another
    was called that needs version b < a is a violation; and each version is
    one state, so two ops that claim different values at one version (or two
    writes that both created it) are too. Returns the failure or None."""
    pins = []  # (op index, version before, version after)
    for i, (op, c) in enumerate(zip(kept, code)):
        if op.status == UNKNOWN:
            continue
        r = _required_version(c)
        if r is not None:
            pins.append((i, r, r if c[0] == _C_READ else r + 1))
    t0 = min((op.call_time for op in kept), default=0)

    def fail(msg: str, culprits: List[int]) -> KeyResult:
        lines = [f"key {key!r}: NOT linearizable (found before any search: "
                 f"the ops below contradict each other)",
                 f"initial register {_fmt_state(init)}; times relative to {t0!r}", msg]
        lines += [f"  {format_op(kept[i], t0)}" for i in culprits]
        return KeyResult(key=key, ok=False, n_ops=len(kept), explanation="\n".join(lines),
                         unplaced=[kept[i] for i in culprits])

    for i, pre, _ in pins:
        if pre < init[1]:
            return fail(f"this op needs version {pre}, below the initial version {init[1]}:", [i])
    # at each version one value; each version after the initial one made by one write
    at: Dict[int, Tuple[bytes, Optional[int]]] = {init[1]: (init[0], None)}
    made: Dict[int, int] = {}
    for i, pre, post in pins:
        c = code[i]
        if c[0] == _C_READ:
            value = c[1][0]
        else:
            value = c[1]
            if post in made:
                return fail(f"two writes both report creating version {post}:", [made[post], i])
            made[post] = i
        seen = at.setdefault(post, (value, i))
        if seen[0] != value:
            what = (f"version {post} is a single state, but the initial register has "
                    f"{_fmt_val(seen[0])} there and this op says {_fmt_val(value)}:"
                    if seen[1] is None else
                    f"version {post} is a single state, but these ops disagree on its value:")
            return fail(what, [j for j in (seen[1], i) if j is not None])
    # real time: every op that returned before b was called is linearized before b
    by_ret = sorted(pins, key=lambda p: kept[p[0]].return_time)
    j, top = 0, None
    for b in sorted(pins, key=lambda p: kept[p[0]].call_time):
        call = kept[b[0]].call_time
        while j < len(by_ret) and kept[by_ret[j][0]].return_time < call:
            if top is None or by_ret[j][2] > top[2]:
                top = by_ret[j]
            j += 1
        if top is not None and top[2] > b[1]:
            return fail(f"versions only grow, but the second op (called after the first "
                        f"returned) needs v{b[1]} while the first left v{top[2]}:",
                        [top[0], b[0]])
    return None


def check_key(ops: Sequence[Op], initial: Tuple[Any, int] = (b"", 0),
              max_steps: int = DEFAULT_MAX_STEPS, key: Any = None,
              precheck: bool = True) -> KeyResult:
    """Check the ops of one key (all ops are taken to be on the same
    register; their .key is not looked at). With `precheck`, contradictions
    between two ops (see _precheck) are reported without a search."""
    init = (_val(initial[0]), int(initial[1]))
    kept: List[Op] = []
    code: List[tuple] = []
    for op in ops:
        c = _compile(op)
        if c is None:
            continue
        if op.status != UNKNOWN:
            if op.return_time is None:
                raise ValueError(f"op with status {op.status!r} needs a return time: {op}")
            if op.return_time < op.call_time:
                raise ValueError(f"op returns before its call: {op}")
        kept.append(op)
        code.append(c)
    n = len(kept)
    if key is None and kept:
        key = kept[0].key
    dcode = code  # with the real values, for the report
    if precheck:
        pre = _precheck(kept, code, init, key)
        if pre is not None:
            return pre

    # Symmetry: a written value that no read ever returned cannot influence
    # any read, so such values are all replaced by one placeholder (None) in
    # the search, and states that differ only in them become equal. Unknown
    # writes of unread values ("blank" writes) with the same expected
    # version are then interchangeable once called (both stay pending until
    # +infinity), so the search applies those of a class only in call order:
    # whichever k of them a linearization applies, the first k called would
    # do as well. This keeps k pending blank writes from costing 2^k.
    observed = {c[1][0] for c in code if c[0] == _C_READ}
    code = [(c[0], c[1] if c[1] in observed else None) + c[2:]
            if c[0] in (_C_WOK, _C_WUNK) else c for c in code]
    by_call = sorted(range(n), key=lambda i: (kept[i].call_time, i))
    classes: Dict[int, int] = {}
    blank_cls = [-1] * n
    blank_rank = [0] * n
    cls_size: List[int] = []
    for i in by_call:
        c = code[i]
        if c[0] == _C_WUNK and c[1] is None:
            k = classes.setdefault(c[2], len(classes))
            if k == len(cls_size):
                cls_size.append(0)
            blank_cls[i] = k
            blank_rank[i] = cls_size[k]
            cls_size[k] += 1
    cls_used = [0] * len(cls_size)
    keeps_state = [c[0] in (_C_READ, _C_WFAIL) for c in code]

    # Events: call of op i is entry i, its return is entry n+i; HEAD = 2n.
    # Sorted by time, calls before returns at equal times (touching
    # intervals are concurrent); unknown ops return at +infinity.
    ret_t = [INF if op.status == UNKNOWN else op.return_time for op in kept]
    ev = [(op.call_time, 0, i) for i, op in enumerate(kept)]
    ev += [(ret_t[i], 1, i) for i in range(n)]
    ev.sort(key=lambda e: (e[0], e[1], e[2]))
    HEAD = 2 * n
    nxt = [-1] * (2 * n + 1)
    prv = [-1] * (2 * n + 1)
    last = HEAD
    for _, is_ret, i in ev:
        e = n + i if is_ret else i
        nxt[last] = e
        prv[e] = last
        last = e
    infinite = [t == INF for t in ret_t]

    # Pruning: versions never go down, so every definite op that pins the
    # version it sees (a read, a CAS that succeeded, a write whose new
    # version was acknowledged) must still find the register at or below
    # that version. `pinned` lists those ops by required version; `lo` is the
    # first of them not yet linearized, so need(lo) is the smallest version
    # still required. Linearizing an op that takes the version above it is a
    # dead end, whatever the rest of the search would do. Without this, every
    # unknown write (pending until +infinity) would be tried in every subset.
    req = [_required_version(c) if op.status != UNKNOWN else None
           for op, c in zip(kept, code)]
    pinned = sorted((i for i in range(n) if req[i] is not None), key=lambda i: req[i])
    n_pinned = len(pinned)
    lin = [False] * n
    lo = 0

    state = init
    mask = 0
    stack: List[Tuple[int, Tuple[bytes, int], int]] = []
    cache = set()
    steps = 0
    best_len = -1
    best = None  # (prefix op indices, state, blocking op, candidate op indices)
    entry = nxt[HEAD]

    while entry != -1:
        steps += 1
        if steps > max_steps:
            return KeyResult(
                key=key, ok=False, inconclusive=True, steps=steps - 1, n_ops=n,
                explanation=(
                    f"key {key!r}: INCONCLUSIVE: search budget of {max_steps} steps "
                    f"exhausted ({n} ops, {len(cache)} configurations explored, "
                    f"deepest linearizable prefix {max(best_len, len(stack))} ops). "
                    f"The history is neither proven linearizable nor refuted; "
                    f"raise max_steps or record fewer concurrent/unknown ops."))
        if entry < n:
            k = blank_cls[entry]
            if k >= 0 and blank_rank[entry] != cls_used[k]:
                entry = nxt[entry]  # an interchangeable one comes first
                continue
            new = _step(code[entry], state)
            if new is not None:
                m2 = mask | (1 << entry)
                conf = (m2, new)
                if conf not in cache:
                    lin[entry] = True
                    lo2 = lo
                    while lo2 < n_pinned and lin[pinned[lo2]]:
                        lo2 += 1
                    if lo2 < n_pinned and new[1] > req[pinned[lo2]]:
                        lin[entry] = False  # overshoots a version still needed
                        entry = nxt[entry]
                        continue
                    cache.add(conf)
                    stack.append((entry, state, lo))
                    if k >= 0:
                        cls_used[k] += 1
                    lo = lo2
                    state = new
                    mask = m2
                    # lift: unlink the call, then the return
                    p, q = prv[entry], nxt[entry]
                    nxt[p] = q
                    if q != -1:
                        prv[q] = p
                    r = n + entry
                    p, q = prv[r], nxt[r]
                    nxt[p] = q
                    if q != -1:
                        prv[q] = p
                    entry = nxt[HEAD]
                    continue
            entry = nxt[entry]
            continue
        # A return event: its op has not been linearized.
        if infinite[entry - n]:
            break  # only unknown ops are left; drop them
        if len(stack) > best_len:
            best_len = len(stack)
            cands = []
            e = nxt[HEAD]
            while e != entry:
                if e < n:
                    cands.append(e)
                e = nxt[e]
            best = ([i for i, _, _ in stack], state, entry - n, cands, lo)
        # Backtrack. An op that leaves the state alone (a read, a BADVERSION)
        # and was legal where it was placed is never worth placing later:
        # in any completion it could be moved back here (versions only grow,
        # so the state where it fits is this one, and nothing in between
        # changed it). So if its placement failed, so did the configuration
        # before it: keep backtracking.
        while stack:
            i, state, lo = stack.pop()
            lin[i] = False
            if blank_cls[i] >= 0:
                cls_used[blank_cls[i]] -= 1
            mask ^= 1 << i
            # unlift: relink the return, then the call
            r = n + i
            nxt[prv[r]] = r
            if nxt[r] != -1:
                prv[nxt[r]] = r
            nxt[prv[i]] = i
            if nxt[i] != -1:
                prv[nxt[i]] = i
            if not keeps_state[i]:
                break
        else:
            break  # nothing left to try
        entry = nxt[i]

    if entry == -1 or (entry >= n and infinite[entry - n]):
        return KeyResult(key=key, ok=True, steps=steps, n_ops=n,
                         linearization=[kept[i] for i, _, _ in stack],
                         explanation=f"key {key!r}: linearizable ({n} ops, {steps} steps)")

    prefix, st, blocking, cands, lo = best

    def why(c: int) -> str:
        if blank_cls[c] >= 0:
            return ("unknown write of a value no read returned: tried as applied "
                    "or not, like every such write expecting the same version")
        new = _step(code[c], st)
        if new is None:
            return _why_not(code[c], st_disp)
        for j in pinned[lo:]:
            if j != c and j not in prefix_set:
                if new[1] > req[j]:
                    return (f"it would take the register to v{new[1]}, past v{req[j]} "
                            f"that this op, still to be placed, needs:\n"
                            f"      {format_op(kept[j], t0)}")
                break
        return "legal here, but every continuation from there was explored and failed"

    t0 = min((op.call_time for op in kept), default=0)
    prefix_set = set(prefix)
    lines = [f"key {key!r}: NOT linearizable ({n} ops checked, {steps} search steps)",
             f"initial register {_fmt_state(init)}; times relative to {t0!r}"]
    SHOW = 12
    lines.append(f"longest linearizable prefix found: {len(prefix)} ops"
                 + (f" (last {SHOW} shown)" if len(prefix) > SHOW else "") + ":")
    s = init
    states = []
    for i in prefix:
        s = _step(dcode[i], s)
        states.append(s)
    for k in range(max(0, len(prefix) - SHOW), len(prefix)):
        lines.append(f"  {k + 1:5d}. {format_op(kept[prefix[k]], t0)}   => {_fmt_state(states[k])}")
    st_disp = states[-1] if states else init
    lines.append(f"register after the prefix: {_fmt_state(st_disp)}")
    lines.append("no op can be placed next. The pending op that returned first "
                 "(it must come before every op called after its return):")
    lines.append(f"  {format_op(kept[blocking], t0)}")
    lines.append(f"    {why(blocking)}")
    others = [c for c in cands if c != blocking]
    if others:
        lines.append("and none of the ops concurrent with it fits either:")
        for c in others[:SHOW]:
            lines.append(f"  {format_op(kept[c], t0)}\n    {why(c)}")
        if len(others) > SHOW:
            lines.append(f"  ... and {len(others) - SHOW} more")
    return KeyResult(key=key, ok=False, steps=steps, n_ops=n,
                     explanation="\n".join(lines),
                     linearization=[kept[i] for i in prefix],
                     unplaced=[kept[blocking]] + [kept[c] for c in others])


def check(history: Iterable[Op], initial: Any = (b"", 0),
          max_steps: int = DEFAULT_MAX_STEPS, precheck: bool = True) -> Result:
    """Check a whole history. `initial` is the (value, version) every key
    starts from, or a dict key -> (value, version) (keys missing from it
    start at (b"", 0)). `max_steps` is the budget per key."""
    by_key: Dict[Any, List[Op]] = {}
    for op in history:
        by_key.setdefault(op.key, []).append(op)
    per_key: Dict[Any, KeyResult] = {}
    total = 0
    for k, ops in by_key.items():
        init = initial.get(k, (b"", 0)) if isinstance(initial, dict) else initial
        kr = check_key(ops, init, max_steps=max_steps, key=k, precheck=precheck)
        per_key[k] = kr
        total += kr.steps
    failed = [kr for kr in per_key.values() if not kr.ok and not kr.inconclusive]
    inconc = [kr for kr in per_key.values() if kr.inconclusive]
    if failed:
        first = failed[0]
        extra = ""
        if len(failed) > 1:
            extra = (f"\n({len(failed)} of {len(per_key)} keys are not linearizable: "
                     + ", ".join(repr(kr.key) for kr in failed[:10])
                     + (" ..." if len(failed) > 10 else "") + ")")
        return Result(ok=False, key=first.key, explanation=first.explanation + extra,
                      steps=total, per_key=per_key)
    if inconc:
        first = inconc[0]
        extra = f"\n({len(inconc)} of {len(per_key)} keys inconclusive)" if len(inconc) > 1 else ""
        return Result(ok=False, inconclusive=True, key=first.key,
                      explanation=first.explanation + extra, steps=total, per_key=per_key)
    n = sum(kr.n_ops for kr in per_key.values())
    return Result(ok=True, explanation=f"linearizable: {len(per_key)} keys, {n} ops, {total} steps",
                  steps=total, per_key=per_key)


def assert_linearizable(history: Sequence[Op], initial: Any = (b"", 0),
                        artifact: Optional[str] = None,
                        max_steps: int = DEFAULT_MAX_STEPS, precheck: bool = True) -> Result:
    """check(), raising AssertionError with the explanation unless the
    history is linearizable; the history is first saved to `artifact`
    (JSON lines) if given."""
    history = list(history)
    res = check(history, initial, max_steps=max_steps, precheck=precheck)
    if not res.ok:
        msg = res.explanation
        if artifact is not None:
            save_history(history, artifact)
            msg += f"\nhistory saved to {artifact}"
        raise AssertionError(msg)
    return res


# --------------------------------------------------------------- JSONL -----
#
# One op per line:
#   {"client": 3, "key": "/r1", "kind": "write", "call": 1.5, "return": 1.7,
#    "arg": {"value": "v7", "expected_version": 4},
#    "result": {"version": 5}, "status": "ok"}
# reads: "arg": null, "result": {"value": ..., "version": n}; failed writes:
# "result": {"error": "BADVERSION"}; unknown ops: "return" may be null.
# Values are written as a JSON string when they are valid UTF-8, else as
# {"b64": "..."}; they are read back as bytes.

def _enc_val(v: Any) -> Any:
    b = _val(v)
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(b).decode("ascii")}


def _dec_val(v: Any) -> bytes:
    if isinstance(v, dict):
        return base64.b64decode(v["b64"])
    return v.encode("utf-8")


def _enc_time(t: Any) -> Any:
    return None if t is None or t == INF else t


def dump_op(op: Op) -> Dict[str, Any]:
    d: Dict[str, Any] = {"client": op.client, "key": op.key, "kind": op.kind,
                         "call": op.call_time, "return": _enc_time(op.return_time),
                         "status": op.status}
    if op.kind == WRITE:
        d["arg"] = {"value": _enc_val(op.arg[0]), "expected_version": op.arg[1]}
        if op.status == OK:
            d["result"] = None if op.result is None else {"version": op.result}
        elif op.status == FAIL:
            d["result"] = {"error": op.result or BADVERSION}
        else:
            d["result"] = None
    else:
        d["arg"] = None
        d["result"] = (None if op.result is None else
                       {"value": _enc_val(op.result[0]), "version": op.result[1]})
    return d


def parse_op(d: Dict[str, Any]) -> Op:
    kind = d["kind"]
    status = d.get("status", OK)
    arg = result = None
    r = d.get("result")
    if kind == WRITE:
        a = d["arg"]
        arg = (_dec_val(a["value"]), int(a["expected_version"]))
        if r is not None:
            result = r.get("version") if status == OK else r.get("error")
    elif r is not None:
        result = (_dec_val(r["value"]), int(r["version"]))
    return Op(client=d.get("client"), key=d.get("key"), kind=kind,
              call_time=d["call"], return_time=d.get("return"),
              arg=arg, result=result, status=status)


def save_history(history: Iterable[Op], path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for op in history:
            f.write(json.dumps(dump_op(op), sort_keys=True) + "\n")


def load_history(path: str) -> List[Op]:
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                out.append(parse_op(json.loads(line)))
            except (KeyError, ValueError, TypeError) as e:
                raise ValueError(f"{path}:{lineno}: bad history line: {e}") from e
    return out


# ------------------------------------------------------------- recording ---

class _Pending:
    __slots__ = ("_rec", "_idx")

    def __init__(self, rec: "Recorder", idx: int):
        self._rec = rec
        self._idx = idx

    def ok(self, result: Any = None) -> None:
        self._rec._complete(self._idx, OK, result)

    def fail(self, error: str = BADVERSION) -> None:
        self._rec._complete(self._idx, FAIL, error)

    def unknown(self) -> None:
        self._rec._complete(self._idx, UNKNOWN, None)


class Recorder:
    """Thread-safe history recorder. invoke() stamps the call time and
    returns a handle; call exactly one of .ok(result), .fail(error),
    .unknown() on it when the reply (or the give-up) comes. Ops never
    completed count as unknown. Times are time.monotonic_ns() by default."""

    def __init__(self, clock=time.monotonic_ns):
        self._clock = clock
        self._lock = threading.Lock()
        self._rows: List[list] = []

    def invoke(self, client: Any, key: Any, kind: str, arg: Any = None) -> _Pending:
        if kind not in (READ, WRITE):
            raise ValueError(f"kind must be {READ!r} or {WRITE!r}")
        with self._lock:
            self._rows.append([client, key, kind, self._clock(), None, arg, None, None])
            return _Pending(self, len(self._rows) - 1)

    def _complete(self, idx: int, status: str, result: Any) -> None:
        t = self._clock()
        with self._lock:
            row = self._rows[idx]
            if row[7] is not None:
                raise RuntimeError(f"op completed twice: {row}")
            row[4], row[6], row[7] = t, result, status

    def history(self) -> List[Op]:
        with self._lock:
            return [Op(c, k, kind, ct, rt if st is not None else None, arg, res,
                       st if st is not None else UNKNOWN)
                    for c, k, kind, ct, rt, arg, res, st in self._rows]
