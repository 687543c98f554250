"""The Kubernetes example of examples/kubernetes/: the manifests parse; every mvctl command
their containers run exists with those options (the command tree, as for the CI templates,
and `mvctl CMD --help` printing each flag); the probes name paths the servers answer
without a token; the sidecar shares the host directory with the team's server; and no
credential is written in a manifest: tokens and remote credentials come from one Secret."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import make_registry
from tests.docs.markdown import shell_blocks
from tests.examples.commands import check_command, mvctl_commands

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "examples" / "kubernetes"
SECRET = "mvctl-fraud"
_CREDENTIAL = re.compile(r"TOKEN|SECRET|PASSWORD|CREDENTIAL|ACCESS_KEY|GIT_CONFIG_VALUE", re.I)


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((KUBE / name).read_text()) if d is not None]


def _pod(name: str) -> dict[str, Any]:
    (deployment,) = [d for d in _docs(name) if d["kind"] == "Deployment"]
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    return spec


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def _argv(container: dict[str, Any]) -> list[str]:
    return [*container.get("command", []), *container.get("args", [])]


def _mvctl(pod: dict[str, Any]) -> dict[str, list[str]]:
    """container name -> its mvctl argv, for the containers that run mvctl."""
    return {c["name"]: _argv(c) for c in _containers(pod) if _argv(c)[:1] == ["mvctl"]}


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def _mounts(container: dict[str, Any]) -> dict[str, str]:
    return {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}


def test_every_manifest_parses_and_runs_mvctl_with_options_it_has() -> None:
    files = sorted(p.name for p in KUBE.glob("*.yaml"))
    assert files == ["serve-follow.yaml", "sidecar.yaml"]
    seen: dict[str, set[str]] = {}
    for name in files:
        for argv in _mvctl(_pod(name)).values():
            assert all(isinstance(a, str) for a in argv), argv  # "30", not 30
            path = check_command(argv)
            seen.setdefault(path, set()).update(a for a in argv if a.startswith("--"))
    assert set(seen) == {"mvctl serve", "mvctl pull"}
    assert {"--follow", "--model", "--host", "--token-file"} <= seen["mvctl serve"]
    assert {"--watch", "--dest", "--metrics-token-file"} <= seen["mvctl pull"]
    # ... and as a user checks it: the real command's --help shows each flag.
    for path, flags in seen.items():
        done = subprocess.run(
            [sys.executable, "-m", "mvctl", *path.split()[1:], "--help"],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        for flag in flags:
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", done.stdout), (path, flag)


def test_serve_follow_probes_the_health_paths_it_serves_without_a_token() -> None:
    from starlette.testclient import TestClient

    from mvctl.serving import Router
    from mvctl.web import inference

    pod = _pod("serve-follow.yaml")
    (argv,) = _mvctl(pod).values()
    (container,) = pod["containers"]
    assert argv[1:3] == ["serve", "/srv/fraud"] and "--follow" in argv
    # The kubelet probes the pod's address: a loopback bind would never be ready.
    assert _option(argv, "--host") not in ("127.0.0.1", "localhost", "::1")
    assert "--no-auth" not in argv
    (port,) = container["ports"]
    assert str(port["containerPort"]) == _option(argv, "--port")
    probes = {k: container[k]["httpGet"] for k in ("readinessProbe", "livenessProbe")}
    assert probes["readinessProbe"]["path"] == "/v2/health/ready"
    assert probes["livenessProbe"]["path"] == "/v2/health/live"
    assert {p["port"] for p in probes.values()} == {port["name"]}
    assert _mounts(container)["/srv/fraud"] == "models"
    # The server's own app, with a token and no model loaded yet: liveness 200, readiness
    # 503 (no traffic until a model is in), neither asks for the token; the rest does.
    router = Router("fraud")
    app = inference.create_app(router, model="fraud", token="k8s-probe-token-0123456789")
    with TestClient(app) as client:
        assert client.get(probes["livenessProbe"]["path"]).status_code == 200
        assert client.get(probes["readinessProbe"]["path"]).status_code == 503
        assert client.get("/v2/models/fraud").status_code == 401
    router.close()


def test_the_sidecar_keeps_the_team_servers_directory_current() -> None:
    from mvctl.serving.metricsserver import MetricsServer

    pod = _pod("sidecar.yaml")
    commands = _mvctl(pod)
    (init,) = pod["initContainers"]
    first = commands[init["name"]]
    watchers = {n: a for n, a in commands.items() if "--watch" in a}
    (watch_name,) = watchers
    watch = watchers[watch_name]
    assert first[1] == "pull" and "--watch" not in first  # one poll, then the server starts
    assert watch[1] == "pull" and first[2:4] == watch[2:4]  # same registry and model
    dest = _option(watch, "--dest")
    assert _option(first, "--dest") == dest
    (team,) = [c for c in pod["containers"] if c["name"] not in commands]
    sidecar = next(c for c in pod["containers"] if c["name"] == watch_name)
    volume = _mounts(sidecar)[dest]
    assert _mounts(init)[dest] == volume
    assert volume in _mounts(team).values()
    (shared,) = [v for v in pod["volumes"] if v["name"] == volume]
    assert "emptyDir" in shared
    # The sidecar's liveness is the poller's /healthz, which needs no token.
    probe = sidecar["livenessProbe"]["httpGet"]
    (port,) = sidecar["ports"]
    assert probe["port"] == port["name"] and str(port["containerPort"]) == _option(
        watch, "--metrics-port"
    )
    server = MetricsServer(lambda: (b"", "text/plain"), host="127.0.0.1", port=0, token="t" * 32)
    server.start()
    try:
        host, bound = server.address
        with urllib.request.urlopen(f"http://{host}:{bound}{probe['path']}", timeout=10) as r:
            assert r.status == 200
    finally:
        server.close()


@pytest.mark.parametrize("name", ["serve-follow.yaml", "sidecar.yaml"])
def test_no_credential_is_written_in_a_manifest(name: str) -> None:
    docs = _docs(name)
    assert all(d["kind"] != "Secret" for d in docs)
    pod = _pod(name)
    for container in _containers(pod):
        for env in container.get("env", []):
            if _CREDENTIAL.search(env["name"]):
                assert "value" not in env, f"{container['name']}: {env['name']} written inline"
                assert env["valueFrom"]["secretKeyRef"]["name"] == SECRET
        for arg in _argv(container):
            assert not re.search(r"://[^/@\s]+:[^/@\s]+@", arg), arg  # user:password@host
        # a token is a file from the Secret's volume, never an argument or a plain variable
        argv = _argv(container)
        for flag in ("--token-file", "--metrics-token-file"):
            if flag in argv:
                path = Path(_option(argv, flag))
                mount = _mounts(container)[str(path.parent)]
                (volume,) = [v for v in pod["volumes"] if v["name"] == mount]
                assert volume["secret"]["secretName"] == SECRET
                assert path.name in {i["path"] for i in volume["secret"]["items"]}
                assert volume["secret"]["defaultMode"] & 0o007 == 0  # not world-readable
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_the_image_and_the_readme_match_the_manifests() -> None:
    dockerfile = (KUBE / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (.+) /src/", dockerfile, re.M):
        for rel in source.split():
            assert (ROOT / rel).exists(), rel
    (extras,) = re.findall(r"/src\[([\w,]+)\]", dockerfile)
    pyproject = (ROOT / "pyproject.toml").read_text()
    for extra in extras.split(","):
        assert re.search(rf"^{extra} = \[", pyproject, re.M), extra
    user = re.search(r"^USER (\d+)", dockerfile, re.M)
    assert user and all(
        _pod(n)["securityContext"]["runAsUser"] == int(user[1])
        for n in ("serve-follow.yaml", "sidecar.yaml")
    )
    readme = (ROOT / "README.md").read_text()
    assert "(examples/kubernetes/" in readme
    # The Secret the README tells to create has every key the manifests read.
    keys = set()
    for name in ("serve-follow.yaml", "sidecar.yaml"):
        text = (KUBE / name).read_text()
        keys |= set(re.findall(r"key: ([\w-]+)", text))
    guide = (KUBE / "README.md").read_text()
    for block in shell_blocks(guide):
        parsed = subprocess.run(
            ["bash", "-n"], input=block.text, capture_output=True, text=True, check=False
        )
        assert parsed.returncode == 0, (
            f"examples/kubernetes/README.md:{block.line}: {parsed.stderr}"
        )
        for argv in mvctl_commands(block.text):
            check_command(argv)
    create = guide[guide.index("kubectl create secret generic " + SECRET) :]
    create = create[: create.index("```")]
    for key in keys:
        assert f"--from-file={key}=" in create or f"--from-literal={key}=" in create, key


# -- the manifests' commands, run for real on a local registry ----------------------------

TOKEN = "k8s-example-token-0123456789abcdef"
URL = "https://git.example.com/ml/training.git"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _until(check: Callable[[], bool], timeout: float = 90) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def _get(url: str, token: str | None = None) -> int:
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return httpx.get(url, headers=headers, timeout=2).status_code
    except httpx.TransportError:
        return 0


@pytest.fixture
def local(tmp_path: Path) -> dict[str, str]:
    """A registry whose production holds fraud v0.1.0 (a .skops model), and what to put in
    place of the manifests' cluster values: the registry's URL, the pod's paths, ports."""
    import skops.io
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    from mvctl.channels.promotion import promote
    from mvctl.registry.register import RegisterRequest, register

    reg = make_registry(tmp_path)
    x, y = load_breast_cancer(return_X_y=True)
    (reg.root / "models").mkdir()
    skops.io.dump(LogisticRegression(max_iter=5000).fit(x, y), reg.root / "models" / "fraud.skops")
    register(RegisterRequest(model="fraud", cwd=reg.root, weights="models/fraud.skops"))
    promote(reg.root, "fraud", "v0.1.0", "production")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name in ("serve-token", "metrics-token"):
        (secrets / name).write_text(TOKEN + "\n")
    return {
        URL: str(reg.origin),
        "/srv/fraud": str(tmp_path / "pod" / "srv-fraud"),
        "/etc/mvctl/serve-token": str(secrets / "serve-token"),
        "/etc/mvctl/metrics-token": str(secrets / "metrics-token"),
        "--host": "127.0.0.1",
        "--metrics-host": "127.0.0.1",
        "--port": str(_free_port()),
        "--metrics-port": str(_free_port()),
        "--interval": "0.5",
    }


