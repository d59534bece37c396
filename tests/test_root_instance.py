"""The repository root is the template's default rendering: fail when the two drift apart."""

from tools.render_root import ROOT, drift, render_default


def test_root_instance_matches_a_fresh_rendering(tmp_path):
    project = render_default(tmp_path / "out")
    assert drift(project) == [], "the root has drifted from the template: run `make render` and commit"


def test_root_lock_records_every_stage():
    import yaml

    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    assert set(lock["stages"]) == set(dvc_yaml["stages"])
