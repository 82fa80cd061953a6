"""The README's two commands on a fresh Debian 12 machine, as a newcomer runs them.

A copy of the cached bookworm root (debroot.py) stripped of everything of
corral's (libraft0 and the bookworm-backports source the cached root adds)
stands for a machine that has never seen corral; the checkout's files are
copied in as a clone would have them. Then, inside it:

1. `bash scripts/run.sh --version` on the host's network, so apt reaches the
   archive: the first command installs the build dependencies, builds, and
   runs corrald (here only to print its version and exit). The test
   libraries are not installed by it (libcmocka-dev stays absent).
2. `bash scripts/run.sh` exactly as the README gives it, on the container's
   own network (its 127.0.0.1:2181 is not the host's): nothing is left to
   install, so it builds and serves; the README's first try-it lines
   (corralctl create and get) are run in the container and must round-trip.
3. `bash scripts/deps.sh test` (the test command's install step), then
   `meson setup -Dtests=enabled`, which fails naming anything a suite uses
   that the install step did not bring; the unit tests are built and run.

A build package left out of scripts/deps.sh fails step 1, a test package
left out fails step 3, a wrong path in the README's lines fails step 2.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import debroot
from debroot import WORK, nspawn_run, run


def _terminated(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


signal.signal(signal.SIGTERM, _terminated)


@pytest.fixture
def fresh_machine():
    """A bookworm root with nothing of corral's, and the checkout in /root/corral."""
    cached = debroot.cached_root()
    debroot.sweep_leftovers()
    work = tempfile.mkdtemp(prefix=f"corral-newcomer-pid{os.getpid()}-", dir=WORK)
    root = os.path.join(work, "root")
    try:
        run(["cp", "-a", "--reflink=auto", cached, root])
        os.unlink(os.path.join(root, debroot.BACKPORTS_SOURCES))
        nspawn_run(root, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "purge", "-y", "-q",
                   *debroot.BACKPORTS)
        nspawn_run(root, "apt-get", "update", "-q")
        debroot.copy_checkout(os.path.join(root, "root", "corral"))
        yield root
    finally:
        shutil.rmtree(work, ignore_errors=True)


def installed(root, package):
    r = nspawn_run(root, "dpkg-query", "-W", "-f=${Status}", package, check=False)
    return r.returncode == 0 and "install ok installed" in r.stdout


class Served:
    """`bash scripts/run.sh` in its own container on a private network."""

    def __init__(self, root):
        self.log = os.path.join(os.path.dirname(root), "run.log")
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "-q", "--register=no", "--keep-unit", "-D", root,
             "--pipe", "--private-network", "--as-pid2", "--chdir=/root/corral",
             "--", "bash", "scripts/run.sh"],
            stdin=subprocess.DEVNULL, stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=debroot.die_with_parent)
        self.corrald = None

    def output(self):
        with open(self.log, errors="replace") as f:
            return f.read()[-4000:]

    def sh(self, command, check=True):
        """A shell command in the container, beside corrald."""
        return run(["nsenter", "-t", str(self.corrald), "-a", "-r", "-w", "/bin/sh", "-c", command],
                   check=check, timeout=60)

    def wait_serving(self, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.proc.poll() is None, f"scripts/run.sh exited:\n{self.output()}"
            self.corrald = self.corrald or debroot.descendant(self.proc.pid, "corrald")
            if self.corrald and self.sh("build/ctl/corralctl ruok", check=False).stdout == "imok\n":
                return
            time.sleep(0.2)
        raise AssertionError(f"corrald did not serve on 127.0.0.1:2181:\n{self.output()}")

    def stop(self):
        if self.corrald:
            try:
                os.kill(self.corrald, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


def test_a_fresh_debian_machine_builds_serves_and_installs_the_test_suites(fresh_machine):
    root = fresh_machine
    assert not installed(root, "libraft0") and not installed(root, "gcc")

    # 1. the first command installs the build dependencies and builds
    first = nspawn_run(root, "bash", "scripts/run.sh", "--version", timeout=1200,
                       options=["--chdir=/root/corral"])
    # deps.sh and meson speak first; corrald's --version is the last line
    assert first.stdout.splitlines()[-1].startswith("corrald "), first.stdout + first.stderr
    assert not installed(root, "libcmocka-dev"), "the first command installed a test library"

    # 2. the first command as the README gives it: builds (nothing new to
    # install) and serves; the README's corralctl lines work against it
    served = Served(root)
    try:
        served.wait_serving(300)
        assert served.sh("build/ctl/corralctl create /hello world").stdout == "/hello\n"
        assert served.sh("build/ctl/corralctl get /hello").stdout == "world"
    finally:
        status = served.stop()
    assert status == 0, f"corrald did not stop cleanly ({status}):\n{served.output()}"

    # 3. the test command's install step brings everything the suites use
    nspawn_run(root, "bash", "scripts/deps.sh", "test", timeout=1800,
               options=["--chdir=/root/corral"])
    nspawn_run(root, "meson", "setup", "/root/build-tests", "-Dtests=enabled", timeout=300,
               options=["--chdir=/root/corral"])
    nspawn_run(root, "meson", "test", "-C", "/root/build-tests", "--suite", "unit",
               "--print-errorlogs", timeout=900, options=["--chdir=/root/corral"])
