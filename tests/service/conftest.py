"""The service suite's containers (test_systemd_e2e.py, test_fdstore.py): the
.deb built from this checkout, installed in a copy of the cached Debian 12
root (debroot.py) and booted under systemd-nspawn. A failing end-to-end
test's report carries the journal of every container it booted
(corral.service and corral.socket, with systemctl status), whatever
assertion failed."""
import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import debroot
from debroot import WORK, need, nspawn_run, run



@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if call.when == "teardown" or not rep.failed:
        return
    for c in getattr(item, "corral_containers", []):
        try:
            text = c.diagnostics(lines=400)
        except Exception as e:  # the report must not fail for want of a journal
            text = f"(no diagnostics: {e!r})"
        rep.sections.append((f"container {c.name}: units and journal", text))


def _terminated(signum, frame):
    # meson test's timeout sends SIGTERM: unwind, so the fixtures stop the
    # containers (and pytest reports where it was).
    raise KeyboardInterrupt(f"signal {signum}")


signal.signal(signal.SIGTERM, _terminated)


@pytest.fixture(scope="module")
def cached_root():
    return debroot.cached_root()


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    """corral_<version>_<arch>.deb built from this checkout (a copy of it)."""
    need(shutil.which("dpkg-buildpackage"), "needs dpkg-dev and debhelper")
    work = tmp_path_factory.mktemp("deb")
    debroot.copy_checkout(str(work / "corral"))
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck")
    run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=work / "corral", env=env, timeout=1800)
    debs = [p for p in glob.glob(str(work / "corral_*.deb")) if "dbgsym" not in p]
    assert len(debs) == 1, os.listdir(work)
    return debs[0]


class Container:
    """A booted copy of the cached root with corral installed."""

    def __init__(self, name):
        self.dir = tempfile.mkdtemp(prefix=f"{name}-pid{os.getpid()}-", dir=WORK)
        self.root = os.path.join(self.dir, "root")
        self.name = f"{name}-{os.getpid()}"
        self.proc = None
        self.leader = None
        self.console = os.path.join(self.dir, "console.log")

    def install(self, cached, deb_path):
        run(["cp", "-a", "--reflink=auto", cached, self.root])
        # not /tmp: systemd-nspawn mounts a tmpfs there
        shutil.copy(deb_path, os.path.join(self.root, "root", "corral.deb"))
        # Installed while not booted: the postinst enables corral.service
        # (and creates the user), deb-systemd-invoke does not start anything.
        # The cached root has the dependencies; when the package has gained
        # one, apt fetches it (after refreshing the cached root's lists, which
        # may name versions the archive no longer has).
        install = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q",
                   "--no-install-recommends"]
        try:
            nspawn_run(self.root, *install, "--no-download", "/root/corral.deb")
        except AssertionError:
            nspawn_run(self.root, "apt-get", "update", "-q")
            nspawn_run(self.root, *install, "/root/corral.deb")

    def boot(self):
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "--register=no", "--keep-unit", "-D", self.root, "--boot",
             "--private-network", "--console=passive", f"--machine={self.name}"],
            stdout=open(self.console, "w"), stderr=subprocess.STDOUT,
            # Not in meson's process group (its timeout SIGKILLs the group
            # half a second after SIGTERM), but told when this process dies.
            start_new_session=True, preexec_fn=debroot.die_with_parent)
        end = time.monotonic() + 60
        while time.monotonic() < end and not self.leader:
            assert self.proc.poll() is None, f"systemd-nspawn exited:\n{self.console_text()}"
            self.leader = debroot.descendant(self.proc.pid, "systemd")
            time.sleep(0.1)
        assert self.leader, "the container's init did not appear"
        # booted far enough to take commands: systemd answers on its bus
        self.wait_for(lambda: self.sh("systemctl is-system-running", check=False).stdout.strip()
                      in ("running", "degraded"), 120, "the container to finish booting")
        return self

    def sh(self, command, check=True, timeout=120):
        """Runs a shell command inside the booted container."""
        return run(["nsenter", "-t", str(self.leader), "-a", "-r", "-w", "/bin/sh", "-c", command],
                   check=check, timeout=timeout)

    def wait_for(self, pred, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}\n{self.diagnostics()}")

    def diagnostics(self, lines=80):
        if not self.leader or self.proc.poll() is not None:
            return self.console_text()
        out = self.sh("systemctl --no-pager status corral.service corral.socket; "
                      f"journalctl --no-pager -o short-precise -n {lines} "
                      "-u corral.service -u corral.socket",
                      check=False)
        return out.stdout + out.stderr

    def console_text(self):
        try:
            with open(self.console, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def journal(self, unit="corral.service"):
        out = self.sh(f"journalctl --no-pager -o json -u {unit}").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def main_pid(self):
        return int(self.sh("systemctl show -p MainPID --value corral.service").stdout.strip())

    def active(self, unit):
        return self.sh(f"systemctl is-active {unit}", check=False).stdout.strip() == "active"

    def shutdown(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)	# nspawn asks init to power off
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                # SIGKILL to the container's init ends its whole PID namespace
                if self.leader:
                    try:
                        os.kill(self.leader, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def container(request, cached_root, deb):
    debroot.sweep_leftovers()
    made = []
    request.node.corral_containers = made	# conftest.py adds their journals to a failure

    def make(name):
        c = Container(name)
        made.append(c)	# removed even when the install fails
        c.install(cached_root, deb)
        return c

    yield make
    for c in made:
        c.shutdown()
