"""The C client (Debian's libzookeeper-mt) against the server: see c_client_basic.c."""
import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    built = os.environ.get("CORRAL_C_CLIENT_BASIC")
    if built:
        return built
    if not os.path.exists("/usr/include/zookeeper/zookeeper.h"):
        pytest.skip("libzookeeper-mt-dev is not installed")
    exe = str(tmp_path_factory.mktemp("c") / "c_client_basic")
    subprocess.run(["gcc", "-Wall", "-Wextra", "-fsanitize=address,undefined", "-o", exe,
                    os.path.join(HERE, "c_client_basic.c"), "-lzookeeper_mt", "-lpthread"], check=True)
    return exe


def test_c_client_core_operations_and_a_reconnect_that_resumes(server, program):
    p = subprocess.Popen([program, server.hosts], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    out = []
    try:
        for line in p.stdout:  # until the program waits for the restart
            out.append(line)
            if line.strip() == "READY":
                break
        server.stop()
        server.start()
        p.stdin.write("go\n")
        p.stdin.flush()
        rest, _ = p.communicate(timeout=120)
        out.append(rest)
    finally:
        if p.poll() is None:
            p.kill()
    text = "".join(out)
    assert p.returncode == 0, text
    assert "FAIL" not in text and "PASS the ephemeral survived" in text
