"""Hostile input: every bad name, version, path, URL or file a user can hand mvctl is refused
before anything is written or uploaded, as one line of error with its exit code."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mvctl.formats import tags
from mvctl.formats.names import NAME_RE, SEMVER_RE, Version, redacted_url, secret_in_url
from tests.conftest import Registry, git, isolate, make_registry, mvctl, run

LONG_PRE = "v1.0.0-" + "a" * 300
HUGE = "v" + "9" * 5000 + ".0.0"


def refused(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The one-line error of a refused command (a hint line may follow); returns it."""
    everything = result.stdout + result.stderr
    assert result.returncode == code, everything
    assert "Traceback" not in everything
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error: "), everything
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: ")), everything
    assert len(lines[0]) < 400, lines[0]
    return lines[0]


@pytest.fixture
def trained(registry: Registry) -> Registry:
    registry.train()
    return registry


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """fraud v0.1.0, published; built once: the tests that use it must change nothing."""
    from mvctl.registry.register import RegisterRequest
    from mvctl.registry.register import register as run_register

    base = tmp_path_factory.mktemp("hostile")
    (base / "home").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, base / "home")
        reg = make_registry(base)
        reg.train()
        run_register(RegisterRequest("fraud", reg.root, "models/model.bin", ("data/train.csv",)))
        yield reg


def register(reg: Registry, *extra: str) -> subprocess.CompletedProcess[str]:
    return mvctl(reg.root, "register", "fraud", "-w", "models/model.bin", "-d", "data/train.csv",
                 "--metrics", "metrics.json", *extra)  # fmt: skip


def commit_config(reg: Registry, text: str) -> None:
    reg.write("mvctl.yaml", text)
    reg.git("commit", "-q", "-am", "config")


# 1, 2: names and versions are matched as whole strings, and versions are capped.


def test_patterns_match_whole_strings_only() -> None:
    assert NAME_RE.match("fraud") and not NAME_RE.match("fraud\n")
    assert not NAME_RE.match("a" * 65)
    assert SEMVER_RE.match("v1.0.0") and not SEMVER_RE.match("v1.0.0\n")
    assert tags.parse("fraud@v1.0.0\n") is None
    assert tags.parse("fraud@production\n") is None
    assert tags.parse("fraud#production#1\n") is None
    assert tags.parse(f"fraud@{LONG_PRE}") is None
    assert tags.parse("fraud#production#" + "9" * 5000) is None
    assert Version.is_valid("v1.0.0-" + "a" * 51)  # 58 characters: the longest allowed
    assert not Version.is_valid("v1.0.0-" + "a" * 52)
    assert not Version.is_valid(HUGE)
    # Embedded the way other modules embed them, the patterns still match.
    embedded = rf"{NAME_RE.pattern.strip('^$')}@{SEMVER_RE.pattern.strip('^$')}"
    assert re.fullmatch(embedded, "fraud@v1.2.3-rc.1")


@pytest.mark.parametrize(
    "version", ["v1.0.0\n", LONG_PRE, HUGE], ids=["newline", "300-char-pre", "5000-digits"]
)
def test_register_refuses_a_bad_version_before_any_upload(trained: Registry, version: str) -> None:
    before = trained.snapshot()
    line = refused(register(trained, "--version", version), 2)
    assert "9" * 100 not in line
    assert trained.snapshot() == before


@pytest.mark.parametrize("model", ["fraud\n", "a" * 65, "fra.ud", "Fraud"])
def test_register_refuses_a_bad_model_name(trained: Registry, model: str) -> None:
    before = trained.snapshot()
    refused(mvctl(trained.root, "register", model, "-w", "models/model.bin"), 2)
    assert trained.snapshot() == before


# 3: profile: is a repo path like any other.


@pytest.mark.parametrize("where", ["../outside.csv", ".git/leak.csv", "registry/x.csv", "data"])
def test_register_refuses_a_profile_outside_the_work_tree(trained: Registry, where: str) -> None:
    (trained.root.parent / "outside.csv").write_text("secret,value\nhunter2,1\n")
    commit_config(trained, f"version: 1\nmodels:\n  fraud:\n    profile: {where}\n")
    before = trained.snapshot()
    line = refused(register(trained), 2)
    assert "profile" in line
    assert trained.snapshot() == before


# 4: credentials never go into git or output.


