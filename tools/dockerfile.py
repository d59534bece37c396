"""Run a generated project's Dockerfile here, without Docker, from the file's own lines.

This machine has no Docker daemon, so an image cannot be built. What the image would do is done in
temporary folders instead, and only that is stood in for:

- the build context is a copy of the project holding only what `.dockerignore` lets through (Docker's
  matching: last matching line wins, `!` lets a path back in, a pattern matching a folder matches all
  beneath it), so a file the image would lack is missing here too;
- each stage's filesystem is a folder; the container paths the Dockerfile names (WORKDIRs, COPY
  destinations, ENV values that are paths, such as the venv's) are substituted by their place in it.
  `COPY --from=<stage> /path /path` shares the stage's folder rather than copying it, so a venv stays
  where it was built, as in the image;
- `python` is this interpreter's base Python: the same minor version the Dockerfile's base pins
  (checked by the caller);
- RUN lines run in `sh -c` with the stage's ENV and, of this environment, only the package index
  settings (PIP_* variables; pip also reads this machine's global config);
- the runtime stage's RUN lines create its user and hand it its folders, which needs root: they are not
  run, and USER is not taken (the test's own user runs the service).
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

BASE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Instruction:
    keyword: str  # upper case
    arguments: str  # what follows the keyword, continuation lines joined


@dataclass
class Stage:
    name: str
    base: str  # an image, or an earlier stage's name
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [instruction for instruction in self.instructions if instruction.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


def logical_lines(text: str) -> list[str]:
    """The Dockerfile's instructions: comment lines dropped, lines ending in a backslash joined."""
    lines, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append((pending + stripped).strip())
        pending = ""
    if pending:
        lines.append(pending.strip())
    return lines


def parse(text: str) -> list[Stage]:
    stages: list[Stage] = []
    for line in logical_lines(text):
        keyword, _, arguments = line.partition(" ")
        keyword, arguments = keyword.upper(), arguments.strip()
        if keyword == "FROM":
            words = [word for word in arguments.split() if not word.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name=name, base=words[0]))
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, arguments))
        elif keyword != "ARG":
            raise ValueError(f"{keyword} before the first FROM")
    return stages


def exec_form(arguments: str) -> list[str]:
    """CMD, RUN or HEALTHCHECK's command: a JSON array as it is, a shell form through `sh -c`."""
    if arguments.startswith("["):
        return json.loads(arguments)
    return ["/bin/sh", "-c", arguments]


