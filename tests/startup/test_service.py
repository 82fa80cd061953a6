"""corrald under a service manager: sd_notify readiness, status, watchdog,
stopping and reload (SIGHUP), and socket activation. systemd's protocols are
spoken here by the test itself (a notify socket it reads) and by
systemd-socket-activate, so no running systemd is needed.
"""
import os
import signal
import socket
import subprocess
import time

import pytest

CORRALD = os.environ.get("CORRALD")
pytestmark = pytest.mark.skipif(not CORRALD, reason="CORRALD is not set")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Notify:
    """A NOTIFY_SOCKET: collects what corrald sends with sd_notify()."""

    def __init__(self, tmp_path):
        self.path = str(tmp_path / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def wait_for(self, key, timeout_s=15):
        """Returns the first message (a dict) that has key, reading until it comes."""
        end = time.monotonic() + timeout_s
        for m in self.messages:
            if key in m:
                self.messages.remove(m)
                return m
        while time.monotonic() < end:
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            m = dict(line.split("=", 1) for line in data.splitlines() if "=" in line)
            if key in m:
                return m
            self.messages.append(m)
        raise AssertionError(f"no {key}= notification; got {self.messages}")

    def close(self):
        self.sock.close()


def start(args, env_extra, tmp_path):
    env = dict(os.environ, **env_extra)
    return subprocess.Popen([CORRALD] + args, env=env, stderr=subprocess.PIPE, text=True)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.stderr.read()


def four_letter(port, word):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(word.encode())
        out = b""
        while True:
            d = s.recv(4096)
            if not d:
                return out.decode()
            out += d


def test_ready_is_sent_once_listening_and_stopping_on_sigterm(tmp_path):
    notify = Notify(tmp_path)
    port = free_port()
    proc = start(["-d", str(tmp_path / "data"), "-l", f"127.0.0.1:{port}"],
                 {"NOTIFY_SOCKET": notify.path}, tmp_path)
    try:
        ready = notify.wait_for("READY")
        assert ready["READY"] == "1" and "serving" in ready.get("STATUS", "")
        # READY=1 means listening: a connection must succeed right away.
        assert four_letter(port, "ruok") == "imok"
        proc.send_signal(signal.SIGTERM)
        assert notify.wait_for("STOPPING")["STOPPING"] == "1"
        assert proc.wait(timeout=10) == 0
    finally:
        stop(proc)
        notify.close()


def test_watchdog_is_pinged_from_the_loop(tmp_path):
    notify = Notify(tmp_path)
    port = free_port()
    proc = start(["-d", str(tmp_path / "data"), "-l", f"127.0.0.1:{port}"],
                 {"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"}, tmp_path)
    try:
        notify.wait_for("READY")
        first = notify.wait_for("WATCHDOG", timeout_s=2)
        second = notify.wait_for("WATCHDOG", timeout_s=2)
        assert first["WATCHDOG"] == second["WATCHDOG"] == "1"
        # A stopped loop stops pinging.
        proc.send_signal(signal.SIGSTOP)
        time.sleep(0.05)
        while True:  # drain what was sent before the stop
            notify.sock.settimeout(0.3)
            try:
                notify.sock.recv(4096)
            except socket.timeout:
                break
        notify.sock.settimeout(0.6)
        with pytest.raises(socket.timeout):
            notify.sock.recv(4096)
        proc.send_signal(signal.SIGCONT)
        notify.wait_for("WATCHDOG", timeout_s=2)
    finally:
        proc.send_signal(signal.SIGCONT)
        stop(proc)
        notify.close()


def write_config(path, port, words, extra="", data="data"):
    path.write_text(f"data_dir: {path.parent / data}\nlog_level: info\nclient:\n"
                    f"  listen: [\"127.0.0.1:{port}\"]\n  four_letter_words: [{words}]\n{extra}")


def test_sighup_reloads_what_can_change_live(tmp_path):
    notify = Notify(tmp_path)
    port = free_port()
    cfg = tmp_path / "corral.yaml"
    write_config(cfg, port, "ruok")
    proc = start(["-c", str(cfg)], {"NOTIFY_SOCKET": notify.path}, tmp_path)
    try:
        notify.wait_for("READY")
        assert "not in the whitelist" in four_letter(port, "srvr")
        write_config(cfg, port, "ruok, srvr")
        proc.send_signal(signal.SIGHUP)
        reloading = notify.wait_for("RELOADING")
        assert reloading["RELOADING"] == "1" and int(reloading["MONOTONIC_USEC"]) > 0
        assert notify.wait_for("READY")["READY"] == "1"
        assert four_letter(port, "srvr").startswith("Zookeeper version:")

        # A change that needs a restart is named; a bad file changes nothing.
        write_config(cfg, port + 1, "ruok, srvr", data="data2")
        proc.send_signal(signal.SIGHUP)
        notify.wait_for("READY")
        assert four_letter(port, "ruok") == "imok"
        write_config(cfg, port, "ruok", extra="session:\n  tick_time_ms: nope\n")
        proc.send_signal(signal.SIGHUP)
        failed = notify.wait_for("READY")
        assert "reload failed" in failed.get("STATUS", "")
        assert four_letter(port, "srvr").startswith("Zookeeper version:")
    finally:
        err = stop(proc)
        notify.close()
    assert "client.listen changed; takes effect after a restart" in err
    assert "reload: data_dir changed; takes effect after a restart" in err
    assert f"{cfg}:7: session.tick_time_ms" in err
    assert "configuration reloaded" in err


def test_socket_activation_uses_the_passed_socket(tmp_path):
    port = free_port()
    unused = free_port()
    proc = subprocess.Popen(
        ["systemd-socket-activate", "-l", f"127.0.0.1:{port}", "--fdname=client",
         CORRALD, "-d", str(tmp_path / "data"), "-l", f"127.0.0.1:{unused}"],
        stderr=subprocess.PIPE, text=True)
    try:
        # systemd-socket-activate starts corrald on the first connection: wait
        # (bounded) until it listens, then that connection is served by corrald.
        end = time.monotonic() + 10
        while True:
            try:
                reply = four_letter(port, "ruok")
                break
            except ConnectionRefusedError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)
        assert reply == "imok"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", unused), timeout=1).close()
    finally:
        err = stop(proc)
    assert "passed by systemd" in err


def test_reload_under_socket_activation_says_client_listen_is_not_used(tmp_path):
    notify = Notify(tmp_path)
    port = free_port()
    cfg = tmp_path / "corral.yaml"
    write_config(cfg, free_port(), "ruok")
    proc = subprocess.Popen(
        ["systemd-socket-activate", "-l", f"127.0.0.1:{port}", "--fdname=client",
         "-E", f"NOTIFY_SOCKET={notify.path}", CORRALD, "-c", str(cfg)],
        stderr=subprocess.PIPE, text=True)
    try:
        # started by the first connection (bounded wait), ready, serving
        end = time.monotonic() + 10
        while True:
            try:
                reply = four_letter(port, "ruok")
                break
            except ConnectionRefusedError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)
        assert reply == "imok"
        notify.wait_for("READY")
        write_config(cfg, free_port(), "ruok")
        proc.send_signal(signal.SIGHUP)	# systemd-socket-activate exec()s corrald
        notify.wait_for("RELOADING")
        notify.wait_for("READY")
        assert four_letter(port, "ruok") == "imok"
    finally:
        err = stop(proc)
        notify.close()
    assert "127.0.0.1:%d (from systemd)" % port in err
    assert "client.listen changed; not used: the listening sockets come from systemd" in err
    assert "takes effect after a restart" not in err
