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
from mvctl.common import interrupts, yamlio
from mvctl.common.hashing import FileHash, sha256_file, sha256_tree, total_size
from mvctl.common.progress import NoProgress, ProgressSink
from mvctl.errors import Interrupted, OperationalError, PolicyError
from mvctl.formats import config, tags, values
from mvctl.formats.layout import manifest_path, profile_path, written_files
from mvctl.formats.manifest import (
    DatasetEntry,
    Manifest,
    WeightsEntry,
    WeightsFile,
    digest,
    fingerprint,
)
from mvctl.formats.names import Bump, Version, check_model, check_text, next_version
from mvctl.lineage import tree as lineage
from mvctl.publishing import publish
from mvctl.publishing.sync import SyncResult, sync_git
from mvctl.registry import environment, recovery
from mvctl.registry.inputs import Inputs, profile_source, read_inputs
from mvctl.registry.read import model_tags
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
    labels: tuple[str, ...] = ()
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


def register(req: RegisterRequest, progress: ProgressSink | None = None) -> RegisterResult:
    sink = progress or NoProgress()
    model = check_model(req.model)
    check_text(req.description.replace("\n", " "), "--description")
    for label in req.labels:
        check_text(label, "--label", limit=200)
    git = GitRepo.open(req.cwd)
    root = git.root
    cfg = config.load(root).model(model)
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
    inputs = read_inputs(root, req, cfg)
    dirty = _check_clean(git, model, req, inputs)
    tag = tags.version_tag(model, version)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    author = git.ident()
    code = {"commit": head, "dirty": bool(dirty)}
    mt = model_tags(git, model)
    parent = lineage.parent_of_head(git, model, {v: r.commit for v, r in mt.versions.items()})

    if req.dry_run:
        planned = Manifest(
            model=model,
            version=str(version),
            created=created,
            author=author,
            weights=(WeightsEntry(inputs.weights, "", "", total_size(root / inputs.weights)),),
            dataset=tuple(DatasetEntry(p, "", None, None) for p in inputs.data),
            environment=_env_dict(inputs.env),
            metrics=inputs.metrics,
            params=inputs.params,
            code=code,
            parent=parent,
            description=req.description,
            labels=req.labels,
        )
        return RegisterResult(planned, tag, None, dry_run=True, remote=remote)

    touched = _own_paths(model, inputs)
    undo = Undo(git, head)
    undo.snapshot(touched)
    try:
        # sha256 runs beside DVC's own hashing and upload (hashlib releases the GIL), so
        # register costs little more than `dvc add` + `dvc push`.
        with ThreadPoolExecutor(max_workers=1) as pool:
            hashing = pool.submit(_sha256, root / inputs.weights, sink)
            with dvc.open_project(root) as project:
                winfo, dataset = _track(project, root, inputs)
                task = sink.task("pushing artifacts to the DVC remote", None)
                project.push([inputs.weights, *inputs.data])
                task(1)
                project.set_artifact(
                    model, inputs.weights, description=req.description, labels=req.labels
                )
                weights = _weights_entry(project, winfo, hashing.result())
        profile_ref = _write_profile(root, model, inputs, cfg, sink)
        record = Manifest(
            model=model,
            version=str(version),
            created=created,
            author=author,
            profile=profile_ref,
            weights=(weights,),
            dataset=dataset,
            environment=_env_dict(inputs.env),
            metrics=inputs.metrics,
            params=inputs.params,
            code=code,
            parent=parent,
            description=req.description,
            labels=req.labels,
        )
        write_atomic(root / manifest_path(model), record.dumps())
        written = git.changed_paths(touched)
        commit = git.commit_paths(written, f"Register {model} {version}")
        undo.committed(commit)
        message = version_tag_message(record, code_digest(git, head, bool(dirty)))
        undo.tagged(tag, git.create_annotated_tag(tag, commit, message))
        try:
            names = publish_registration(git, model, synced) if synced is not None else []
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
        tag,
        commit,
        pushed=synced is not None,
        written=tuple(written),
        remote=remote,
        published=tuple(names),
    )


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


def _track(
    project: dvc.DvcProject, root: Path, inputs: Inputs
) -> tuple[dvc.TrackedPath, tuple[DatasetEntry, ...]]:
    # Imports and pipeline outputs keep the stage that produced them; plain paths are
    # (re-)added so the record matches what is in the work tree now.
    to_add = []
    for path in (inputs.weights, *inputs.data):
        known = project.tracked(path) if project.may_track(path) else None
        plain = known is None or (known.dvcfile == f"{path}.dvc" and known.source is None)
        if plain and (root / path).exists():
            to_add.append(path)
    project.add(to_add)

    winfo = project.tracked(inputs.weights)
    if winfo is None:  # pragma: no cover - just added
        raise OperationalError(f"DVC does not track {inputs.weights}")
    dataset = []
    for path in inputs.data:
        info = project.tracked(path)
        if info is None:  # pragma: no cover - just added
            raise OperationalError(f"DVC does not track {path}")
        source = None
        if info.source is not None:
            source = {
                "repo": info.source.repo,
                "rev": info.source.rev or "",
                "rev_lock": info.source.rev_lock or "",
                "path": info.source.path,
            }
        dataset.append(DatasetEntry(path, info.md5, info.size, info.nfiles, source))
    return winfo, tuple(dataset)


def _sha256(path: Path, sink: ProgressSink) -> tuple[list[FileHash], str | None]:
    """A file's hash (and no tree), or a directory's per-file hashes and tree hash."""
    advance = sink.task(f"hashing {path.name}", total_size(path))
    if path.is_file():
        return [sha256_file(path, advance)], None
    return sha256_tree(path, advance)


def _weights_entry(
    project: dvc.DvcProject, info: dvc.TrackedPath, hashed: tuple[list[FileHash], str | None]
) -> WeightsEntry:
    files, tree = hashed
    if not info.is_dir:
        return WeightsEntry(info.path, info.md5, files[0].sha256, files[0].size)
    md5s = dict(project.dir_listing(info.md5))
    entries = tuple(WeightsFile(f.path, md5s.get(f.path, ""), f.sha256, f.size) for f in files)
    return WeightsEntry(info.path, info.md5, tree or "", sum(f.size for f in files), entries)


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
