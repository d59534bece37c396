"""Wall time and peak memory of the validate stage on generated data of a given size.

    python -m benchmarks.validate --rows 1000000 [--columns 20]

Writes train/test Parquet splits, a schema with ranges, statistics and a rule, and a drift reference
(as `promote` would), then runs the root instance's `validate` in a fresh process, as DVC does.
Figures, not tests.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

CHILD = (
    "import resource, sys; from credit_risk import validate; validate.main(); "
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
)


def generate(rows: int, columns: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {f"x{i:02d}": rng.normal(loc=i, scale=1 + i / 10, size=rows) for i in range(columns)}
    frame = pd.DataFrame(data)
    frame.loc[rng.random(rows) < 0.02, "x00"] = np.nan
    frame["target"] = (frame["x01"] + rng.normal(size=rows) > 1).astype(int)
    return frame


def project(folder: Path, rows: int, columns: int) -> None:
    frame = generate(rows, columns)
    cut = int(rows * 0.8)
    (folder / "data").mkdir()
    frame.iloc[:cut].to_parquet(folder / "data" / "train.parquet", index=False)
    frame.iloc[cut:].to_parquet(folder / "data" / "test.parquet", index=False)
    frame.drop(columns="target").sample(n=min(5000, rows), random_state=1).to_parquet(
        folder / "reference.parquet", index=False
    )
    specs: dict[str, dict[str, object]] = {
        name: {
            "type": "numeric",
            "nullable": name == "x00",
            "max_missing_rate": 0.05 if name == "x00" else None,
            "min": -100,
            "max": 100,
            "mean_min": -50,
            "mean_max": 50,
        }
        for name in frame.columns[:-1]
    }
    specs = {name: {key: value for key, value in spec.items() if value is not None} for name, spec in specs.items()}
    specs["target"] = {"type": "integer", "allowed": [0, 1]}
    schema = {"dataset": {"min_rows": 1}, "columns": specs, "rules": {"spread": "x02 < x03 + 50"}}
    (folder / "schema.yaml").write_text(yaml.safe_dump(schema))
    params = {
        "paths": {
            "schema": "schema.yaml",
            "train": "data/train.parquet",
            "test": "data/test.parquet",
            "reference": "reference.parquet",
            "validation": "validation.json",
            "drift_report": "drift.html",
        },
        "data": {"target": "target"},
        "validate": {
            "drift_psi_max": 0.2,
            "drifted_share_max": 0.5,
            "psi_bins": 10,
            "sample_rows": 5000,
            "reference_rows": 5000,
            "seed": 42,
        },
    }
    (folder / "params.yaml").write_text(yaml.safe_dump(params))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        project(folder, args.rows, args.columns)
        start = time.perf_counter()
        run = subprocess.run([sys.executable, "-c", CHILD], cwd=folder, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if run.returncode != 0:
            sys.exit(f"validate failed:\n{run.stdout}\n{run.stderr}")
        peak_mb = int(run.stderr.strip().splitlines()[-1]) / 1024
        checks = json.loads((folder / "validation.json").read_text())["checks_total"]
    print(
        f"validate on {args.rows:,} rows x {args.columns} columns: {wall:.2f} s wall, {peak_mb:.0f} MB peak RSS, "
        f"{checks} checks (PSI on every row, Evidently on 5,000-row samples)"
    )


if __name__ == "__main__":
    main()
