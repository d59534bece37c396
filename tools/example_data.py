"""Export the multiclass and regression example data from scikit-learn's bundled datasets into the template.

`python -m tools.example_data` writes data/raw/wine.csv and data/raw/diabetes.csv, each with its `.dvc`
file, into the template folder. The export is deterministic, so tests/test_tasks.py can show offline that
the shipped files are exactly scikit-learn's data: it exports again and compares the bytes.
"""

import hashlib
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from sklearn.datasets import load_diabetes, load_wine

RAW_DATA = Path(__file__).resolve().parents[1] / "{{cookiecutter.project_slug}}" / "data" / "raw"


def wine() -> pd.DataFrame:
    """UCI Wine: 178 wines, 13 chemical measurements, `cultivar` (class_0, class_1, class_2) to predict."""
    bunch = load_wine(as_frame=True)
    return bunch.data.assign(cultivar=bunch.target_names[bunch.target.to_numpy()])


def diabetes() -> pd.DataFrame:
    """Efron et al.'s diabetes data in original units: 442 patients, `progression` a year later to predict."""
    bunch = load_diabetes(as_frame=True, scaled=False)
    return bunch.data.assign(progression=bunch.target)


# file name -> its frame; german_credit.csv (binary) is not scikit-learn's and is shipped as it is
EXPORTS: dict[str, Callable[[], pd.DataFrame]] = {"wine.csv": wine, "diabetes.csv": diabetes}


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as CSV, with whole-number columns (counts, codes, `sex` as 1/2) written as integers."""
    whole = [
        column
        for column in frame.columns
        if pd.api.types.is_float_dtype(frame[column]) and (frame[column] % 1 == 0).all()
    ]
    return frame.astype(dict.fromkeys(whole, "int64")).to_csv(index=False, lineterminator="\n").encode()


def dvc_file_text(content: bytes, name: str) -> str:
    """The `.dvc` file `dvc add` writes (DVC 3: the md5 of the file's bytes)."""
    digest = hashlib.md5(content).hexdigest()
    return f"outs:\n- md5: {digest}\n  size: {len(content)}\n  hash: md5\n  path: {name}\n"


def main() -> None:
    for name, export in EXPORTS.items():
        content = csv_bytes(export())
        (RAW_DATA / name).write_bytes(content)
        (RAW_DATA / f"{name}.dvc").write_text(dvc_file_text(content, name))
        print(f"wrote {RAW_DATA / name} ({len(content)} bytes) and its .dvc file")


if __name__ == "__main__":
    main()
