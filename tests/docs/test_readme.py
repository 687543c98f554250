"""README.md says what is true of this repository: its links resolve inside it, its shell
blocks survive a paste, its mvctl commands exist with those options, its pre-commit `rev`
is this release, its Alertmanager config is the example's file, and its CI recipe fetches
the tags mvctl reads."""

from __future__ import annotations

import re
import shlex
import subprocess
from typing import Any

import yaml

import mvctl
from mvctl.cli.app import EXAMPLES
from tests.docs.markdown import README, ROOT, blocks, sections, shell_blocks
from tests.examples.commands import check_command, mvctl_commands, resolve, walk

TEXT = README.read_text()
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
_CODE_PATH = re.compile(r"`((?:examples|tests|benchmarks|docs)/[\w./-]*)`")


def _slug(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", title.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _anchors() -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    in_fence = False
    for line in TEXT.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        elif not in_fence and (heading := re.match(r"^#{1,6} (.+)$", line)):
            slug = _slug(heading[1])
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def test_every_relative_link_resolves_inside_the_repository() -> None:
    links = [a or b for a, b in _LINK.findall(TEXT)]
    assert len(links) > 5
    anchors = _anchors()
    for target in links:
        if re.match(r"^[a-z]+://|^mailto:", target):
            continue
        path, _, anchor = target.partition("#")
        assert not path.startswith("/"), f"{target}: an absolute path points outside the repo"
        if not path:
            assert anchor in anchors, f"#{anchor}: no such heading in README.md"
            continue
        resolved = (ROOT / path).resolve()
        assert resolved.is_relative_to(ROOT), f"{target}: outside the repository"
        assert resolved.exists(), f"{target}: no such file in the repository"


def test_no_path_outside_the_repository_and_every_named_file_exists() -> None:
    assert "/work/" not in TEXT
    assert "../shared" not in TEXT
    for rel in _CODE_PATH.findall(TEXT):
        assert (ROOT / rel.rstrip("/")).exists(), f"README names {rel}, which does not exist"


def _option_lines_no_continuation_reaches(text: str) -> list[str]:
    """Lines that look like the options of the command above (indented, starting with -)
    where that command has already ended: a `# comment` ate its backslash, or it had none."""
    bad, heredoc, previous = [], None, ""
    for line in text.splitlines():
        if heredoc is not None:
            if line.strip() == heredoc:
                heredoc = None
            continue
        if re.match(r"^\s+-", line) and not previous.endswith("\\"):
            bad.append(line)
        if marker := re.search(r"<<-?\s*'?\"?(\w+)", line):
            heredoc = marker[1]
        previous = line.rstrip()
    return bad


def test_every_shell_block_survives_a_paste() -> None:
    """bash parses it, and no option line is cut off its command (the register example
    once had a `# comment` inside its line continuation: pasted, each option ran alone)."""
    found = shell_blocks(TEXT)
    assert len(found) > 30
    for block in found:
        done = subprocess.run(
            ["bash", "-n"], input=block.text, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"{block.where}: {done.stderr}"
        assert _option_lines_no_continuation_reaches(block.text) == [], block.where
    assert _option_lines_no_continuation_reaches("mvctl a \\\n  --b   # c\n  --d\n") == ["  --d"]


def test_every_mvctl_command_shown_exists_with_those_options() -> None:
    seen = set()
    for block in shell_blocks(TEXT):
        for argv in mvctl_commands(block.text):
            seen.add(check_command(argv))
    assert len(seen) > 25, sorted(seen)


def _options(command: Any) -> set[str]:
    return {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}


def test_the_command_reference_documents_every_command_and_what_its_examples_use() -> None:
    """Each command has a README section whose heading names it; the options a heading
    shows are the command's; and every option a --help example uses is in its section, so
    the examples teach nothing the reference leaves out."""
    found = sections(TEXT)
    assert len(found) > 40
    for title, _ in found:
        for usage in re.findall(r"`(mvctl [^`]+)`", title):
            command, _, path = resolve(shlex.split(usage.split(" [")[0]))
            for flag in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", usage):
                assert flag in _options(command), f"README {title!r}: {path} has no {flag}"
    leaves = [path for path, command in walk() if not hasattr(command, "commands")]
    assert len(leaves) > 25
    for path in leaves:
        text = "\n".join(body for title, body in found if f"`mvctl {path}" in title)
        assert text, f"README: no section whose heading names mvctl {path}"
        for argv in mvctl_commands("\n".join(EXAMPLES[path])):
            command = resolve(argv)[0]
            for flag in (word.split("=", 1)[0] for word in argv if word.startswith("-")):
                # -c is documented as --channel: any spelling of the option will do.
                (param,) = [p for p in command.params if flag in (*p.opts, *p.secondary_opts)]
                spellings = "|".join(map(re.escape, (*param.opts, *param.secondary_opts)))
                assert re.search(rf"(?<![\w-])(?:{spellings})(?![\w-])", text), (
                    f"mvctl {path} --help shows {flag}; its README section does not"
                )


def test_the_pre_commit_rev_is_this_release() -> None:
    (block,) = [b for b in blocks(TEXT) if "pre-commit-config.yaml" in b.text]
    (repo,) = yaml.safe_load(block.text)["repos"]
    assert repo["rev"] == f"v{mvctl.__version__}"
    assert repo["hooks"] == [{"id": "mvctl-check"}]
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in hooks] == ["mvctl-check"]
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(
        rf"^## \[{re.escape(mvctl.__version__)}\] - \d{{4}}-\d\d-\d\d$", changelog, re.M
    )
    assert changelog.index("## [Unreleased]") < changelog.index(f"## [{mvctl.__version__}]")


def test_the_alertmanager_config_is_the_examples_file() -> None:
    example = ROOT / "examples" / "observability" / "alertmanager.yml"
    (block,) = [b for b in blocks(TEXT) if b.lang == "yaml" and "webhook_configs" in b.text]
    assert block.text == example.read_text()
    config = yaml.safe_load(block.text)
    route = config["route"]
    assert {"group_by", "group_wait", "group_interval", "repeat_interval"} <= set(route)
    (sub,) = route["routes"]
    assert any(m.startswith("mvctl_model") for m in sub["matchers"])
    (receiver,) = [r for r in config["receivers"] if r["name"] == sub["receiver"]]
    (hook,) = receiver["webhook_configs"]
    auth = hook["http_config"]["authorization"]
    assert auth["type"] == "Bearer" and auth["credentials_file"] == "tokens/webhook.token"
    # ... and the webhook's side of the token is shown next to it: the same file.
    webhook = [
        argv
        for b in shell_blocks(TEXT)
        for argv in mvctl_commands(b.text)
        if argv[1:3] == ["webhook", "serve"] and "--token-file" in argv
    ]
    assert any(a[a.index("--token-file") + 1].endswith("tokens/webhook.token") for a in webhook)


def _steps_fetch_tags_first(steps: list[dict[str, Any]], where: str) -> None:
    checkout = next(s for s in steps if str(s.get("uses", "")).startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0, where
    assert checkout["with"]["fetch-tags"] is True, where
    runs = [s["run"] for s in steps if "run" in s]
    fetch = next(i for i, r in enumerate(runs) if "git fetch --force --tags origin" in r)
    first_mvctl = next(i for i, r in enumerate(runs) if mvctl_commands(r))
    assert fetch < first_mvctl, f"{where}: mvctl runs before the tags are fetched"


def test_the_ci_recipe_fetches_the_tags_as_the_templates_do() -> None:
    (block,) = [b for b in blocks(TEXT) if b.lang == "yaml" and "actions/checkout" in b.text]
    docs = list(yaml.safe_load_all(block.text))
    assert len(docs) == 2
    for n, doc in enumerate(docs):
        _steps_fetch_tags_first(doc["steps"], f"{block.where}, document {n + 1}")
        for step in doc["steps"]:
            for argv in mvctl_commands(step.get("run", "")):
                check_command(argv)
    for path in sorted((ROOT / "examples" / "ci" / "github").glob("*.yml")):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            _steps_fetch_tags_first(job["steps"], path.name)
    gitlab = (ROOT / "examples" / "ci" / "gitlab" / ".gitlab-ci.yml").read_text()
    assert "GIT_DEPTH: 0" in gitlab and "--force --tags origin" in gitlab


def test_the_performance_tables_are_rows_of_the_benchmark_results() -> None:
    """README's figures are the benchmarks' own: every line of its Performance tables (the
    header rows included) is a line of benchmarks/RESULTS.md, so a rerun that changes a
    figure fails here until the README shows it."""
    section = TEXT.split("\n## Performance\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    results = set((ROOT / "benchmarks" / "RESULTS.md").read_text().splitlines())
    assert len([r for r in rows if not r.startswith("|---")]) >= 12
    missing = [row for row in rows if row not in results]
    assert not missing, "README rows not in benchmarks/RESULTS.md:\n" + "\n".join(missing)
