"""The model registry: promote the gated candidate to production or canary, roll production back,
and show who holds each stage.

Follows GTO's conventions (https://dvc.org/doc/gto): a version tag `<artifact>@vX.Y.Z` and stage tags
`<artifact>#<stage>#N` (`<artifact>#<stage>!#N` unassigns), so git is the registry and `gto show`
reads it. A prod promotion or rollback commits the production record (`production/baseline.json`,
which the gate compares with, and `production/reference.parquet`, which validate checks drift
against) before tagging, so `git checkout <tag>` then `dvc checkout` restores exactly that model.
Only a committed, passing run is promoted; a rollback changes the registry and the production
record, never the workspace candidate of dvc.lock.
"""

import json
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

from .core import (
    Params,
    PipelineError,
    Promotion,
    dvc,
    git,
    load_params,
    read_baseline,
    read_json,
    read_parquet,
    read_report,
    run_tool,
    sample_positions,
    write_json,
    write_parquet,
)
from .model import recorded_md5, verified_md5
from .task import encode_target, is_classification

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from gto.base import VStage

STAGE = "prod"
CANARY = "canary"
FIRST_VERSION = "v1.0.0"


def model_artifact(model_path: Path) -> str:
    """The artifact name dvc.yaml's `artifacts:` section gives the model file (as DVC resolves it)."""
    from dvc.repo import Repo

    with Repo(".") as repo:
        artifacts = repo.artifacts.read().get("dvc.yaml", {})
    names = [name for name, artifact in artifacts.items() if Path(artifact.path) == model_path]
    if not names:
        raise PipelineError(f"dvc.yaml's artifacts section declares no artifact with path {model_path}: add one")
    return names[0]


def in_git_repository() -> bool:
    return run_tool("git", "rev-parse", "--is-inside-work-tree", check=False).returncode == 0


def refuse_unless_git_repository() -> None:
    if not in_git_repository():
        raise PipelineError("not a git repository: the registry is git tags, so run this in the project's git clone")


def refuse_unless_committed_and_passing(params: Params) -> None:
    if not read_report(params.paths.gate).passed:
        raise PipelineError("the gate verdict is FAILED (metrics/gate.json): only a model that passed is promoted")
    refuse_unless_committed()


def refuse_unless_committed() -> None:
    refuse_unless_git_repository()
    if git("status", "--porcelain", "--untracked-files=no").strip():
        raise PipelineError("uncommitted changes: commit the run (dvc.lock, metrics) before changing the registry")
    differences = lock_differences(json.loads(dvc("status", "--json")))
    if differences:
        raise PipelineError(
            f"the workspace does not match dvc.lock ({'; '.join(differences)}): restore an output replaced by hand "
            "or by `dvc checkout` of another version with `dvc checkout`, or run `dvc repro` and commit; then promote"
        )


def lock_differences(status: dict) -> list[str]:
    """`dvc status --json` as short phrases, e.g. "train: models/model.joblib modified (changed outs)"."""
    phrases = []
    for stage, entries in status.items():
        for entry in entries:
            if not isinstance(entry, dict):  # e.g. "changed command"
                phrases.append(f"{stage}: {entry}")
                continue
            for kind, changes in entry.items():
                for path, change in changes.items():
                    what = change if isinstance(change, str) else ", ".join(f"{k} {v}" for k, v in change.items())
                    phrases.append(f"{stage}: {path} {what} ({kind})")
    return phrases


def next_version(artifact: str) -> str:
    """The next minor version after the latest one GTO finds registered (any semantic version, e.g.
    v1.2.0-rc1, counts), or the first."""
    from gto.api import find_latest_version
    from gto.exceptions import ArtifactNotFound
    from gto.versions import SemVer

    try:
        latest = find_latest_version(".", artifact)
    except ArtifactNotFound:  # no version registered yet
        latest = None
    return FIRST_VERSION if latest is None else SemVer(latest.version).bump_minor().version


def version_at_head(artifact: str) -> str | None:
    """The version GTO has registered at the commit checked out, if any."""
    from gto import api as gto
    from gto.exceptions import ArtifactNotFound

    head = git("rev-parse", "HEAD").strip()
    try:
        versions = gto.show(".", artifact, registered_only=True)
    except ArtifactNotFound:  # nothing registered yet
        return None
    return next((version["version"] for version in versions if version["commit_hexsha"] == head), None)


