"""The Participant aggregate, its company read model and the timeline: every rule without a
database or a broker (no fixture here needs either)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from asf_contracts import casework as ev
from asf_kit.rules import RuleError
from casework.domain import (
    Company,
    Employment,
    FlaggedPlacement,
    FollowUp,
    KnownUser,
    NoteRef,
    Participant,
    Placement,
    Reassignment,
    StageChange,
    flag_reason,
    placements_flagged,
)
from casework.inputs import PlacementIn, TransitionIn
from casework.timeline import CaseHistory, timeline

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
OFFSETS = [90, 180, 365]


def company(places: int = 2, status: str = "active") -> Company:
    return Company(id=uuid.uuid4(), name="Gröna Händer", municipality_code="0180",
                   status=status, training_places=places, version=2)


def referred() -> Participant:
    p = Participant.refer("0180", "social_services", "cw-1", "cw-1", AT)
    p.take_events()
    p.added.clear()
    return p


def placement_in(start: date = AT.date()) -> PlacementIn:
    return PlacementIn(company_id=uuid.uuid4(), kind="work_training", start=start)


def move(p: Participant, to: str, **extra: Any) -> None:
    p.transition(TransitionIn.model_validate({"to": to, **extra}), "cw-1", AT, OFFSETS)


def at_stage(stage: str) -> Participant:
    p = referred()
    if stage == "closed":
        move(p, "closed", exit_reason="moved")
    elif stage != "referred":
        move(p, "assessment")
    if stage in ("in_training", "employed"):
        p.start_placement(placement_in(), company(), 0, "cw-1", AT)
    if stage == "employed":
        move(p, "employed", employment={"form": "unsubsidised", "employer_name": "Bygg AB",
                                        "start": AT.date().isoformat()})
    p.take_events()
    p.added.clear()
    p.changed.clear()
    return p


def types(p: Participant) -> list[str]:
    return [e.type for e in p.take_events()]


# --- referral and the stage machine -----------------------------------------------------


def test_a_referral_starts_the_case_with_its_event() -> None:
    p = Participant.refer("0180", "self", "cw-2", "cw-1", AT, user("cw-2"))
    assert (p.stage, p.version, p.assigned_to, p.created_by) == ("referred", 1, "cw-2", "cw-1")
    [event] = p.take_events()
    assert (event.type, event.aggregate_id, event.version) == (
        ev.PARTICIPANT_REFERRED, p.id, 1)
    assert event.payload == ev.ParticipantReferredPayload(
        participant_id=p.id, municipality_code="0180", referral_source="self",
        assigned_to="cw-2", stage="referred")
    assert p.added == [StageChange(participant_id=p.id, from_stage=None, to_stage="referred",
                                   exit_reason=None, at=AT, by="cw-1")]
    assert p.take_events() == []


def test_each_event_carries_the_version_it_produced() -> None:
    p = referred()
    move(p, "assessment")
    move(p, "closed", exit_reason="studies")
    events = p.take_events()
    assert [(e.type, e.version) for e in events] == [
        (ev.PARTICIPANT_STAGE_CHANGED, 2), (ev.PARTICIPANT_STAGE_CHANGED, 3)]
    assert p.version == 3 and p.stage == "closed" and p.closed_at == AT
    assert p.exit_reason == "studies"
    assert [(s.from_stage, s.to_stage) for s in p.added if isinstance(s, StageChange)] == [
        ("referred", "assessment"), ("assessment", "closed")]


@pytest.mark.parametrize(("stage", "to", "allowed"), [
    ("referred", "employed", ["assessment", "closed"]),
    ("referred", "referred", ["assessment", "closed"]),
    ("assessment", "in_training", ["in_training", "closed"]),  # only by a placement
    ("in_training", "assessment", ["employed", "closed"]),
    ("employed", "in_training", ["in_training", "closed"]),
    ("closed", "assessment", []),
])
def test_a_move_the_machine_lacks_is_refused_naming_the_allowed_ones(
    stage: str, to: str, allowed: list[str]
) -> None:
    p = at_stage(stage)
    extra: dict[str, Any] = {}
    if to == "employed":
        extra["employment"] = {"form": "unsubsidised", "employer_name": "X",
                               "start": "2026-01-01"}
    with pytest.raises(RuleError) as e:
        move(p, to, **extra)
    assert e.value.status == 409
    assert (e.value.extra["allowed"], e.value.extra["current_stage"]) == (allowed, stage)
    assert p.stage == stage and p.take_events() == [] and p.added == []


def test_closing_needs_an_exit_reason_except_from_a_job() -> None:
    p = at_stage("assessment")
    with pytest.raises(RuleError) as e:
        move(p, "closed")
    assert e.value.status == 422 and e.value.extra["errors"][0]["field"] == "exit_reason"
    q = at_stage("employed")
    move(q, "closed")
    assert q.stage == "closed" and q.employment is not None and q.employment.ended_on is None


def test_a_job_ends_the_placements_and_schedules_the_follow_ups() -> None:
    p = at_stage("in_training")
    [placement] = p.active_placements
    move(p, "employed", employment={"form": "wage_subsidy", "employer_name": "Bygg AB",
                                    "start": "2026-04-01"})
    assert types(p) == [ev.PLACEMENT_ENDED, ev.PARTICIPANT_STAGE_CHANGED,
                        ev.PARTICIPANT_EMPLOYED]
    assert (placement.status, placement.end_reason, placement.ended_on, placement.version) == (
        "ended", "employed", AT.date(), 2)
    assert p.employment is not None and p.employment.form == "wage_subsidy"
    assert [(f.offset_days, f.due_date) for f in p.follow_ups] == [
        (90, date(2026, 6, 30)), (180, date(2026, 9, 28)), (365, date(2027, 4, 1))]
    assert all(f.employment_id == p.employment.id for f in p.follow_ups)
    assert p.employment in p.added and all(f in p.added for f in p.follow_ups)
    assert placement in p.changed


def test_closing_ends_the_placements_as_case_closed() -> None:
    p = at_stage("in_training")
    move(p, "closed", exit_reason="sick_leave")
    assert [pl.end_reason for pl in p.placements] == ["case_closed"]


def test_an_employer_company_must_be_known() -> None:
    p = at_stage("in_training")
    body = TransitionIn.model_validate({"to": "employed", "employment": {
        "form": "wage_subsidy", "employer_company_id": str(uuid.uuid4()), "start": "2026-04-01"}})
    with pytest.raises(RuleError) as e:
        p.transition(body, "cw-1", AT, OFFSETS, employer=None)
    assert e.value.extra["errors"][0]["field"] == "employment.employer_company_id"
    assert p.stage == "in_training" and p.active_placements
    p.transition(body, "cw-1", AT, OFFSETS, employer=company())
    assert p.stage == "employed"


# --- placements and the training places ------------------------------------------------


def test_a_placement_needs_an_active_company_with_a_free_place() -> None:
    p = at_stage("assessment")
    with pytest.raises(RuleError) as e:
        p.start_placement(placement_in(), None, 0, "cw-1", AT)
    assert e.value.status == 422 and e.value.extra["errors"][0]["field"] == "company_id"
    with pytest.raises(RuleError) as e:
        p.start_placement(placement_in(), company(status="pending"), 0, "cw-1", AT)
    assert e.value.status == 409 and e.value.extra["current_status"] == "pending"
    full = company(places=2)
    with pytest.raises(RuleError) as e:
        p.start_placement(placement_in(), full, 2, "cw-1", AT)
    assert (e.value.status, e.value.title) == (409, "No free training place")
    assert (e.value.extra["training_places"], e.value.extra["active_placements"]) == (2, 2)
    assert p.stage == "assessment" and p.placements == [] and p.take_events() == []

    placement = p.start_placement(placement_in(), full, 1, "cw-1", AT)  # the last place
    assert (placement.company_id, placement.company_name, placement.status) == (
        full.id, "Gröna Händer", "active")
    assert types(p) == [ev.PLACEMENT_STARTED, ev.PARTICIPANT_STAGE_CHANGED]
    assert p.stage == "in_training" and p.active_placements == [placement]


def test_a_second_placement_beside_the_first_keeps_the_stage() -> None:
    p = at_stage("in_training")
    p.start_placement(placement_in(), company(), 0, "cw-1", AT)
    assert types(p) == [ev.PLACEMENT_STARTED] and len(p.active_placements) == 2


@pytest.mark.parametrize("stage", ["referred", "closed"])
def test_no_placement_before_assessment_or_after_closing(stage: str) -> None:
    with pytest.raises(RuleError) as e:
        at_stage(stage).start_placement(placement_in(), company(), 0, "cw-1", AT)
    assert e.value.status == 409


def test_a_placement_after_a_job_ends_the_job_and_cancels_what_is_not_yet_due() -> None:
    p = at_stage("employed")
    first = p.follow_ups[0]
    p.announce_follow_up(first.id, AT)  # already announced: stays
    p.take_events()
    later = AT + timedelta(days=1)
    p.start_placement(placement_in(date(2026, 5, 1)), company(), 0, "cw-1", later)
    assert p.stage == "in_training"
    assert p.employment is not None and p.employment.ended_on == date(2026, 5, 1)
    assert [f.cancelled_at for f in p.follow_ups] == [None, later, later]


def test_ending_a_placement() -> None:
    p = at_stage("in_training")
    [pl] = p.placements
    with pytest.raises(RuleError) as e:
        p.end_placement(uuid.uuid4(), "completed", None, AT)
    assert e.value.status == 404
    with pytest.raises(RuleError) as e:
        p.end_placement(pl.id, "completed", pl.start - timedelta(days=1), AT)
    assert e.value.extra["errors"][0]["field"] == "end"
    ended = p.end_placement(pl.id, "interrupted", None, AT)
    assert (ended.status, ended.ended_on, ended.end_reason) == ("ended", AT.date(),
                                                                "interrupted")
    [event] = p.take_events()
    assert event.type == ev.PLACEMENT_ENDED and event.payload.model_dump()["reason"] == (
        "interrupted")
    with pytest.raises(RuleError) as e:
        p.end_placement(pl.id, "completed", None, AT)
    assert (e.value.status, e.value.extra["current_status"]) == (409, "ended")


# --- follow-ups -------------------------------------------------------------------------


def test_follow_ups_are_announced_once_and_recorded_once() -> None:
    p = at_stage("employed")
    f90, f180, _ = p.follow_ups
    p.announce_follow_up(f90.id, AT)
    p.announce_follow_up(f90.id, AT)
    [due] = p.take_events()
    assert due.payload == ev.FollowUpDuePayload(
        participant_id=p.id, municipality_code="0180", assigned_to="cw-1", offset_days=90,
        due_date=f90.due_date, employment_start=AT.date())

    recorded = p.record_follow_up(None, True, "cw-2", AT, OFFSETS)  # the earliest open one
    assert (recorded.offset_days, recorded.still_employed, recorded.recorded_by) == (
        90, True, "cw-2")
    assert p.record_follow_up(180, False, "cw-1", AT, OFFSETS) is f180
    assert types(p) == [ev.FOLLOW_UP_RECORDED, ev.FOLLOW_UP_RECORDED]
    with pytest.raises(RuleError) as e:
        p.record_follow_up(180, True, "cw-1", AT, OFFSETS)
    assert (e.value.status, e.value.title) == (409, "Follow-up recorded")
    with pytest.raises(RuleError) as e:
        p.record_follow_up(42, True, "cw-1", AT, OFFSETS)
    assert e.value.title == "No follow-up to record" and e.value.extra["offsets"] == OFFSETS


def test_a_cancelled_follow_up_is_not_recorded_and_a_case_without_a_job_has_none() -> None:
    p = at_stage("employed")
    p.start_placement(placement_in(), company(), 0, "cw-1", AT)
    with pytest.raises(RuleError) as e:
        p.record_follow_up(90, True, "cw-1", AT, OFFSETS)
    assert e.value.title == "Follow-up cancelled"
    with pytest.raises(RuleError) as e:
        p.record_follow_up(None, True, "cw-1", AT, OFFSETS)
    assert e.value.title == "No follow-up to record"
    with pytest.raises(RuleError):
        at_stage("assessment").record_follow_up(None, True, "cw-1", AT, OFFSETS)


# --- notes and erasure ------------------------------------------------------------------


def test_erasure_is_for_closed_cases_and_happens_once() -> None:
    p = at_stage("employed")
    with pytest.raises(RuleError) as e:
        p.erase(AT)
    assert (e.value.status, e.value.extra["allowed"], e.value.extra["current_stage"]) == (
        409, ["closed"], "employed")
    p.announce_follow_up(p.follow_ups[0].id, AT)
    move(p, "closed")
    p.take_events()
    assert p.erase(AT) is True
    assert p.erased and [e.type for e in p.take_events()] == [ev.PARTICIPANT_ERASED]
    assert [f.cancelled_at for f in p.follow_ups] == [None, AT, AT]
    assert p.erase(AT) is False and p.take_events() == []
    with pytest.raises(RuleError) as e:
        p.add_note("cw-1", False, AT)
    assert e.value.title == "Participant erased"


def test_a_confidential_note_is_read_by_its_author_and_the_assigned_case_worker() -> None:
    p = referred()
    note = p.add_note("cw-author", True, AT)
    assert note.readable_by("cw-author", p.assigned_to)
    assert note.readable_by("cw-1", p.assigned_to)
    assert not note.readable_by("cw-colleague", p.assigned_to)
    assert p.add_note("cw-author", False, AT).readable_by("cw-colleague", p.assigned_to)
    assert p.take_events() == [] and p.version == 1  # a note changes no stage or version


# --- corrections and reassignment -------------------------------------------------------


def user(sub: str, municipality: str | None = "0180", *roles: str) -> KnownUser:
    return KnownUser(sub=sub, municipality_code=municipality,
                     roles=list(roles or ("case_worker",)), seen_at=AT)


def test_a_case_goes_only_to_a_case_worker_of_its_municipality() -> None:
    p = referred()
    for assignee in (None, user("cw-2", "1480"), user("cw-2", "0180", "auditor"),
                     user("cw-2", None), user("cw-3")):
        with pytest.raises(RuleError) as e:
            p.correct(by="cw-1", at=AT, assigned_to="cw-2", assignee=assignee)
        assert e.value.status == 422 and e.value.extra["errors"][0]["field"] == "assigned_to"
    assert (p.assigned_to, p.version, p.take_events(), p.added) == ("cw-1", 1, [], [])

    assert p.correct(by="cw-1", at=AT, assigned_to="cw-2", assignee=user("cw-2")) is True
    [event] = p.take_events()
    assert (event.type, event.version, p.version, p.assigned_to) == (
        ev.PARTICIPANT_REASSIGNED, 2, 2, "cw-2")
    assert event.payload == ev.ParticipantReassignedPayload(
        participant_id=p.id, municipality_code="0180", from_assigned_to="cw-1",
        assigned_to="cw-2")
    assert p.added == [Reassignment(participant_id=p.id, from_assigned_to="cw-1",
                                    assigned_to="cw-2", at=AT, by="cw-1")]


def test_a_referral_is_assigned_to_its_case_worker_or_a_colleague_of_the_municipality() -> None:
    assert Participant.refer("0180", "self", "cw-1", "cw-1", AT).assigned_to == "cw-1"
    with pytest.raises(RuleError) as e:
        Participant.refer("0180", "self", "cw-2", "cw-1", AT, user("cw-2", "1480"))
    assert e.value.extra["errors"][0]["field"] == "assigned_to"
    p = Participant.refer("0180", "self", "cw-2", "cw-1", AT, user("cw-2"))
    assert p.assigned_to == "cw-2"
    assert p.take_events()[0].payload.model_dump()["assigned_to"] == "cw-2"


def test_a_correction_moves_the_version_once_even_without_an_event() -> None:
    p = referred()
    assert p.correct(by="cw-1", at=AT, referral_source="social_services") is False  # same
    assert p.correct(by="cw-1", at=AT, assigned_to="cw-1") is False  # already theirs
    assert p.version == 1
    assert p.correct(by="cw-1", at=AT, referral_source="self", personal_changed=True)
    assert (p.referral_source, p.version, p.take_events()) == ("self", 2, [])
    p.correct(by="cw-1", at=AT, personal_changed=True, assigned_to="cw-2",
              assignee=user("cw-2"))
    assert p.version == 3 and [e.version for e in p.take_events()] == [3]


def test_an_erased_participant_is_not_corrected() -> None:
    p = at_stage("closed")
    p.erase(AT)
    with pytest.raises(RuleError) as e:
        p.correct(by="cw-1", at=AT, personal_changed=True)
    assert e.value.status == 409


# --- the company read model -------------------------------------------------------------


def test_a_deregistered_company_flags_its_placements_and_names_each_case_worker_once() -> None:
    c = company().model_copy(update={"status": "deregistered", "version": 3})
    assert flag_reason(c, "bankruptcy") == "bankruptcy"
    assert flag_reason(c, None) == "deregistered"
    assert flag_reason(company(), "bankruptcy") is None
    flagged = [FlaggedPlacement(uuid.uuid4(), uuid.uuid4(), m, cw, "in_training")
               for m, cw in (("0180", "cw-b"), ("0180", "cw-a"), ("1480", "cw-b"))]
    event = placements_flagged(c, "bankruptcy", flagged)
    assert (event.type, event.aggregate_id, event.version) == (ev.PLACEMENTS_FLAGGED, c.id, 3)
    payload = event.payload
    assert isinstance(payload, ev.PlacementsFlaggedPayload)
    assert payload.case_workers == ["cw-a", "cw-b"]
    assert [x.placement_id for x in payload.placements] == [f.placement_id for f in flagged]


# --- the timeline and the outcome figures -----------------------------------------------


def test_the_timeline_is_in_time_order_and_shows_only_readable_notes() -> None:
    pid, cid, eid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    day = timedelta(days=1)
    hidden = NoteRef(id=uuid.uuid4(), participant_id=pid, author="cw-x", confidential=True,
                     created_at=AT + 2 * day)
    shown = NoteRef(id=uuid.uuid4(), participant_id=pid, author="cw-x", confidential=False,
                    created_at=AT + 3 * day)
    history = CaseHistory(
        assigned_to="cw-1",
        stage_changes=[StageChange(participant_id=pid, from_stage=None, to_stage="referred",
                                   exit_reason=None, at=AT, by="cw-1")],
        placements=[Placement(id=uuid.uuid4(), participant_id=pid, company_id=cid,
                              company_name="Gröna Händer", kind="internship",
                              start=(AT + day).date(), planned_end=None, hours_per_week=None,
                              status="ended", ended_on=(AT + 5 * day).date(),
                              end_reason="employed", created_by="cw-1", created_at=AT)],
        employments=[Employment(id=eid, participant_id=pid, form="unsubsidised",
                                employer_company_id=None, employer_name="Bygg AB",
                                start=(AT + 4 * day).date(), created_at=AT)],
        follow_ups=[FollowUp(id=uuid.uuid4(), participant_id=pid, employment_id=eid,
                             offset_days=90, due_date=(AT + 94 * day).date(),
                             due_notified_at=AT + 94 * day)],
        notes=[hidden, shown],
        reassignments=[Reassignment(participant_id=pid, from_assigned_to="cw-1",
                                    assigned_to="cw-2", at=AT + 6 * day, by="cw-1")],
    )
    items = timeline(history, {shown.id: "öppet"})
    assert [i.kind for i in items] == ["stage_changed", "placement_started", "note", "note",
                                       "employment_started", "placement_ended", "reassigned",
                                       "follow_up_due"]
    assert items[6].details == {"from_assigned_to": "cw-1", "assigned_to": "cw-2"}
    assert [i.details["text"] for i in items if i.kind == "note"] == [None, "öppet"]
    assert items[1].details["company_name"] == "Gröna Händer"
