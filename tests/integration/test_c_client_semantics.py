"""The C client (Debian's libzookeeper-mt) against the server: watches, ACLs,
multi, and a reconnect that re-sends watches. See c_client_semantics.c.

The program comes from $CORRAL_C_SEMANTICS_TEST (built by meson) or, when
that is unset, is compiled here with gcc and the sanitizers.
"""
import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "c_client_semantics.c")
TIMEOUT_S = 120


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    built = os.environ.get("CORRAL_C_SEMANTICS_TEST")
    if built:
        return built
    if not os.path.exists("/usr/include/zookeeper/zookeeper.h"):
        pytest.skip("libzookeeper-mt-dev is not installed")
    exe = str(tmp_path_factory.mktemp("c_semantics") / "c_client_semantics")
    cc = subprocess.run(["gcc", "-std=gnu11", "-g", "-O1", "-Wall", "-Wextra", "-Werror",
                         "-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                         "-o", exe, SOURCE, "-lzookeeper_mt", "-lpthread"],
                        capture_output=True, text=True)
    assert cc.returncode == 0, "compiling c_client_semantics.c failed:\n" + cc.stdout + cc.stderr
    return exe


def test_c_client_watches_acls_multi_and_reconnect(server, program):
    env = dict(os.environ)
    # a sanitizer report must fail the run, not scroll past
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    try:
        run = subprocess.run([program, server.hosts], capture_output=True, text=True,
                             timeout=TIMEOUT_S, env=env)
        out, err, rc = run.stdout, run.stderr, run.returncode
    except subprocess.TimeoutExpired as e:
        def text(b):
            return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
        out, err, rc = text(e.stdout), text(e.stderr), f"timeout after {TIMEOUT_S} s"

    report = (f"exit status {rc}\n--- checks ---\n{out}\n--- stderr (tail) ---\n{err[-6000:]}\n"
              f"--- server log (tail) ---\n{server.log_text()[-6000:]}")
    failed = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert rc == 0 and not failed, "\n".join(failed) + "\n\n" + report
    assert "Sanitizer" not in err and "runtime error" not in err, report
    passed = [line for line in out.splitlines() if line.startswith("PASS")]
    assert len(passed) >= 20, report
