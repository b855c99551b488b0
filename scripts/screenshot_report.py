#!/usr/bin/env python3
"""Render the demo manager report and screenshot it with headless Chromium.

    python scripts/screenshot_report.py [--out docs/img/manager-report.png] [--height 2200]

Audits the bundled demo organisation as of a fixed day (so the picture is reproducible), writes
the reports into a temporary folder and points Chromium at report.html. Chromium runs with
networking features off; the report links no external assets anyway.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditor.app.run import execute  # noqa: E402
from auditor.config import parse_config  # noqa: E402

DEMO_DAY = date(2026, 11, 26)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("no Chromium found: install it (e.g. `apt-get install -y chromium`)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "manager-report.png")
    ap.add_argument("--width", type=int, default=760)
    ap.add_argument("--height", type=int, default=2400)
    args = ap.parse_args()
    config = parse_config(
        {"source": {"type": "demo"}, "report": {"max_deals": 4, "digests": False}},
        origin="<screenshot>",
    )
    with tempfile.TemporaryDirectory() as tmp:
        run = execute(config, out_dir=Path(tmp), as_of=DEMO_DAY, deliver=False)
        html = Path(tmp) / "report.html"
        args.out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={tmp}/chromium-profile",
            f"--window-size={args.width},{args.height}",
            f"--screenshot={args.out.resolve()}",
            html.as_uri(),
        ]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    print(f"{args.out} (score {run.score}, {len(run.result.violations)} findings)")


if __name__ == "__main__":
    main()
