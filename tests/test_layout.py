"""The package layout of DESIGN.md: one namespace package in three source roots, a pure
kernel, pinned public names, documented public API."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE_ROOTS = ("kernel", "adapters", "specs")


def test_no_namespace_init_anywhere() -> None:
    for root in SOURCE_ROOTS:
        assert (ROOT / root / "statekernel").is_dir()
        assert not (ROOT / root / "statekernel" / "__init__.py").exists(), root
        assert (ROOT / root / "statekernel" / root / "py.typed").exists(), root


def test_top_level_is_exactly_the_documented_layout() -> None:
    visible = {p.name for p in ROOT.iterdir() if not p.name.startswith(".")}
    expected = {"pyproject.toml", "kernel", "specs", "adapters", "tests", "docs", "README.md"}
    assert expected <= visible
    # anything else must be ignored by git (a local virtualenv, caches)
    try:
        tracked = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.split()
    except FileNotFoundError:  # no git on this machine (a downloaded copy)
        tracked = []
    if tracked:
        assert {t.split("/")[0] for t in tracked if not t.startswith(".")} <= expected


def test_importing_the_kernel_loads_no_driver_or_adapter() -> None:
    code = "import json, sys; import statekernel.kernel; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / r) for r in SOURCE_ROOTS)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout
    loaded = set(json.loads(out))
    forbidden = {
        "sqlite3",
        "_sqlite3",
        "sqlite_utils",
        "psycopg",
        "psycopg_pool",
        "transitions",
        "hypothesis",
        "statekernel.adapters",
        "statekernel.specs",
    }
    assert not loaded & forbidden, loaded & forbidden


KERNEL_ALL = sorted(
    [
        "CODES",
        "MAX_ID_LENGTH",
        "TRACE_FORMAT",
        "VIOLATION_CODES",
        "Accepted",
        "Actor",
        "AuditRecord",
        "Command",
        "Decision",
        "Effect",
        "Guard",
        "InvalidIdentifier",
        "Invariant",
        "KeyRecord",
        "Message",
        "PayloadError",
        "Plan",
        "Problem",
        "Rejected",
        "ReplayResult",
        "Snapshot",
        "Spec",
        "SpecError",
        "StatekernelError",
        "Trace",
        "TraceMismatch",
        "TraceStep",
        "Transition",
        "UnsupportedType",
        "assert_trace_passes",
        "check_identifier",
        "decide",
        "decision_from_data",
        "decision_to_data",
        "guard",
        "invariant",
        "plan",
        "record_from_data",
        "record_to_data",
        "replay_trace",
        "request_fingerprint",
        "snapshot_from_data",
        "snapshot_to_data",
        "structurer_for",
        "unstructure",
    ]
)


def test_kernel_public_names_are_pinned() -> None:
    import statekernel.kernel as kernel

    missing = set(KERNEL_ALL) - set(kernel.__all__)
    assert not missing, f"removed from statekernel.kernel.__all__: {sorted(missing)}"
    assert kernel.__all__ == sorted(kernel.__all__, key=lambda n: (not n.isupper(), n))


def _public_modules() -> list[str]:
    names = []
    for root in SOURCE_ROOTS:
        pkg = importlib.import_module(f"statekernel.{root}")
        names.append(pkg.__name__)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg.__name__}."):
            if not any(part.startswith("_") for part in info.name.split(".")):
                names.append(info.name)
    return names


@pytest.mark.parametrize("module_name", _public_modules())
def test_every_public_name_is_documented(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__doc__, f"{module_name} has no docstring"
    for name in getattr(module, "__all__", []):
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{module_name}.{name} has no docstring"


@pytest.mark.parametrize(
    ("name", "builtin"),
    [
        ("statekernel.kernel:SpecError", ValueError),
        ("statekernel.kernel:InvalidIdentifier", ValueError),
        ("statekernel.kernel:PayloadError", ValueError),
        ("statekernel.kernel:UnsupportedType", TypeError),
        ("statekernel.kernel:TraceMismatch", ValueError),
        ("statekernel.kernel.testing:FuzzViolation", AssertionError),
    ],
)
def test_kernel_exceptions_have_one_root_and_the_builtin_base_users_expect(
    name: str, builtin: type[BaseException]
) -> None:
    from statekernel.kernel import StatekernelError

    module_name, _, attr = name.partition(":")
    exc = getattr(importlib.import_module(module_name), attr)
    assert issubclass(exc, StatekernelError) and issubclass(exc, builtin), exc.__mro__


@pytest.mark.parametrize("module_name", _public_modules())
def test_every_public_exception_is_a_statekernel_error(module_name: str) -> None:
    from statekernel.kernel import StatekernelError

    module = importlib.import_module(module_name)
    for name in getattr(module, "__all__", []):
        obj = getattr(module, name)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            assert issubclass(obj, StatekernelError), f"{module_name}.{name}"
