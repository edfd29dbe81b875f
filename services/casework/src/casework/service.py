"""What casework does, step by step: load, let the domain decide, save with its events.

Each use case runs in one transaction: the change, its events in the outbox, the
access-log row and the NOTIFY for `/stream` commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from pydantic import BaseModel

from asf_contracts import casework as ev
from asf_contracts.registry import CompanyPayload
from asf_kit.auth import Principal, Role
from asf_kit.db import Conn
from asf_kit.logging import get_logger
from asf_kit.outbox import add_events, new_event
from asf_kit.problems import Problem, forbidden, invalid, not_found, rule_problem
from asf_kit.rules import RuleError
from casework import store
from casework.crypto import Vault, WrappedKey
from casework.domain import (
    FollowUpIn,
    NoteIn,
    ParticipantIn,
    PlacementEndIn,
    PlacementIn,
    TransitionIn,
    check_placement_start,
    check_transition,
    follow_up_schedule,
    left_for_work_or_studies,
)
from casework.views import (
    AccessLogEntry,
    Case,
    Employment,
    FollowUp,
    FollowUpOutcome,
    Note,
    Outcomes,
    Participant,
    Placement,
    TimelineItem,
)

log = get_logger(__name__)

PRODUCER = ev.PRODUCER
PERSONAL = "personal"
NOTE = "note"


def now() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    return now().date()


def case_from_row(r: asyncpg.Record) -> Case:
    employment = None
    if r["employment_id"] is not None:
        employment = Employment(
            id=r["employment_id"], form=r["employment_form"],
            employer_company_id=r["employer_company_id"], employer_name=r["employer_name"],
            start=r["employment_start"], ended_on=r["employment_ended_on"],
        )
    return Case(
        id=r["id"], municipality_code=r["municipality_code"],
        referral_source=r["referral_source"], assigned_to=r["assigned_to"], stage=r["stage"],
        exit_reason=r["exit_reason"], referred_at=r["referred_at"], closed_at=r["closed_at"],
        erased_at=r["erased_at"], employment=employment,
        active_placement_ids=list(r["active_placement_ids"]), version=r["version"],
    )


def placement_from_row(r: asyncpg.Record) -> Placement:
    return Placement(**{k: r[k] for k in Placement.model_fields})


def follow_up_from_row(r: asyncpg.Record) -> FollowUp:
    return FollowUp(**{k: r[k] for k in FollowUp.model_fields})


def _at(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


def scope_of(who: Principal) -> str:
    """The municipality a case worker works in; 403 when the token names none."""
    if who.municipality_code is None:
        raise forbidden("a case worker's token must carry municipality_code")
    return who.municipality_code


@dataclass
class Change:
    """Events one use case publishes about one case, and what `/stream` is told."""

    participant_id: UUID
    municipality_code: str
    stage: str
    events: list[tuple[str, BaseModel]]


class Casework:
    """The use cases, with what they need: the pool, the vault and the follow-up offsets.

    `pool` is a function because the pool exists only once the runtime has started,
    while the consumer's handlers are wired before that.
    """

    def __init__(self, pool: Callable[[], asyncpg.Pool], vault: Vault,
                 follow_up_offsets: list[int]) -> None:
        self._pool = pool
        self.vault = vault
        self.offsets = follow_up_offsets

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool()

    # --- plumbing ------------------------------------------------------------------------

    async def _publish(self, conn: Conn, change: Change, at: datetime) -> int:
        """Write the events with consecutive versions, and tell `/stream`; returns the version."""
        n = len(change.events)
        version = await store.advance_version(conn, change.participant_id, n, at)
        await add_events(conn, [
            new_event(producer=PRODUCER, event_type=t, event_version=1,
                      aggregate_id=change.participant_id, aggregate_version=version - n + i + 1,
                      payload=p)
            for i, (t, p) in enumerate(change.events)
        ])
        await store.notify_change(conn, {
            "participant_id": str(change.participant_id),
            "municipality_code": change.municipality_code,
            "stage": change.stage, "version": version, "event": change.events[-1][0],
        })
        return version

    async def _lock(
        self, conn: Conn, participant_id: UUID, who: Principal
    ) -> asyncpg.Record:
        """The participant row, locked; 404 when missing or in another municipality."""
        row = await store.lock_participant(conn, participant_id)
        if row is None or row["municipality_code"] != scope_of(who):
            raise not_found("participant")
        return row

    async def _case(self, conn: Conn, participant_id: UUID,
                    who: Principal) -> asyncpg.Record:
        row = await store.get_case(conn, participant_id)
        if row is None or row["municipality_code"] != scope_of(who):
            raise not_found("participant")
        return row

    async def _data_key(self, conn: Conn, participant_id: UUID) -> bytes | None:
        """The participant's data key, or None once erased."""
        k = await store.get_key(conn, participant_id)
        if k is None:
            return None
        return self.vault.unwrap(participant_id, WrappedKey(k["key_id"], bytes(k["wrapped"])))

    def _hash_input(self, identity_number: str) -> str:
        return identity_number.replace("-", "")

    async def _end_active_placements(
        self, conn: Conn, participant: asyncpg.Record, reason: str, on: date
    ) -> list[tuple[str, BaseModel]]:
        events: list[tuple[str, BaseModel]] = []
        for pl in await store.active_placements(conn, participant["id"]):
            await store.end_placement(conn, pl["id"], on, reason)
            events.append((ev.PLACEMENT_ENDED, ev.PlacementEndedPayload(
                placement_id=pl["id"], participant_id=participant["id"],
                company_id=pl["company_id"], municipality_code=participant["municipality_code"],
                assigned_to=participant["assigned_to"], reason=reason, end=on,
            )))
        return events

    def _stage_changed(self, p: asyncpg.Record, to: str,
                       exit_reason: str | None = None) -> tuple[str, BaseModel]:
        return ev.PARTICIPANT_STAGE_CHANGED, ev.StageChangedPayload(
            participant_id=p["id"], municipality_code=p["municipality_code"],
            assigned_to=p["assigned_to"], from_stage=p["stage"], to_stage=to,
            exit_reason=exit_reason,
        )

    # --- participants --------------------------------------------------------------------

    async def refer(self, body: ParticipantIn, who: Principal) -> Participant:
        """Register a referred participant; 409 with the existing id on a duplicate."""
        municipality = scope_of(who)
        pid, at = uuid4(), now()
        data_key, wrapped = self.vault.new_data_key(pid)
        personal = body.model_dump(
            mode="json", include={"given_name", "family_name", "personal_identity_number",
                                  "phone", "email"})
        hash_input = self._hash_input(body.personal_identity_number)
        assigned = body.assigned_to or who.sub
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                existing = await store.find_open_case(
                    conn, municipality, self.vault.identity_hashes(hash_input))
                if existing is not None:
                    raise _duplicate(existing)
                await store.insert_participant(
                    conn, id=pid, municipality_code=municipality,
                    referral_source=body.referral_source, assigned_to=assigned, referred_at=at,
                    personal=self.vault.seal(data_key, pid, PERSONAL, personal),
                    identity_hash=self.vault.identity_hash(hash_input),
                    key_id=wrapped.key_id, created_by=who.sub,
                )
                await store.insert_key(conn, pid, wrapped.key_id, wrapped.wrapped)
                await store.insert_stage_change(conn, pid, None, "referred", None, at, who.sub)
                await store.log_access(conn, [pid], who.sub, "create")
                await self._publish(conn, Change(pid, municipality, "referred", [(
                    ev.PARTICIPANT_REFERRED, ev.ParticipantReferredPayload(
                        participant_id=pid, municipality_code=municipality,
                        referral_source=body.referral_source, assigned_to=assigned,
                        stage="referred"),
                )]), at)
                row = await store.get_case(conn, pid)
        except asyncpg.UniqueViolationError:
            # Another request registered the same person between our check and insert.
            async with self.pool.acquire() as conn:
                existing = await store.find_open_case(
                    conn, municipality, self.vault.identity_hashes(hash_input))
            raise _duplicate(existing) from None
        assert row is not None
        log.info("participant referred", participant_id=str(pid))
        return Participant(**case_from_row(row).model_dump(), **personal)

    async def get(self, participant_id: UUID, who: Principal) -> Participant:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._case(conn, participant_id, who)
            await store.log_access(conn, [participant_id], who.sub, "read")
            data_key = await self._data_key(conn, participant_id)
        personal: dict[str, Any] = dict.fromkeys(
            ("given_name", "family_name", "personal_identity_number", "phone", "email"))
        if data_key is not None and row["personal"] is not None:
            personal.update(self.vault.open(data_key, participant_id, PERSONAL,
                                            bytes(row["personal"])))
        return Participant(**case_from_row(row).model_dump(), **personal)

    async def list_cases(
        self, who: Principal, *, stage: str | None, company_id: UUID | None,
        assigned_to: str | None, after: tuple[datetime, UUID] | None, limit: int,
    ) -> list[Case]:
        """Cases of the caller's municipality, without personal data; each one listed is logged."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await store.list_cases(
                conn, municipality_code=scope_of(who), stage=stage, company_id=company_id,
                assigned_to=assigned_to, after=after, limit=limit,
            )
            await store.log_access(conn, [r["id"] for r in rows], who.sub, "list")
        return [case_from_row(r) for r in rows]

    async def find(self, identity_number: str, who: Principal) -> list[Case]:
        """The cases of one person in the caller's municipality, found by the keyed hash."""
        hashes = self.vault.identity_hashes(self._hash_input(identity_number))
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await store.find_cases(conn, scope_of(who), hashes)
            await store.log_access(conn, [r["id"] for r in rows], who.sub, "search")
        return [case_from_row(r) for r in rows]

    async def erase(self, participant_id: UUID, who: Principal) -> None:
        """Shred the personal data of a closed case for good; the figures stay."""
        at = now()
        async with self.pool.acquire() as conn, conn.transaction():
            p = await self._lock(conn, participant_id, who)
            await store.log_access(conn, [participant_id], who.sub, "erase")
            if p["erased_at"] is not None:
                return
            if p["stage"] != "closed":
                raise rule_problem(RuleError(
                    409, "Case still open",
                    f"close the case before erasing the participant; it is {p['stage']}",
                    current_stage=p["stage"], allowed=["closed"],
                ))
            await store.erase_participant(conn, participant_id, at)
            await store.cancel_follow_ups(conn, participant_id, at)
            await self._publish(conn, Change(participant_id, p["municipality_code"], "closed", [(
                ev.PARTICIPANT_ERASED, ev.ParticipantErasedPayload(
                    participant_id=participant_id, municipality_code=p["municipality_code"]),
            )]), at)
        log.info("participant erased", participant_id=str(participant_id))

    # --- the case ------------------------------------------------------------------------

    async def transition(self, participant_id: UUID, body: TransitionIn, who: Principal) -> Case:
        """Move the case one step; 409 naming the allowed moves otherwise."""
        at = now()
        async with self.pool.acquire() as conn, conn.transaction():
            p = await self._lock(conn, participant_id, who)
            try:
                check_transition(p["stage"], body)
            except RuleError as e:
                raise rule_problem(e) from None
            events: list[tuple[str, BaseModel]] = []
            if body.to in ("employed", "closed"):
                reason = "employed" if body.to == "employed" else "case_closed"
                events += await self._end_active_placements(conn, p, reason, at.date())
            events.append(self._stage_changed(p, body.to, body.exit_reason))
            if body.employment is not None:
                events.append(await self._employ(conn, p, body, at))
            await store.set_stage(conn, participant_id, body.to, body.exit_reason, at)
            await store.insert_stage_change(conn, participant_id, p["stage"], body.to,
                                            body.exit_reason, at, who.sub)
            await store.log_access(conn, [participant_id], who.sub, "transition")
            await self._publish(conn, Change(participant_id, p["municipality_code"], body.to,
                                             events), at)
            row = await store.get_case(conn, participant_id)
        assert row is not None
        return case_from_row(row)

    async def _employ(self, conn: Conn, p: asyncpg.Record, body: TransitionIn,
                      at: datetime) -> tuple[str, BaseModel]:
        e = body.employment
        assert e is not None
        if e.employer_company_id is not None and await store.get_company(
                conn, e.employer_company_id) is None:
            raise invalid("employment.employer_company_id",
                          "no company with this id in the register")
        employment_id = uuid4()
        await store.insert_employment(
            conn, id=employment_id, participant_id=p["id"], form=e.form,
            employer_company_id=e.employer_company_id, employer_name=e.employer_name,
            start=e.start, at=at,
        )
        await store.insert_follow_ups(conn, [
            (uuid4(), p["id"], employment_id, offset, due)
            for offset, due in follow_up_schedule(e.start, self.offsets)
        ])
        return ev.PARTICIPANT_EMPLOYED, ev.ParticipantEmployedPayload(
            participant_id=p["id"], municipality_code=p["municipality_code"],
            assigned_to=p["assigned_to"], employment_form=e.form,
            employer_company_id=e.employer_company_id, start=e.start,
        )

    async def start_placement(self, participant_id: UUID, body: PlacementIn,
                              who: Principal) -> Placement:
        """Place the participant at an active company with a free training place.

        The company's read-model row is locked while places are counted, so two
        placements at the same time cannot both take the last place.
        """
        at = now()
        async with self.pool.acquire() as conn, conn.transaction():
            p = await self._lock(conn, participant_id, who)
            try:
                check_placement_start(p["stage"])
            except RuleError as e:
                raise rule_problem(e) from None
            company = await store.get_company(conn, body.company_id, for_update=True)
            if company is None:
                raise invalid("company_id", "no company with this id in the register")
            if company["status"] != "active":
                raise Problem(
                    409, "Company not active",
                    f"placements are made only at active companies; this one is "
                    f"{company['status']}", slug="company-not-active",
                    current_status=company["status"],
                )
            taken = await store.count_active_placements(conn, body.company_id)
            if taken >= company["training_places"]:
                raise Problem(
                    409, "No free training place",
                    f"all {company['training_places']} training places at the company are taken",
                    slug="no-free-training-place", training_places=company["training_places"],
                    active_placements=taken,
                )
            placement_id = uuid4()
            await store.insert_placement(
                conn, id=placement_id, participant_id=participant_id,
                company_id=body.company_id, kind=body.kind, start=body.start,
                planned_end=body.planned_end, hours_per_week=body.hours_per_week,
                created_by=who.sub, at=at,
            )
            started = ev.PlacementStartedPayload(
                placement_id=placement_id, participant_id=participant_id,
                company_id=body.company_id, municipality_code=p["municipality_code"],
                assigned_to=p["assigned_to"], kind=body.kind, start=body.start,
                planned_end=body.planned_end, hours_per_week=body.hours_per_week,
            )
            events: list[tuple[str, BaseModel]] = [(ev.PLACEMENT_STARTED, started)]
            if p["stage"] != "in_training":
                if p["stage"] == "employed":
                    await store.end_current_employment(conn, participant_id, body.start, at)
                events.append(self._stage_changed(p, "in_training"))
                await store.set_stage(conn, participant_id, "in_training", None, at)
                await store.insert_stage_change(conn, participant_id, p["stage"], "in_training",
                                                None, at, who.sub)
            await store.log_access(conn, [participant_id], who.sub, "placement_start")
            await self._publish(conn, Change(participant_id, p["municipality_code"],
                                             "in_training", events), at)
            row = await store.get_placement(conn, placement_id)
        assert row is not None
        return placement_from_row(row)

    async def end_placement(self, placement_id: UUID, body: PlacementEndIn,
                            who: Principal) -> Placement:
        at = now()
        async with self.pool.acquire() as conn, conn.transaction():
            pl = await store.get_placement(conn, placement_id)
            if pl is None or pl["municipality_code"] != scope_of(who):
                raise not_found("placement")
            p = await self._lock(conn, pl["participant_id"], who)
            pl = await store.get_placement(conn, placement_id)  # read again under the lock
            assert pl is not None
            if pl["status"] != "active":
                raise Problem(409, "Placement already ended",
                              f"the placement ended on {pl['ended_on']}", slug="placement-ended",
                              current_status=pl["status"])
            ended_on = body.end or at.date()
            if ended_on < pl["start"]:
                raise invalid("end", "cannot be before the placement's start")
            await store.end_placement(conn, placement_id, ended_on, body.reason)
            await store.log_access(conn, [p["id"]], who.sub, "placement_end")
            await self._publish(conn, Change(p["id"], p["municipality_code"], p["stage"], [(
                ev.PLACEMENT_ENDED, ev.PlacementEndedPayload(
                    placement_id=placement_id, participant_id=p["id"],
                    company_id=pl["company_id"], municipality_code=p["municipality_code"],
                    assigned_to=p["assigned_to"], reason=body.reason, end=ended_on),
            )]), at)
            row = await store.get_placement(conn, placement_id)
        assert row is not None
        return placement_from_row(row)

    async def record_follow_up(self, participant_id: UUID, body: FollowUpIn,
                               who: Principal) -> FollowUp:
        """Record whether the participant is still employed at one follow-up."""
        at = now()
        async with self.pool.acquire() as conn, conn.transaction():
            p = await self._lock(conn, participant_id, who)
            fu = await store.follow_up_to_record(conn, participant_id, body.offset_days)
            if fu is None:
                which = (f"at {body.offset_days} days " if body.offset_days else "")
                raise Problem(409, "No follow-up to record",
                              f"the case has no open follow-up {which}of its latest employment",
                              slug="no-follow-up", offsets=self.offsets)
            if fu["recorded_at"] is not None or fu["cancelled_at"] is not None:
                state = "recorded" if fu["recorded_at"] is not None else "cancelled"
                raise Problem(409, f"Follow-up {state}",
                              f"the follow-up at {fu['offset_days']} days is already {state}",
                              slug=f"follow-up-{state}")
            row = await store.record_follow_up(conn, fu["id"], body.still_employed, who.sub, at)
            await store.log_access(conn, [participant_id], who.sub, "follow_up")
            await self._publish(conn, Change(participant_id, p["municipality_code"], p["stage"], [(
                ev.FOLLOW_UP_RECORDED, ev.FollowUpRecordedPayload(
                    participant_id=participant_id, municipality_code=p["municipality_code"],
                    offset_days=fu["offset_days"], still_employed=body.still_employed),
            )]), at)
        return follow_up_from_row(row)

    async def add_note(self, participant_id: UUID, body: NoteIn, who: Principal) -> Note:
        """A note on the case, sealed with the participant's data key."""
        at, note_id = now(), uuid4()
        async with self.pool.acquire() as conn, conn.transaction():
            await self._lock(conn, participant_id, who)
            data_key = await self._data_key(conn, participant_id)
            if data_key is None:
                raise Problem(409, "Participant erased", "an erased participant takes no notes",
                              slug="participant-erased")
            await store.insert_note(
                conn, id=note_id, participant_id=participant_id, author=who.sub,
                confidential=body.confidential, at=at,
                sealed=self.vault.seal(data_key, participant_id, NOTE, {"text": body.text}),
            )
            await store.log_access(conn, [participant_id], who.sub, "note")
        return Note(id=note_id, participant_id=participant_id, author=who.sub,
                    confidential=body.confidential, text=body.text, created_at=at)

    async def timeline(self, participant_id: UUID, who: Principal) -> list[TimelineItem]:
        """Everything that happened on the case, oldest first.

        A confidential note's text is shown only to its author and the assigned case worker.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            case = await self._case(conn, participant_id, who)
            await store.log_access(conn, [participant_id], who.sub, "timeline")
            stages = await store.stage_changes_of(conn, participant_id)
            placements = await store.placements_of(conn, participant_id)
            employments = await store.employments_of(conn, participant_id)
            follow_ups = await store.follow_ups_of(conn, participant_id)
            notes = await store.notes_of(conn, participant_id)
            data_key = await self._data_key(conn, participant_id)
        items = [TimelineItem(at=s["at"], kind="stage_changed", by=s["by"], details={
            "from_stage": s["from_stage"], "to_stage": s["to_stage"],
            "exit_reason": s["exit_reason"]}) for s in stages]
        for pl in placements:
            items.append(TimelineItem(at=_at(pl["start"]), kind="placement_started", by=None,
                                      details={"placement_id": str(pl["id"]),
                                               "company_id": str(pl["company_id"]),
                                               "company_name": pl["company_name"],
                                               "kind": pl["kind"]}))
            if pl["flagged_at"] is not None:
                items.append(TimelineItem(at=pl["flagged_at"], kind="placement_flagged", by=None,
                                          details={"placement_id": str(pl["id"]),
                                                   "reason": pl["flag_reason"]}))
            if pl["ended_on"] is not None:
                items.append(TimelineItem(at=_at(pl["ended_on"]), kind="placement_ended",
                                          by=None, details={"placement_id": str(pl["id"]),
                                                            "reason": pl["end_reason"]}))
        for e in employments:
            items.append(TimelineItem(at=_at(e["start"]), kind="employment_started", by=None,
                                      details={"employment_id": str(e["id"]), "form": e["form"],
                                               "employer_company_id": e["employer_company_id"]
                                               and str(e["employer_company_id"]),
                                               "employer_name": e["employer_name"]}))
        for f in follow_ups:
            if f["recorded_at"] is not None:
                items.append(TimelineItem(at=f["recorded_at"], kind="follow_up_recorded",
                                          by=f["recorded_by"], details={
                                              "offset_days": f["offset_days"],
                                              "still_employed": f["still_employed"]}))
            elif f["due_notified_at"] is not None:
                items.append(TimelineItem(at=_at(f["due_date"]), kind="follow_up_due", by=None,
                                          details={"offset_days": f["offset_days"]}))
        for n in notes:
            readable = not n["confidential"] or who.sub in (n["author"], case["assigned_to"])
            text = None
            if readable and data_key is not None and n["sealed"] is not None:
                text = self.vault.open(data_key, participant_id, NOTE, bytes(n["sealed"]))["text"]
            items.append(TimelineItem(at=n["created_at"], kind="note", by=n["author"], details={
                "note_id": str(n["id"]), "confidential": n["confidential"], "text": text}))
        items.sort(key=lambda i: i.at)
        return items

    async def access_log(self, participant_id: UUID, after: int | None,
                         limit: int) -> list[AccessLogEntry]:
        async with self.pool.acquire() as conn:
            if not await store.participant_exists(conn, participant_id):
                raise not_found("participant")
            rows = await store.access_log(conn, participant_id, after, limit)
        return [AccessLogEntry(**dict(r)) for r in rows]

    # --- follow-ups due ------------------------------------------------------------------

    async def sweep_follow_ups(self, on: date, batch: int = 200) -> int:
        """Announce every follow-up due on or before `on`, each exactly once.

        A follow-up is marked announced in the transaction that writes its event, so
        a sweep that runs twice, or on two replicas, announces nothing twice.
        """
        announced = 0
        while True:
            at = now()
            async with self.pool.acquire() as conn, conn.transaction():
                rows = await store.claim_due_follow_ups(conn, on, batch)
                for r in rows:
                    await store.mark_follow_up_notified(conn, r["id"], at)
                    await self._publish(conn, Change(r["participant_id"], r["municipality_code"],
                                                     r["stage"], [(
                        ev.FOLLOW_UP_DUE, ev.FollowUpDuePayload(
                            participant_id=r["participant_id"],
                            municipality_code=r["municipality_code"],
                            assigned_to=r["assigned_to"], offset_days=r["offset_days"],
                            due_date=r["due_date"], employment_start=r["employment_start"]),
                    )]), at)
            announced += len(rows)
            if len(rows) < batch:
                break
        if announced:
            log.info("follow-ups due announced", count=announced, on=on.isoformat())
        return announced

    async def rotate_keys(self, batch: int = 200) -> int:
        """Rewrap every data key still under an older master key, and rehash the identity
        number under the current one. Safe to stop and run again."""
        moved = 0
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                rows = await store.keys_not_under(conn, self.vault.current, batch)
                for r in rows:
                    pid = r["participant_id"]
                    data_key = self.vault.unwrap(pid, WrappedKey(r["key_id"], bytes(r["wrapped"])))
                    wrapped = self.vault.wrap(pid, data_key)
                    personal = self.vault.open(data_key, pid, PERSONAL, bytes(r["personal"]))
                    digest = self.vault.identity_hash(
                        self._hash_input(personal["personal_identity_number"]))
                    await store.rewrap_key(conn, pid, wrapped.key_id, wrapped.wrapped, digest)
            moved += len(rows)
            if len(rows) < batch:
                return moved

    # --- registry events -----------------------------------------------------------------

    async def apply_company(self, conn: Conn, version: int,
                            company: CompanyPayload) -> None:
        """Keep the read model at the newest version; flag placements at a deregistered company.

        The flagging and its event happen in the consumer's transaction, with the inbox row.
        """
        applied = await store.upsert_company(conn, company, version)
        log.info("company event", company_id=str(company.id), version=version, applied=applied,
                 status=company.status)
        if not applied or company.status != "deregistered":
            return
        reason = company.deregistration_reason or "deregistered"
        at = now()
        flagged = await store.flag_active_placements(conn, company.id, reason, at)
        if not flagged:
            return
        await add_events(conn, [new_event(
            producer=PRODUCER, event_type=ev.PLACEMENTS_FLAGGED, event_version=1,
            aggregate_id=company.id, aggregate_version=version,
            payload=ev.PlacementsFlaggedPayload(
                company_id=company.id, company_name=company.name, reason=reason,
                placements=[ev.FlaggedPlacement(
                    placement_id=r["id"], participant_id=r["participant_id"],
                    municipality_code=r["municipality_code"], assigned_to=r["assigned_to"],
                ) for r in flagged],
                case_workers=sorted({r["assigned_to"] for r in flagged}),
            ),
        )])
        for r in flagged:
            await store.notify_change(conn, {
                "participant_id": str(r["participant_id"]),
                "municipality_code": r["municipality_code"], "stage": r["stage"],
                "event": ev.PLACEMENTS_FLAGGED,
            })
        log.warning("placements flagged: company deregistered", company_id=str(company.id),
                    placements=len(flagged))

    # --- statistics ----------------------------------------------------------------------

    async def outcomes(self, municipality: str | None, start: date | None,
                       end: date | None) -> Outcomes:
        """Outcome figures for a municipality (or all) and a period; counts only.

        - `referred`, `by_stage`: cases referred in the period, and the stage each is in now.
        - `employed_by_form`: employments that started in the period, by form.
        - `exits_by_reason`: cases closed in the period, by `exit_reason`; a case closed
          from `employed` without a reason counts as `employment`.
        - `share_left_for_work_or_studies` (as municipalities report it to Kolada):
          (cases closed in the period while `employed` + cases closed in the period with
          `exit_reason = studies`) / all cases closed in the period; null when none closed.
        - `median_days_referral_to_employment`: over participants whose first employment
          started in the period, days from referral to that start.
        - `follow_ups`: per offset, follow-ups due in the period that were not cancelled,
          how many were recorded, and how many of those said still employed.
        """
        async with self.pool.acquire() as conn:
            stages = await store.stats_referred_by_stage(conn, municipality, start, end)
            forms = await store.stats_employments_by_form(conn, municipality, start, end)
            exits = await store.stats_exits(conn, municipality, start, end)
            median = await store.stats_median_days_to_employment(conn, municipality, start, end)
            fus = await store.stats_follow_ups(conn, municipality, start, end, today())
        by_stage = {s: 0 for s in ("referred", "assessment", "in_training", "employed", "closed")}
        by_stage.update({r["stage"]: r["n"] for r in stages})
        exits_by_reason: dict[str, int] = {}
        work = studies = left = 0
        for r in exits:
            key = r["exit_reason"] or ("employment" if r["from_stage"] == "employed" else "unknown")
            exits_by_reason[key] = exits_by_reason.get(key, 0) + r["n"]
            left += r["n"]
            went = left_for_work_or_studies(r["from_stage"], r["exit_reason"])
            work += r["n"] if went == "work" else 0
            studies += r["n"] if went == "studies" else 0
        return Outcomes(
            municipality_code=municipality, period_from=start, period_to=end,
            referred=sum(by_stage.values()), by_stage=by_stage,
            employed_by_form={r["form"]: r["n"] for r in forms},
            exits_by_reason=exits_by_reason, left_programme=left, left_for_work=work,
            left_for_studies=studies,
            share_left_for_work_or_studies=round((work + studies) / left, 4) if left else None,
            median_days_referral_to_employment=median,
            follow_ups=[FollowUpOutcome(
                offset_days=r["offset_days"], due=r["due"], recorded=r["recorded"],
                still_employed=r["still_employed"],
                share_still_employed=round(r["still_employed"] / r["recorded"], 4)
                if r["recorded"] else None,
            ) for r in fus],
        )


def _duplicate(existing: UUID | None) -> Problem:
    return Problem(
        409, "Already registered",
        "this person already has an open case in your municipality",
        slug="duplicate-participant", existing_id=str(existing) if existing else None,
    )


def may_read_stats(who: Principal, municipality: str | None) -> str | None:
    """An analyst reads any municipality or all; a case worker only their own."""
    if who.has(Role.ANALYST):
        return municipality
    own = scope_of(who)
    if municipality is not None and municipality != own:
        raise forbidden("a case worker sees the outcomes of their own municipality only")
    return own
