"""Drop what the answers exclude (other CI services' files, other tasks' example data), put the sample
data in DVC's cache (with a remote) or in git (without one), record the template's source for `cruft`,
make the first commit.

Runs with the standard library only: cookiecutter's environment need not have DVC or network.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ANSWERS = json.loads({{ cookiecutter | jsonify | tojson }})

GITLAB_ONLY = [".gitlab-ci.yml", "renovate.json", "requirements-gitlab.in", "requirements-gitlab.lock"]
EXCLUDED_BY_CI = {
    "github": GITLAB_ONLY,
    "gitlab": [".github"],
    "none": [".github", *GITLAB_ONLY],
}


def other_tasks_data() -> list[str]:
    """The example data (CSV and .dvc file) of the tasks not chosen: the project keeps only its own."""
    chosen = ANSWERS["_example_data"][ANSWERS["task"]]
    others = [name for name in ANSWERS["_example_data"].values() if name != chosen]
    return [f"data/raw/{name}{suffix}" for name in others for suffix in ("", ".dvc")]


def remove(relative_path: str) -> None:
    path = Path(relative_path)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def dvc_tracked_outputs(dvc_file: Path) -> list[tuple[str, Path]]:
    """(md5, path) of each output in a .dvc file, read without a YAML library."""
    outputs, md5 = [], None
    for line in dvc_file.read_text().splitlines():
        key, _, value = line.strip().lstrip("- ").partition(": ")
        if key == "md5":
            md5 = value
        elif key == "path" and md5:
            outputs.append((md5, dvc_file.parent / value))
            md5 = None
    return outputs


def keep_sample_in_git() -> None:
    """Without a remote, CI could not get DVC-tracked data, so the small sample lives in git.

    `dvc add` it once a remote exists (the README says how): DVC then takes it over from git.
    """
    for dvc_file in sorted(Path("data").rglob("*.dvc")):
        ignore = dvc_file.parent / ".gitignore"
        tracked = {f"/{path.name}" for _, path in dvc_tracked_outputs(dvc_file)}
        kept = [line for line in ignore.read_text().splitlines() if line not in tracked] if ignore.exists() else []
        if kept:
            ignore.write_text("\n".join(kept) + "\n")
        else:
            ignore.unlink(missing_ok=True)
        dvc_file.unlink()


def seed_dvc_cache() -> None:
    """Put DVC-tracked sample files into .dvc/cache, as `dvc add` would, so `dvc push` sends them.

    Uses DVC 3's documented cache layout: .dvc/cache/files/md5/<first 2 hex>/<other 30 hex>.
    """
    for dvc_file in sorted(Path("data").rglob("*.dvc")):
        for md5, data_file in dvc_tracked_outputs(dvc_file):
            if not data_file.exists():
                sys.exit(f"error: {data_file} is missing from the template; restore it with git")
            actual = hashlib.md5(data_file.read_bytes()).hexdigest()
            if actual != md5:
                sys.exit(f"error: {data_file} does not match the md5 in {dvc_file}; the template is broken")
            cached = Path(".dvc/cache/files/md5") / md5[:2] / md5[2:]
            cached.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(data_file, cached)
            cached.chmod(0o444)


def record_template_source() -> None:
    """`.cruft.json` as `cruft create` writes it: the template, its commit and the answers, so that
    `cruft check` and `cruft update` bring later template changes to a project baked by plain cookiecutter.
    """
    if "_commit" in ANSWERS:  # cruft is generating (create or update): it writes .cruft.json itself
        return
    template = ANSWERS["_template"]
    if "://" not in template and not template.startswith(("git@", "gh:", "gl:", "bb:")):
        template = str((Path(ANSWERS["_output_dir"]) / template).resolve())  # a local folder, made absolute
    found = subprocess.run(["git", "-C", ANSWERS["_repo_dir"], "rev-parse", "HEAD"], capture_output=True, text=True)
    commit = found.stdout.strip() if found.returncode == 0 else None
    answers = {key: value for key, value in ANSWERS.items() if not key.startswith("_")}
    record = {
        "template": template,
        "commit": commit,
        "checkout": ANSWERS.get("_checkout"),
        "context": {"cookiecutter": {**answers, "_template": template, "_commit": commit}},
        "directory": None,
        # written by this hook, not by the template: never part of an update's diff
        "skip": [".git", ".dvc/cache", ".cruft.json"],
    }
    Path(".cruft.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def git(*args: str) -> None:
    subprocess.run(["git", *args], check=True, stdout=subprocess.DEVNULL)


def git_has_identity() -> bool:
    found = subprocess.run(["git", "config", "user.email"], capture_output=True, text=True)
    return bool(found.stdout.strip())


def first_commit() -> None:
    if shutil.which("git") is None:
        sys.exit("error: init_git is 'yes' but git is not installed; install git or answer init_git=no")
    git("init", "--quiet", "--initial-branch=main")
    git("add", "--all")
    identity = []
    if not git_has_identity():
        identity = ["-c", f"user.name={ANSWERS['author_name']}", "-c", f"user.email={ANSWERS['author_email']}"]
    git(*identity, "commit", "--quiet", "--no-verify", "-m", "Initial project from the DVC pipeline template")


if __name__ == "__main__":
    for excluded in [*EXCLUDED_BY_CI[ANSWERS["ci"]], *other_tasks_data()]:
        remove(excluded)
    if ANSWERS["dvc_remote"]:
        seed_dvc_cache()
    else:
        keep_sample_in_git()
    record_template_source()
    if ANSWERS["init_git"] == "yes":
        first_commit()
    print(f"Created {os.getcwd()}. Next: see README.md, then `dvc repro`.")
