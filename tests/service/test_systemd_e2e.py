"""corral as a Debian service under a real systemd, end to end.

A Debian 12 minbase with systemd is debootstrapped once per machine and
cached (debroot.py); the .deb is built
from this checkout with dpkg-buildpackage; every container is a copy of the
cached root with the .deb installed by apt (dependencies from the archive,
libraft from bookworm-backports), booted with

    systemd-nspawn --register=no --keep-unit -D DIR --boot

on a private network (its 127.0.0.1:2181 is its own). Commands run inside
through nsenter into the container's init. The checks: `systemd-analyze
verify` is clean and `systemd-analyze security` rates the service at most
2.0; the package's files are where they belong; the service is active after
boot, a client writes and reads on port 2181, the journal has
corrald's startup with its structured fields, `systemctl reload` works and
is logged, SIGKILL makes systemd restart corrald with the data still there,
and with only corral.socket enabled the first connection starts corrald (and
the socket outlives the service).

Needs root, debootstrap and a working systemd-nspawn: skipped with the
reason otherwise. Building the cached root needs the Debian archive (a failure, not
a skip, without it). A failure's report has each container's journal
(conftest.py); the containers are powered off and removed even when the test
fails or meson's timeout kills it.
"""
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

CLIENT_MSGID_STARTED = "1e4c0b6d27a94d0f9a3b7c1f0e2d5a01"
CONFIG_MSGID = "1e4c0b6d27a94d0f9a3b7c1f0e2d5a09"


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


def test_the_package_runs_corral_as_a_systemd_service(container):
    c = container("corral-e2e").boot()

    # enabled by the package, started at boot, ready (Type=notify)
    c.wait_for(lambda: c.active("corral.service"), 60, "corral.service to be active")
    assert c.sh("systemctl is-enabled corral.service").stdout.strip() == "enabled"
    assert c.sh("systemctl is-enabled corral.socket", check=False).stdout.strip() == "disabled"
    assert c.sh("id -u corral").returncode == 0

    # the units as installed: verify is clean (--man=no: minbase has no man;
    # the pages themselves are checked as installed files), and the
    # sandboxing rates at most 2.0
    verify = c.sh("systemd-analyze verify --man=no /lib/systemd/system/corral.service "
                  "/lib/systemd/system/corral.socket 2>&1", check=False)
    assert verify.returncode == 0 and verify.stdout.strip() == "", verify.stdout
    security = c.sh("systemd-analyze security --offline=yes /lib/systemd/system/corral.service")
    level = [l for l in security.stdout.splitlines() if "Overall exposure level" in l]
    assert level, security.stdout[-2000:]
    assert float(level[0].split(":")[1].split()[0]) <= 2.0, level[0]
    files = c.sh("dpkg -L corral").stdout.split()
    for f in ["/usr/sbin/corrald", "/usr/bin/corralctl", "/lib/systemd/system/corral.service",
              "/lib/systemd/system/corral.socket", "/usr/lib/sysusers.d/corral.conf",
              "/usr/lib/tmpfiles.d/corral.conf", "/etc/corral/corral.yaml",
              "/usr/share/man/man8/corrald.8.gz", "/usr/share/man/man8/corralctl.8.gz",
              "/usr/share/man/man5/corral.yaml.5.gz"]:
        assert f in files, f
    assert "/etc/corral/corral.yaml" in c.sh("cat /var/lib/dpkg/info/corral.conffiles").stdout

    # a client writes and reads on port 2181
    assert c.sh("corralctl ruok").stdout == "imok\n"
    assert c.sh("corralctl create /e2e written-before-the-kill").stdout == "/e2e\n"
    assert c.sh("corralctl get /e2e").stdout == "written-before-the-kill"

    # the journal: the startup line with its MESSAGE_ID and fields
    started = [e for e in c.journal() if e.get("MESSAGE_ID") == CLIENT_MSGID_STARTED]
    assert started, c.diagnostics()
    e = started[0]
    # sent with sd_journal_send (structured), not a line on stderr
    assert e["_TRANSPORT"] == "journal", e
    assert e["SYSLOG_IDENTIFIER"] == "corrald" and e["PRIORITY"] == "5", e
    assert "serving clients on 127.0.0.1:2181" in e["MESSAGE"], e["MESSAGE"]
    assert "data directory /var/lib/corral" in e["MESSAGE"], e["MESSAGE"]
    assert e.get("_SYSTEMD_UNIT") == "corral.service", e

    # reload: SIGHUP through ExecReload, RELOADING=1 then READY=1, logged
    c.sh("systemctl reload corral.service")
    c.wait_for(lambda: any(r.get("MESSAGE_ID") == CONFIG_MSGID and
                           "configuration reloaded from /etc/corral/corral.yaml" in r["MESSAGE"]
                           for r in c.journal()), 30, "the reload to be logged")
    assert c.active("corral.service")

    # SIGKILL: systemd restarts corrald (Restart=on-failure), the data is there
    pid = c.main_pid()
    c.sh(f"kill -KILL {pid}")
    c.wait_for(lambda: c.active("corral.service") and c.main_pid() not in (0, pid), 60,
               "systemd to restart corrald")
    assert int(c.sh("systemctl show -p NRestarts --value corral.service").stdout) >= 1
    assert c.sh("corralctl get /e2e").stdout == "written-before-the-kill"
    assert c.sh("corralctl stat /e2e").stdout.count("\n") > 5

    # a purge keeps the data unless the operator said to delete it
    purge = "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q corral 2>&1"
    out = c.sh(purge).stdout
    assert "/var/lib/corral (the coordination data) is kept" in out, out
    assert c.sh("ls /var/lib/corral/wal").stdout.strip(), "the purge deleted the log"
    c.sh("DEBIAN_FRONTEND=noninteractive dpkg -i /root/corral.deb")	# its dependencies stayed
    c.wait_for(lambda: c.active("corral.service"), 60, "corral.service to be active again")
    assert c.sh("corralctl get /e2e").stdout == "written-before-the-kill"
    c.sh("echo 'corral corral/purge_data boolean true' | debconf-set-selections")
    c.sh(purge)
    assert c.sh("test -e /var/lib/corral", check=False).returncode != 0, \
        "the confirmed purge kept /var/lib/corral"


def test_with_only_the_socket_enabled_the_first_connection_starts_corrald(container):
    c = container("corral-e2e-socket").boot()
    c.wait_for(lambda: c.active("corral.service"), 60, "corral.service to be active")
    c.sh("systemctl disable --now corral.service && systemctl enable --now corral.socket")
    assert not c.active("corral.service")
    assert c.active("corral.socket")

    # the first connection starts the service, which answers on the socket it was given
    assert c.sh("corralctl ruok").stdout == "imok\n"
    c.wait_for(lambda: c.active("corral.service"), 30, "the connection to start corral.service")
    assert c.sh("corralctl create /activated yes").stdout == "/activated\n"
    msgs = [e["MESSAGE"] for e in c.journal() if e.get("MESSAGE_ID") == CLIENT_MSGID_STARTED]
    assert msgs and "127.0.0.1:2181 (from systemd)" in msgs[-1], msgs

    # the service stops; the socket stays and starts it again, data intact
    c.sh("systemctl stop corral.service")
    assert not c.active("corral.service")
    assert c.active("corral.socket"), c.diagnostics()
    assert c.sh("corralctl get /activated").stdout == "yes"
    assert c.active("corral.service")
