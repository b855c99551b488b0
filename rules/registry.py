"""Where rules come from: the built-in catalogue plus third-party plugins (entry points)."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from auditor.errors import AuditorError
from auditor.rule import Rule

log = logging.getLogger(__name__)

#: entry-point group a plugin distribution registers its rules under. Each entry point loads a
#: Rule subclass, or a list / tuple of them.
ENTRY_POINT_GROUP = "crm_hygiene_auditor.rules"


def builtin_rules() -> list[type[Rule]]:
    from rules import catalogue

    return list(catalogue.ALL_RULES)


def plugin_rules() -> list[type[Rule]]:
    found: list[type[Rule]] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not hide the built-in audit
            raise AuditorError(
                f"rule plugin {ep.name!r} ({ep.value}) failed to load: {exc}"
            ) from exc
        items = obj if isinstance(obj, list | tuple) else [obj]
        for item in items:
            if not (isinstance(item, type) and issubclass(item, Rule)):
                raise AuditorError(
                    f"rule plugin {ep.name!r} ({ep.value}) must provide Rule subclasses, "
                    f"got {item!r}"
                )
            found.append(item)
    return found


def all_rules(include_plugins: bool = True) -> list[type[Rule]]:
    """Every known rule class, built-ins first; duplicate codes are an error."""
    rules = builtin_rules() + (plugin_rules() if include_plugins else [])
    seen: dict[str, type[Rule]] = {}
    for r in rules:
        if r.code in seen and seen[r.code] is not r:
            raise AuditorError(
                f"rule code {r.code} is registered twice ({seen[r.code].__module__}."
                f"{seen[r.code].__name__} and {r.__module__}.{r.__name__})"
            )
        seen[r.code] = r
    return list(seen.values())
