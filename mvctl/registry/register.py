"""``mvctl register``: record a model version as an immutable manifest, commit and tag."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from mvctl._adapters import dvc
from mvctl._adapters.git import GitRepo
from mvctl.analysis import profile
from mvctl.analysis.window import data_window
from mvctl.common import interrupts, yamlio
from mvctl.common.hashing import total_size
from mvctl.common.progress import NoProgress, ProgressSink
from mvctl.errors import Interrupted, OperationalError, PolicyError, UsageError
from mvctl.formats import config, tags, values
from mvctl.formats.labels import DataWindow, check_labels, parse_window
from mvctl.formats.layout import manifest_path, profile_path, written_files
from mvctl.formats.manifest import (
    DatasetEntry,
    Manifest,
    WeightsEntry,
    digest,
    fingerprint,
)
from mvctl.formats.names import Bump, Version, check_model, check_text, next_version
from mvctl.publishing import publish
from mvctl.publishing.sync import SyncResult, sync_git
from mvctl.registry import environment, parents, recovery
from mvctl.registry.inputs import Inputs, profile_source, read_inputs
from mvctl.registry.read import model_tags
from mvctl.registry.tracking import sha256_of, track, weights_entry
from mvctl.registry.transaction import Undo, write_atomic


@dataclass(frozen=True)
class RegisterRequest:
    """Paths on the command line are relative to ``cwd``; those from mvctl.yaml to the root."""

    model: str
    cwd: Path
    weights: str | None = None
    data: tuple[str, ...] = ()
    metrics_file: str | None = None
    metrics: tuple[str, ...] = ()  # KEY=NUMBER options
    params_file: str | None = None
    env_lock: str | None = None
    version: str | None = None
    bump: Bump = "minor"
    allow_dirty: bool = False
    push: bool | None = None  # None: publish when the git remote exists (mvctl.publish)
    git_remote: str = "origin"
    description: str = ""
    labels: tuple[str, ...] = ()  # KEY=VALUE
    data_window: str | None = None  # START..END; else from the model's columns.date, if any
    dry_run: bool = False


@dataclass(frozen=True)
class RegisterResult:
    manifest: Manifest
    tag: str
    commit: str | None  # None on a dry run
    pushed: bool = False
    dry_run: bool = False
    written: tuple[str, ...] = field(default_factory=tuple)
    remote: str | None = None  # where it was (or would be) published; None: kept local
    published: tuple[str, ...] = ()  # every tag the push carried

    def to_dict(self) -> dict[str, object]:
        return {
            "tag": self.tag,
            "commit": self.commit,
            "pushed": self.pushed,
            "remote": self.remote,
            "published": list(self.published),
            "dry_run": self.dry_run,
            "manifest": self.manifest.to_dict(),
        }


@dataclass(frozen=True)
class _Plan:
    """Everything register decides before it writes anything (the dry-run answer)."""

    git: GitRepo
    model: str
    version: Version
    tag: str
    inputs: Inputs
    cfg: config.ModelConfig
    head: str
    dirty: bool
    created: str
    author: str
    parent: str | None
    remote: str | None
    synced: SyncResult | None
    labels: tuple[str, ...] = ()
    window: DataWindow | None = None

    def manifest(
        self,
        weights: WeightsEntry,
        dataset: tuple[DatasetEntry, ...],
        profile: dict[str, str] | None,
        req: RegisterRequest,
    ) -> Manifest:
        return Manifest(
            model=self.model,
            version=str(self.version),
            created=self.created,
            author=self.author,
            profile=profile,
            weights=(weights,),
            dataset=dataset,
            environment=_env_dict(self.inputs.env),
            metrics=self.inputs.metrics,
            params=self.inputs.params,
            code={"commit": self.head, "dirty": self.dirty},
            parent=self.parent,
            description=req.description,
            labels=self.labels,
            data_window=self.window.to_dict() if self.window is not None else None,
        )


def _plan(req: RegisterRequest) -> _Plan:
    model = check_model(req.model)
    check_text(req.description.replace("\n", " "), "--description")
    labels = check_labels(req.labels)
    given = parse_window(req.data_window) if req.data_window is not None else None
    git = GitRepo.open(req.cwd)
    cfg = config.load(git.root).model(model)
    head = git.head_commit()
    if head is None:
        raise OperationalError("the repository has no commits yet", hint="run 'mvctl init' first")
    left = recovery.unfinished_at_head(git, model)
    if left is not None:
        raise recovery.unfinished_error(left)
    remote = publish.target(git, req.push, req.git_remote)
    synced = None
    if remote is not None and not req.dry_run:
        # Refuse an unreachable git remote before anything is written or uploaded, and learn
        # the versions others published, so the number chosen is free there too.
        synced = sync_git(git, remote, model)
    version = _choose_version(git, model, req)
    inputs = read_inputs(git.root, req, cfg)
    window = given or _window_of(git.root, cfg, inputs)
    dirty = _check_clean(git, model, req, inputs)
    mt = model_tags(git, model)
    parent = parents.parent_of_head(git, model, {v: r.commit for v, r in mt.versions.items()})
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    tag = tags.version_tag(model, version)
    return _Plan(
        git, model, version, tag, inputs, cfg, head, bool(dirty), created, git.ident(),
        parent, remote, synced, labels, window,
    )  # fmt: skip


def _window_of(root: Path, cfg: config.ModelConfig, inputs: Inputs) -> DataWindow | None:
    """The window of the data, from the model's date column (``columns: {date: ts}``) in its
    CSV/Parquet data files; None when the model names no date column."""
    column = cfg.date_column
    if column is None:
        return None
    files = [root / p for p in inputs.data if p.lower().endswith(profile.TABULAR)]
    files = [f for f in files if f.is_file()]
    if not files:
        raise UsageError(
            f"columns.date is {column!r} but no CSV or Parquet data file holds it",
            hint="pass --data-window START..END, or register the data file itself",
        )
    return data_window(files, column)


def register(req: RegisterRequest, progress: ProgressSink | None = None) -> RegisterResult:
    """Record a model version: DVC-track and upload its artifacts, write the manifest and
    the reference profile, commit exactly those files, tag the commit, and publish."""
    sink = progress or NoProgress()
    plan = _plan(req)
    root, inputs = plan.git.root, plan.inputs
    if req.dry_run:
        size = total_size(root / inputs.weights)
        weights = WeightsEntry(inputs.weights, "", "", size)
        dataset = tuple(DatasetEntry(p, "", None, None) for p in inputs.data)
        planned = plan.manifest(weights, dataset, None, req)
        return RegisterResult(planned, plan.tag, None, dry_run=True, remote=plan.remote)
    touched = _own_paths(plan.model, inputs)
    undo = Undo(plan.git, plan.head)
    undo.snapshot(touched)
    try:
        weights, dataset = _upload(plan, req, sink, progress)
        profile_ref = _write_profile(root, plan.model, inputs, plan.cfg, sink)
        record = plan.manifest(weights, dataset, profile_ref, req)
        commit, written = _commit_and_tag(plan, record, touched, undo)
        try:
            synced = plan.synced
            names = publish_registration(plan.git, plan.model, synced) if synced else []
        except publish.Unsettled as unsettled:
            names = publish.settle(unsettled, undo.rollback)
        interrupts.settle()
    except (publish.Unsettled, Interrupted):
        raise  # settled: the state it left is the one its message names
    except BaseException:
        with interrupts.shielded():
            undo.rollback()
        raise
    return RegisterResult(
        record,
        plan.tag,
        commit,
        pushed=plan.synced is not None,
        written=tuple(written),
        remote=plan.remote,
        published=tuple(names),
    )


def _upload(
    plan: _Plan, req: RegisterRequest, sink: ProgressSink, progress: ProgressSink | None
) -> tuple[WeightsEntry, tuple[DatasetEntry, ...]]:
    """DVC-track and upload the weights and data; sha256 runs beside DVC's own hashing and
    upload (hashlib releases the GIL), so register costs little more than `dvc add` + push."""
    root, inputs = plan.git.root, plan.inputs
    with ThreadPoolExecutor(max_workers=1) as pool:
        hashing = pool.submit(sha256_of, root / inputs.weights, sink)
        with dvc.open_project(root) as project:
            winfo, dataset = track(project, root, inputs)
            # Counting bytes costs DVC a second look at the remote: only when asked.
            project.push(
                [inputs.weights, *inputs.data], progress=progress, label="pushing to the DVC remote"
            )
            project.set_artifact(
                plan.model, inputs.weights, description=req.description, labels=plan.labels
            )
            return weights_entry(project, winfo, hashing.result()), dataset


def _commit_and_tag(
    plan: _Plan, record: Manifest, touched: list[str], undo: Undo
) -> tuple[str, list[str]]:
    git = plan.git
    write_atomic(git.root / manifest_path(plan.model), record.dumps())
    written = git.changed_paths(touched)
    commit = git.commit_paths(written, f"Register {plan.model} {plan.version}")
    undo.committed(commit)
    message = version_tag_message(record, code_digest(git, plan.head, plan.dirty))
    undo.tagged(plan.tag, git.create_annotated_tag(plan.tag, commit, message))
    return commit, written


def code_digest(git: GitRepo, commit: str, dirty: bool) -> str:
    """A digest of the code at ``commit``: every tracked file except what register and DVC
    write (manifests, .dvc files, .gitignore files, dvc.yaml's artifacts section), so that
    lineage can tell whether code changed between versions without a diff per version."""
    lines = []
    for mode, obj, path in git.tree_entries(commit):
        name = PurePosixPath(path).name
        if path.startswith("registry/") or name.endswith(".dvc") or name == ".gitignore":
            continue
        if path == "dvc.yaml":
            data = yamlio.loads(git.read_blob(commit, path) or "", path)
            if isinstance(data, dict):
                data.pop("artifacts", None)
            obj = digest(data or {})
        lines.append(f"{mode} {obj} {path}")
    tree = digest(lines)
    return f"{tree}+dirty" if dirty else tree


def version_tag_message(record: Manifest, code: str) -> str:
    """The version tag's message: a title and the fields `list` and `lineage` read, so that
    neither has to open a manifest."""
    return version_tag_message_of(record.to_dict(), code)


def version_tag_message_of(data: dict[str, Any], code: str) -> str:
    """:func:`version_tag_message` of a manifest as stored (a mapping)."""
    body = tags.VersionBody(
        model=data["model"],
        version=data["version"],
        created=data.get("created"),
        author=data.get("author"),
        parent=data.get("parent"),
        metrics=values.flatten(data.get("metrics") or {}),
        fingerprint=fingerprint(data, code),
        labels=tuple(x for x in data.get("labels") or () if isinstance(x, str)),
        description=data.get("description") or "",
        data_window=data.get("data_window") if isinstance(data.get("data_window"), dict) else None,
    )
    return tags.format_message(f"Register {data['model']} {data['version']}", body.to_dict())


def _choose_version(git: GitRepo, model: str, req: RegisterRequest) -> Version:
    mt = model_tags(git, model)
    # Deregistered versions keep their tags, so they are never handed out again either.
    existing = [Version.parse(v) for v in (*mt.versions, *mt.deregistered)]
    if req.version is None:
        return next_version(existing, req.bump)
    wanted = Version.parse(req.version)
    if str(wanted) in mt.versions or str(wanted) in mt.deregistered:
        raise PolicyError(
            f"{model} {wanted} is already registered; versions are immutable",
            hint="pick another --version or use --bump",
        )
    return wanted


def _write_profile(
    root: Path, model: str, inputs: Inputs, cfg: config.ModelConfig, sink: ProgressSink
) -> dict[str, str] | None:
    """The reference profile of the training data (the model's ``profile:`` path, else its
    first CSV/Parquet data file), so monitors never need the dataset; none without one."""
    import hashlib

    target = root / profile_path(model)
    source = profile_source(root, cfg, inputs.data)
    if source is None:
        target.unlink(missing_ok=True)  # never leave the previous version's profile behind
        return None
    advance = sink.task(f"profiling {source}", None)
    frame = profile.read_table(root / source, max_rows=profile.MAX_PROFILE_ROWS)
    roles = cfg.raw.get("columns") if isinstance(cfg.raw.get("columns"), dict) else {}
    if cfg.date_column is not None and cfg.date_column in frame.columns:
        frame = frame.drop(columns=[cfg.date_column])  # a time always drifts: no reference
    text = profile.dumps(profile.build(frame, source, roles))
    write_atomic(target, text)
    advance(1)
    return {
        "path": profile_path(model),
        "source": source,
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
    }


def _own_paths(model: str, inputs: Inputs) -> list[str]:
    """Files register itself may write: never counted as user changes."""
    return written_files(model, (inputs.weights, *inputs.data))


def _check_clean(git: GitRepo, model: str, req: RegisterRequest, inputs: Inputs) -> list[str]:
    """Refuse artifacts git tracks, and (unless allowed) uncommitted code; return the dirt."""
    for path in (inputs.weights, *inputs.data):
        if git.is_tracked(path):
            raise OperationalError(
                f"{path} is tracked by git, so DVC cannot track it",
                hint=f"run: git rm -r --cached -- {path} && git commit",
            )
    # Training rewrites its metrics file, and register rewrites its own files: neither is code.
    exempt = {*_own_paths(model, inputs), inputs.weights, *inputs.data}
    if inputs.metrics_file:
        exempt.add(inputs.metrics_file)
    dirty = [p for p in git.dirty_paths() if p not in exempt]
    if dirty and not req.allow_dirty:
        shown = ", ".join(dirty[:5]) + (" ..." if len(dirty) > 5 else "")
        raise PolicyError(
            f"uncommitted changes to tracked files: {shown}",
            hint="commit them so the version records its code, or pass --allow-dirty",
        )
    return dirty


def _env_dict(env: environment.Environment) -> dict[str, object]:
    data: dict[str, object] = {
        "python": env.python,
        "platform": env.platform,
        "packages": env.packages,
    }
    if env.lockfile is not None:
        data["lockfile"] = {"path": env.lockfile.path, "sha256": env.lockfile.sha256}
    return data


def publish_registration(git: GitRepo, model: str, synced: SyncResult) -> list[str]:
    """The branch and every tag of ``model`` the remote lacks (earlier versions registered
    locally included, so the new version never names a parent the remote lacks)."""
    branch = git.current_branch()
    records = git.tags(f"{tags.TAG_PREFIX}{model}@*", f"{tags.TAG_PREFIX}{model}#*")
    extra = [f"HEAD:refs/heads/{branch}"] if branch else []
    return publish.push_refs(
        git, publish.pending(records, synced), extra=extra, skip_conflicted=True
    )
