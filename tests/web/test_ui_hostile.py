"""The hostile review of `mvctl ui` (issue 14), in process: a confirmation of a move that no
longer exists, a broken mvctl.yaml, a remote that never answers, bearer guesses, a
redirecting or credentialed --server, forged Host and Origin headers, and what a canary's
evidence may carry."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from mvctl.channels.weights import set_weight
from mvctl.web import lockout, origins, ui
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
from tests.web._ui_fixtures import CONFIG, ORIGIN, TOKEN, client, csrf, http_server, login

XSS = "<script>alert(1)</script>"
SERVE_TOKEN = "serve-token-never-shown-0123456789"
METRICS = b'mvctl_served_info{channel="production",version="v0.2.0"} 1.0\n'


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    """fraud v0.1.0, v0.2.0, v0.3.0 in production in turn, all published; v0.3.0 on the
    canary too."""
    return registry_factory(
        Release(weights=b"v1", version="v0.1.0", push=True, promote=("production",)),
        Release(weights=b"v2", version="v0.2.0", push=True, promote=("production",)),
        Release(weights=b"v3", version="v0.3.0", push=True, promote=("production", "canary")),
        config=CONFIG,
    )


@pytest.fixture
def reg(template: Path, tmp_path: Path) -> Registry:
    return copy_registry(template, tmp_path, storage=False)


def test_a_confirmation_of_a_move_that_no_longer_exists_is_refused(
    reg: Registry, tmp_path: Path
) -> None:
    """Finding 1: the confirm page's "from v0.3.0" is what the final POST checks."""
    with client(reg) as c:
        login(c)
        form = {
            "csrf": csrf(c.get("/models/fraud").text),
            "channel": "production",
            "to": "v0.1.0",
            "reason": "FPR spike on v0.3.0",
        }
        asked = c.post("/models/fraud/rollback", data=form)
        assert "Roll fraud@production back from v0.3.0 to v0.1.0?" in asked.text
        assert 'name="current" value="v0.3.0"' in asked.text

        # Meanwhile the on-call rolls production back to v0.2.0 from a terminal.
        other = tmp_path / "terminal"
        git(tmp_path, "clone", "-q", str(reg.origin), str(other))
        moved = mvctl(other, "rollback", "fraud", "--to", "v0.2.0", "--reason", "v0.3.0 bad")
        assert moved.returncode == 0, moved.stderr
        before = remote_tags(reg.origin)

        done = c.post(
            "/models/fraud/rollback", data={**form, "current": "v0.3.0", "confirm": "yes"}
        )
    assert done.status_code == 409, (done.status_code, done.headers.get("location"))
    assert "moved since you looked" in done.text
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"
    assert remote_tags(reg.origin) == before


BROKEN = """version: 1
channels: [production, staging, canary, shadow]
models:
  fraud:
    weights: models/model.bin
    monitor:                      # a typo: "monitors"
      production:
        - {metric: false_positive_rate, max: 0.05}
"""


def test_the_rollback_form_survives_a_broken_config(reg: Registry) -> None:
    """Finding 3: the panic button reads no config, so neither does its form."""
    reg.write("mvctl.yaml", BROKEN)
    reg.git("commit", "-q", "-am", "tighten the monitor")
    cli = mvctl(reg.root, "rollback", "fraud", "--to", "v0.1.0", "--reason", "r", "--dry-run")
    assert cli.returncode == 0, cli.stderr
    with client(reg) as c:
        login(c)
        page = c.get("/models/fraud")
    assert page.status_code == 200, (page.status_code, page.text[-600:])
    assert '<option value="v0.1.0">' in page.text
    assert "mvctl.yaml cannot be read" in page.text  # the banner
    assert "config unreadable" in page.text  # the monitors column


