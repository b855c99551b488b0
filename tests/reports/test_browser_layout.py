"""Real-browser checks: report, digest, roll-up and explorer read at 375 px and 1200 px, and
the explorer's filters change the visible rows as expected."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from auditor.app.run import execute
from auditor.config import parse_config
from reports.render import write_reports
from tests.reports.browser import chromium
from tests.reports.reports_fixture import make_run

WIDTHS = (375, 1200)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    out = root / "out"
    cfg = parse_config(
        {
            "source": {"type": "demo", "size": 400},
            "report": {"digests": True},
            "history": {"path": str(root / "history.sqlite")},
        },
        origin="<browser>",
    )
    execute(cfg, out_dir=out, as_of=date(2026, 11, 26), deliver=False)
    return out


def open_page(browser: Browser, path: Path, width: int) -> Page:
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(path.as_uri())
    return page


def no_horizontal_scroll(page: Page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def fix_column_visible(page: Page, width: int) -> None:
    cell = page.locator("td.fixcol").first
    assert cell.is_visible()
    box = cell.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, box
    assert "Fix:" in cell.inner_text()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(
    "name", ["report.html", "appendix.html", "explorer.html", "digest", "roll-up"]
)
def test_readable_at_phone_and_desktop_width(
    browser: Browser, demo_out: Path, name: str, width: int
) -> None:
    digests = demo_out / "digests"
    path = {
        "digest": sorted(digests.glob("owner-*.html"))[0],
        "roll-up": sorted(digests.glob("manager-*.html"))[0],
    }.get(name, demo_out / name)
    page = open_page(browser, path, width)
    try:
        assert no_horizontal_scroll(page), page.evaluate("document.documentElement.scrollWidth")
        if name != "appendix.html":
            fix_column_visible(page, width)
        if width == 375 and name in ("report.html", "digest", "roll-up"):
            # stacked cards: the column headings are hidden, each value carries its label
            assert not page.locator("tr.head").first.is_visible()
            assert page.locator("td .lbl").first.is_visible()
    finally:
        page.close()


def test_manager_report_is_about_four_desktop_screens(browser: Browser, demo_out: Path) -> None:
    page = open_page(browser, demo_out / "report.html", 1200)
    try:
        height = page.evaluate("document.documentElement.scrollHeight")
        assert height <= 4 * 900, height
    finally:
        page.close()


def rows_text(page: Page) -> list[str]:
    return page.locator("#rows tr").evaluate_all("trs => trs.map(t => t.cells[0].innerText)")


def test_explorer_filters_change_the_visible_rows(browser: Browser, tmp_path: Path) -> None:
    run = make_run(tmp_path)
    v = run.result.violations
    # the trust seam: findings marked process history are not to-dos
    v["fix_now"] = v["opportunity_id"].astype(str) != "D3"
    out = tmp_path / "out"
    write_reports(run, out)
    raw = (out / "explorer.html").read_text("utf-8")
    data = raw.split('<script type="application/json" id="data">')[1].split("</script>")[0]
    assert "<" not in data and "\\u003cscript\\u003ealert(1)" in data  # no way out of the element
    page = open_page(browser, out / "explorer.html", 1200)
    try:

        def deals() -> list[str]:
            return sorted(t.split("\n")[0] for t in rows_text(page))

        assert page.locator("#count").inner_text() == "5 of 5 findings match"
        page.select_option("#f-rule", label="TS01 Test no next step")
        assert deals() == ["<script>alert(1)</script>", "Acme – Renewal", "Umbrella"]
        page.select_option("#f-owner", label="Alice Owner")
        assert deals() == ["Acme – Renewal"]
        page.select_option("#f-rule", label="All")
        page.select_option("#f-kind", label="Process history")
        assert deals() == ["Globex | Expansion *big*"]
        page.select_option("#f-kind", label="Fix now")
        page.select_option("#f-owner", label="All")
        page.select_option("#f-severity", label="warning")
        assert deals() == ["Acme – Renewal"]
        page.select_option("#f-severity", label="All")
        page.select_option("#f-team", label="SMB")
        assert deals() == ["Umbrella"]
        page.select_option("#f-team", label="All")
        page.select_option("#f-stage", label="Discovery")
        assert deals() == ["<script>alert(1)</script>"]
        page.select_option("#f-stage", label="All")
        page.select_option("#f-kind", label="All")
        page.fill("#q", "globex")
        assert deals() == ["Globex | Expansion *big*"]
        page.fill("#q", "")
        page.click("th[data-key=amount]")  # largest first
        amounts = page.locator("#rows tr td.num").all_inner_texts()
        assert [a.split(": ")[-1] for a in amounts] == [
            "€80,000",
            "€50,000",
            "€50,000",
            "€20,000",
            "€12,000",
        ]
        # CRM links: http(s) only; the javascript: URL of D2 is not a link
        hrefs = page.locator("#rows a").evaluate_all("as => as.map(a => a.href)")
        assert sorted(set(hrefs)) == [
            "https://crm.example.com/opp/D1",
            "https://crm.example.com/opp/D3",
            "https://crm.example.com/opp/D5",
        ]
        # the script-like deal name is text, not markup
        assert page.evaluate("document.querySelectorAll('#rows script').length") == 0
    finally:
        page.close()
