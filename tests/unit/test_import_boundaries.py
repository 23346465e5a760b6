"""The layering rules of design.md §2, checked on the source: who may import whom."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMON_ALLOWED = {"numpy", "msgpack", "zmq", "prometheus_client", "common"}
# The LeRobot dataset bridge is shared by actor (--record-demo) and learner (--demo, export) and imports the optional
# `lerobot` extra inside functions only, so importing `common` stays light.
COMMON_OPTIONAL = {"common/lerobot_datasets.py": {"torch", "torchvision", "ledataset"}}


def imports_of(package: str) -> dict[Path, set[str]]:
    """Top-level-qualified module names each file of `package` imports (anywhere in the file)."""
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[path] = names
    return found


def offenders(package: str, rule) -> list[str]:
    return [f"{path.relative_to(ROOT)} imports {name}" for path, names in imports_of(package).items()
            for name in names if rule(name)]  # fmt: skip


def test_common_imports_only_stdlib_and_its_few_dependencies():
    stdlib = sys.stdlib_module_names
    bad = offenders("common", lambda n: n.split(".")[0] not in stdlib and n.split(".")[0] not in COMMON_ALLOWED)
    allowed = {f"{path} imports {name}" for path, names in COMMON_OPTIONAL.items() for name in names}
    allowed |= {f"{path} imports ledataset.datasets.lerobot_dataset" for path in COMMON_OPTIONAL}
    assert sorted(set(bad) - allowed) == []


def test_the_optional_extra_is_imported_lazily_in_common():
    for path in COMMON_OPTIONAL:
        top_level = {alias.name.split(".")[0] for node in ast.parse((ROOT / path).read_text()).body
                     if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}  # fmt: skip
        top_level |= {node.module.split(".")[0] for node in ast.parse((ROOT / path).read_text()).body
                      if isinstance(node, ast.ImportFrom) and node.module}  # fmt: skip
        assert not top_level & COMMON_OPTIONAL[path], f"{path} imports the optional extra at module level"


def test_actor_never_imports_the_learners_replay_server_or_training_loop():
    forbidden = ("learner.replay", "learner.server", "learner.train_loop", "learner.app")
    assert offenders("actor", lambda n: n.startswith(forbidden)) == []


def test_learner_never_imports_robots_or_actor():
    assert offenders("learner", lambda n: n.split(".")[0] in ("robots", "actor")) == []


def test_robots_import_only_common_of_our_packages():
    assert offenders("robots", lambda n: n.split(".")[0] in ("actor", "learner")) == []


@pytest.mark.parametrize("package", ["common", "actor", "learner", "robots"])
def test_nothing_imports_ray_or_pickle(package):
    assert offenders(package, lambda n: n.split(".")[0] in ("ray", "pickle", "cloudpickle", "dill")) == []