def test_a_remote_that_never_answers_does_not_hang_the_model_page(reg: Registry) -> None:
    """Finding 4: the page's fetch is bounded; then it says so and shows this clone."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # the kernel accepts; nobody ever reads or answers
    port = silent.getsockname()[1]
    reg.git("remote", "set-url", "origin", f"http://127.0.0.1:{port}/origin.git")
    answers: list[tuple[int, str]] = []
    try:
        with client(reg, fetch_timeout=2.0) as c:
            login(c)

            def look() -> None:
                page = c.get("/models/fraud")
                answers.append((page.status_code, page.text))

            worker = threading.Thread(target=look, daemon=True)
            worker.start()
            worker.join(30)
            hung = worker.is_alive()
    finally:
        silent.close()  # let a stuck git fail, whatever happened
    assert not hung, "/models/fraud gave no answer in 30 s (remote silent)"
    assert [status for status, _ in answers] == [200]
    assert "did not answer" in answers[0][1]
    assert "v0.3.0" in answers[0][1]  # this clone's state, still shown


def test_wrong_bearer_tokens_lock_the_address_out_like_wrong_logins(reg: Registry) -> None:
    """Finding 6: a bearer guess counts as a failed login."""
    with client(reg) as c:
        for i in range(4 * ui.LOCKOUT_AFTER):
            guess = {"Authorization": f"Bearer guess-{i:04d}-0123456789abcdef"}
            assert c.get("/hosts", headers=guess).status_code == 303
        right = c.get("/hosts", headers={"Authorization": f"Bearer {TOKEN}"})
        assert right.status_code != 200, "the address is locked out, yet the token reads"
        assert c.post("/login", data={"name": "M", "token": TOKEN}).status_code == 429


def test_a_locked_out_address_cannot_read_with_the_bearer_token(reg: Registry) -> None:
    """Finding 6: the lockout covers the bearer token too."""
    with client(reg) as c:
        for _ in range(ui.LOCKOUT_AFTER):
            assert c.post("/login", data={"name": "M", "token": "wrong" * 4}).status_code == 401
        assert c.post("/login", data={"name": "M", "token": TOKEN}).status_code == 429
        right = c.get("/hosts", headers={"Authorization": f"Bearer {TOKEN}"})
        assert right.status_code != 200, "the address is locked out, yet the token reads"


def test_the_failures_table_is_bounded() -> None:
    """Finding 7: one entry per guessing address, at most ``capacity`` of them, the
    longest quiet dropped first."""
    table = lockout.Lockout(capacity=100)
    for i in range(150):
        table.fail(f"10.0.0.{i}", now=float(i))
    assert len(table) == 100
    assert not table.knows("10.0.0.0")
    assert table.knows("10.0.0.149")
    for _ in range(lockout.AFTER):
        table.fail("10.9.9.9", now=200.0)
    assert table.locked("10.9.9.9", now=200.0 + lockout.SECONDS - 1)
    assert not table.locked("10.9.9.9", now=200.0 + lockout.SECONDS + 1)


def test_live_sessions_are_capped_oldest_dropped(reg: Registry) -> None:
    with client(reg) as c:
        login(c)
        oldest = c.cookies[ui.COOKIE]
        for _ in range(ui.MAX_SESSIONS):
            c.cookies.clear()
            login(c)
        assert c.get("/").status_code == 200  # the newest is live
        c.cookies.clear()
        c.cookies.set(ui.COOKIE, oldest)
        assert c.get("/").status_code == 303  # the oldest was dropped: log in again


class _Redirecting(BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.target)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def test_a_redirecting_server_does_not_get_the_token_sent_elsewhere(reg: Registry) -> None:
    """Finding 9: a redirect of /metrics is never followed (urllib would copy the token)."""
    seen_elsewhere: list[str] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen_elsewhere.append(self.headers.get("Authorization", ""))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(METRICS)

        def log_message(self, *_: object) -> None:
            pass

    with http_server(Elsewhere) as other:

        class Redirecting(_Redirecting):
            target = other.replace("127.0.0.1", "localhost") + "/steal"

        with (
            http_server(Redirecting) as url,
            client(reg, servers=(url,), serve_token=SERVE_TOKEN) as c,
        ):
            login(c)
            page = c.get("/hosts").text
    assert seen_elsewhere == []
    assert SERVE_TOKEN not in page
    assert "redirect" in page  # an error on the hosts page, not followed


def test_a_password_in_a_server_url_is_not_shown_on_the_page(reg: Registry) -> None:
    """Finding 10: userinfo is never rendered (nor sent)."""
    seen: list[str] = []

    class Metrics(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(METRICS)

        def log_message(self, *_: object) -> None:
            pass

    with http_server(Metrics) as url:
        secret = url.replace("http://", "http://scraper:hunter2-p4ssw0rd@")
        with client(reg, servers=(secret,)) as c:
            login(c)
            page = c.get("/hosts").text
    assert "hunter2-p4ssw0rd" not in page
    assert "scraper" not in page
    assert all("hunter2" not in s for s in seen)


def test_a_state_change_with_neither_origin_nor_referer_is_refused(reg: Registry) -> None:
    """Finding 13: browsers send Origin on every form POST; a POST without one is forged."""
    before = remote_tags(reg.origin)
    with client(reg) as c:
        login(c)
        token = csrf(c.get("/models/fraud").text)
        del c.headers["origin"]
        form = {"csrf": token, "channel": "production", "to": "v0.1.0", "reason": "r"}
        answer = c.post("/models/fraud/rollback", data={**form, "confirm": "yes"})
        assert answer.status_code == 403
        assert c.post("/login", data={"name": "M", "token": TOKEN}).status_code == 403
        referred = c.post(
            "/models/fraud/rollback",
            data={**form, "confirm": "yes", "current": "v0.3.0"},
            headers={"Referer": f"{ORIGIN}/models/fraud"},
        )
        assert referred.status_code == 303  # a Referer naming this server will do
    assert remote_holder(reg.origin, "fraud", "production") == "v0.1.0"
    assert set(before) < set(remote_tags(reg.origin))


@pytest.mark.parametrize("host", ["rebind.example", "rebind.example:8465", "127.0.0.1:1"])
def test_a_host_header_naming_another_server_is_refused_first(reg: Registry, host: str) -> None:
    """Finding 8: only the Host the dashboard is served at (here its --public-url)."""
    with client(reg) as c:
        answer = c.get("/healthz", headers={"Host": host})
        assert answer.status_code == 421
        for _ in range(ui.LOCKOUT_AFTER + 1):
            forged = c.post(
                "/login",
                data={"name": "M", "token": "wrong" * 4},
                headers={"Host": host, "Origin": f"http://{host}"},
            )
            assert forged.status_code == 421
        login(c)  # nothing was counted against this address


def test_allowed_hosts_follow_the_bind_and_the_public_url() -> None:
    assert origins.allowed_hosts("127.0.0.1", 8465, None) == frozenset(
        {"127.0.0.1:8465", "localhost:8465", "[::1]:8465"}
    )
    assert origins.allowed_hosts("10.1.2.3", 80, None) == frozenset({"10.1.2.3:80", "10.1.2.3"})
    assert origins.allowed_hosts("127.0.0.1", 8465, "https://mvctl.example.com/") >= {
        "mvctl.example.com",
        "mvctl.example.com:443",
        "127.0.0.1:8465",
    }


def test_the_secure_cookie_flag_follows_an_https_public_url(reg: Registry) -> None:
    """Behind an https proxy (proxy headers are never trusted) the cookie is still Secure."""
    with client(reg, public_url="https://testserver") as c:
        c.headers["origin"] = "https://testserver"
        answer = c.post("/login", data={"name": "Grace", "token": TOKEN})
        assert answer.status_code == 303
        assert "Secure" in answer.headers["set-cookie"]
    with client(reg) as c:
        answer = c.post("/login", data={"name": "Grace", "token": TOKEN})
        assert "Secure" not in answer.headers["set-cookie"]


def test_canary_evidence_is_shown_and_escaped(reg: Registry) -> None:
    """The canary section renders the evidence of the channel's latest event, escaped."""
    moved = set_weight(
        reg.root,
        "fraud",
        25.0,
        "canary",
        reason="analysis passed",
        evidence={"verdict": XSS, "samples": 1234, "p_value": 0.0123456789},
    )
    assert moved.changed
    with client(reg) as c:
        login(c)
        page = c.get("/models/fraud").text
    assert "canary: 25% of traffic" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page
    assert "<td>samples</td><td>1234</td>" in page
    assert "0.0123457" in page