@pytest.fixture
def bare_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "fresh"
    run("git", "init", "-q", "-b", "main", repo, cwd=tmp_path)
    (repo / "README.md").write_text("x\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


@pytest.mark.parametrize(
    "url",
    [
        "https://user:s3cretTOKEN@host/dvc",
        "s3://AKIAEXAMPLE:s3cretTOKEN@bucket/dvc",
        "https://host/dvc?access_key=s3cretTOKEN",
        "s3://bucket/dvc?secret_access_key=s3cretTOKEN&region=eu",
        "azure://container/dvc?sv=2022&sig=s3cretTOKEN",
    ],
)
def test_init_refuses_a_storage_url_with_credentials(bare_repo: Path, url: str) -> None:
    head = git(bare_repo, "rev-parse", "HEAD")
    result = mvctl(bare_repo, "init", "--storage", url)
    line = refused(result, 2)
    assert "s3cretTOKEN" not in result.stdout + result.stderr
    assert "dvc remote modify --local" in result.stderr
    assert "storage" in line
    assert not (bare_repo / ".dvc").exists()
    assert git(bare_repo, "rev-parse", "HEAD") == head
    as_json = mvctl(bare_repo, "init", "--storage", url, "--json")
    assert "s3cretTOKEN" not in as_json.stdout + as_json.stderr
    assert json.loads(as_json.stdout)["exit"] == 2


def test_init_never_prints_the_password_of_an_existing_remote(registry: Registry) -> None:
    run("dvc", "remote", "modify", "--local", "mvctl", "url", "https://u:s3cretTOKEN@h/x",
        cwd=registry.root)  # fmt: skip
    shown = mvctl(registry.root, "init")
    assert shown.returncode == 0, shown.stderr
    assert "s3cretTOKEN" not in shown.stdout + shown.stderr
    other = mvctl(registry.root, "init", "--storage", str(registry.root.parent / "elsewhere"))
    refused(other, 1)
    assert "s3cretTOKEN" not in other.stdout + other.stderr


def test_secret_detection_and_redaction() -> None:
    assert secret_in_url("ssh://git@host/repo") is None
    assert secret_in_url("s3://bucket/path?region=eu") is None
    assert redacted_url("https://u:pw@h/x?token=t&a=1") == "https://u:***@h/x?token=***&a=1"


# 5: metrics and params are capped in size, keys and depth.


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        ("metrics.json", '{"a": "' + "x" * (1024 * 1024) + '"}', "larger than 1 MiB"),
        ("metrics.json", json.dumps({f"m{i}": i for i in range(10_001)}), "10000 keys"),
        ("metrics.json", '{"a":' * 100_000 + "1" + "}" * 100_000, "nested"),
        (
            "metrics.yaml",
            "".join(f"{'  ' * i}k{i}:\n" for i in range(70)) + "  " * 70 + "1\n",
            "nested",
        ),
        ("params.yaml", "a: [" + "[" * 80 + "]" * 80 + "]\n", "nested"),
    ],
    ids=["big", "keys", "deep-json", "deep-yaml", "deep-params"],
)
def test_register_refuses_huge_metrics_and_params(
    trained: Registry, name: str, content: str, said: str
) -> None:
    trained.write(name, content)
    option = "--params" if name.startswith("params") else "--metrics"
    before = trained.snapshot()
    line = refused(register(trained, option, name), 3)
    assert said in line
    assert trained.snapshot() == before


def test_yaml_text_is_capped(tmp_path: Path) -> None:
    from mvctl.common import yamlio
    from mvctl.errors import OperationalError

    with pytest.raises(OperationalError, match="larger than"):
        yamlio.loads("a: 1\n" + "#" * yamlio.MAX_BYTES, "big.yaml")


# 6: files that are not UTF-8.

LATIN1 = "name: caf\xe9\n".encode("latin-1")


@pytest.mark.parametrize("target", ["mvctl.yaml", "params.yaml", "metrics.yaml", "req.txt"])
def test_non_utf8_files_are_one_line_errors(trained: Registry, target: str) -> None:
    trained.write(target, LATIN1)
    if target == "mvctl.yaml":
        trained.git("commit", "-q", "-am", "config")
    option = {"params.yaml": "--params", "metrics.yaml": "--metrics", "req.txt": "--env-lock"}
    extra = (option[target], target) if target in option else ()
    before = trained.snapshot()
    line = refused(register(trained, *extra), 3)
    assert "UTF-8" in line and target in line
    assert trained.snapshot() == before


def test_non_utf8_mvctl_yaml_fails_read_commands_cleanly(registry: Registry) -> None:
    registry.write("mvctl.yaml", LATIN1)
    result = mvctl(registry.root, "check", "--offline")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "mvctl.yaml is not UTF-8 text" in result.stdout


def test_non_utf8_webhook_token_file(registry: Registry) -> None:
    token = registry.root.parent / "token"
    token.write_bytes(b"\xff" * 32)
    line = refused(mvctl(registry.root, "webhook", "serve", "--token-file", str(token)), 3)
    assert "UTF-8" in line


# 7: --metric values and keys.


@pytest.mark.parametrize(
    "option",
    [
        "x=1e999",
        "x=nan",
        "x=inf",
        "x=-Infinity",
        "x=1_000",
        "x=" + "9" * 5000,
        "a b=1",
        "x\ny=1",
        "=1",
        "x..y=1",
        "x\ty=1",
    ],
)
def test_register_refuses_bad_metric_options(trained: Registry, option: str) -> None:
    before = trained.snapshot()
    refused(register(trained, "--metric", option), 2)
    assert trained.snapshot() == before


def test_metric_options_that_conflict_are_refused_either_way(trained: Registry) -> None:
    refused(register(trained, "-m", "x=1", "-m", "x.y=2", "--dry-run"), 2)
    refused(register(trained, "-m", "x.y=1", "-m", "x=2", "--dry-run"), 2)


# 8: the rest of the command line.


