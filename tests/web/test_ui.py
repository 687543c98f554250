"""The dashboard (mvctl ui) in process, over a real registry with a bare remote: every
page needs a session, every state change the session's CSRF token and this origin, and a
forced rollback is the core's rollback recorded with the requester's name."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from mvctl.formats import tags
from mvctl.web import ui
from tests.conftest import (
    Registry,
    RegistryFactory,
    Release,
    copy_registry,
    git,
    mvctl,
    remote_holder,
    remote_tags,
)

TOKEN = "ui-token-for-the-tests-0123456789"
CONFIG = """version: 1
channels: [production, staging, canary, shadow]
models:
  fraud:
    weights: models/model.bin
    monitors:
      production:
        - {metric: false_positive_rate, max: 0.05}
"""
XSS = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    """fraud v0.1.0 then v0.2.0 in production, both published; v0.2.0 reports a metric
    whose name is markup."""
    metrics = json.dumps({"auc": 0.93, XSS: 1.5})
    return registry_factory(
        Release(weights=b"v1", version="v0.1.0", push=True, promote=("production",)),
        Release(
            weights=b"v2",
            version="v0.2.0",
            push=True,
            promote=("production",),
            files=(("metrics.json", metrics), ("data/train.csv", "x,y\n1,0\n")),
        ),
        config=CONFIG,
    )


@pytest.fixture
def reg(template: Path, tmp_path: Path) -> Registry:
    return copy_registry(template, tmp_path, storage=False)


def client(reg: Registry, **settings: Any) -> TestClient:
    """The dashboard served at http://testserver; every request carries that Origin, as a
    browser's form POSTs do."""
    origin = "http://testserver"
    app = ui.create_app(ui.Settings(root=reg.root, token=TOKEN, public_url=origin, **settings))
    return TestClient(app, base_url=origin, follow_redirects=False, headers={"Origin": origin})


@pytest.fixture
def browser(reg: Registry) -> Iterator[TestClient]:
    with client(reg) as c:
        assert c.post("/login", data={"name": "Grace Hopper", "token": TOKEN}).status_code == 303
        yield c


def csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found[1]


def test_a_wrong_token_is_refused_and_gives_no_session(reg: Registry) -> None:
    with client(reg) as c:
        answer = c.post("/login", data={"name": "Mallory", "token": "x" * 32})
        assert answer.status_code == 401
        assert "Wrong token" in answer.text
        assert ui.COOKIE not in answer.cookies
        assert c.get("/").status_code == 303


def test_a_name_with_markup_is_refused_at_login(reg: Registry) -> None:
    with client(reg) as c:
        answer = c.post("/login", data={"name": XSS, "token": TOKEN})
        assert answer.status_code == 400
        assert ui.COOKIE not in answer.cookies


def test_failed_logins_lock_the_address_out(reg: Registry) -> None:
    with client(reg) as c:
        for _ in range(ui.LOCKOUT_AFTER):
            assert c.post("/login", data={"name": "M", "token": "wrong" * 4}).status_code == 401
        # Locked: even the right token waits.
        assert c.post("/login", data={"name": "M", "token": TOKEN}).status_code == 429


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/hosts",
        "/models/fraud",
        "/models/fraud/history",
        "/models/fraud/lineage",
        "/models/fraud/diff",
    ],
)
def test_every_page_needs_a_session(reg: Registry, path: str) -> None:
    with client(reg) as c:
        answer = c.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login"
        # A script reads with the bearer token instead.
        assert c.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert c.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 303
    with client(reg) as c:
        assert c.get("/healthz").text == "ok"


def test_pages_carry_the_security_headers(browser: TestClient) -> None:
    for path in ("/login", "/", "/models/fraud"):
        headers = browser.get(path).headers
        assert headers["content-security-policy"].startswith("default-src 'none'")
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["cache-control"] == "no-store"


def test_the_session_cookie_is_httponly_and_strict(reg: Registry) -> None:
    with client(reg) as c:
        cookie = c.post("/login", data={"name": "Grace", "token": TOKEN}).headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert "Path=/" in cookie