def _here(container: dict[str, Any], local: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The container's argv and environment with the local values in place: an option's
    value by the option, any other argument by its value; the Secret's variables get
    stand-ins (git gets the extra header the Secret would give it)."""
    argv = _argv(container)
    out = [sys.executable, "-m", "mvctl"]
    for previous, arg in itertools.pairwise(argv):
        if arg.startswith("--"):
            out.append(arg)
        elif previous.startswith("--") and previous in local:
            out.append(local[previous])
        else:
            out.append(local.get(arg, arg))
    env = dict(os.environ)
    for var in container.get("env", []):
        if var["name"] != "HOME":  # the test's HOME is isolated already
            env[var["name"]] = var.get("value", "X-Mvctl-Test: from-the-secret")
    return out, env


@pytest.mark.slow
def test_serve_follow_pulls_serves_and_is_ready_as_the_manifest_says(local: dict[str, str]) -> None:
    (container,) = _pod("serve-follow.yaml")["containers"]
    argv, env = _here(container, local)
    base = f"http://127.0.0.1:{local['--port']}"
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        ready = container["readinessProbe"]["httpGet"]["path"]
        assert _until(lambda: proc.poll() is not None or _get(base + ready) == 200)
        assert proc.poll() is None, proc.communicate()[0]
        assert _get(base + container["livenessProbe"]["httpGet"]["path"]) == 200
        assert _get(f"{base}/v2/models/fraud") == 401
        assert _get(f"{base}/v2/models/fraud", TOKEN) == 200
        state = json.loads((Path(local["/srv/fraud"]) / "state.json").read_text())
        assert state["version"] == "v0.1.0"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out


@pytest.mark.slow
def test_the_sidecars_first_pull_and_watch_run_as_the_manifest_says(local: dict[str, str]) -> None:
    pod = _pod("sidecar.yaml")
    (init,) = pod["initContainers"]
    argv, env = _here(init, local)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    dest = Path(local["/srv/fraud"])
    assert (dest / "current").resolve().name == "v0.1.0"
    sidecar = next(c for c in pod["containers"] if "--watch" in _argv(c))
    argv, env = _here(sidecar, local)
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{local['--metrics-port']}"
    try:
        health = sidecar["livenessProbe"]["httpGet"]["path"]
        assert _until(lambda: proc.poll() is not None or _get(base + health) == 200)
        assert proc.poll() is None, proc.communicate()[0]
        assert _get(f"{base}/metrics") == 401 and _get(f"{base}/metrics", TOKEN) == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
