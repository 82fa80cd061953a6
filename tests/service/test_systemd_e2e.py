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
fails or meson's timeout kills it (the fixtures are conftest.py's).
"""
CLIENT_MSGID_STARTED = "1e4c0b6d27a94d0f9a3b7c1f0e2d5a01"
CONFIG_MSGID = "1e4c0b6d27a94d0f9a3b7c1f0e2d5a09"


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
