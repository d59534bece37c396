"""Read params.yaml: the single home of every knob the stages use."""

from pathlib import Path
from typing import Any

import yaml

from .errors import PipelineError

PARAMS_FILE = Path("params.yaml")


class Section(dict):
    """A section of params.yaml; a key it lacks is a PipelineError naming the whole dotted key.

    Stages index sections (`settings["seed"]`), so a key deleted from params.yaml is reported as the
    missing param it is, not as a KeyError traceback.
    """

    def __init__(self, values: dict, dotted_key: str):
        super().__init__(values)
        self.dotted_key = dotted_key

    def __getitem__(self, key: str) -> Any:
        if key not in self:
            raise PipelineError(
                f"params.yaml has no key '{self.dotted_key}.{key}': add it (see the README's param table)"
            )
        return _wrapped(super().__getitem__(key), f"{self.dotted_key}.{key}")


def _wrapped(value: Any, dotted_key: str) -> Any:
    return Section(value, dotted_key) if isinstance(value, dict) else value


def load_params(path: Path = PARAMS_FILE) -> dict[str, Any]:
    if not path.exists():
        raise PipelineError(f"{path} not found: run the command from the project's root folder")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise PipelineError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(params, dict):
        raise PipelineError(f"{path} must hold a mapping of sections (paths, data, split, ...)")
    return params


def param(params: dict[str, Any], dotted_key: str) -> Any:
    """The value at `dotted_key` (e.g. "split.seed"), or an error naming the missing key."""
    value: Any = params
    for part in dotted_key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise PipelineError(f"params.yaml has no key '{dotted_key}': add it (see the README's param table)")
        value = dict.__getitem__(value, part)
    return _wrapped(value, dotted_key)


def path_param(params: dict[str, Any], name: str) -> Path:
    return Path(param(params, f"paths.{name}"))
