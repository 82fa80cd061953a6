"""A failing end-to-end test's report carries the journal of every container
it booted (corral.service and corral.socket, with systemctl status), whatever
assertion failed."""
import pytest


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
