"""Every built-in rule, in catalogue order. Register a new rule by adding its class here."""

from __future__ import annotations

from auditor.rule import Rule
from rules.close_dates import CloseDatePast, CloseDateSlipping, ForecastStageMismatch
from rules.closing import MissingLossReason, WonWithoutAmount, WonWithoutHandoff
from rules.data_quality import (
    MissingAmount,
    OwnerMissingOrInactive,
    PossibleDuplicate,
    UnmappedStage,
)
from rules.follow_up import MissingNextStep, NoRecentActivity, OverdueNextStep
from rules.qualification import QualificationCriteriaMissing, SkippedQualification
from rules.stage_flow import SkippedStage, StageAging, StageRegression, StaleProposal

ALL_RULES: list[type[Rule]] = [
    SkippedQualification,
    QualificationCriteriaMissing,
    SkippedStage,
    StageRegression,
    StageAging,
    StaleProposal,
    MissingNextStep,
    OverdueNextStep,
    NoRecentActivity,
    CloseDatePast,
    CloseDateSlipping,
    ForecastStageMismatch,
    MissingLossReason,
    WonWithoutAmount,
    WonWithoutHandoff,
    MissingAmount,
    OwnerMissingOrInactive,
    UnmappedStage,
    PossibleDuplicate,
]