@pytest.mark.parametrize(
    "args",
    [
        ("show", "fraud@"),
        ("show", "@v1"),
        ("show", "fraud\n"),
        ("show", "a" * 65),
        ("show", f"fraud@{HUGE}"),
        ("list", "fraud\n"),
        ("history", "fraud\n"),
        ("history", "fraud", "-c", "production\n"),
        ("diff", "fraud", "v0.1.0", "v0.1.0\n"),
        ("diff", "fraud", "v0.1.0", HUGE),
        ("lineage", "fraud", HUGE),
        ("promote", "fraud", HUGE, "--to", "production", "--local"),
        ("promote", "fraud", "v0.1.0\n", "--to", "production", "--local"),
        ("promote", "fraud", "v0.1.0", "--to", "production\n", "--local"),
        ("rollback", "fraud", "--reason", "x", "-c", "-x", "--local"),
        ("rollback", "fraud\n", "--reason", "x", "--local"),
        ("register", "fraud", "--bump", "junk"),
        ("register", "fraud", "-w", "models/model.bin", "--remote", "-x"),
        ("register", "fraud", "-w", "models/model.bin", "--remote", "a\nb"),
        ("register", "fraud", "-w", "models/model.bin\n!x"),
        ("register", "fraud", "-w", "models/model.bin", "-d", "data/train.csv\n/x"),
    ],
    ids=lambda a: " ".join(a)[:40] if isinstance(a, tuple) else str(a),
)
def test_hostile_command_lines_are_usage_errors(
    registered: Registry, args: tuple[str, ...]
) -> None:
    before = registered.snapshot()
    refused(mvctl(registered.root, *args), 2)
    assert registered.snapshot() == before


# 7: a FIFO (or socket, device) is never handed to DVC, whose hashing would block on it.


@pytest.mark.parametrize(
    ("option", "target"),
    [
        ("-w", "models/w.fifo"),
        ("-d", "data/fifo.csv"),
        ("-d", "data/dir"),
        ("--metrics", "m.fifo"),
        ("--params", "p.fifo"),
        ("--env-lock", "l.fifo"),
    ],
)
def test_register_refuses_what_is_not_a_file_or_directory(
    trained: Registry, option: str, target: str
) -> None:
    import os

    fifo = trained.root / (f"{target}/inner.fifo" if target == "data/dir" else target)
    fifo.parent.mkdir(parents=True, exist_ok=True)
    (trained.root / "data" / "dir" / "ok.csv").parent.mkdir(parents=True, exist_ok=True)
    (trained.root / "data" / "dir" / "ok.csv").write_text("x\n1\n")
    os.mkfifo(fifo)
    before = trained.snapshot()
    argv = ["register", "fraud", "-w", "models/model.bin", "-d", "data/train.csv"]
    if option in ("-w", "-d"):
        argv[argv.index(option) + 1] = target
    else:
        argv += [option, target]
    result = subprocess.run(
        [*_mvctl_argv(), *argv],
        cwd=trained.root, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    line = refused(result, 2)
    assert "FIFO" in line, line
    assert trained.snapshot() == before


def _mvctl_argv() -> list[str]:
    import sys

    return [sys.executable, "-m", "mvctl"]


# 8: a token alone in the user info is still a credential.


@pytest.mark.parametrize(
    "url", ["https://tokXYZ@github.com/x", "s3://tokXYZ@bucket/dvc", "webdavs://tokXYZ@h/dav"]
)
def test_init_refuses_a_token_in_the_user_info(bare_repo: Path, url: str) -> None:
    head = git(bare_repo, "rev-parse", "HEAD")
    result = mvctl(bare_repo, "init", "--storage", url)
    refused(result, 2)
    assert "tokXYZ" not in result.stdout + result.stderr
    assert git(bare_repo, "rev-parse", "HEAD") == head


def test_a_user_in_an_ssh_url_is_not_a_secret() -> None:
    assert secret_in_url("ssh://git@host/repo") is None
    assert secret_in_url("git@github.com:org/repo.git") is None
    assert secret_in_url("https://tok@github.com/x") is not None
    assert secret_in_url("azure://tok@container/x") is not None


# 9: integers too long for Python to convert are one-line errors with their source.


@pytest.mark.parametrize("target", ["params.yaml", "mvctl.yaml"])
def test_a_5000_digit_integer_is_a_one_line_error(trained: Registry, target: str) -> None:
    trained.write(target, "version: 1\nlimit: " + "9" * 5000 + "\n")
    if target == "mvctl.yaml":
        trained.git("add", target)
        trained.git("commit", "-q", "-m", "config")
    before = trained.snapshot()
    line = refused(register(trained, "--params", "params.yaml"), 3)
    assert target in line and "digits" in line, line
    assert trained.snapshot() == before


def test_yaml_integers_beyond_the_conversion_limit() -> None:
    from mvctl.common import yamlio
    from mvctl.errors import OperationalError

    with pytest.raises(OperationalError, match=r"manifest\.yaml:2: .*digits"):
        yamlio.loads("a: 1\nb: " + "9" * 5000 + "\n", "manifest.yaml")
