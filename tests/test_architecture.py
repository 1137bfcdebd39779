"""docs/architecture.md states the import rules; every import in tinydeploy/ keeps them. Engines and runners are
found through their registries, which agree with the board profile schema."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tinydeploy"


def stated_layers() -> dict[str, int]:
    """package -> layer, from the table in docs/architecture.md."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Packages and what each may import", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    layers: dict[str, int] = {}
    for line in section.splitlines():
        match = re.match(r"^(\d+)\s+(\S+(?: \S+)*?)(?:\s{2,}|$)", line)
        if match:
            for name in match.group(2).split():
                layers[name] = int(match.group(1))
    return layers


def _unit(path: Path) -> str:
    """The package (or top-level module) a file belongs to."""
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def imports_by_unit() -> dict[str, set[tuple[str, str]]]:
    """unit -> {(imported unit, "file:line")} for every tinydeploy import, at module level or inside functions
    (TYPE_CHECKING-only imports are for annotations and do not count)."""
    found: dict[str, set[tuple[str, str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = _unit(path)
        tree = ast.parse(path.read_text(), str(path))
        type_only = {id(node) for branch in ast.walk(tree) if isinstance(branch, ast.If)
                     and "TYPE_CHECKING" in ast.unparse(branch.test) for node in ast.walk(branch)}
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = ([f"tinydeploy.{alias.name}" for alias in node.names] if node.module == "tinydeploy"
                           else [node.module])
            else:
                continue
            for module in modules:
                parts = module.split(".")
                if parts[0] == "tinydeploy" and len(parts) > 1 and parts[1] != unit and parts[1] != "__version__":
                    found.setdefault(unit, set()).add((parts[1], f"{path.relative_to(ROOT)}:{node.lineno}"))
    return found


def test_every_package_has_a_stated_layer():
    layers = stated_layers()
    units = {_unit(path) for path in PACKAGE.rglob("*.py")} - {"__init__"}
    assert units - set(layers) == set(), "add them to the table in docs/architecture.md"
    assert set(layers) - units == set(), "the table names packages that do not exist"


def test_imports_only_go_down_the_layers():
    layers = stated_layers()
    wrong = sorted(f"{where}: {unit} (layer {layers[unit]}) imports {target} (layer {layers[target]})"
                   for unit, targets in imports_by_unit().items() for target, where in targets
                   if layers[target] >= layers[unit])
    assert wrong == []


def test_no_engine_name_or_board_kind_branches_outside_the_registries():
    """Engines are told apart by their class, boards by their runner's capabilities."""
    allowed = {"engines", "engine", "tflm"}  # the registry and the engines' own code
    pattern = re.compile(r"""(==|!=|\bin\b)\s*\(?\s*["'](native|tflm)["']|["'](native|tflm)["']\s*(==|!=)""")
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        if "is_virtual" in text:
            offenders.append(f"{path.relative_to(ROOT)}: is_virtual")
        if _unit(path) not in allowed and pattern.search(text):
            offenders.append(f"{path.relative_to(ROOT)}: {pattern.search(text).group(0)}")
    assert offenders == []


def test_registries_agree_with_the_profile_schema():
    from tinydeploy.boards import ENGINES, UPLOAD_METHODS, all_boards
    from tinydeploy.engines import engine_names, get_engine
    from tinydeploy.runners import runner_class, runner_classes

    assert set(engine_names()) == set(ENGINES)
    assert all(get_engine(name).name == name for name in ENGINES)
    assert {name for name, cls in runner_classes().items() if cls.chosen_by_profile} == set(UPLOAD_METHODS)
    for board in all_boards().values():
        runner_class(board.upload_runner).check_settings(board)


@pytest.mark.parametrize("name", ["virtual"])
def test_the_virtual_platform_board_file_is_generated_from_the_profile(name):
    from tinydeploy.boards import get_board
    from tinydeploy.runners.qemu import platformio_board_file

    path, text = platformio_board_file(get_board(name))
    assert path.read_text() == text, f"{path} is stale: run python -m tinydeploy.runners.qemu"
