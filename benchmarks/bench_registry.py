"""Registry reads at 1000 versions: mvctl list/show/--help against GTO on the same repo.

Builds a registry with `mvctl init`, then appends 1000 registrations with `git fast-import`,
each writing exactly what `mvctl register` writes (manifest, .dvc files, dvc.yaml, annotated
version tag with the same message), so building takes seconds instead of an hour of DVC.

    python benchmarks/bench_registry.py [--versions 1000] [--runs 5]

Budgets (DESIGN.md): list/show under 0.5 s at 1000 versions; --help under 0.25 s.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import tempfile
from pathlib import Path

from _common import (
    BIN,
    fast_import,
    fast_import_data,
    isolated_env,
    machine,
    median_seconds,
    new_registry,
    run,
    write_section,
)

from mvctl._adapters.git import GitRepo
from mvctl.common import yamlio
from mvctl.formats import tags
from mvctl.formats.layout import manifest_path
from mvctl.formats.manifest import DatasetEntry, Manifest, WeightsEntry
from mvctl.registry.environment import capture
from mvctl.registry.register import code_digest, version_tag_message

MODEL = "fraud"


def _dvc_file(md5: str, size: int, path: str) -> str:
    return yamlio.dumps({"outs": [{"md5": md5, "size": size, "hash": "md5", "path": path}]})


_ENV_SENTINEL = "MVCTL-BENCH-ENVIRONMENT"


def _manifest_text(record: Manifest, env_block: str, check: bool) -> str:
    """``record.dumps()``, with the environment (the same for every version, and most of
    the YAML dump's time) spliced in from one dump; ``check`` compares with the real one."""
    fields = record.to_dict()
    fields["environment"] = _ENV_SENTINEL
    text = yamlio.dumps(fields).replace(f"environment: {_ENV_SENTINEL}\n", env_block, 1)
    if check:
        assert text == record.dumps(), "the spliced manifest differs from Manifest.dumps()"
    return text


def build(root: Path, env: dict[str, str], versions: int, filler: int = 0) -> None:
    """``versions`` registrations, each after ``filler`` ordinary code commits."""
    new_registry(root, env, root.parent / "storage")
    head = run(["git", "rev-parse", "HEAD"], root, env).strip()
    # Only files register excludes from the code digest change between versions here (the
    # filler commits aside, whose changes the digest would see; its value does not affect
    # read timings), so one digest stands for every version.
    code = code_digest(GitRepo.open(root), head, dirty=False)
    environment = capture()
    env_dict = {
        "python": environment.python,
        "platform": environment.platform,
        "packages": environment.packages,
    }
    env_block = yamlio.dumps({"environment": env_dict})
    dvc_yaml = yamlio.dumps({"artifacts": {MODEL: {"path": "models/model.bin", "type": "model"}}})
    chunks: list[str] = []
    parent: str | None = None
    mark = 0
    for i in range(1, versions + 1):
        for j in range(filler):
            mark += 1
            stamp = 1767225600 + i
            chunks.append(
                "\n".join(
                    [
                        "commit refs/heads/main",
                        f"mark :{mark}",
                        f"committer Bench <bench@example.com> {stamp} +0000",
                        fast_import_data(f"Work {i}.{j}"),
                        *([f"from {head}"] if mark == 1 else []),
                        f"M 100644 inline src/module_{j}.py",
                        fast_import_data(f"VALUE = {i}\n"),
                    ]
                )
                + "\n"
            )
        version = f"v0.{i}.0"
        weights = f"weights {i}".encode()
        md5 = hashlib.md5(weights).hexdigest()  # noqa: S324 - DVC's content address
        data_md5 = hashlib.md5(f"data {i // 10}".encode()).hexdigest()  # noqa: S324
        created = f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z"
        metrics = {"auc": round(0.8 + i / 10_000, 6), "loss": {"val": round(1 / i, 6)}}
        record = Manifest(
            model=MODEL,
            version=version,
            created=created,
            author="Bench <bench@example.com>",
            weights=(
                WeightsEntry(
                    "models/model.bin", md5, hashlib.sha256(weights).hexdigest(), len(weights)
                ),
            ),
            dataset=(DatasetEntry("data/train.csv", data_md5, 1000, 1),),
            environment=env_dict,
            metrics=metrics,
            params={"train": {"C": 1.0 / i}},
            code={"commit": head, "dirty": False},
            parent=parent,
        )
        files = {
            manifest_path(MODEL): _manifest_text(record, env_block, check=i <= 3),
            "models/model.bin.dvc": _dvc_file(md5, len(weights), "model.bin"),
            "data/train.csv.dvc": _dvc_file(data_md5, 1000, "train.csv"),
            "models/.gitignore": "/model.bin\n",
            "data/.gitignore": "/train.csv\n",
            "dvc.yaml": dvc_yaml,
        }
        stamp = 1767225600 + i
        mark += 1
        lines = [
            "commit refs/heads/main",
            f"mark :{mark}",
            f"committer Bench <bench@example.com> {stamp} +0000",
            fast_import_data(f"Register {MODEL} {version}"),
        ]
        if mark == 1:
            lines.append(f"from {head}")
        for path, text in files.items():
            lines.append(f"M 100644 inline {path}")
            lines.append(fast_import_data(text))
        message = version_tag_message(record, code)
        lines += [
            f"tag {tags.version_tag(MODEL, version)}",
            f"from :{mark}",
            f"tagger Bench <bench@example.com> {stamp} +0000",
            fast_import_data(message),
        ]
        chunks.append("\n".join(lines) + "\n")
        parent = version
    fast_import(root, env, chunks)
    run(["git", "reset", "-q", "--hard", "main"], root, env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mvctl-bench-"))
    try:
        env = isolated_env(work / "home")
        root = work / "registry"
        build(root, env, args.versions)
        latest = f"v0.{args.versions}.0"
        middle = f"v0.{args.versions // 2}.0"
        listed = run([BIN / "mvctl", "list", MODEL, "--json"], root, env)
        assert listed.count('"version"') == args.versions, "list did not see every version"
        cases = {
            "mvctl --help": [BIN / "mvctl", "--help"],
            f"mvctl list {MODEL} --json": [BIN / "mvctl", "list", MODEL, "--json"],
            "mvctl list --json": [BIN / "mvctl", "list", "--json"],
            f"mvctl show {MODEL}@{middle} --json": [
                BIN / "mvctl",
                "show",
                f"{MODEL}@{middle}",
                "--json",
            ],
            f"mvctl show {MODEL} (latest)": [BIN / "mvctl", "show", MODEL],
            "gto show --json": [BIN / "gto", "show", "--json"],
            f"gto show {MODEL} --json": [BIN / "gto", "show", MODEL, "--json"],
        }
        times = {name: median_seconds(cmd, root, env, args.runs) for name, cmd in cases.items()}
        assert latest in listed
    finally:
        shutil.rmtree(work, ignore_errors=True)

    gto = times["gto show --json"]
    rows = [
        "| command | median (s) | vs `gto show --json` | budget |",
        "|---|---|---|---|",
    ]
    budgets = {"mvctl --help": 0.25}
    for name, seconds in times.items():
        budget = budgets.get(name, 0.5) if name.startswith("mvctl") else None
        verdict = "" if budget is None else f"< {budget} s: {'ok' if seconds < budget else 'OVER'}"
        rows.append(f"| `{name}` | {seconds:.3f} | {gto / seconds:.1f}x faster | {verdict} |")
    body = "\n".join(
        [
            f"## Registry reads at {args.versions} versions",
            "",
            f"`python benchmarks/bench_registry.py --versions {args.versions} --runs {args.runs}`"
            f" on {machine()}; medians of {args.runs} runs after one warm-up, each a fresh"
            " process as a user or CI step would run it.",
            "",
            *rows,
        ]
    )
    write_section("registry", body)
    print(body)


if __name__ == "__main__":
    main()
