#!/usr/bin/env python3
"""Render the demo reports and screenshot them with headless Chromium (through Playwright).

    python scripts/screenshot_report.py [--out-dir docs/img]

Audits the bundled demo organisation as of a fixed day (so the pictures are reproducible),
writes the reports into a temporary folder and screenshots, into ``--out-dir``:
manager-report.png (1200 px), manager-report-phone.png (375 px), digest-phone.png (375 px),
explorer.png (1200 px). Chromium is Debian's (scripts/ci-deps.sh installs it), launched with
networking features off; the reports link no external assets anyway.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditor.app.run import execute  # noqa: E402
from auditor.config import parse_config  # noqa: E402
from tests.reports.browser import chromium  # noqa: E402

DEMO_DAY = date(2026, 11, 26)
SHOTS = [
    # file, page, width, full page
    ("manager-report.png", "report.html", 1200, True),
    ("manager-report-phone.png", "report.html", 375, False),
    ("digest-phone.png", "digest", 375, False),
    ("explorer.png", "explorer.html", 1200, False),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "img")
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, chromium() as browser:
        # a history of its own: the run a week earlier gives "new / resolved" and a trend
        config = parse_config(
            {
                "source": {"type": "demo"},
                "report": {"digests": True},
                "history": {"path": str(Path(tmp) / "history.sqlite")},
            },
            origin="<screenshot>",
        )
        out = Path(tmp) / "out"  # the history may not live in the output folder
        execute(config, out_dir=out, as_of=DEMO_DAY - timedelta(days=7), deliver=False)
        run = execute(config, out_dir=out, as_of=DEMO_DAY, deliver=False)
        digest = sorted((out / "digests").glob("owner-*.html"))[0]
        for name, page_name, width, full in SHOTS:
            path = digest if page_name == "digest" else out / page_name
            page = browser.new_page(viewport={"width": width, "height": 1100})
            page.goto(path.as_uri())
            page.screenshot(path=str(args.out_dir / name), full_page=full)
            page.close()
            print(args.out_dir / name)
    print(f"score {run.score}, {len(run.result.violations)} findings")


if __name__ == "__main__":
    main()
