"""`crm-audit history` and `crm-audit schedule` on the command line."""

from __future__ import annotations

import json

from click.testing import CliRunner

from auditor.app.cli import main


def _config(tmp_path, extra: str = "") -> str:
    path = tmp_path / "audit.toml"
    path.write_text(
        '[audit]\nas_of = 2026-06-15\n[source]\ntype = "demo"\nsize = 200\n'
        '[history]\npath = "state/history.sqlite"\n[report]\nformats = ["json"]\n' + extra
    )
    return str(path)


def test_history_lists_runs_after_two_runs(tmp_path):
    cfg = _config(tmp_path)
    runner = CliRunner()
    for _ in range(2):
        res = runner.invoke(main, ["run", "-c", cfg, "-o", str(tmp_path / "out")])
        assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["history", "-c", cfg])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].split() == [
        "run",
        "status",
        "source",
        "started",
        "(UTC)",
        "as",
        "of",
        "records",
        "findings",
        "new",
        "gone",
        "score",
        "secs",
        "calls",
    ]
    first, second = lines[2].split(), lines[1].split()
    assert (second[0], second[1], second[2], second[5]) == ("2", "success", "demo", "2026-06-15")
    assert (second[6], second[8], second[9]) == ("200", "0", "0")  # records, new, gone
    assert (first[0], first[8], first[9]) == ("1", "-", "-")  # first run: nothing to compare

    res = runner.invoke(main, ["history", "-c", cfg, "--json", "--limit", "1"])
    runs = json.loads(res.output)
    assert [(r["id"], r["status"], r["records"]) for r in runs] == [(2, "success", 200)]


def test_history_without_a_store_says_so(tmp_path):
    res = CliRunner().invoke(main, ["history", "-c", _config(tmp_path)])
    assert res.exit_code == 0
    assert res.output.strip() == (
        f"No history yet ({tmp_path / 'state' / 'history.sqlite'} does not exist)."
    )


def test_history_disabled_is_a_user_error(tmp_path):
    cfg = tmp_path / "audit.toml"
    cfg.write_text("[history]\nenabled = false\n")
    res = CliRunner().invoke(main, ["history", "-c", str(cfg)])
    assert res.exit_code == 2
    assert res.output.strip() == f"error: {cfg}: history is disabled (`history.enabled = false`)"


def test_schedule_without_jobs_is_a_user_error(tmp_path):
    cfg = _config(tmp_path)
    res = CliRunner().invoke(main, ["schedule", "-c", cfg])
    assert res.exit_code == 2
    assert "no jobs to schedule; add a `[[schedule.jobs]]` table" in res.output


def test_schedule_with_a_bad_cron_names_the_key(tmp_path):
    cfg = _config(tmp_path, '[[schedule.jobs]]\nname = "nightly"\ncron = "every night"\n')
    res = CliRunner().invoke(main, ["schedule", "-c", cfg])
    assert res.exit_code == 2
    # refused when the config is read (auditor.cron), naming the key and what is wrong
    assert "key `schedule.jobs[0].cron`" in res.output
    assert "'every night' is not a cron expression with five fields" in res.output


def test_second_demo_run_prints_what_changed(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    # in this process: the output is the point (a real process: tests/test_cli.py)
    monkeypatch.chdir(tmp_path)
    cmd = ["run", "--as-of", "2026-06-30"]
    first = CliRunner().invoke(main, cmd)
    assert first.exit_code == 0, first.stderr
    assert "Since run" not in first.stdout  # nothing to compare with yet
    second = CliRunner().invoke(main, cmd)
    assert second.exit_code == 0, second.stderr
    assert "Since run 1: 0 new, 0 resolved, " in second.stdout