def expand(value: str, env: dict[str, str]) -> str:
    """Docker's `$NAME` and `${NAME}` in ENV, WORKDIR and COPY: the value so far, or empty."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda match: env.get(match.group(1) or match.group(2), ""), value)


def env_pairs(arguments: str) -> list[tuple[str, str]]:
    words = shlex.split(arguments)
    if words and "=" not in words[0]:  # the legacy `ENV NAME value` form
        return [(words[0], " ".join(words[1:]))]
    return [(name, value) for name, value in (word.split("=", 1) for word in words)]


# .dockerignore


def ignore_patterns(text: str) -> list[tuple[bool, re.Pattern]]:
    """(lets back in, pattern) for each line, as Docker reads them."""
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        back_in = line.startswith("!")
        pattern = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
        patterns.append((back_in, re.compile(_pattern_regex(pattern))))
    return patterns


def _pattern_regex(pattern: str) -> str:
    """Go's filepath.Match with `**` for any number of folders, as Docker's pattern matcher translates it."""
    regex, index = "", 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**/", index):
            regex, index = regex + "(.*/)?", index + 3
            continue
        if pattern.startswith("**", index):
            regex, index = regex + ".*", index + 2
            continue
        if char == "*":
            regex += "[^/]*"
        elif char == "?":
            regex += "[^/]"
        elif char == "[":
            end = pattern.index("]", index)
            regex += "[" + pattern[index + 1 : end].replace("!", "^", 1) + "]"
            index = end
        else:
            regex += re.escape(char)
        index += 1
    return f"^{regex}$"


def ignored(path: str, patterns: list[tuple[bool, re.Pattern]]) -> bool:
    """Whether Docker leaves `path` (relative, with /) out of the build context."""
    candidates = [path, *(str(parent) for parent in PurePosixPath(path).parents if str(parent) != ".")]
    excluded = False
    for back_in, pattern in patterns:
        if any(pattern.match(candidate) for candidate in candidates):
            excluded = not back_in
    return excluded


def build_context(project: Path, destination: Path) -> list[str]:
    """Copy into `destination` what `.dockerignore` lets into the build context; return their paths.

    Links are copied as links, as Docker sends them: one pointing into an excluded folder (DVC's cache)
    would dangle in the image too.
    """
    ignore_file = project / ".dockerignore"
    patterns = ignore_patterns(ignore_file.read_text()) if ignore_file.exists() else []
    kept = []
    for folder, folders, files in os.walk(project):
        for name in sorted(files):
            source = Path(folder) / name
            relative = source.relative_to(project).as_posix()
            if ignored(relative, patterns):
                continue
            (destination / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / relative, follow_symlinks=False)
            kept.append(relative)
        folders.sort()
    return sorted(kept)


# The stages, run


@dataclass
class StageFilesystem:
    """A stage's filesystem as a folder, with the paths it shares with an earlier stage."""

    root: Path
    shared: dict[str, Path] = field(default_factory=dict)  # container path -> folder of another stage

    def host(self, container_path: str) -> Path:
        path = PurePosixPath(container_path)
        for prefix, folder in sorted(self.shared.items(), key=lambda item: -len(item[0])):
            if path == PurePosixPath(prefix) or PurePosixPath(prefix) in path.parents:
                return folder / path.relative_to(prefix)
        return self.root / path.relative_to("/")


@dataclass
class Image:
    """The runtime stage, ready to start: its working folder, its environment, its commands."""

    workdir: Path
    env: dict[str, str]
    command: list[str]
    healthcheck: list[str]
    healthcheck_options: dict[str, str]
    exposed: list[str]
    log: list[str]

    def with_port(self, arguments: list[str], host: str, port: int) -> list[str]:
        """The command listening on, or calling, `host:port` instead of every interface and the EXPOSEd port."""
        changed = []
        for argument in arguments:
            argument = host if argument == "0.0.0.0" else argument
            for exposed in self.exposed:
                argument = str(port) if argument == exposed else re.sub(rf"(?<=:){exposed}\b", str(port), argument)
            changed.append(argument)
        return changed


class Builder:
    def __init__(self, dockerfile: Path, context: Path, scratch: Path):
        self.stages = parse(dockerfile.read_text())
        self.context = context
        self.scratch = scratch
        self.python_bin = scratch / "python-bin"  # the base image's `python`, first on its PATH
        self.python_bin.mkdir(parents=True)
        base_python = Path(getattr(sys, "_base_executable", sys.executable))
        for name in ("python", "python3", f"python{sys.version_info.major}.{sys.version_info.minor}"):
            (self.python_bin / name).symlink_to(base_python)
        self.filesystems: dict[str, StageFilesystem] = {}
        self.envs: dict[str, dict[str, str]] = {}
        self.workdirs: dict[str, str] = {}
        self.log: list[str] = []

    def base_image(self) -> str:
        """The image the first stage starts from (later stages may start from it by name)."""
        return self.stages[0].base

    def build(self) -> Image:
        """Every stage in order; RUN lines only in stages other than the last (the runtime stage)."""
        for stage in self.stages:
            self._run_stage(stage, runtime=stage is self.stages[-1])
        runtime = self.stages[-1]
        command = runtime.last("CMD")
        if command is None:
            raise ValueError("the runtime stage has no CMD")
        healthcheck, options = self._healthcheck(runtime)
        return Image(
            workdir=self.filesystems[runtime.name].host(self.workdirs[runtime.name]),
            env=self._environment(runtime),
            command=[self._translate(argument, runtime) for argument in exec_form(command.arguments)],
            healthcheck=[self._translate(argument, runtime) for argument in healthcheck],
            healthcheck_options=options,
            exposed=[
                word.split("/")[0] for instruction in runtime.all("EXPOSE") for word in instruction.arguments.split()
            ],
            log=self.log,
        )

    def _run_stage(self, stage: Stage, runtime: bool) -> None:
        parent = stage.base if stage.base in self.filesystems else None
        self.filesystems[stage.name] = StageFilesystem(
            root=self.scratch / "stages" / stage.name,
            shared=dict(self.filesystems[parent].shared) if parent else {},
        )
        if parent:
            self.envs[stage.name] = dict(self.envs[parent])
            self.workdirs[stage.name] = self.workdirs[parent]
        else:
            self.envs[stage.name] = {"PATH": f"{self.python_bin}:{BASE_PATH}", "HOME": str(self.scratch / "home")}
            self.workdirs[stage.name] = "/"
        for instruction in stage.instructions:
            # the instructions that change what the next ones see; the rest only describe the image
            handler = {"ENV": self._env, "WORKDIR": self._workdir, "COPY": self._copy, "RUN": self._run}.get(
                instruction.keyword
            )
            if instruction.keyword == "RUN" and runtime:
                self.log.append(
                    f"{stage.name}: not run (the runtime stage's RUN lines need root): RUN {instruction.arguments}"
                )
            elif handler:
                handler(stage, instruction.arguments)

    def _env(self, stage: Stage, arguments: str) -> None:
        """Values kept in the container's terms: a path may become shared by a later COPY --from."""
        env = self.envs[stage.name]
        before = dict(env)
        for name, value in env_pairs(arguments):
            env[name] = expand(value, before)

    def _environment(self, stage: Stage) -> dict[str, str]:
        return {name: self._translate(value, stage) for name, value in self.envs[stage.name].items()}

    def _workdir(self, stage: Stage, arguments: str) -> None:
        path = expand(arguments, self.envs[stage.name])
        if not path.startswith("/"):
            path = str(PurePosixPath(self.workdirs[stage.name]) / path)
        self.workdirs[stage.name] = path
        self.filesystems[stage.name].host(path).mkdir(parents=True, exist_ok=True)

    def _copy(self, stage: Stage, arguments: str) -> None:
        words = shlex.split(arguments)
        options = dict(word[2:].split("=", 1) for word in words if word.startswith("--"))
        *sources, destination = [expand(word, self.envs[stage.name]) for word in words if not word.startswith("--")]
        filesystem = self.filesystems[stage.name]
        into_folder = destination.endswith("/") or len(sources) > 1
        if not destination.startswith("/"):
            destination = str(PurePosixPath(self.workdirs[stage.name]) / destination)
        if "from" in options:
            source_filesystem = self.filesystems[options["from"]]
            if sources == [destination]:  # the same path in both stages: the image holds the same bytes there
                filesystem.shared[destination] = source_filesystem.host(destination)
                return
            paths = [source_filesystem.host(source) for source in sources]
        else:
            paths = [self.context / source for source in sources]
        target = filesystem.host(destination)
        for path in paths:
            if not path.exists():
                raise FileNotFoundError(f"COPY {arguments}: {path} is not in the build context")
            if path.is_dir():
                shutil.copytree(path, target, symlinks=True, dirs_exist_ok=True)
            else:
                (target if into_folder else target.parent).mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / path.name if into_folder else target, follow_symlinks=False)

    def _run(self, stage: Stage, arguments: str) -> None:
        command = [self._translate(argument, stage) for argument in exec_form(arguments)]
        index_settings = {key: value for key, value in os.environ.items() if key.startswith("PIP_")}
        result = subprocess.run(
            command,
            cwd=self.filesystems[stage.name].host(self.workdirs[stage.name]),
            env={**index_settings, **self._environment(stage)},
            capture_output=True,
            text=True,
        )
        self.log.append(f"{stage.name}: RUN {arguments}\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            raise AssertionError(f"RUN {arguments} exited {result.returncode}\n{result.stdout}\n{result.stderr}")

    def _healthcheck(self, stage: Stage) -> tuple[list[str], dict[str, str]]:
        instruction = stage.last("HEALTHCHECK")
        if instruction is None or instruction.arguments.upper() == "NONE":
            return [], {}
        options_text, _, command = instruction.arguments.partition("CMD ")
        options = dict(word[2:].split("=", 1) for word in options_text.split())
        return exec_form(command.strip()), options

    def _translate(self, text: str, stage: Stage) -> str:
        """Every container path the Dockerfile names, in `text`, replaced by its folder here."""
        filesystem = self.filesystems[stage.name]
        for path in sorted(self._container_paths(), key=len, reverse=True):
            text = re.sub(rf"(?<![\w./-]){re.escape(path)}(?=$|[/\s\"':])", str(filesystem.host(path)), text)
        return text

    def _container_paths(self) -> set[str]:
        paths = set()
        for stage in self.stages:
            for instruction in stage.instructions:
                if instruction.keyword == "WORKDIR":
                    paths.add(instruction.arguments)
                elif instruction.keyword == "ENV":
                    paths |= {
                        value for _, value in env_pairs(instruction.arguments) if re.fullmatch(r"/[\w./-]+", value)
                    }
                elif instruction.keyword == "COPY":
                    paths |= {word for word in shlex.split(instruction.arguments) if word.startswith("/")}
        return {path.rstrip("/") or "/" for path in paths} - {"/"}


def parse_duration(text: str) -> float:
    """Docker's durations as HEALTHCHECK takes them: 30s, 1m30s, 500ms."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(number) * units[unit] for number, unit in re.findall(r"([\d.]+)(ms|s|m|h)", text))