def holder(artifact: str, stage: str) -> "VStage | None":
    """GTO's record of the version holding `stage` (version, commit, since when), or None."""
    from gto import api as gto
    from gto.exceptions import ArtifactNotFound

    try:
        holders = gto.find_versions_in_stage(".", artifact, stage)
    except ArtifactNotFound:  # nothing registered yet
        return None
    return holders[0] if holders else None


def prod_lineage(artifact: str) -> list[str]:
    """The versions prod went through, oldest first, less those a rollback undid: the last one holds
    prod and a rollback returns to the one before it (v1, v2, rollback, v3 gives [v1, v3])."""
    from gto import api as gto

    events = gto.history(".", artifact)  # empty before the first registration
    assignments = [event for event in events if event["event"] == "assignment" and event["stage"] == STAGE]
    # in order of time, then of the tag's counter (two tags in one second)
    assignments.sort(key=lambda event: (event["timestamp"], gto.parse_tag(event["ref"]).get("counter", 0)))
    lineage: list[str] = []
    for version in (event["version"] for event in assignments):
        if version in lineage:  # a rollback to it: what came after it is undone
            del lineage[lineage.index(version) + 1 :]
        else:
            lineage.append(version)
    return lineage


def commit_production(params: Params, message: str) -> None:
    """Commit the production record just written, after the pipeline re-ran against it (the gate reads
    the baseline, validate the reference), so dvc.lock stays current; on failure, put it back as it was."""
    paths = params.paths
    recorded = [str(path) for path in (paths.baseline, paths.reference, paths.validation, paths.gate)]
    recorded.append("dvc.lock")
    try:
        dvc("repro", "--quiet")
        git("add", *recorded)
        git("commit", "--quiet", "-m", message)
    except PipelineError:
        git("checkout", "HEAD", "--", *recorded)  # leave production exactly as it was
        raise


def main(canary: bool = False) -> None:
    params = load_params()
    refuse_unless_committed_and_passing(params)
    model_path = params.paths.model
    artifact = model_artifact(model_path)
    md5 = verified_md5(model_path)
    current = read_baseline(params.paths.baseline)
    if current is not None and current.model_md5 == md5:
        print(f"promote: this model is already {STAGE} ({artifact} {current.version}); nothing to do")
        return
    if canary:
        promote_canary(artifact)
    else:
        promote_prod(params, artifact, md5)


def promote_canary(artifact: str) -> None:
    """The committed candidate takes the canary stage: registered at its commit, production untouched."""
    from gto import api as gto

    version = version_at_head(artifact)
    now = holder(artifact, CANARY)
    if version is not None and now is not None and now.version == version:
        print(f"promote: this model is already {CANARY} ({artifact} {version}); nothing to do")
        return
    if version is None:
        version = next_version(artifact)
        gto.register(".", artifact, "HEAD", version=version, message=f"{artifact} {version}")
    gto.assign(".", artifact, CANARY, version=version, message=f"{artifact} {version} to {CANARY}", force=True)
    print(f"promote: {artifact} {version} is now {CANARY} (tags {artifact}@{version}, {artifact}#{CANARY}#...)")


def promote_prod(params: Params, artifact: str, md5: str) -> None:
    """The committed candidate becomes prod. A version already registered at this commit (the canary, made
    by `promote --canary` here) keeps its number and gives up the canary stage; otherwise the next is registered."""
    from gto import api as gto

    registered = version_at_head(artifact)  # before the production record's commit moves HEAD
    version = registered or next_version(artifact)
    baseline = Promotion(
        artifact=artifact,
        version=version,
        model_md5=md5,
        source_commit=git("rev-parse", "HEAD").strip(),
        metrics=read_json(params.paths.evaluation),
    )
    paths, settings = params.paths, params.validation
    write_json(baseline.model_dump(), paths.baseline)
    train = read_parquet(paths.train)
    kept = sample_positions(len(train), settings.reference_rows, settings.seed, target_strata(train, params))
    write_parquet(train.iloc[kept], paths.reference)  # the target kept: validate checks its drift too
    commit_production(params, f"Promote {artifact} {version} to {STAGE}")
    if registered is None:
        gto.register(".", artifact, "HEAD", version=version, message=f"{artifact} {version}")
    gto.assign(".", artifact, STAGE, version=version, message=f"{artifact} {version} to {STAGE}", force=True)
    canary = holder(artifact, CANARY)
    if canary is not None and canary.version == version:
        retire_canary(artifact, version, f"{artifact} {version} from {CANARY} to {STAGE}")
    print(f"promote: {artifact} {version} is now {STAGE} (tags {artifact}@{version}, {artifact}#{STAGE}#...)")


