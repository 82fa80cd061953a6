"""corrald's command line, configuration errors, startup failures and shutdown.

These start the real corrald binary (env CORRALD) and look at what it prints
and how it exits; they need no client library.
"""
import os
import signal
import socket
import subprocess
import time

import pytest

CORRALD = os.environ.get("CORRALD")
DENY_IO_URING = os.environ.get("CORRAL_DENY_IO_URING")

pytestmark = pytest.mark.skipif(not CORRALD, reason="CORRALD is not set")

EXIT_CONFIG = 78
EXIT_IO_URING = 69


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, timeout=30, **kw):
    return subprocess.run([CORRALD] + args, capture_output=True, text=True, timeout=timeout, **kw)


def wait_listening(port, proc, deadline_s=15):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"corrald exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("corrald did not start listening")


def ruok(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"ruok")
        return s.recv(16)


def test_help_lists_the_options():
    r = run(["--help"])
    assert r.returncode == 0
    for opt in ("--config", "--data-dir", "--listen", "--check-config", "--version"):
        assert opt in r.stdout


def test_version_prints_the_version():
    r = run(["--version"])
    assert r.returncode == 0
    assert r.stdout.startswith("corrald ")


def test_unknown_option_is_a_config_error():
    r = run(["--no-such-option"])
    assert r.returncode == EXIT_CONFIG


def test_check_config_accepts_the_shipped_file():
    shipped = os.path.join(os.environ["CORRAL_SOURCE_ROOT"], "etc", "corral.yaml")
    r = run(["-c", shipped, "--check-config"])
    assert r.returncode == 0, r.stderr
    assert "valid" in r.stdout


def test_check_config_names_file_line_and_key(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("data_dir: /tmp/x\nclient:\n  max_frame_bytes: 12abc\n")
    r = run(["-c", str(cfg), "--check-config"])
    assert r.returncode == EXIT_CONFIG
    assert f"{cfg}:3" in r.stderr
    assert "client.max_frame_bytes" in r.stderr


def test_unknown_key_stops_startup(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("session:\n  tick_time_ms: 100\n  no_such_key: 1\n")
    r = run(["-c", str(cfg)])
    assert r.returncode == EXIT_CONFIG
    assert f"{cfg}:3" in r.stderr and "session.no_such_key" in r.stderr


def test_missing_config_file_given_with_c_is_an_error(tmp_path):
    r = run(["-c", str(tmp_path / "absent.yaml"), "--check-config"])
    assert r.returncode == EXIT_CONFIG
    assert "absent.yaml" in r.stderr


def test_bad_listen_flag_is_a_config_error():
    r = run(["-l", "local_host!:2181", "--check-config"])
    assert r.returncode == EXIT_CONFIG
    assert "local_host!:2181: not HOST:PORT" in r.stderr


@pytest.mark.skipif(not DENY_IO_URING, reason="CORRAL_DENY_IO_URING is not set")
def test_io_uring_refused_by_seccomp_gives_one_line_and_its_own_status(tmp_path):
    port = free_port()
    r = subprocess.run([DENY_IO_URING, CORRALD, "-d", str(tmp_path), "-l", f"127.0.0.1:{port}"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == EXIT_IO_URING
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("<3>") and "io_uring" in lines[0] and "seccomp" in lines[0]


def test_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run(["-d", str(tmp_path), "-l", f"127.0.0.1:{port}"])
    assert r.returncode == 71
    assert f"127.0.0.1:{port}" in r.stderr and "in use" in r.stderr


def test_runs_without_a_config_file_and_stops_cleanly_on_sigterm(tmp_path):
    """No -c and no /etc/corral/corral.yaml: built-in defaults; SIGTERM exits 0."""
    if os.path.exists("/etc/corral/corral.yaml"):
        pytest.skip("/etc/corral/corral.yaml exists on this machine")
    port = free_port()
    data = tmp_path / "data"
    proc = subprocess.Popen([CORRALD, "-d", str(data), "-l", f"127.0.0.1:{port}"],
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(port, proc)
        assert data.is_dir()
        assert ruok(port) == b"imok"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        err = proc.stderr.read()
        assert "stopping" in err and "stopped" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
