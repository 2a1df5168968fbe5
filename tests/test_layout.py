"""The direction of imports (STYLE.md): the domain imports no SDK, no handlers, no storage; no cycles."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import ROOT

RULES = ROOT.parent / "shared" / "tools" / "import-rules.py"


@pytest.mark.skipif(not RULES.exists(), reason=f"the import rules checker is not beside the checkout ({RULES})")
def test_import_rules_hold() -> None:
    result = subprocess.run([sys.executable, str(RULES), str(ROOT)], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, "import rules hold")
