"""Retraining: `retrain-check` says which triggers call for a retraining and why; `retrain` folds the new
labelled rows into the raw data and reproduces the pipeline, whose gate decides.

The three triggers, each set under `retrain:` in params.yaml:
- time: the model dvc.lock records was trained more than `max_age_days` ago (see `last_training`);
- data: at least `min_new_rows` labelled rows wait in CSV files directly under `paths.incoming`, each
  row meeting the data contract (a file that breaks it is an error naming the file, row and column);
- monitor: the latest `monitor` report (`paths.monitoring`) alerted. No report means not fired, and the
  reason says so. The report is read as it is: the scheduled CI job runs `monitor` just before the check.

`retrain` never promotes: the gate judges the retrained model, and a release goes through a pull request
and `promote` like any other. What it does, and what it keeps when something fails:
1. Every incoming file is read and checked first. A bad one stops it before anything is written.
2. Their rows are appended to the raw CSV, as text in the raw file's own encoding, delimiter and line
   endings, so existing rows keep their bytes. The CSV is written whole to a temporary file and then
   renamed, so it is never half-written. Then the folded files move to `<incoming>/folded/<time>/`, which
   git ignores, so they are never folded twice and never lost.
3. The raw CSV is re-tracked: `dvc add` when a `.dvc` file tracks it. Without one, git tracks it, and the
   change is committed with the rest.
4. `dvc repro`. If it or the gate fails, the fold stays in the workspace. The rows met the contract, and
   the failure is the model's or the pipeline's, which the report explains. Nothing is committed or
   promoted, so the committed raw data and the production model stay as they were until a reviewed pull
   request is merged. The message says how to undo the fold.
"""

import csv
import io
import json
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from .core import (
    GATE_FAILED,
    LOCK_FILE,
    Params,
    PipelineError,
    failure_lines,
    git,
    load_params,
    locked_outputs,
    read_json,
    replaced_atomically,
    run_tool,
)
from .preprocess import read_raw_csv, sniff
from .schema import Schema, check_params, check_rows, check_rules, load_schema, refuse_columns_outside

FOLDED = "folded"  # under paths.incoming: files already folded into the raw data, ignored by git
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class Trigger:
    fired: bool
    value: Any
    threshold: Any
    reason: str


# --- Time
def last_training(model: Path, lock_file: Path = LOCK_FILE) -> datetime | None:
    """When the model that dvc.lock records was trained; None when dvc.lock records no model.

    It is the commit time of the oldest commit in the unbroken run of commits, newest first, that record
    this same model md5 (train's output) in dvc.lock. Neither of the simpler answers works. The last commit
    that touched dvc.lock is often later: evaluate's timings change it without a new model. A file's
    modification time is reset by every clone. A model trained but not yet committed was trained now: the
    modification time of the workspace's dvc.lock. A shallow clone would hide older commits and make the
    model look younger, so it is refused.
    """
    current = locked_outputs("train", lock_file).get(model)
    if current is None:
        return None
    if git("rev-parse", "--is-shallow-repository").strip() == "true":
        raise PipelineError(
            "a shallow git clone hides when the model was trained: fetch the whole history "
            "(`git fetch --unshallow`; in CI, check out with fetch-depth: 0)"
        )
    trained_at = None
    for line in git("log", "--format=%H %ct", "--", str(lock_file)).splitlines():
        commit, seconds = line.split()
        if _model_md5_at(commit, model, lock_file) != current:
            break
        trained_at = datetime.fromtimestamp(int(seconds), UTC)
    return trained_at or datetime.fromtimestamp(lock_file.stat().st_mtime, UTC)


def _model_md5_at(commit: str, model: Path, lock_file: Path) -> str | None:
    with tempfile.TemporaryDirectory() as folder:
        committed = Path(folder) / lock_file.name
        committed.write_text(git("show", f"{commit}:{lock_file.as_posix()}"))
        return locked_outputs("train", committed).get(model)


def time_trigger(trained_at: datetime | None, now: datetime, max_age_days: float) -> Trigger:
    if trained_at is None:
        return Trigger(True, None, max_age_days, "dvc.lock records no trained model: a training is due")
    age = round((now - trained_at).total_seconds() / SECONDS_PER_DAY, 2)
    fired = age > max_age_days
    comparison = "older than" if fired else "within"
    when = trained_at.strftime("%Y-%m-%d %H:%M UTC")
    return Trigger(fired, age, max_age_days, f"the model was trained {when}, {age} days ago: {comparison} the limit")


# --- Data
def incoming_files(folder: Path) -> list[Path]:
    """The CSV files waiting directly under `folder`; those already folded sit in a subfolder."""
    return sorted(path for path in folder.glob("*.csv") if path.is_file()) if folder.is_dir() else []


