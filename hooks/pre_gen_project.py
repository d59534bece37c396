"""Reject bad answers with one clear line before cookiecutter writes any file."""

import json
import keyword
import re
import sys

ANSWERS = json.loads({{ cookiecutter | jsonify | tojson }})

SUPPORTED_PYTHON = ("3.11", "3.12")
CHOICES = {
    "task": ("binary", "multiclass", "regression"),
    "ci": ("github", "gitlab", "none"),
    "init_git": ("yes", "no"),
    "license": ("MIT", "Apache-2.0", "BSD-3-Clause", "proprietary"),
}
SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
PACKAGE = re.compile(r"^[a-z][a-z0-9_]*$")
S3_URL = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?$")
UNSAFE_TEXT = ('"', "\\", "\n", "\r")
HTTP_URL = re.compile(r"^https?://[^\s/@]+(/[^\s@]*)?$")


def slug_problem(slug: str) -> str | None:
    if "/" in slug or "\\" in slug or ".." in slug:
        return f"project_slug {slug!r} must not contain path separators or '..'"
    if not SLUG.match(slug):
        return (
            f"project_slug {slug!r} is not valid: use lowercase letters, digits and single "
            "hyphens, starting with a letter (e.g. 'credit-risk')"
        )
    return None


def package_problem(package: str) -> str | None:
    if not PACKAGE.match(package) or not package.isidentifier():
        return (
            f"package_name {package!r} is not a valid Python package name: use lowercase "
            "letters, digits and underscores, starting with a letter (e.g. 'credit_risk')"
        )
    if keyword.iskeyword(package) or package in sys.stdlib_module_names:
        return f"package_name {package!r} is a Python keyword or standard-library module: choose another"
    return None


def remote_problem(remote: str, endpoint: str) -> str | None:
    if remote and not S3_URL.match(remote):
        return (
            f"dvc_remote {remote!r} is not an S3 URL like 's3://my-bucket/path' "
            "(bucket of 3 to 63 lowercase characters); leave it blank for no remote"
        )
    if endpoint and not HTTP_URL.match(endpoint):
        return (
            f"dvc_remote_endpoint_url {endpoint!r} must be an http(s) URL without credentials, "
            "e.g. 'https://minio.example.com'"
        )
    if endpoint and not remote:
        return "dvc_remote_endpoint_url is set but dvc_remote is blank: give the s3:// URL too"
    return None


def problems(answers: dict) -> list[str]:
    found = [
        slug_problem(answers["project_slug"]),
        package_problem(answers["package_name"]),
        remote_problem(answers["dvc_remote"].strip(), answers["dvc_remote_endpoint_url"].strip()),
    ]
    if not answers["project_name"].strip():
        found.append("project_name must not be blank")
    for key in ("project_name", "description", "author_name", "author_email"):
        if any(character in answers[key] for character in UNSAFE_TEXT):
            found.append(f"{key} must be one line without double quotes or backslashes")
    if answers["python_version"] not in SUPPORTED_PYTHON:
        found.append(
            f"python_version {answers['python_version']!r} is not supported: "
            f"choose one of {', '.join(SUPPORTED_PYTHON)}"
        )
    for key, allowed in CHOICES.items():
        if answers[key] not in allowed:
            found.append(f"{key} {answers[key]!r} is not one of {', '.join(allowed)}")
    if "@" not in answers["author_email"]:
        found.append(f"author_email {answers['author_email']!r} is not an email address")
    return [problem for problem in found if problem]


if __name__ == "__main__":
    found = problems(ANSWERS)
    for problem in found:
        print(f"error: {problem}", file=sys.stderr)
    sys.exit(1 if found else 0)
