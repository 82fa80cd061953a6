"""Debian 12 roots for the service suite's containers.

A bookworm minbase with systemd is debootstrapped once per machine and
cached (CORRAL_E2E_CACHE, default /var/cache/corral-test), keyed by its
recipe; each test works on a copy of it under /var/tmp, run with
systemd-nspawn (plain, or booted). Building the root needs the Debian
archive (a failure, not a skip, without it); root, debootstrap and a working
systemd-nspawn are needed (a skip with the reason otherwise, which the
plugin makes a failure under CI=true).
"""
import ctypes
import fcntl
import glob
import hashlib
import os
import shutil
import signal
import subprocess
import time

import pytest

SOURCE = os.environ.get("CORRAL_SOURCE_ROOT",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CACHE = os.environ.get("CORRAL_E2E_CACHE", "/var/cache/corral-test")
MIRROR = "http://deb.debian.org/debian"
# The root's recipe: change it and the cache is rebuilt. The package's
# dependencies (the libraries corrald links, libraft0 from backports, procps
# for ExecReload's kill) are installed up front, so installing the .deb
# normally needs no download.
INCLUDE = ["systemd", "systemd-sysv", "dbus", "libsystemd0", "liburing2", "libyaml-0-2",
           "libssl3", "zlib1g", "procps"]
BACKPORTS = ["libraft0"]
RECIPE = "1:" + ",".join(INCLUDE) + ":" + ",".join(BACKPORTS)
BACKPORTS_SOURCES = "etc/apt/sources.list.d/backports.sources"
# Copies live here, not in /tmp: systemd-nspawn mounts a tmpfs on the
# container's /tmp, and the host's may be small.
WORK = "/var/tmp"


def die_with_parent():
    """In systemd-nspawn's child, before exec: SIGTERM (which makes nspawn
    power the container off) when this test process dies, even by SIGKILL."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def need(cond, why):
    if not cond:
        pytest.skip(why)


def run(cmd, timeout=600, check=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited with {r.returncode}:\n"
                             f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def nspawn_run(root, *cmd, timeout=600, check=True, options=()):
    """Runs a command in root as a plain container (no boot), on the host's
    network (so apt reaches the archive)."""
    return run(["systemd-nspawn", "-q", "--register=no", "--keep-unit", "-D", root, "--pipe",
                *options, "--", *cmd], timeout=timeout, check=check)


def cached_root():
    """The path of the cached root, built first if this machine has none."""
    need(os.geteuid() == 0, "needs root (debootstrap, systemd-nspawn)")
    need(shutil.which("debootstrap") and shutil.which("systemd-nspawn"),
         "needs debootstrap and systemd-nspawn (scripts/deps.sh test installs them)")
    key = hashlib.sha256(RECIPE.encode()).hexdigest()[:12]
    os.makedirs(CACHE, exist_ok=True)
    final = os.path.join(CACHE, f"bookworm-{key}")
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)	# one builder at a time; others wait and reuse
        ready = os.path.join(final, ".corral-ready")
        if os.path.exists(ready):
            os.utime(ready)	# in use: see below
            return final
        # Other recipes' roots (another checkout's, an older one's) stay while
        # they are used; a root unused for a week, or half-built, goes.
        for old in glob.glob(os.path.join(CACHE, "bookworm-*")):
            try:
                unused = time.time() - os.stat(os.path.join(old, ".corral-ready")).st_mtime
            except OSError:
                unused = float("inf")
            if unused > 7 * 86400:
                shutil.rmtree(old, ignore_errors=True)
        tmp = final + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        run(["debootstrap", "--variant=minbase", "--include=" + ",".join(INCLUDE), "bookworm",
             tmp, MIRROR], timeout=600)
        # A fresh Debian root where /bin/true does not run: containers are not
        # possible here (an unprivileged container, no namespaces), nothing of
        # corral's is involved yet.
        probe = nspawn_run(tmp, "/bin/true", check=False, timeout=120)
        need(probe.returncode == 0,
             f"systemd-nspawn cannot run a container here: {probe.stderr.strip()[-500:]}")
        with open(os.path.join(tmp, BACKPORTS_SOURCES), "w") as f:
            f.write(f"Types: deb\nURIs: {MIRROR}\nSuites: bookworm-backports\nComponents: main\n")
        nspawn_run(tmp, "apt-get", "update", "-q")
        nspawn_run(tmp, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q",
                   "--no-install-recommends", "-t", "bookworm-backports", *BACKPORTS)
        nspawn_run(tmp, "apt-get", "clean")
        with open(os.path.join(tmp, ".corral-ready"), "w") as f:
            f.write(RECIPE + "\n")
        os.rename(tmp, final)
        return final


def copy_checkout(dst):
    """The checkout's tracked files as they are in the work tree (what a
    clone of it holds, with the changes not yet committed), copied to dst."""
    listed = run(["git", "-C", SOURCE, "ls-files", "-z"], check=False)
    if listed.returncode == 0:
        for name in listed.stdout.split("\0"):
            if not name or not os.path.lexists(os.path.join(SOURCE, name)):
                continue	# deleted in the work tree
            target = os.path.join(dst, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(os.path.join(SOURCE, name), target, follow_symlinks=False)
    else:
        shutil.copytree(SOURCE, dst, ignore=shutil.ignore_patterns("build*", ".git"))


def sweep_leftovers():
    """Removes the copies a killed run left behind (named after their test
    process: gone, and no systemd-nspawn still uses them)."""
    users = []
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(cmdline, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"systemd-nspawn"):
            users.append(b" ".join(argv).decode(errors="replace"))
    for d in glob.glob(os.path.join(WORK, "corral-*-pid*-*")):
        pid = d.rsplit("-pid", 1)[1].split("-")[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}") and \
                not any(d in u for u in users):
            shutil.rmtree(d, ignore_errors=True)


def descendant(pid, comm):
    """The first process under pid (as the host sees it) whose command is comm."""
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            continue
        for k in kids:
            try:
                with open(f"/proc/{k}/comm") as f:
                    if f.read().strip() == comm:
                        return k
            except OSError:
                pass
            todo.append(k)
    return None
