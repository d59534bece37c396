import subprocess

from {{ cookiecutter.package_name }}.promote import next_version


def git(*args: str) -> None:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", *identity, *args], check=True, capture_output=True)


def test_the_next_version_follows_the_latest_registered_one_release_candidates_included(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    git("init", "--quiet")
    git("commit", "--quiet", "--allow-empty", "-m", "first")
    assert next_version("model") == "v1.0.0"
    git("tag", "-a", "model@v1.0.0", "-m", "model v1.0.0")
    assert next_version("model") == "v1.1.0"
    git("tag", "-a", "model@v1.2.0-rc1", "-m", "model v1.2.0-rc1")
    assert next_version("model") == "v1.3.0"
    assert next_version("another") == "v1.0.0"
