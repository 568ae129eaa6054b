"""dvc.yaml tells DVC what each stage reads: a project file a stage imports but does not list is a
change that reruns nothing, and a key its script hashes but dvc.yaml does not list (or the other
way round) is a params change that DVC and the stage's provenance see differently.

The import closure is walked from each stage script with `ast`: every import in a project module
(at module level or in a function, which may be called), and a name taken from a package resolved
to the module that defines it (a lazy `__getattr__` re-export is followed only for the names it
serves). A package's `__init__` re-exports are not followed otherwise: importing
`worldr1.toyworld.scene` runs `toyworld/__init__.py`, which imports the rest of the toy world, yet
only definitions run there; listing all of it would rerun the prompts stage for a change to the
toy renderer. (Slimming those `__init__` files is issue 19's layering work.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
#: Left out of every stage's deps on purpose (dvc.yaml's header): they validate params and report
#: errors (the params a stage reads are tracked key by key), or hold the stage's lock, or start it.
NOT_DEPS = {
    "worldr1/__init__.py",
    "worldr1/config.py",
    "worldr1/stagekit.py",
    "worldr1/errors.py",
    "worldr1/locks.py",
    "worldr1/launch.py",
}


def module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.exists():
            return candidate
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imported(node: ast.ImportFrom, path: Path) -> str:
    if not node.level:
        return node.module or ""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    package = package[: len(package) - node.level + 1]
    return ".".join(package + ([node.module] if node.module else []))


def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names taken from it) for every project import in `path`."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.split(".")[0] == "worldr1"]
        elif isinstance(node, ast.ImportFrom):
            module = imported(node, path)
            if module.split(".")[0] == "worldr1":
                out.append((module, [a.name for a in node.names]))
    return out


def defining_modules(package: str, name: str) -> list[str]:
    """Where a package's `name` comes from: its submodule, or the import in its __init__ that binds it
    (lazily or not); every module its __init__ imports when no import names it (`getattr(mod, name)`)."""
    if module_file(f"{package}.{name}"):
        return [f"{package}.{name}"]
    init = module_file(package)
    assert init is not None
    found, everything = [], []
    for module, names in imports_of(init):
        everything.append(module)
        if name in names:
            found.append(f"{module}.{name}" if module_file(f"{module}.{name}") else module)
    return found or everything


def closure(script: Path) -> set[str]:
    """The project files that running `script` can execute."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if path.name == "__init__.py" or str(path.relative_to(ROOT)) in NOT_DEPS:
            continue  # re-exports are resolved per name below; the stage machinery is no dep
        for module, names in imports_of(path):
            parts = module.split(".")
            targets = [".".join(parts[:k]) for k in range(1, len(parts) + 1)]  # parents run their __init__
            init = module_file(module)
            if init is not None and init.name == "__init__.py":
                for name in names:
                    targets += defining_modules(module, name)
            todo += [f for f in (module_file(t) for t in targets) if f is not None and f not in seen]
    return {str(p.relative_to(ROOT)) for p in seen if p.name != "__init__.py"}


def stage_defs() -> list[tuple[str, dict]]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return [(name, body.get("do", body)) for name, body in stages.items()]


def script_of(stage: dict) -> Path:
    return ROOT / next(token for token in stage["cmd"].split() if token.startswith("stages/"))


def stage_params(script: Path) -> list[str]:
    for node in ast.parse(script.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PARAMS" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError(f"{script} has no PARAMS")


@pytest.mark.parametrize(("name", "stage"), stage_defs(), ids=[n for n, _ in stage_defs()])
def test_every_imported_project_file_is_a_dep(name: str, stage: dict) -> None:
    deps = [str(d).rstrip("/") for d in stage["deps"]]
    listed = lambda f: any(f == d or f.startswith(d + "/") for d in deps)  # noqa: E731
    missing = sorted(f for f in closure(script_of(stage)) - NOT_DEPS if not listed(f))
    assert not missing, f"{name} imports {missing} but dvc.yaml does not list them as deps"


@pytest.mark.parametrize(("name", "stage"), stage_defs(), ids=[n for n, _ in stage_defs()])
def test_no_listed_project_file_goes_unused(name: str, stage: dict) -> None:
    # A module listed but never imported reruns the stage for nothing (folders may hold more).
    files = closure(script_of(stage))
    unused = [
        d
        for d in stage["deps"]
        if str(d).startswith("worldr1/") and str(d).endswith(".py") and d not in files and d not in NOT_DEPS
    ]
    assert not unused, f"{name} lists {unused} as deps but never imports them"


@pytest.mark.parametrize(("name", "stage"), stage_defs(), ids=[n for n, _ in stage_defs()])
def test_dvc_params_are_the_stages_params(name: str, stage: dict) -> None:
    declared = [p for p in stage["params"] if p != "rounds.${key}"]
    assert declared == stage_params(script_of(stage)), name


def test_the_walk_sees_lazy_and_relative_imports() -> None:
    files = closure(ROOT / "stages" / "rollout.py")
    # stages/rollout.py -> worldr1.policy.load_policy (a lazy re-export) -> policy/load.py -> attention.py
    assert {"worldr1/policy/load.py", "worldr1/policy/attention.py", "worldr1/grpo/rollout.py"} <= files
    # ...but not the package's other lazy names' modules it never asks for.
    assert "worldr1/audit/html.py" not in files and "worldr1/cli.py" not in files
