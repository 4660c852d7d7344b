"""A fuzz run depends on its seed alone: not on which other modules the process imported,
nor on the string hash seed.

Each run happens in a fresh interpreter, so that nothing a previous test imported or cached
can make two runs agree (or disagree) by accident.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

RUN = """
import importlib, json, sys
for name in sys.argv[2:]:
    importlib.import_module(name)
from statekernel.adapters.memory import MemoryStore
from statekernel.kernel.testing import run_fuzz
from statekernel.specs import booking
from tests.fuzz import planted
if sys.argv[1] == "booking":
    report = run_fuzz(booking.SPEC, MemoryStore, seed=7, examples=40)
else:
    report = run_fuzz(planted.PROMOTION, MemoryStore, seed=5, examples=40)
data = report.to_data()
del data["seconds"]
print(json.dumps(data, sort_keys=True))
"""

# Module-level literals of all the kinds a test-case generator could pick up from source.
NOISE = """
LIMITS = (3, 7, 42, 255, 500, 4096, 65535, 1 << 20, 2**31 - 1)
NAMES = ("c1", "e1", "booking", "seat", "alpha")
RATIOS = (0.5, 2.5, 1e6)
BLOBS = (b"x", b"\\x00\\xff")
"""


def run_in_fresh_interpreter(
    case: str, imports: list[str], hash_seed: str, cwd: Path
) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(cwd), str(ROOT)] + [str(ROOT / p) for p in ("kernel", "adapters", "specs")]
        ),
        "PYTHONHASHSEED": hash_seed,
    }
    result = subprocess.run(
        [sys.executable, "-c", RUN, case, *imports],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.mark.parametrize("case", ["booking", "promotion"])
def test_same_seed_same_report_whatever_else_is_imported(case: str, tmp_path: Path) -> None:
    (tmp_path / "noise_literals.py").write_text(NOISE)
    plain = run_in_fresh_interpreter(case, ["json"], "0", tmp_path)
    busy = run_in_fresh_interpreter(
        case, ["noise_literals", "statekernel.adapters.sqlite"], "12345", tmp_path
    )
    assert (plain["violation"] is None) == (case == "booking")
    for field in ("examples", "steps", "states", "state_hits", "transition_hits", "violation"):
        assert plain[field] == busy[field], field
