"""Resource caps (issue 17 item 5): a hostile or broken export cannot take the machine down.

The heavy cases run the real CLI in a subprocess under a memory cap (``RLIMIT_DATA`` 1.5 GiB:
heap and anonymous mappings; ``RLIMIT_AS`` is not used because Arrow's allocator reserves
address space it never touches) and a time bound, and must stop with an error naming the cap
and the setting that raises it:

- a zip whose Opportunity.csv unpacks to 600 MB at about 300 : 1 (a zip bomb);
- a 7.9 MB CSV with a million columns (pandas took 550 s and 8.3 GB before);
- a 100 MB deal name (it became five 100 MB reports before);
- 50,000 unmapped stages (50,006 CLI lines and a 16 MB report.html before).
"""

from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.app.cli import main
from tests.security.matrix import HARDENING, record

MEMORY_CAP = 1536 * 1024 * 1024
TIME_BOUND_S = 60
SCENARIOS = ["cap-zip-bomb", "cap-zip-member-size", "cap-wide-csv", "cap-wide-exports",
             "cap-huge-field", "cap-unmapped-stages-listed"]
ROOT = Path(__file__).resolve().parents[2]


def capped_run(config: Path, out: Path) -> tuple[subprocess.CompletedProcess, float]:
    """``crm-audit run`` in a subprocess under the memory cap and the time bound."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_CAP, MEMORY_CAP))

    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "auditor.app.cli", "run", "--config", str(config), "--out",
         str(out)], preexec_fn=limit, capture_output=True, text=True, timeout=TIME_BOUND_S,
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return proc, time.perf_counter() - t


def write_config(tmp: Path, source: str) -> Path:
    cfg = tmp / "audit.toml"
    cfg.write_text(f"[audit]\nas_of = 2024-06-01\n[source]\n{source}\n[history]\nenabled = false\n",
                   encoding="utf-8")
    return cfg


HEADER = b'"Id","Name","OwnerId","StageName","Amount","CloseDate","CreatedDate"\n'
ROW = (b'"0068d00000OpA01AAA","Bomb","0058d0000001AnnAAA","Prospecting","1","2024-03-31",'
       b'"2024-01-05"\n')


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A standard zip (one deflated member, written field by field): each 1.5 MB block is
    deflated once after a full flush, which resets the compressor, so the same bytes stand for
    every block; deflating 600 MB through zipfile took about 1.7 s of CPU per test run."""
    path = tmp_path_factory.mktemp("bomb") / "export.zip"
    block = ROW * 16384  # 1.5 MB
    count = 600 * 1024 * 1024 // len(block)
    z = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate, as zip stores it
    head = z.compress(HEADER) + z.flush(zlib.Z_FULL_FLUSH)
    packed = z.compress(block) + z.flush(zlib.Z_FULL_FLUSH)
    tail = z.flush(zlib.Z_FINISH)
    crc = zlib.crc32(HEADER)
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    size, csize = len(HEADER) + count * len(block), len(head) + count * len(packed) + len(tail)
    name = b"Opportunity.csv"
    # version 2.0, no flags, deflate, 2024-01-05 00:00, crc, sizes, name length, no extra
    fields = struct.pack("<HHHHHIIIHH", 20, 0, 8, 0, (44 << 9) | (1 << 5) | 5, crc, csize,
                         size, len(name), 0)
    with path.open("wb") as fh:
        fh.write(b"PK\x03\x04" + fields + name + head)
        for _ in range(count):
            fh.write(packed)
        fh.write(tail)
        central = fh.tell()
        fh.write(b"PK\x01\x02" + struct.pack("<H", 20) + fields
                 + struct.pack("<HHHII", 0, 0, 0, 0, 0) + name)  # no comment, offset 0
        end = fh.tell()
        fh.write(b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 1, 1, end - central,
                                                central, 0))
    return path


def test_zip_bomb_is_refused_under_a_memory_cap(zip_bomb: Path, tmp_path: Path) -> None:
    info = zipfile.ZipFile(zip_bomb).getinfo("Opportunity.csv")
    assert info.file_size > 600_000_000 and info.file_size / info.compress_size > 200
    cfg = write_config(tmp_path, f'type = "salesforce_export"\npath = "{zip_bomb}"')
    proc, elapsed = capped_run(cfg, tmp_path / "out")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    msg = proc.stderr.strip().splitlines()[-1]
    assert f"{zip_bomb}:Opportunity.csv: unpacks to " in msg
    assert "over the limit of 100 (source.max_compression_ratio)" in msg
    assert not (tmp_path / "out" / "report.html").exists()
    record(HARDENING, "cap-zip-bomb", "salesforce_export",
           f"a {zip_bomb.stat().st_size / 1e6:.1f} MB zip whose Opportunity.csv unpacks to "
           f"{info.file_size / 1e6:,.0f} MB", "refused before unpacking, under a 1.5 GiB "
           "memory cap, naming the cap and the setting",
           f"exit 2 in {elapsed:.1f} s: " + msg.replace(str(zip_bomb.parent), "<tmp>"))


