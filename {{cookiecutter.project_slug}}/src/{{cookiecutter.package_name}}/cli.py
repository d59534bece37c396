"""The project's command line: one sub-command per pipeline stage (called by dvc.yaml) and the
tools around the pipeline.

A command's module is imported only when that command runs, so each command pays only for the
libraries it uses.
"""

import argparse
import importlib
import sys

from . import __doc__ as DESCRIPTION
from .errors import PipelineError

# command: (help, [(flag, argparse options), ...]); the module is the command with "-" -> "_"
COMMANDS = {
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
        ],
    ),
    "report": (
        "the pull-request report CI posts: gate verdict and checks first, details folded, plots inline",
        [
            ("--base", {"default": "main", "help": "git revision to compare with (default: main)"}),
            ("--format", {"choices": ["markdown", "json"], "default": "markdown", "help": "output format"}),
        ],
    ),
    "promote": ("record the gated model of the committed dvc.lock as the production model", []),
    "gitlab-note": (
        "create or update the merge request's report note (GitLab CI)",
        [("--file", {"required": True, "help": "the Markdown report to post"})],
    ),
}


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
    module = importlib.import_module(f"{__package__}.{args.pop('command').replace('-', '_')}")
    try:
        return module.main(**args) or 0
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
