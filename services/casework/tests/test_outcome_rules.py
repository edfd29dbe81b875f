"""The outcome figures and the rules that keep them from singling anybody out, without a
database (no fixture here needs one)."""

from __future__ import annotations

from datetime import date

import pytest

from asf_kit.rules import RuleError
from casework.outcomes import (
    Count,
    ExitCount,
    FollowUpCount,
    FormCount,
    OutcomeCounts,
    StageCount,
    check_period,
    outcomes,
)

JAN, FEB, MAR, APR = (date(2026, m, 1) for m in (1, 2, 3, 4))


def counts(referrals: list[StageCount] | None = None, exits: list[ExitCount] | None = None,
           employments: list[FormCount] | None = None, first: list[Count] | None = None,
           median: float | None = None,
           follow_ups: list[FollowUpCount] | None = None) -> OutcomeCounts:
    return OutcomeCounts(referrals=referrals or [], employments=employments or [],
                         exits=exits or [], first_employments=first or [],
                         median_days_to_employment=median, follow_ups=follow_ups or [])


def test_every_figure_when_nothing_is_small() -> None:
    c = counts(
        referrals=[StageCount("0180", JAN, 6, "referred"), StageCount("0180", JAN, 7, "closed")],
        employments=[FormCount("0180", JAN, 5, "wage_subsidy")],
        exits=[ExitCount("0180", JAN, 5, "employed", None),
               ExitCount("0180", JAN, 6, "assessment", "studies"),
               ExitCount("0180", FEB, 7, "referred", "moved")],
        first=[Count("0180", JAN, 5)], median=41.5,
        follow_ups=[FollowUpCount("0180", JAN, 8, 90, 6, 5)])
    o = outcomes(c, "0180", JAN, date(2026, 2, 28), 5)
    assert o.referred == 13 and o.suppressed is False and o.min_group == 5
    assert o.by_stage == {"referred": 6, "assessment": 0, "in_training": 0, "employed": 0,
                          "closed": 7}
    assert o.exits_by_reason == {"employment": 5, "studies": 6, "moved": 7}
    assert (o.left_programme, o.left_for_work, o.left_for_studies) == (18, 5, 6)
    assert o.share_left_for_work_or_studies == round(11 / 18, 4)
    assert o.median_days_referral_to_employment == 41.5
    [f] = o.follow_ups
    assert (f.due, f.recorded, f.still_employed, f.share_still_employed) == (
        8, 6, 5, round(5 / 6, 4))


def test_counts_from_one_to_the_minimum_are_null_and_zero_is_shown() -> None:
    c = counts(referrals=[StageCount("0180", JAN, 9, "referred"),
                          StageCount("0180", JAN, 1, "closed")],
               exits=[ExitCount("0180", JAN, 1, "in_training", "sick_leave")],
               first=[Count("0180", JAN, 4)], median=30.0)
    o = outcomes(c, "0180", None, None, 5)
    assert o.suppressed is True
    assert o.by_stage["closed"] is None and o.by_stage["assessment"] == 0
    assert o.referred == 10
    assert o.exits_by_reason == {"sick_leave": None}
    assert o.left_programme is None and o.share_left_for_work_or_studies is None
    assert o.left_for_work == 0 and o.left_for_studies == 0
    assert o.median_days_referral_to_employment is None  # a group of 4
    assert outcomes(c, "0180", None, None, 1).suppressed is False  # 1 shows everything


def test_a_figure_two_overlapping_periods_would_give_away_is_withheld() -> None:
    """January-April minus January-March is April: its one sick-leave exit must not show."""
    def sick(*per_month: tuple[date, int]) -> list[ExitCount]:
        return [ExitCount("0180", m, n, "in_training", "sick_leave") for m, n in per_month]

    first_quarter = sick((JAN, 5), (FEB, 5), (MAR, 5))
    assert outcomes(counts(exits=first_quarter), "0180", JAN, date(2026, 3, 31),
                    5).exits_by_reason == {"sick_leave": 15}
    four_months = outcomes(counts(exits=[*first_quarter, *sick((APR, 1))]), "0180", JAN,
                           date(2026, 4, 30), 5)
    assert four_months.exits_by_reason == {"sick_leave": None} and four_months.suppressed
    # the other way round: February-April minus March-April is February (2): withheld too
    later = outcomes(counts(exits=sick((FEB, 2), (MAR, 5), (APR, 5))), "0180", FEB,
                     date(2026, 4, 30), 5)
    assert later.exits_by_reason == {"sick_leave": None}
    # months large enough at both ends: shown
    big = [ExitCount("0180", JAN, 5, "in_training", "sick_leave"),
           ExitCount("0180", FEB, 1, "in_training", "sick_leave"),
           ExitCount("0180", MAR, 6, "in_training", "sick_leave")]
    assert outcomes(counts(exits=big), "0180", None, None, 5).exits_by_reason == {
        "sick_leave": 12}


def test_all_municipalities_hide_what_the_withheld_ones_add_up_to() -> None:
    """The total minus the published municipalities would give away a withheld one."""
    rows = [StageCount("0180", JAN, 20, "closed"), StageCount("1480", JAN, 6, "closed"),
            StageCount("2480", JAN, 2, "closed")]
    assert outcomes(counts(referrals=rows[2:]), "2480", None, None,
                    5).by_stage["closed"] is None
    assert outcomes(counts(referrals=rows), None, None, None, 5).by_stage["closed"] is None
    two_small = [*rows, StageCount("0380", JAN, 3, "closed")]  # 2 + 3: a group of five
    assert outcomes(counts(referrals=two_small), None, None, None, 5).by_stage["closed"] == 31


@pytest.mark.parametrize(("start", "end", "fields"), [
    (date(2026, 1, 2), None, ["from"]),
    (None, date(2026, 1, 30), ["to"]),
    (date(2026, 1, 15), date(2026, 2, 14), ["from", "to"]),
    (date(2026, 3, 1), date(2026, 1, 31), ["to"]),
])
def test_periods_are_whole_calendar_months(start: date | None, end: date | None,
                                           fields: list[str]) -> None:
    with pytest.raises(RuleError) as e:
        check_period(start, end)
    assert e.value.status == 422
    assert [x["field"] for x in e.value.extra["errors"]] == fields  # type: ignore[union-attr]


def test_whole_months_pass() -> None:
    check_period(date(2024, 2, 1), date(2024, 2, 29))
    check_period(None, date(2026, 12, 31))
    check_period(date(2026, 1, 1), None)
    check_period(None, None)