def target_strata(train: "pd.DataFrame", params: Params) -> "np.ndarray | None":
    """The reference sample's strata: a classifier's class per row (binary 0/1, as the split), so each class
    keeps its share; none for a regression, whose target is a number, not a class."""
    import numpy as np

    if not is_classification(params.data.task):
        return None
    classes = encode_target(train[params.data.target], params.data)
    return classes if params.data.task == "binary" else np.unique(classes, return_inverse=True)[1]


def retire_canary(artifact: str, version: str, message: str) -> None:
    """The canary stage is unassigned from `version` (it became prod, or was rolled back); prod is untouched."""
    from gto import api as gto

    gto.unassign(".", artifact, version=version, stage=CANARY, message=message)


def rollback() -> None:
    """prod goes back to the version that held it before: its baseline and reference restored from its
    production record (`production_record_at`) and committed, then the stage re-assigned to it and
    unassigned from the version it replaces."""
    from gto import api as gto

    params = load_params()
    refuse_unless_committed()
    artifact = model_artifact(params.paths.model)
    lineage = prod_lineage(artifact)
    if len(lineage) < 2:
        held = f"only {lineage[0]} has held {STAGE}" if lineage else f"no version of {artifact} holds {STAGE} yet"
        raise PipelineError(f"nothing to roll back to: {held}; `promote` a newer model instead")
    current, previous = lineage[-1], lineage[-2]
    paths = params.paths
    recorded = production_record_at(artifact, previous, paths.baseline)
    git("checkout", recorded, "--", str(paths.baseline), str(paths.reference))
    commit_production(params, f"Roll back {artifact} {STAGE} from {current} to {previous}")
    message = f"{artifact} {STAGE} rolled back from {current} to {previous}"
    gto.assign(".", artifact, STAGE, version=previous, message=message, force=True)
    gto.unassign(".", artifact, version=current, stage=STAGE, message=message)
    print(f"rollback: {artifact} {previous} is {STAGE} again, in place of {current} (baseline and reference restored)")


def production_record_at(artifact: str, version: str, baseline: Path) -> str:
    """The commit whose production record is `version`'s: its tag's, or, for a canary promoted in place
    (registered before its record was written), the first later commit that records it."""
    tag = f"{artifact}@{version}"
    later = git("rev-list", "--reverse", f"{tag}..HEAD", "--", baseline.as_posix()).split()
    for commit in (tag, *later):
        shown = run_tool("git", "show", f"{commit}:{baseline.as_posix()}", check=False)
        if shown.returncode == 0 and json.loads(shown.stdout).get("version") == version:
            return commit
    raise PipelineError(f"no commit since {tag} records {version} in {baseline}: promote a version instead")


def status() -> None:
    """Who holds each stage and since when, and the workspace candidate's gate verdict."""
    params = load_params()
    refuse_unless_git_repository()
    artifact = model_artifact(params.paths.model)
    print(artifact)
    for stage in (STAGE, CANARY):
        record = holder(artifact, stage)
        if record is None:
            print(f"  {stage:<9} -")
            continue
        since = record.activated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        print(f"  {stage:<9} {record.version:<8} since {since} (commit {record.commit_hexsha[:8]})")
    md5 = recorded_md5(params.paths.model)
    current = read_baseline(params.paths.baseline)
    role = f"the {STAGE} model" if current is not None and current.model_md5 == md5 else "not in prod"
    verdict = "PASSED" if read_report(params.paths.gate).passed else "FAILED"
    print(f"  {'candidate':<9} md5 {md5[:8]} (dvc.lock), {role}, gate {verdict}")