def test_pages_show_the_registry(browser: TestClient) -> None:
    home = browser.get("/").text
    assert "fraud" in home
    assert "production: v0.2.0" in home
    model = browser.get("/models/fraud").text
    assert "metric {metric: false_positive_rate, max: 0.05}" in model  # the monitor
    assert "production: gold" in model  # v0.1.0 served and was replaced
    assert '<option value="v0.1.0">' in model  # the rollback target
    assert "v0.2.0 → " not in browser.get("/models/fraud/history").text  # nothing rolled back
    lineage = browser.get("/models/fraud/lineage").text
    assert "v0.1.0" in lineage
    assert "v0.2.0" in lineage
    diff = browser.get("/models/fraud/diff?old=v0.1.0&new=v0.2.0").text
    assert "v0.1.0 → v0.2.0" in diff
    assert "auc" in diff


def test_a_forced_rollback_is_confirmed_then_recorded_with_the_name(
    reg: Registry, browser: TestClient
) -> None:
    token = csrf(browser.get("/models/fraud").text)
    form = {"csrf": token, "channel": "production", "to": "v0.1.0", "reason": "FPR spike"}
    asked = browser.post("/models/fraud/rollback", data=form)
    assert asked.status_code == 200
    assert "Roll fraud@production back from v0.2.0 to v0.1.0?" in asked.text
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"  # not yet

    assert 'name="current" value="v0.2.0"' in asked.text  # what the answer says it saw
    done = browser.post(
        "/models/fraud/rollback", data={**form, "current": "v0.2.0", "confirm": "yes"}
    )
    assert done.status_code == 303
    assert done.headers["location"].startswith("/models/fraud/history?done=fraud%23production%23")
    assert remote_holder(reg.origin, "fraud", "production") == "v0.1.0"
    history = browser.get(done.headers["location"]).text
    assert "Done: fraud#production#3" in history
    assert "Grace Hopper (via ui)" in history
    assert "FPR spike" in history

    message = git(reg.origin, "tag", "-l", "--format=%(contents)", "fraud#production#3")
    body = tags.parse_message(message)[1]
    assert body["requested_by"] == "Grace Hopper"
    assert body["via"] == "ui"
    assert body["kind"] == "rollback"
    events = json.loads(mvctl(reg.root, "history", "fraud", "--json", check=True).stdout)["events"]
    assert events[-1]["requested_by"] == "Grace Hopper"
    assert events[-1]["via"] == "ui"
    assert "requested_by" not in events[0]  # a CLI promotion records no requester
    assert set(events[-1]) == set(events[0]) | {"requested_by", "via"}
    table = mvctl(reg.root, "history", "fraud", check=True).stdout
    assert "Grace Hopper (via ui" in table


def test_a_target_the_cli_would_refuse_is_refused(browser: TestClient, reg: Registry) -> None:
    before = remote_tags(reg.origin)
    token = csrf(browser.get("/models/fraud").text)
    form = {"csrf": token, "channel": "production", "to": "v9.9.9", "reason": "r"}
    for confirm in ({}, {"confirm": "yes"}):
        answer = browser.post("/models/fraud/rollback", data={**form, **confirm})
        assert answer.status_code in (400, 404)
        assert "v9.9.9" in answer.text
        assert "Traceback" not in answer.text
    # The version it holds is no target; confirmed anyway, the core does nothing.
    assert (
        "not a version"
        in browser.post("/models/fraud/rollback", data={**form, "to": "v0.2.0"}).text
    )
    same = browser.post(
        "/models/fraud/rollback",
        data={**form, "to": "v0.2.0", "current": "v0.2.0", "confirm": "yes"},
    )
    assert same.status_code == 200
    assert "nothing done" in same.text
    assert remote_tags(reg.origin) == before


