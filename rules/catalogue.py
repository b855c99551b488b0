"""Every built-in rule, in catalogue order. Register a new rule by adding its class here."""

from __future__ import annotations

from rules.base import Rule
from rules.closing import MissingLossReason
from rules.follow_up import MissingNextStep
from rules.qualification import SkippedQualification
from rules.stage_flow import StaleProposal

ALL_RULES: list[type[Rule]] = [
    SkippedQualification,
    StaleProposal,
    MissingNextStep,
    MissingLossReason,
]
