"""The rule catalogue as Markdown: docs/rules.md is generated from it (a test keeps it in sync)."""

from __future__ import annotations

from auditor.rule import Rule


def _example_lines(ex: dict) -> list[str]:
    rec = ", ".join(f"`{k}` = {v!r}" for k, v in ex["record"].items())
    lines = [f"- Example (audit as of {ex['as_of']}): {rec}"]
    for other in ex.get("others", []):
        lines.append("  - other record: " + ", ".join(f"`{k}` = {v!r}" for k, v in other.items()))
    if ex.get("history"):
        lines.append("  - stage history: " + " → ".join(f"{s} ({d})" for s, d in ex["history"]))
    for owner in ex.get("owners", []):
        lines.append("  - owner: " + ", ".join(f"`{k}` = {v!r}" for k, v in owner.items()))
    lines.append(f"  - flagged: “{ex['message']}”")
    return lines


def catalogue_markdown(rules: list[type[Rule]]) -> str:
    out = [
        "# Rule catalogue",
        "",
        "Generated from the rule classes (`rules/reference.py`); `crm-audit rules CODE` shows the",
        "same. Days are whole calendar days in the audit time zone; limits are strict (“more",
        "than N days”) unless a rule says otherwise.",
        "",
        "| code | name | severity | flags |",
        "| --- | --- | --- | --- |",
    ]
    out += [f"| {r.code} | {r.name} | {r.severity} | {r.summary()} |" for r in rules]
    for r in rules:
        out += ["", f"## {r.code} {r.name}", "", f"{r.summary()} {r.details()}".strip(), ""]
        out += [f"- Why it matters: {r.why()}", f"- How to fix: {r.fix()}"]
        out.append(f"- Severity: {r.severity}; needs: {', '.join(r.requires) or 'nothing'}")
        for k, p in r.params.items():
            out.append(f"- Parameter `{k}` ({p.type.__name__}, default `{p.default!r}`): {p.help}")
        if r.example:
            out += _example_lines(r.example)
    return "\n".join(out) + "\n"
