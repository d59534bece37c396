"""Promote the gated candidate to production: baseline updated, version and stage tagged in git.

Follows GTO's conventions (https://dvc.org/doc/gto): a version tag `<artifact>@vX.Y.Z` and a stage tag
`<artifact>#prod#N` on the commit that records the promotion, so `git checkout <tag>` followed by
`dvc checkout` restores exactly the promoted model. Refuses anything but a committed, passing run.
"""

import json
from pathlib import Path

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
    sample_positions,
    write_json,
    write_parquet,
)
from .model import binary_labels, verified_md5

STAGE = "prod"
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


def refuse_unless_committed_and_passing(params: Params) -> None:
    if not read_report(params.paths.gate).passed:
        raise PipelineError("the gate verdict is FAILED (metrics/gate.json): only a model that passed is promoted")
    if git("status", "--porcelain", "--untracked-files=no").strip():
        raise PipelineError("uncommitted changes: commit the run (dvc.lock, metrics) before promoting it")
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


def main() -> None:
    from gto import api as gto

    params = load_params()
    refuse_unless_committed_and_passing(params)
    model_path = params.paths.model
    artifact = model_artifact(model_path)
    version = next_version(artifact)
    md5 = verified_md5(model_path)
    current = read_baseline(params.paths.baseline)
    if current is not None and current.model_md5 == md5:
        print(f"promote: this model is already {STAGE} ({artifact} {current.version}); nothing to do")
        return
    baseline = Promotion(
        artifact=artifact,
        version=version,
        model_md5=md5,
        source_commit=git("rev-parse", "HEAD").strip(),
        metrics=read_json(params.paths.evaluation),
    )
    paths, settings = params.paths, params.validation
    recorded = [str(path) for path in (paths.baseline, paths.reference, paths.validation, paths.gate)]
    recorded.append("dvc.lock")
    write_json(baseline.model_dump(), paths.baseline)
    train = read_parquet(paths.train)
    labels = binary_labels(train.pop(params.data.target), params.data.positive_class)
    kept = sample_positions(len(train), settings.reference_rows, settings.seed, labels)
    write_parquet(train.iloc[kept], paths.reference)
    try:
        dvc("repro", "--quiet")  # the gate re-runs against its new baseline, so dvc.lock stays current
        git("add", *recorded)
        git("commit", "--quiet", "-m", f"Promote {artifact} {version} to {STAGE}")
    except PipelineError:
        git("checkout", "HEAD", "--", *recorded)  # leave production exactly as it was
        raise
    gto.register(".", artifact, "HEAD", version=version, message=f"{artifact} {version}")
    gto.assign(".", artifact, STAGE, version=version, message=f"{artifact} {version} to {STAGE}")
    print(f"promote: {artifact} {version} is now {STAGE} (tags {artifact}@{version}, {artifact}#{STAGE}#...)")