def test_a_rollback_needs_a_reason(browser: TestClient, reg: Registry) -> None:
    token = csrf(browser.get("/models/fraud").text)
    form = {"csrf": token, "channel": "production", "to": "v0.1.0", "reason": " ", "confirm": "yes"}
    answer = browser.post("/models/fraud/rollback", data=form)
    assert answer.status_code == 400
    assert "needs a reason" in answer.text
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"


@pytest.mark.parametrize("token", [None, "", "forged-csrf-token-0123456789abcdef"])
def test_a_state_change_without_the_csrf_token_changes_nothing(
    reg: Registry, browser: TestClient, token: str | None
) -> None:
    before = remote_tags(reg.origin)
    form = {"channel": "production", "to": "v0.1.0", "reason": "r", "confirm": "yes"}
    if token is not None:
        form["csrf"] = token
    assert browser.post("/models/fraud/rollback", data=form).status_code == 403
    assert remote_tags(reg.origin) == before
    assert reg.tags() == sorted(before)


def test_a_state_change_without_a_session_changes_nothing(reg: Registry) -> None:
    before = remote_tags(reg.origin)
    with client(reg) as c:
        form = {
            "csrf": "x",
            "channel": "production",
            "to": "v0.1.0",
            "reason": "r",
            "confirm": "yes",
        }
        assert c.post("/models/fraud/rollback", data=form).status_code == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}  # the token reads; it never writes
        assert c.post("/models/fraud/rollback", data=form, headers=bearer).status_code == 401
    assert remote_tags(reg.origin) == before


@pytest.mark.parametrize(
    "header",
    [{"Origin": "http://evil.example"}, {"Origin": "null"}, {"Referer": "http://evil.example/x"}],
)
def test_a_cross_origin_post_is_refused(
    reg: Registry, browser: TestClient, header: dict[str, str]
) -> None:
    before = remote_tags(reg.origin)
    token = csrf(browser.get("/models/fraud").text)
    form = {
        "csrf": token,
        "channel": "production",
        "to": "v0.1.0",
        "reason": "r",
        "current": "v0.2.0",
        "confirm": "yes",
    }
    if "Origin" not in header:
        del browser.headers["origin"]  # a Referer alone speaks for the request
    assert browser.post("/models/fraud/rollback", data=form, headers=header).status_code == 403
    assert remote_tags(reg.origin) == before
    same = {"Origin": "http://testserver"}
    assert browser.post("/models/fraud/rollback", data=form, headers=same).status_code == 303


def test_read_only_offers_no_rollback_and_refuses_one(reg: Registry) -> None:
    before = remote_tags(reg.origin)
    with client(reg, read_only=True) as c:
        c.post("/login", data={"name": "Grace", "token": TOKEN})
        page = c.get("/models/fraud").text
        assert "read-only" in page
        assert "/rollback" not in page
        form = {
            "csrf": csrf(page),
            "channel": "production",
            "to": "v0.1.0",
            "reason": "r",
            "confirm": "yes",
        }
        assert c.post("/models/fraud/rollback", data=form).status_code == 403
    assert remote_tags(reg.origin) == before


def test_markup_in_a_reason_or_a_metric_name_is_escaped(browser: TestClient) -> None:
    token = csrf(browser.get("/models/fraud").text)
    form = {"csrf": token, "channel": "production", "to": "v0.1.0", "reason": XSS}
    confirm = browser.post("/models/fraud/rollback", data=form).text
    assert XSS not in confirm
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in confirm
    done = browser.post(
        "/models/fraud/rollback", data={**form, "current": "v0.2.0", "confirm": "yes"}
    )
    assert done.status_code == 303
    for path in (
        "/models/fraud",
        "/models/fraud/history",
        "/models/fraud/lineage",
        "/models/fraud/diff?old=v0.1.0&new=v0.2.0",
    ):
        text = browser.get(path).text
        assert "<script" not in text, path
        assert "&lt;script&gt;" in text, path


