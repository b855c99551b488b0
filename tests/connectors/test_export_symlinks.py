"""#17 item 4: a symbolic link inside an export folder is not followed outside it (a client's
export could otherwise pull any readable file of the auditing machine into the reports)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.app.cli import main

DATA = Path(__file__).parent / "reruns"
#: per source type: the export file replaced by a link
LINKED = {"csv": "deals.csv", "hubspot_export": "deals.csv", "salesforce_export": "User.csv"}


def _setup(tmp_path: Path, source: str) -> tuple[Path, Path]:
    folder = tmp_path / "audit"
    shutil.copytree(DATA / source / "week1", folder / "export")
    shutil.copy(DATA / source / "week1.toml", folder / "audit.toml")
    outside = tmp_path / "private"
    outside.mkdir()
    secret = outside / LINKED[source]
    shutil.copy(folder / "export" / LINKED[source], secret)  # a readable CSV of the same shape
    return folder, secret


def _run(folder: Path) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["run", "-c", str(folder / "audit.toml"),
                                    "--as-of", "2026-06-08"])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exc_info
    return res.exit_code, res.output


@pytest.mark.parametrize("source", sorted(LINKED))
def test_a_link_out_of_the_export_folder_is_refused(tmp_path, source):
    folder, secret = _setup(tmp_path, source)
    link = folder / "export" / LINKED[source]
    link.unlink()
    link.symlink_to(secret)
    code, output = _run(folder)
    assert code == 2, output
    assert f"{link}: a symbolic link to {secret}, outside the export folder" in output
    assert "Traceback" not in output
    assert not (folder / "out").exists()


@pytest.mark.parametrize("source", sorted(LINKED))
def test_a_link_that_stays_inside_the_export_folder_is_read(tmp_path, source):
    folder, _ = _setup(tmp_path, source)
    dated = folder / "export" / "2026-06-08"
    dated.mkdir()
    link = folder / "export" / LINKED[source]
    link.rename(dated / LINKED[source].replace(".csv", ".data"))
    link.symlink_to(Path("2026-06-08") / LINKED[source].replace(".csv", ".data"))
    code, output = _run(folder)
    assert code == 0, output
