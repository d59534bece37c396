"""The five stages, in order, on the sample data: the same code `dvc repro` runs."""

import json

from {{ cookiecutter.package_name }} import evaluate, gate, preprocess, train, validate


def test_stages_run_in_order_on_the_sample_and_pass_the_gate(project_copy):
    preprocess.main()
    validate.main()
    train.main()
    evaluate.main()
    assert gate.main() == 0
    verdict = json.loads((project_copy / "metrics" / "gate.json").read_text())
    assert verdict["passed"] is True
    evaluation = json.loads((project_copy / "metrics" / "evaluation.json").read_text())
    assert evaluation["rows"] == 200
    assert (project_copy / "models" / "model.joblib").exists()