def test_zip_member_over_the_size_cap_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        rows = b"".join(ROW.replace(b"Bomb", os.urandom(8).hex().encode()) for _ in range(40000))
        zf.writestr("Opportunity.csv", HEADER + rows)
    cfg = write_config(tmp_path, f'type = "salesforce_export"\npath = "{path}"\nmax_file_mb = 2')
    result = CliRunner().invoke(main, ["run", "--config", str(cfg), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert (f"{path}:Opportunity.csv: unpacks to 4 MB, over the limit of 2 MB "
            "(source.max_file_mb)") in result.output
    record(HARDENING, "cap-zip-member-size", "salesforce_export",
           "a zip member of 4 MB with max_file_mb = 2", "refused before unpacking",
           "exit 2: " + result.output.strip().splitlines()[-1].replace(str(tmp_path), "<tmp>"))


def test_csv_with_a_million_columns_is_refused_fast(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    n = 1_000_000
    header = "id,name,stage," + ",".join(f"c{i}" for i in range(n - 3))
    path.write_text(header + "\n" + "1,a,Prospecting" + "," * (n - 3) + "\n", encoding="utf-8")
    cfg = write_config(tmp_path, f'type = "csv"\nopportunities = "{path}"\n'
                                 'stage_map_default = "salesforce"')
    proc, elapsed = capped_run(cfg, tmp_path / "out")
    assert proc.returncode == 2, proc.stderr[-2000:]
    msg = proc.stderr.strip().splitlines()[-1]
    assert msg == ("error: wide.csv: the header has 1,000,000 columns, over the limit of 2,000 "
                   "(source.max_columns); raise it if the export really has that many")
    assert elapsed < 20
    record(HARDENING, "cap-wide-csv", "CSV",
           f"a {path.stat().st_size / 1e6:.1f} MB CSV with 1,000,000 columns",
           "refused before pandas reads it, under a 1.5 GiB memory cap",
           f"exit 2 in {elapsed:.1f} s: {msg}")


def test_wide_exports_are_refused_by_every_file_connector(tmp_path: Path) -> None:
    header = '"Id","Name",' + ",".join(f'"C{i}"' for i in range(3000))
    sf = tmp_path / "sf"
    sf.mkdir()
    (sf / "Opportunity.csv").write_text(header + "\n", encoding="utf-8")
    hs = tmp_path / "hs.csv"
    hs.write_text(header + "\n", encoding="utf-8")
    got = {}
    for kind, source in (("salesforce_export", f'path = "{sf}"'), ("hubspot_export",
                                                                  f'path = "{hs}"')):
        cfg = write_config(tmp_path, f'type = "{kind}"\n{source}')
        result = CliRunner().invoke(main, ["run", "--config", str(cfg), "--out",
                                           str(tmp_path / "o")])
        assert result.exit_code == 2, result.output
        assert ("the header has 3,002 columns, over the limit of 2,000 (source.max_columns)"
                in result.output), result.output
        got[kind] = result.output.strip().splitlines()[-1]
    record(HARDENING, "cap-wide-exports", "salesforce_export, hubspot_export",
           "an export whose header has 3,002 columns", "refused naming source.max_columns",
           "exit 2: " + " / ".join(got.values()).replace(str(tmp_path), "<tmp>"))


def test_a_100_mb_cell_is_refused_naming_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "deals.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("id,name,stage,amount\nD-1,Fine,Prospecting,10\nD-2,")
        fh.write("x" * (100 * 1024 * 1024))
        fh.write(",Prospecting,20\n")
    cfg = write_config(tmp_path, f'type = "csv"\nopportunities = "{path}"\n'
                                 'stage_map_default = "salesforce"')
    proc, elapsed = capped_run(cfg, tmp_path / "out")
    assert proc.returncode == 2, proc.stderr[-2000:]
    msg = proc.stderr.strip().splitlines()[-1]
    assert msg == ("error: deals.csv row 3, column 'name': a cell of 104,857,600 characters, "
                   "over the limit of 131,072 (source.max_field_chars); raise it if the field "
                   "really holds that much text")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    record(HARDENING, "cap-huge-field", "CSV",
           "a deal name of 100 MB", "refused naming file, row, column, cap and setting",
           f"exit 2 in {elapsed:.1f} s: {msg}")


def test_50000_unmapped_stages_are_listed_up_to_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "deals.csv"
    rows = [f"U{i},Deal {i},u1,Odd stage {i},100,2024-03-31" for i in range(50_000)]
    path.write_text("id,name,owner_id,stage,amount,close_date\n" + "\n".join(rows) + "\n",
                    encoding="utf-8")
    cfg = write_config(tmp_path, f'type = "csv"\nopportunities = "{path}"\n'
                                 'stage_map_default = "salesforce"')
    cfg.write_text(cfg.read_text() + '[report]\nformats = ["html", "md", "txt"]\n'
                   "assessment = false\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "--config", str(cfg), "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    lines = result.stdout.splitlines()  # the result; warnings and progress go to stderr
    assert len(lines) < 30
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 21
    assert warned[-1] == ("warning: … and 49980 more warnings (run.json lists them all; "
                          "report.max_listed)")
    # the reports stay small; explorer.html carries the findings like a CSV (its own cap:
    # report.explorer_max_rows), about 200 bytes each
    sizes = {p.name: p.stat().st_size for p in out.iterdir() if p.is_file()}
    explorer = sizes.pop("explorer.html")
    assert max(sizes.values()) < 400_000, sizes
    assert explorer < 50_000 * 250, explorer
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "and 49,980 more (run.json lists them all)" in md
    assert "- 49,980 more warnings (run.json lists them all)" in md
    record(HARDENING, "cap-unmapped-stages-listed", "CLI and reports",
           "50,000 distinct unmapped stages", "reports and the CLI list report.max_listed "
           "(20) and say how many more", f"exit 0; {len(lines)} CLI lines; largest report "
           f"{max(sizes.values()) / 1000:.0f} kB ({', '.join(sorted(sizes))})")
