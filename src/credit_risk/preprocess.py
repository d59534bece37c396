"""Stage 1: raw CSV to clean, typed, stratified train and test Parquet files."""

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from .checks import failure_lines
from .contract import contract_checks
from .errors import PipelineError
from .files import write_parquet
from .params import load_params
from .raw_data import read_raw_csv
from .schema import Schema, check_params, load_schema


def clean(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """Trim whitespace around labels and drop rows whose target is missing."""
    for name in frame.select_dtypes("category").columns:
        frame[name] = strip_labels(frame[name])
    return frame.dropna(subset=[target]).reset_index(drop=True)


def strip_labels(values: pd.Series) -> pd.Series:
    """Labels without surrounding whitespace, blank ones missing; ' own' and 'own' become one category.

    Works on the few categories, not the many rows, so it costs the same at 1,000 rows or 10M.
    """
    stripped = values.cat.categories.astype(str).str.strip()
    labels = pd.Index(sorted(set(stripped) - {""}))
    # new code of each old code; the extra last entry is where the missing code, -1, lands
    new_code_of_old = np.array([labels.get_loc(label) if label else -1 for label in stripped] + [-1])
    new_codes = new_code_of_old[values.cat.codes.to_numpy()]
    return pd.Series(pd.Categorical.from_codes(new_codes, categories=labels), index=values.index, name=values.name)


def split(frame: pd.DataFrame, target: str, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    try:
        return train_test_split(frame, test_size=test_size, random_state=seed, stratify=frame[target])
    except ValueError as error:
        raise PipelineError(f"cannot make a stratified split on target '{target}': {error}") from None


def refuse_broken_contract(frame: pd.DataFrame, schema: Schema, target: str) -> None:
    """Bad raw data stops here, before any output is written, so dvc.lock and every output stay as they were.

    validate checks the same contract again on each split, with drift, and records every check.
    """
    failures = failure_lines(contract_checks({"raw": frame}, schema, target))
    if failures:
        raise PipelineError(
            f"the raw data breaks the data contract: {len(failures)} checks\n  " + "\n  ".join(failures)
        )


def main() -> None:
    params = load_params()
    schema = load_schema(params.paths.contract)
    check_params(params, schema)
    target = params.data.target
    raw = read_raw_csv(params.paths.raw, schema, params.data.csv_delimiter, params.data.csv_decimal)
    cleaned = clean(raw, target)
    refuse_broken_contract(cleaned, schema, target)
    train, test = split(cleaned, target, params.split.test_size, params.split.seed)
    write_parquet(train, params.paths.train)
    write_parquet(test, params.paths.test)
    print(f"preprocess: {len(raw)} raw rows -> {len(train)} train, {len(test)} test")
