"""Load and validate a playbook: schema first, then every module name against the registry."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from transfer_runner.errors import ManifestError, PlaybookError
from transfer_runner.modules.base import arg_problems
from transfer_runner.resources import load_json_schema, resource_path
from transfer_runner.yaml_positions import PositionMap, format_path, parse_yaml_bytes

__all__ = ["Task", "Playbook", "load_playbook", "default_playbook_path", "TASK_KEYWORDS"]

TASK_KEYWORDS = frozenset({"name", "when", "register", "tags"})


@dataclass(frozen=True)
class Task:
    """One task: a module, its (untemplated) arguments and the keywords."""

    index: int
    name: str
    module: str
    args: dict[str, Any]
    when: str | bool | None = None
    register: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Playbook:
    """An ordered list of tasks plus the defaults templates can read."""

    path: str
    tasks: tuple[Task, ...]
    defaults: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""  # of the parsed document (comments and layout do not count)


def default_playbook_path() -> Path:
    """The bundled `direct-to-resold.yml`."""
    return resource_path("playbooks", "direct-to-resold.yml")


def load_playbook(path: str | Path | None, known_modules: Mapping[str, object]) -> Playbook:
    """Read, schema-check and resolve a playbook; every problem in one PlaybookError."""
    file = Path(path) if path else default_playbook_path()
    try:
        data, positions = parse_yaml_bytes(file.read_bytes(), str(file))
    except OSError as exc:
        raise PlaybookError(f"{file}: cannot read playbook: {exc.strerror}") from exc
    except ManifestError as exc:  # strict YAML: duplicate keys, aliases, syntax, encoding
        raise PlaybookError(f"not valid YAML:\n{exc}") from exc
    validator = Draft202012Validator(load_json_schema("playbook.schema.json"))
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path))):
        line, col = positions.locate(tuple(error.absolute_path))
        where = format_path(tuple(error.absolute_path)) or "(top)"
        problems.append(f"{file}:{line}:{col}: {where}: {error.message}")
    if problems:
        raise PlaybookError("\n".join(problems))
    tasks = tuple(_task(i, raw, file, known_modules) for i, raw in enumerate(data["tasks"]))
    _check_unique_names(tasks, file)
    _check_args(tasks, file, known_modules, positions)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return Playbook(
        path=str(file),
        tasks=tasks,
        defaults=dict(data.get("defaults") or {}),
        sha256=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
    )


def _task(index: int, raw: dict[str, Any], file: Path, known: Mapping[str, object]) -> Task:
    modules = [k for k in raw if k not in TASK_KEYWORDS]
    if len(modules) != 1:
        raise PlaybookError(f"{file}: task {raw['name']!r}: exactly one module expected")
    module = modules[0]
    if module not in known:
        names = ", ".join(sorted(known))
        raise PlaybookError(f"{file}: task {raw['name']!r}: unknown module {module!r} ({names})")
    return Task(
        index=index,
        name=raw["name"],
        module=module,
        args=dict(raw[module] or {}),
        when=raw.get("when"),
        register=raw.get("register"),
        tags=tuple(raw.get("tags") or ()),
    )


def _check_args(
    tasks: tuple[Task, ...], file: Path, known: Mapping[str, object], positions: PositionMap
) -> None:
    """Each task's arguments against what its module declares (`Module.args`): unknown keys,
    missing ones and literal values of the wrong type, located; a module that declares
    nothing (a plug-in written before `args`) is not checked."""
    problems = []
    for task in tasks:
        spec = getattr(known[task.module], "args", None)
        if spec is None:
            continue
        where = ("tasks", task.index, task.module)
        for key, problem in arg_problems(spec, task.args):
            line, col = positions.locate((*where, key) if key else where, key=True)
            problems.append(f"{file}:{line}:{col}: task {task.name!r} ({task.module}): {problem}")
    if problems:
        raise PlaybookError("\n".join(problems))


def _check_unique_names(tasks: tuple[Task, ...], file: Path) -> None:
    seen: set[str] = set()
    for task in tasks:
        if task.name in seen:
            raise PlaybookError(f"{file}: task name {task.name!r} is used twice")
        seen.add(task.name)