def test_a_huge_form_is_refused(reg: Registry, browser: TestClient) -> None:
    before = remote_tags(reg.origin)
    token = csrf(browser.get("/models/fraud").text)
    form = {
        "csrf": token,
        "channel": "production",
        "to": "v0.1.0",
        "reason": "r" * 100_000,
        "confirm": "yes",
    }
    assert browser.post("/models/fraud/rollback", data=form).status_code == 413
    assert browser.post("/login", data={"name": "x" * 100_000, "token": TOKEN}).status_code == 413
    assert remote_tags(reg.origin) == before


def test_logout_ends_the_session(browser: TestClient) -> None:
    token = csrf(browser.get("/").text)
    assert browser.post("/logout", data={"csrf": token}).status_code == 303
    assert browser.get("/").status_code == 303


def test_hosts_shows_what_a_host_directory_serves(reg: Registry, tmp_path: Path) -> None:
    empty = tmp_path / "host-a"
    empty.mkdir()
    with client(reg, hosts=(empty,)) as c:
        c.post("/login", data={"name": "Grace", "token": TOKEN})
        page = c.get("/hosts").text
        assert str(empty) in page
        assert "serves nothing yet" in page


def test_an_unknown_model_is_a_readable_404(browser: TestClient) -> None:
    answer = browser.get("/models/nosuch")
    assert answer.status_code == 404
    assert "Traceback" not in answer.text
    assert browser.get("/models/Bad%20Name").status_code == 400


def test_hosts_reads_a_servers_metrics_with_its_token_and_never_shows_it(reg: Registry) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    serve_token = "serve-token-never-shown-0123456789"
    seen: list[str] = []

    class Metrics(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            ok = self.path == "/metrics" and seen[-1] == f"Bearer {serve_token}"
            body = (
                b'mvctl_served_info{channel="production",version="v0.2.0"} 1.0\n'
                b'mvctl_served_info{channel="canary",version="v0.1.0"} 0.0\n'
            )
            self.send_response(200 if ok else 401)
            self.end_headers()
            self.wfile.write(body if ok else b"")

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        with client(reg, servers=(url, "http://127.0.0.1:1"), serve_token=serve_token) as c:
            c.post("/login", data={"name": "Grace", "token": TOKEN})
            page = c.get("/hosts").text
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [f"Bearer {serve_token}"]
    assert f"<td>{url}</td><td>production</td><td>v0.2.0</td>" in page
    assert "canary" not in page  # a gauge at 0 is no longer served
    assert "cannot read /metrics" in page  # the unreachable one says so
    assert serve_token not in page


def test_the_command_refuses_to_start_without_a_token_or_with_a_bad_server(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MVCTL_UI_TOKEN", raising=False)
    refused = mvctl(reg.root, "ui", "--port", "1")
    assert refused.returncode == 2
    assert "at least 16 characters" in refused.stderr + refused.stdout
    monkeypatch.setenv("MVCTL_UI_TOKEN", TOKEN)
    bad = mvctl(reg.root, "ui", "--server", "file:///etc/passwd")
    assert bad.returncode == 2
    assert "not an http:// or https:// URL" in bad.stderr + bad.stdout


def test_pages_show_what_the_remote_holds_now(
    reg: Registry, browser: TestClient, tmp_path: Path
) -> None:
    other = tmp_path / "elsewhere"
    git(tmp_path, "clone", "-q", str(reg.origin), str(other))
    moved = mvctl(other, "rollback", "fraud", "--to", "v0.1.0", "--reason", "from a terminal")
    assert moved.returncode == 0, moved.stderr
    assert "production: v0.1.0" in browser.get("/").text
    assert "from a terminal" in browser.get("/models/fraud/history").text


def test_a_remote_that_cannot_be_read_is_said_on_the_page(reg: Registry) -> None:
    with client(reg, push=True, remote="gone") as c:
        c.post("/login", data={"name": "Grace", "token": TOKEN})
        page = c.get("/models/fraud").text
        assert "Could not fetch from gone" in page
        assert "v0.2.0" in page  # this clone's state, still shown
