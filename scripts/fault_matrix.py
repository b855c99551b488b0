"""Run the security tests and write docs/fault-matrix.md from what they observed.

    python scripts/fault_matrix.py

Every fault scenario, bad-input family and secret-scan run in tests/security records its
outcome when it passes; the session hook in tests/security/conftest.py writes the table to the
file named by FAULT_MATRIX_DOC. The exit status is pytest's, so CI can run this instead of the
plain tests. tests/security/test_fault_matrix_doc.py checks the committed doc lists every
scenario of the tables (so the doc cannot drift from the tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "fault-matrix.md"


def main() -> int:
    # the doc records the long fuzzing budget (500 examples per parser), not the short default
    env = {**os.environ, "FAULT_MATRIX_DOC": str(DOC), "FUZZ_EXAMPLES": "500"}
    cmd = [sys.executable, "-m", "pytest", "tests/security", "-q", "-p", "no:cacheprovider",
           "--ignore=tests/security/test_fault_matrix_doc.py"]
    status = subprocess.call(cmd, cwd=ROOT, env=env)
    print(f"wrote {DOC.relative_to(ROOT)}" if DOC.exists() else "no doc written")
    return status


if __name__ == "__main__":
    sys.exit(main())