def read_incoming(path: Path, schema: Schema, params: Params) -> pd.DataFrame:
    """An incoming file's rows in the schema's types, once every row is known to meet the contract."""
    frame = read_raw_csv(path, schema, params.data.csv_delimiter, params.data.csv_decimal)
    refuse_columns_outside(schema, path, list(sniff(path, params.data.csv_delimiter).header))
    refuse_broken_rows(frame, schema, path)
    return frame


Probe = Callable[[pd.DataFrame], list[str]]  # the failure lines of one constraint on some rows


def refuse_broken_rows(frame: pd.DataFrame, schema: Schema, path: Path) -> None:
    """Each constraint a row must meet, and for each one broken, the first row that breaks it.

    The contract's per-row checks (`check_rows`, the rules) count bad rows without naming them. A prefix
    of the file breaks a constraint exactly when it holds a bad row, so halving finds the first one.
    """
    label = path.name
    probes: list[Probe] = [
        *(partial(_column_failures, schema=schema, column=name, label=label) for name in schema.columns),
        *(partial(_rule_failures, rules={rule: expression}, label=label) for rule, expression in schema.rules.items()),
    ]
    problems = []
    for probe in probes:
        found = probe(frame)  # one line at most: the line names the column or the rule
        if found:
            problems.append(f"data row {_first_breaking_row(frame, probe)}: {found[0]}")
    if problems:
        raise PipelineError(
            f"{path} breaks the data contract ({len(problems)} constraints), so nothing was folded:\n  "
            + "\n  ".join(problems)
            + "\nFix or remove those rows (row 1 is the first after the header), then run again."
        )


def _column_failures(part: pd.DataFrame, schema: Schema, column: str, label: str) -> list[str]:
    return failure_lines(check_rows(part, schema, [column], label))


def _rule_failures(part: pd.DataFrame, rules: dict[str, str], label: str) -> list[str]:
    return failure_lines(check_rules(part, rules, label))


def _first_breaking_row(frame: pd.DataFrame, probe: Probe) -> int:
    """The 1-based number of the first row whose prefix breaks the constraint (the whole frame does)."""
    low, high = 1, len(frame)
    while low < high:
        middle = (low + high) // 2
        if probe(frame.iloc[:middle]):
            high = middle
        else:
            low = middle + 1
    return low


def count_new_rows(params: Params, schema: Schema) -> dict[Path, int]:
    """Labelled rows of each incoming file, every file checked against the contract."""
    target = params.data.target
    files = incoming_files(params.paths.incoming)
    return {path: int(read_incoming(path, schema, params)[target].notna().sum()) for path in files}


def data_trigger(rows_by_file: dict[Path, int], min_new_rows: int) -> Trigger:
    rows = sum(rows_by_file.values())
    fired = rows >= min_new_rows
    files = f"{len(rows_by_file)} CSV files" if len(rows_by_file) != 1 else "1 CSV file"
    enough = "enough to retrain" if fired else "fewer than needed"
    return Trigger(fired, rows, min_new_rows, f"{rows} new labelled rows in {files}: {enough}")


# --- Monitor
def monitor_trigger(report_path: Path, enabled: bool) -> Trigger:
    if not enabled:
        return Trigger(False, None, enabled, "retrain.on_monitor_alert is false: monitor alerts do not retrain")
    if not report_path.is_file():
        return Trigger(
            False, None, enabled, f"no monitor report at {report_path}: not fired; run `monitor` to judge production"
        )
    try:
        report = read_json(report_path)
    except ValueError:  # not JSON: written half-way, or by hand
        report = None
    if not isinstance(report, dict) or not isinstance(report.get("alerted"), bool):
        raise PipelineError(f"{report_path} has no true/false 'alerted' key: re-run `monitor` to rewrite it")
    alerts = report.get("alerts") or []
    if report["alerted"]:
        return Trigger(True, True, enabled, f"the latest monitor report alerted: {'; '.join(map(str, alerts))}")
    return Trigger(False, False, enabled, "the latest monitor report raised no alert")


# --- The commands
def check_triggers(params: Params, schema: Schema, now: datetime) -> dict[str, Any]:
    """Every trigger's verdict, and the names of those that fired."""
    settings = params.retrain
    triggers = {
        "time": time_trigger(last_training(params.paths.model), now, settings.max_age_days),
        "data": data_trigger(count_new_rows(params, schema), settings.min_new_rows),
        "monitor": monitor_trigger(params.paths.monitoring, settings.on_monitor_alert),
    }
    return {
        "fired": sorted(name for name, trigger in triggers.items() if trigger.fired),
        "triggers": {name: asdict(trigger) for name, trigger in triggers.items()},
    }


def retrain_check() -> None:
    """Print the triggers' verdicts as JSON; exit 0 whatever fired, since CI reads the JSON."""
    params, schema = _params_and_schema()
    print(json.dumps(check_triggers(params, schema, datetime.now(UTC)), indent=2, sort_keys=True))


