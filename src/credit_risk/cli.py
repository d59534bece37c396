"""The project's command line: one sub-command per pipeline stage (called by dvc.yaml) and the
tools around the pipeline.

A command's module is imported only when that command runs, so each command pays only for the
libraries it uses. Exit status: 0 passed, 1 the gate failed, 2 a problem the user can fix (the
message names it, no traceback), 3 an internal error (a bug: the traceback is printed). A stage that
fails puts its last good outputs back (see `core.restore_outputs`) and says which.
"""

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

from . import __doc__ as DESCRIPTION
from .core import INTERNAL_ERROR, INTERRUPTED, PASSED, USER_ERROR, ChecksFailed, PipelineError

Argument = tuple[str, dict[str, Any]]  # a flag and its argparse options
MODEL_VERSION: Argument = (
    "--model-version",
    {"help": "a promoted version from the registry, e.g. v1.2.0 (default: the workspace model of dvc.lock)"},
)
# command: (help, [(flag, argparse options), ...]); it runs `main()` of the module named like it,
# or the function named like it (with "-" -> "_") of the module in HANDLED_BY
COMMANDS: dict[str, tuple[str, list[Argument]]] = {
    "preprocess": ("raw CSV -> clean, typed, split Parquet", []),
    "validate": ("check the processed data against schema.yaml", []),
    "train": ("fit the model pipeline and save it with joblib", []),
    "evaluate": ("metrics, latency and plot data on the test split", []),
    "gate": ("check the metrics against the thresholds in params.yaml", []),
    "infer-schema": (
        "draft schema.yaml from a CSV, to review before committing",
        [
            ("--data", {"help": "CSV to read (default: paths.raw in params.yaml)"}),
            ("--output", {"help": "schema file to write (default: paths.schema in params.yaml)"}),
            (
                "--force",
                {"action": "store_true", "help": "overwrite an existing schema (default: write a draft beside it)"},
            ),
        ],
    ),
    "report": (
        "the pull-request report CI posts: gate verdict and checks first, details folded, plots inline",
        [
            ("--base", {"default": "main", "help": "git revision to compare with (default: main)"}),
            ("--format", {"choices": ["markdown", "json"], "default": "markdown", "help": "output format"}),
        ],
    ),
    "promote": (
        "record the gated model of the committed dvc.lock as the production model (or, with --canary, the canary)",
        [("--canary", {"action": "store_true", "help": "assign the canary stage; production stays as it is"})],
    ),
    "rollback": ("give prod back to the version that held it before, with its baseline and reference", []),
    "status": ("which version holds each stage (prod, canary) and since when, and the candidate's gate verdict", []),
    "monitor": (
        "per model version in the prediction log: traffic, errors, latency, input and prediction drift, labelled "
        "quality (F1 and accuracy, or MAE); 1 on an alert",
        [
            (
                "--since",
                {"help": "ISO time the window starts at, e.g. 2026-11-27T06:00:00+00:00 (default: the whole log)"},
            )
        ],
    ),
    "canary-decide": (
        "compare the canary with prod on the logged traffic (accuracy, or a regressor's absolute errors) and "
        "decide: promote, rollback or wait",
        [("--apply", {"action": "store_true", "help": "carry the decision out (promote or roll back the canary)"})],
    ),
    "predict": (
        "score a CSV or Parquet file: its rows out in order, with prediction, a classifier's probability and "
        "probability_<label> per class, and model_version",
        [
            ("--input", {"required": True, "dest": "input_path", "help": "rows to score (.csv or .parquet)"}),
            ("--output", {"required": True, "dest": "output_path", "help": "file to write (.csv or .parquet)"}),
            MODEL_VERSION,
        ],
    ),
    "serve": (
        "serve the model over HTTP (FastAPI on uvicorn): /predict, /health, /metadata, /metrics",
        [
            ("--host", {"help": "interface to listen on (default: serve.host in params.yaml)"}),
            ("--port", {"type": int, "help": "port to listen on (default: serve.port in params.yaml)"}),
            MODEL_VERSION,
        ],
    ),
    "gitlab-note": (
        "create or update the merge request's report note (GitLab CI)",
        [("--file", {"required": True, "help": "the Markdown report to post"})],
    ),
    "retrain-check": ("which retraining triggers fired (time, new data, monitor alert) and why, as JSON", []),
    "retrain": (
        "fold the new rows of paths.incoming into the raw data and reproduce the pipeline; the gate decides, "
        "nothing is promoted",
        [],
    ),
}


HANDLED_BY = {
    "infer-schema": "preprocess",
    "predict": "serving",
    "gitlab-note": "report",
    "rollback": "promote",
    "status": "promote",
    "canary-decide": "monitor",
    "retrain-check": "retrain",
}
STAGES = ("preprocess", "validate", "train", "evaluate", "gate")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(description=DESCRIPTION)
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, arguments) in COMMANDS.items():
        command = commands.add_parser(name, help=help_text, description=help_text)
        for flag, options in arguments:
            command.add_argument(flag, **options)
    return root


def main(argv: list[str] | None = None) -> int:
    args = vars(parser().parse_args(argv))
    command = args.pop("command")
    try:
        return handler(command)(**args) or PASSED
    except ChecksFailed as failure:  # the stage's report is its output: keep it as written
        print(f"error: {failure}", file=sys.stderr)
        return USER_ERROR
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        status = USER_ERROR
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        status = INTERRUPTED
    except Exception:
        traceback.print_exc()
        print(f"internal error in `{command}`: a bug, please report it with the traceback above", file=sys.stderr)
        status = INTERNAL_ERROR
    if command in STAGES:
        print(kept_outputs(command), file=sys.stderr)
    return status


def handler(command: str) -> Callable[..., int | None]:
    """The command's function, imported only now: each command pays only for the libraries it uses."""
    function = command.replace("-", "_")
    if command in HANDLED_BY:
        return getattr(importlib.import_module(f"{__package__}.{HANDLED_BY[command]}"), function)
    return importlib.import_module(f"{__package__}.{function}").main


def kept_outputs(stage: str) -> str:
    """Restore the stage's last good outputs and say what the workspace now holds."""
    from .core import locked_outputs, restore_outputs

    outputs = locked_outputs(stage)
    if not outputs:
        return f"{stage}: dvc.lock records no earlier run of this stage, so there was nothing to keep"
    try:
        restored = restore_outputs(outputs)
    except Exception as error:  # the original failure is the one to report; this says what to do instead
        return f"{stage}: could not restore its outputs ({error}); `dvc checkout` restores them from DVC's cache"
    if restored:
        return f"{stage}: kept the last good outputs: restored {', '.join(map(str, restored))} as dvc.lock records them"
    return f"{stage}: kept the last good outputs: nothing it had written was changed"


def run() -> NoReturn:
    """The console command. A pipeline stage leaves with `os._exit` once its outputs are written and its
    output streams flushed, skipping the interpreter's teardown: there, a native thread pool still alive
    after reading Parquet can abort the process (SIGABRT, apache/arrow#34314) and fail a `dvc repro`
    whose work was done. Every other command exits as usual.
    """
    arguments = sys.argv[1:]
    status = main(arguments)
    if arguments and arguments[0] in STAGES:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


if __name__ == "__main__":
    run()
