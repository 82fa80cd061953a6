"""The C client's cli_mt (Debian's zookeeper-bin) and the Java client's
zkCli.sh (Debian's zookeeper) can create, ls, get, set and delete."""
import os
import re
import select
import subprocess
import time

import pytest

CLI_MT = "/usr/lib/zookeeper/bin/cli_mt"
ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"


class Interactive:
    """cli_mt reads commands on stdin and answers asynchronously: send one,
    then read until the expected text shows up (bounded)."""

    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        os.set_blocking(self.p.stdout.fileno(), False)
        self.out = ""

    def expect(self, text, timeout=15):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.out:
                found = self.out
                self.out = self.out[self.out.index(text) + len(text):]
                return found
            r, _, _ = select.select([self.p.stdout], [], [], 0.1)
            if r:
                data = self.p.stdout.read()
                if data:
                    self.out += data.decode(errors="replace")
        raise AssertionError(f"{text!r} did not appear; output so far:\n{self.out}")

    def send(self, line):
        self.p.stdin.write((line + "\n").encode())
        self.p.stdin.flush()

    def close(self):
        try:
            self.send("quit")
            self.p.wait(timeout=10)
        except Exception:
            self.p.kill()
            self.p.wait()


@pytest.mark.skipif(not os.access(CLI_MT, os.X_OK), reason="zookeeper-bin (cli_mt) is not installed")
def test_cli_mt_creates_lists_gets_sets_and_deletes(server):
    cli = Interactive([CLI_MT, server.hosts])
    try:
        cli.expect("CONNECTED_STATE")
        cli.send("create /cm")
        cli.expect("[/cm]: rc = 0")
        cli.send("ls /")
        cli.expect("/: rc = 0")
        cli.expect("\tcm\n")
        cli.send("set /cm hello")
        cli.expect("/cm: rc = 0")
        cli.send("get /cm")
        cli.expect("value_len = 5")
        cli.expect("hello")
        cli.send("delete /cm")
        cli.expect("/cm: rc = 0")
        cli.send("get /cm")
        cli.expect("/cm: rc = -101")
    finally:
        cli.close()


def zkcli(server, *command):
    """zkCli's output with its watcher's connection event taken out: its
    event thread prints "\nWATCHER::\n" and "\nWatchedEvent ...\n" (one
    println each) whenever the event comes, at times in the middle of the
    command's own output (seen: "[" event "z, zookeeper]")."""
    r = subprocess.run([ZKCLI, "-server", server.hosts] + list(command), capture_output=True,
                       text=True, timeout=90)
    return re.sub(r"\nWATCHER::\n|\nWatchedEvent [^\n]*\n", "", r.stdout) + r.stderr


@pytest.mark.skipif(not os.access(ZKCLI, os.X_OK), reason="zookeeper (zkCli.sh) is not installed")
def test_zkcli_creates_lists_gets_sets_and_deletes(server):
    assert "Created /z" in zkcli(server, "create", "/z", "hello")
    assert "[z, zookeeper]" in zkcli(server, "ls", "/")
    assert "hello" in zkcli(server, "get", "/z").splitlines()
    zkcli(server, "set", "/z", "bye")
    assert "bye" in zkcli(server, "get", "/z").splitlines()
    zkcli(server, "delete", "/z")
    assert "[zookeeper]" in zkcli(server, "ls", "/")