def main() -> int | None:
    """`retrain`: fold the incoming rows, re-track the raw data, reproduce; the gate decides."""
    params, schema = _params_and_schema()
    files = incoming_files(params.paths.incoming)
    frames = {path: read_incoming(path, schema, params) for path in files}  # every file checked before any write
    if files:
        fold(params, files)
        kept = move_folded(files, params.paths.incoming, datetime.now(UTC))
        track(params.paths.raw)
        rows = sum(len(frame) for frame in frames.values())
        print(f"retrain: folded {rows} rows from {len(files)} files into {params.paths.raw}; the files are in {kept}")
    else:
        print(f"retrain: no new rows under {params.paths.incoming}; reproducing the pipeline on the current data")
    return reproduce(params, folded=bool(files))


def _params_and_schema() -> tuple[Params, Schema]:
    params = load_params()
    schema = load_schema(params.paths.contract)
    check_params(params, schema)
    return params, schema


def fold(params: Params, files: list[Path]) -> None:
    """Append every incoming row to the raw CSV, as text in the raw file's own dialect; then replace it whole."""
    raw = params.paths.raw
    dialect = sniff(raw, params.data.csv_delimiter)
    codec, newline = _append_format(raw, dialect.encoding)
    rows = io.StringIO()
    writer = csv.writer(rows, delimiter=dialect.delimiter, lineterminator=newline)
    for path in files:
        writer.writerows(_rows_as_text(path, [name.strip() for name in dialect.header], params))
    with replaced_atomically(raw) as handle, raw.open("rb") as original:
        shutil.copyfileobj(original, handle)
        if not _ends_with(raw, newline.encode(codec)):
            handle.write(newline.encode(codec))
        handle.write(rows.getvalue().encode(codec))


def _rows_as_text(path: Path, columns: list[str], params: Params) -> list[list[str]]:
    """The file's cells exactly as written, in the raw header's order; a column it lacks is left empty."""
    dialect = sniff(path, params.data.csv_delimiter)
    text = pd.read_csv(path, sep=dialect.delimiter, dtype=str, keep_default_na=False, encoding=dialect.encoding)
    text.columns = [name.strip() for name in text.columns]
    return text.reindex(columns=columns, fill_value="").to_numpy().tolist()


def _append_format(raw: Path, encoding: str) -> tuple[str, str]:
    """The codec that continues the raw file without a second byte-order mark, and its line ending."""
    with raw.open("rb") as handle:
        start = handle.read(2)
    codec = {"utf-8-sig": "utf-8", "utf-16": "utf-16-le" if start == b"\xff\xfe" else "utf-16-be"}.get(
        encoding, encoding
    )
    with raw.open(encoding=encoding, newline="") as handle:
        first = handle.readline()
    newline = "\r\n" if first.endswith("\r\n") else "\r" if first.endswith("\r") else "\n"
    return codec, newline


def _ends_with(path: Path, ending: bytes) -> bool:
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(0, size - len(ending)))
        return handle.read() == ending


def move_folded(files: list[Path], incoming: Path, now: datetime) -> Path:
    """Move the folded files under `<incoming>/folded/<time>/`, a folder git ignores; returns it."""
    folded = incoming / FOLDED
    destination = folded / now.strftime("%Y%m%dT%H%M%SZ")
    destination.mkdir(parents=True, exist_ok=True)
    (folded / ".gitignore").write_text("# files `retrain` folded into the raw data: kept here, never committed\n*\n")
    for path in files:
        path.replace(destination / path.name)
    return destination


def track(raw: Path) -> None:
    """`dvc add` when DVC tracks the raw CSV; git tracks it otherwise, and the change is committed with the rest."""
    if raw.with_name(raw.name + ".dvc").is_file():
        run_tool("dvc", "add", "--quiet", str(raw))


def reproduce(params: Params, folded: bool) -> int | None:
    """`dvc repro`, its output shown; a failing gate is GATE_FAILED, any other failure a PipelineError."""
    result = run_tool("dvc", "repro", check=False)
    output = result.stdout + result.stderr
    print(output, end="")
    undo = _undo_hint(params) if folded else ""
    if result.returncode == 0:
        print("retrain: the gate passed: commit the changes and open a pull request; `promote` releases after merge")
        return None
    failed = re.findall(r"failed to reproduce '([^']+)'", output)
    if failed and failed[-1] == "gate":
        print(f"retrain: the gate failed ({params.paths.gate} says which checks): the model is not releasable.{undo}")
        return GATE_FAILED
    raise PipelineError(f"dvc repro failed (output above): fix the problem it names, then run `dvc repro`.{undo}")


def _undo_hint(params: Params) -> str:
    raw, incoming = params.paths.raw, params.paths.incoming
    tracked = raw.with_name(raw.name + ".dvc")
    restored = [tracked if tracked.is_file() else raw, LOCK_FILE, params.paths.evaluation.parent, params.paths.plots]
    return (
        " The folded rows stay in the workspace, uncommitted. To undo the fold: "
        f"`git checkout -- {' '.join(map(str, restored))} && dvc checkout`, then move the files of the newest "
        f"{incoming / FOLDED}/<time>/ back into {incoming}."
    )
