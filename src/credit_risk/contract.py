"""The whole data contract on named parts of the data: schema.yaml's dataset, column and rule checks."""

import pandas as pd

from .checks import Check
from .rules import check_rules
from .schema import Schema, check_column, check_dataset, check_row_count


def contract_checks(frames: dict[str, pd.DataFrame], schema: Schema, target: str) -> list[Check]:
    checks = check_row_count(sum(len(frame) for frame in frames.values()), schema)
    for label, frame in frames.items():
        checks += check_dataset(frame, schema, target, label)
        for name, spec in schema.columns.items():
            if name in frame.columns:
                checks += check_column(frame[name], spec, label)
        checks += check_rules(frame, schema.rules, label)
    return checks
