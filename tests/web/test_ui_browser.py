"""The dashboard in a real headless Chromium (the OS's, driven by Selenium through the OS's
chromedriver; nothing is downloaded) against a real `mvctl ui` over a registry with a bare
remote: a person logs in, opens the model, forces a rollback with a reason, confirms, and
sees it in the history, while the remote's alias moves. A PNG of each page is saved (to
``MVCTL_UI_SCREENSHOTS`` when set: ``docs/ui`` holds the README's)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    Registry,
    RegistryFactory,
    Release,
    copy_registry,
    mvctl,
    remote_holder,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")  # Debian's package chromium-driver
TOKEN = "browser-token-for-the-tests-012345"
CONFIG = """version: 1
channels: [production, staging, canary, shadow]
models:
  fraud:
    weights: models/model.bin
    monitors:
      production:
        - {metric: false_positive_rate, max: 0.05}
        - {drift: psi, max: 0.25}
"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs /usr/bin/chromium and /usr/bin/chromedriver "
        "(apt-get install chromium chromium-driver)",
    ),
]


def _metrics(auc: float, fpr: float) -> str:
    return json.dumps({"auc": auc, "false_positive_rate": fpr, "latency_p95_ms": 31.5})


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    """fraud v1.0.0, v1.1.0 then v1.2.0 in production (published); v1.3.0 on staging and on
    the canary at its default weight."""

    def release(version: str, auc: float, fpr: float, promote: tuple[str, ...]) -> Release:
        files = (("metrics.json", _metrics(auc, fpr)), ("data/train.csv", f"x,y\n{auc},1\n"))
        return Release(
            weights=version.encode(), version=version, push=True, promote=promote, files=files
        )

    return registry_factory(
        release("v1.0.0", 0.901, 0.041, ("production",)),
        release("v1.1.0", 0.912, 0.038, ("production",)),
        release("v1.2.0", 0.925, 0.044, ("production",)),
        release("v1.3.0", 0.931, 0.036, ("staging", "canary")),
        config=CONFIG,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(template: Path, tmp_path: Path) -> Iterator[tuple[str, Registry]]:
    reg = copy_registry(template, tmp_path)
    host = tmp_path / "serving-host-1"
    pulled = mvctl(
        tmp_path,
        "pull",
        str(reg.origin),
        "fraud",
        "--channel",
        "production",
        "--channel",
        "canary",
        "--dest",
        str(host),
    )
    assert pulled.returncode == 0, pulled.stderr
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mvctl", "ui", "--port", str(port), "--hosts", str(host)],
        cwd=reg.root,
        env={**os.environ, "MVCTL_UI_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).text == "ok":
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield url, reg
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


@pytest.fixture
def chrome(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,900",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'chrome-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(5)  # find_element waits for the next page's element, to a deadline
    try:
        yield driver
    finally:
        driver.quit()


def _shoot(driver: Any, tmp_path: Path, name: str) -> Path:
    """A PNG of the whole page (the window grown to the page's height, capped)."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    metrics = {"width": 1400, "height": min(max(int(height), 400), 3000)}
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {**metrics, "deviceScaleFactor": 1, "mobile": False}
    )
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    wanted = os.environ.get("MVCTL_UI_SCREENSHOTS")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(wanted) / path.name)
    assert path.stat().st_size > 1000
    return path


def _arrive(driver: Any, title: str) -> None:
    """Wait (to a deadline) until the browser shows the page titled ``title``."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20).until(lambda d: d.title == f"{title} · mvctl")


def test_a_person_forces_a_rollback_from_the_dashboard(
    server: tuple[str, Registry], chrome: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    url, reg = server
    chrome.get(f"{url}/models/fraud")  # not logged in: sent to the login page
    assert chrome.current_url == f"{url}/login"
    _shoot(chrome, tmp_path, "login")
    chrome.find_element(By.ID, "name").send_keys("Grace Hopper")
    chrome.find_element(By.ID, "token").send_keys(TOKEN)
    chrome.find_element(By.ID, "login").click()
    _arrive(chrome, "Models")
    assert "production: v1.2.0" in chrome.find_element(By.TAG_NAME, "main").text
    _shoot(chrome, tmp_path, "models")
    chrome.find_element(By.LINK_TEXT, "fraud").click()
    _arrive(chrome, "fraud")
    page = chrome.find_element(By.TAG_NAME, "main").text
    assert "Force a rollback" in page
    _shoot(chrome, tmp_path, "model")

    Select(chrome.find_element(By.ID, "to-production")).select_by_visible_text("v1.1.0")
    chrome.find_element(By.ID, "reason-production").send_keys("false positives doubled at 09:10")
    chrome.find_element(By.ID, "rollback-production").click()
    _arrive(chrome, "Confirm rollback")
    question = chrome.find_element(By.TAG_NAME, "main").text
    assert "Roll fraud@production back from v1.2.0 to v1.1.0?" in question
    _shoot(chrome, tmp_path, "confirm")
    assert remote_holder(reg.origin, "fraud", "production") == "v1.2.0"  # nothing yet

    chrome.find_element(By.ID, "confirm").click()
    _arrive(chrome, "fraud history")
    history = chrome.find_element(By.TAG_NAME, "main").text
    assert "Done: fraud#production#" in history
    assert "Grace Hopper (via ui)" in history
    assert "false positives doubled at 09:10" in history
    assert remote_holder(reg.origin, "fraud", "production") == "v1.1.0"
    _shoot(chrome, tmp_path, "history")

    for name, path in (("lineage", "lineage"), ("diff", "diff?old=v1.1.0&new=v1.3.0")):
        chrome.get(f"{url}/models/fraud/{path}")
        assert chrome.find_element(By.TAG_NAME, "h1").text.startswith(name.capitalize())
        _shoot(chrome, tmp_path, name)
    chrome.get(f"{url}/hosts")
    # The host pulled before the rollback and has not polled since: it still says v1.2.0.
    hosts = chrome.find_element(By.TAG_NAME, "main").text
    assert "serving-host-1 production v1.2.0" in hosts
    assert "serving-host-1 canary v1.3.0" in hosts
    _shoot(chrome, tmp_path, "hosts")
