"""What casework does, use case by use case: load the participant, let the aggregate decide,
save it with its events, in one unit of work.

Each use case is one transaction: the change, its events in the outbox, the access-log
row and the message for `/stream` commit together or not at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import asyncpg
from cryptography.exceptions import InvalidTag

from asf_contracts import Envelope
from asf_contracts import casework as ev
from asf_contracts.registry import CompanyPayload
from asf_kit.auth import Principal
from asf_kit.db import Conn
from asf_kit.logging import get_logger
from asf_kit.outbox import add_events, new_event
from asf_kit.problems import Problem, not_found
from asf_kit.uow import UnitOfWork, check_version, expected_version, unit_of_work
from casework import store
from casework.crypto import Vault, WrappedKey
from casework.domain import (
    Company,
    Employment,
    Event,
    FollowUp,
    FollowUpStatus,
    KnownUser,
    Participant,
    Placement,
    SealedPersonalData,
    flag_reason,
    placements_flagged,
)
from casework.inputs import (
    FollowUpIn,
    NoteIn,
    ParticipantIn,
    ParticipantPatch,
    PlacementEndIn,
    PlacementIn,
    TransitionIn,
)
from casework.outcomes import Outcomes, check_period, outcomes
from casework.scope import scope_of
from casework.timeline import TimelineItem, timeline
from casework.views import (
    AccessLogEntry,
    Case,
    FollowUpItem,
    Note,
    ParticipantView,
    PlacementItem,
)
from casework.workdays import swedish_date

log = get_logger(__name__)

PERSONAL = "personal"
NOTE = "note"
EMPLOYER = "employer"
UPDATED = "casework.participant.updated"
"""What `/stream` says of a correction that publishes no event (details only)."""
NOTE_CALLERS_EVERY = 3600.0
"""Seconds between two notes of the same caller (per process), unless their token changed."""


def now() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    """Today in Sweden: due dates, review dates and attendance days are Swedish dates."""
    return swedish_date(now())


def envelope(e: Event) -> Envelope:
    return new_event(producer=ev.PRODUCER, event_type=e.type, event_version=1,
                     aggregate_id=e.aggregate_id, aggregate_version=e.version, payload=e.payload)


def _duplicate(existing: UUID | None) -> Problem:
    return Problem(
        409, "Already registered",
        "this person already has an open case in your municipality",
        slug="duplicate-participant", existing_id=str(existing) if existing else None,
    )


class Casework:
    """The use cases, with what they need: the pool, the vault and the follow-up offsets.

    `pool` is a function because the pool exists only once the runtime has started,
    while the consumer's handlers are wired before that.
    """

    def __init__(self, pool: Callable[[], asyncpg.Pool], vault: Vault,
                 follow_up_offsets: list[int], clock: Callable[[], datetime] = now,
                 stats_min_group: int = 5) -> None:
        self._pool = pool
        self.vault = vault
        self.offsets = follow_up_offsets
        self.now = clock
        self.stats_min_group = stats_min_group
        self._noted: dict[str, tuple[float, str | None, frozenset[str]]] = {}

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool()

    # --- plumbing ------------------------------------------------------------------------

    async def _load(self, conn: Conn, participant_id: UUID, who: Principal, *,
                    lock: bool = True, personal: bool = False) -> Participant:
        """The participant (locked for a change); 404 when missing or in another municipality."""
        p = await store.load_participant(conn, participant_id, lock=lock, personal=personal)
        if p is None or p.municipality_code != scope_of(who):
            raise not_found("participant")
        return p

    async def _save(self, uow: UnitOfWork, p: Participant, who: Principal, action: str) -> None:
        """Save the decision, log who made it, publish its events and tell `/stream`."""
        await store.save_participant(uow.conn, p)
        await store.log_access(uow.conn, [p.id], who.sub, action)
        await self._publish(uow, p, changed=True)

    async def _publish(self, uow: UnitOfWork, p: Participant, changed: bool = False) -> None:
        """Publish the aggregate's events and tell `/stream` (also of a change that
        published nothing, when `changed`)."""
        events = p.take_events()
        if not events and not changed:
            return
        uow.publish(*(envelope(e) for e in events))
        # The stream's serial lock is held until the commit: write the outbox rows first.
        await uow.flush()
        await store.add_stream_event(uow.conn, p.municipality_code, p.id, {
            "participant_id": str(p.id), "municipality_code": p.municipality_code,
            "stage": p.stage, "version": p.version,
            "event": events[-1].type if events else UPDATED,
        })

    def _data_key(self, p: Participant) -> bytes | None:
        """The participant's data key, or None once erased (or when not loaded)."""
        if p.sealed is None:
            return None
        return self.vault.unwrap(p.id, WrappedKey(p.sealed.key_id, p.sealed.wrapped_key))

    def _personal(self, p: Participant) -> dict[str, Any] | None:
        data_key = self._data_key(p)
        if data_key is None or p.sealed is None:
            return None
        personal: dict[str, Any] = self.vault.open(data_key, p.id, PERSONAL, p.sealed.document)
        return personal

    def _open(self, data_key: bytes, p: Participant, purpose: str, blob: bytes,
              context: bytes = b"") -> Any:
        """A sealed document, or None when it does not open: it was changed, moved or
        re-flagged behind the service's back (logged, without its content)."""
        try:
            return self.vault.open(data_key, p.id, purpose, blob, context)
        except InvalidTag:
            log.warning("sealed data does not open", participant_id=str(p.id), purpose=purpose)
            return None

    async def _employer_names(self, conn: Conn, p: Participant) -> dict[UUID, str | None]:
        """The employer of each of the participant's employments, opened."""
        data_key = self._data_key(p)
        if data_key is None:
            return {}
        names: dict[UUID, str | None] = {}
        for employment_id, (sealed, before) in (await store.employer_names(conn, p.id)).items():
            names[employment_id] = before  # written before names were sealed
            if sealed is not None:
                doc = self._open(data_key, p, EMPLOYER, sealed, employment_id.bytes)
                names[employment_id] = doc["name"] if doc else None
        return names

    async def _seal_employer(self, conn: Conn, p: Participant, employment: Employment) -> None:
        data_key = self._data_key(p)
        assert data_key is not None  # only a participant not erased is employed
        sealed = None
        if employment.employer_name is not None:
            sealed = self.vault.seal(data_key, p.id, EMPLOYER, {"name": employment.employer_name},
                                     employment.id.bytes)
        await store.seal_employer_name(conn, employment.id, sealed)

    @staticmethod
    def _note_context(note_id: UUID, confidential: bool) -> bytes:
        """A note's text is bound to the note and its flag: a changed flag does not open."""
        return note_id.bytes + (b"\x01" if confidential else b"\x00")

    @staticmethod
    def _hash_input(identity_number: str) -> str:
        return identity_number.replace("-", "")

    # --- participants --------------------------------------------------------------------

    async def refer(self, body: ParticipantIn, who: Principal) -> ParticipantView:
        """Register a referred participant; 409 with the existing id on a duplicate."""
        municipality = scope_of(who)
        personal = body.model_dump(
            mode="json", include={"given_name", "family_name", "personal_identity_number",
                                  "phone", "email"})
        hash_input = self._hash_input(body.personal_identity_number)
        assigned_to = body.assigned_to or who.sub
        try:
            async with unit_of_work(self.pool) as uow:
                assignee = None
                if assigned_to != who.sub:
                    assignee = await store.known_user(uow.conn, assigned_to)
                p = Participant.refer(municipality, body.referral_source, assigned_to,
                                      who.sub, self.now(), assignee)
                existing = await store.find_open_case(
                    uow.conn, municipality, self.vault.identity_hashes(hash_input))
                if existing is not None:
                    raise _duplicate(existing)
                data_key, wrapped = self.vault.new_data_key(p.id)
                sealed = SealedPersonalData(self.vault.seal(data_key, p.id, PERSONAL, personal),
                                            wrapped.key_id, wrapped.wrapped)
                view = ParticipantView.with_personal(p, personal)
                await store.add_participant(uow.conn, p, sealed,
                                            self.vault.identity_hash(hash_input))
                await store.log_access(uow.conn, [p.id], who.sub, "create")
                await self._publish(uow, p)
        except asyncpg.UniqueViolationError:
            # Another request registered the same person between our check and insert.
            async with self.pool.acquire() as conn:
                existing = await store.find_open_case(
                    conn, municipality, self.vault.identity_hashes(hash_input))
            raise _duplicate(existing) from None
        log.info("participant referred", participant_id=str(p.id))
        return view

    async def get(self, participant_id: UUID, who: Principal) -> ParticipantView:
        async with unit_of_work(self.pool) as uow:
            p = await self._load(uow.conn, participant_id, who, lock=False, personal=True)
            await store.log_access(uow.conn, [participant_id], who.sub, "read")
            employers = await self._employer_names(uow.conn, p) if p.employment else {}
        return ParticipantView.with_personal(
            p, self._personal(p), employers.get(p.employment.id) if p.employment else None)

    async def list_cases(
        self, who: Principal, *, stage: str | None, company_id: UUID | None,
        assigned_to: str | None, after: tuple[datetime, UUID] | None, limit: int,
    ) -> list[Case]:
        """Cases of the caller's municipality, without personal data; each one listed is logged."""
        async with unit_of_work(self.pool) as uow:
            found = await store.list_participants(
                uow.conn, municipality_code=scope_of(who), stage=stage, company_id=company_id,
                assigned_to=assigned_to, after=after, limit=limit,
            )
            await store.log_access(uow.conn, [p.id for p in found], who.sub, "list")
        return [Case.of(p) for p in found]

    async def find(self, identity_number: str, who: Principal) -> list[Case]:
        """The cases of one person in the caller's municipality, found by the keyed hash."""
        hashes = self.vault.identity_hashes(self._hash_input(identity_number))
        async with unit_of_work(self.pool) as uow:
            found = await store.find_participants(uow.conn, scope_of(who), hashes)
            await store.log_access(uow.conn, [p.id for p in found], who.sub, "search")
        return [Case.of(p) for p in found]

    async def erase(self, participant_id: UUID, who: Principal) -> None:
        """Shred the personal data of a closed case for good; the figures stay."""
        async with unit_of_work(self.pool) as uow:
            p = await self._load(uow.conn, participant_id, who)
            if not p.erase(self.now()):  # erased before: nothing more to do
                await store.log_access(uow.conn, [p.id], who.sub, "erase")
                return
            await store.shred_personal_data(uow.conn, p.id)
            await self._save(uow, p, who, "erase")
        log.info("participant erased", participant_id=str(participant_id))

    async def correct(self, participant_id: UUID, patch: ParticipantPatch, if_match: int | None,
                      who: Principal) -> ParticipantView:
        """Correct the person's details or the case's, or hand the case to another case
        worker of the municipality; `If-Match` (or `version`) must be the version read."""
        expected = expected_version(if_match, patch.version)
        async with unit_of_work(self.pool) as uow:
            p = await self._load(uow.conn, participant_id, who, personal=True)
            check_version("participant", p.version, expected)
            assignee = None
            if patch.assigned_to is not None and patch.assigned_to != p.assigned_to:
                assignee = await store.known_user(uow.conn, patch.assigned_to)
            personal = self._personal(p)
            corrected = {**personal, **patch.personal_changes()} if personal else None
            changed = p.correct(
                by=who.sub, at=self.now(), referral_source=patch.referral_source,
                assigned_to=patch.assigned_to, assignee=assignee,
                personal_changed=corrected != personal)
            if corrected != personal:
                data_key = self._data_key(p)
                assert data_key is not None and corrected is not None
                await store.update_personal(uow.conn, p.id, self.vault.seal(
                    data_key, p.id, PERSONAL, corrected))
            if not changed:
                await store.log_access(uow.conn, [p.id], who.sub, "read")
            else:
                reassigned = p.reassigned
                await self._save(uow, p, who, "update")
                if reassigned:
                    await store.log_access(uow.conn, [p.id], who.sub, "reassign")
            employers = await self._employer_names(uow.conn, p) if p.employment else {}
        if changed:
            log.info("participant corrected", participant_id=str(p.id),
                     reassigned=bool(assignee))
        return ParticipantView.with_personal(
            p, corrected, employers.get(p.employment.id) if p.employment else None)

    async def note_caller(self, who: Principal) -> None:
        """Remember who signed in, with their roles and municipality, so that a case can be
        assigned to a case worker casework knows. Cheap: at most once an hour per process
        and person, unless their token says something new."""
        moment = time.monotonic()
        seen = (who.municipality_code, who.roles)
        last = self._noted.get(who.sub)
        if last is not None and moment - last[0] < NOTE_CALLERS_EVERY and last[1:] == seen:
            return
        async with self.pool.acquire() as conn:
            await store.note_user(conn, KnownUser(
                sub=who.sub, municipality_code=who.municipality_code, roles=sorted(who.roles),
                seen_at=self.now()))
        if len(self._noted) > 50_000:  # keep the memory bounded: forget the oldest half
            for sub, _ in sorted(self._noted.items(), key=lambda x: x[1][0])[:25_000]:
                del self._noted[sub]
        self._noted[who.sub] = (moment, *seen)

    # --- the worklists -------------------------------------------------------------------

    async def follow_ups(
        self, who: Principal, *, assigned_to: str | None, due_before: date | None,
        status: FollowUpStatus | None, after: tuple[date, UUID] | None, limit: int,
    ) -> list[FollowUpItem]:
        """The municipality's follow-ups in due order; each case listed is logged."""
        municipality, on = scope_of(who), swedish_date(self.now())
        async with unit_of_work(self.pool) as uow:
            found = await store.list_follow_ups(
                uow.conn, municipality_code=municipality, assigned_to=assigned_to,
                due_before=due_before, status=status, today=on, after=after, limit=limit)
            await store.log_access(uow.conn, list(dict.fromkeys(
                f.participant_id for f, _ in found)), who.sub, "worklist")
        return [FollowUpItem(**f.model_dump(), municipality_code=municipality,
                             assigned_to=assigned, status=f.status_on(on))
                for f, assigned in found]

    async def placements(
        self, who: Principal, *, company_id: UUID | None, flagged: bool | None,
        active: bool | None, after: tuple[datetime, UUID] | None, limit: int,
    ) -> list[PlacementItem]:
        """The municipality's placements in the order they were made; each case listed is
        logged."""
        municipality = scope_of(who)
        async with unit_of_work(self.pool) as uow:
            found = await store.list_placements(
                uow.conn, municipality_code=municipality, company_id=company_id,
                flagged=flagged, active=active, after=after, limit=limit)
            await store.log_access(uow.conn, list(dict.fromkeys(
                pl.participant_id for pl, _ in found)), who.sub, "worklist")
        return [PlacementItem(**pl.model_dump(), municipality_code=municipality,
                              assigned_to=assigned) for pl, assigned in found]

    # --- the case ------------------------------------------------------------------------

    async def transition(self, participant_id: UUID, body: TransitionIn, who: Principal) -> Case:
        """Move the case one step; 409 naming the allowed moves otherwise."""
        async with unit_of_work(self.pool) as uow:
            p = await self._load(uow.conn, participant_id, who, personal=body.to == "employed")
            employer = None
            if body.employment is not None and body.employment.employer_company_id is not None:
                employer = await store.get_company(uow.conn, body.employment.employer_company_id)
            p.transition(body, who.sub, self.now(), self.offsets, employer)
            await self._save(uow, p, who, "transition")
            if body.to == "employed" and p.employment is not None:
                await self._seal_employer(uow.conn, p, p.employment)
        return Case.of(p)

    async def start_placement(self, participant_id: UUID, body: PlacementIn,
                              who: Principal) -> Placement:
        """Place the participant at an active company with a free training place.

        The company's read-model row is locked while places are counted, so two
        placements at the same time cannot both take the last place.
        """
        async with unit_of_work(self.pool) as uow:
            p = await self._load(uow.conn, participant_id, who)
            company = await store.get_company(uow.conn, body.company_id, for_update=True)
            taken = await store.count_active_placements(uow.conn, body.company_id)
            placement = p.start_placement(body, company, taken, who.sub, self.now())
            await self._save(uow, p, who, "placement_start")
        return placement

    async def end_placement(self, placement_id: UUID, body: PlacementEndIn,
                            who: Principal) -> Placement:
        async with unit_of_work(self.pool) as uow:
            participant_id = await store.participant_of_placement(uow.conn, placement_id)
            if participant_id is None:
                raise not_found("placement")
            p = await store.load_participant(uow.conn, participant_id, lock=True)
            if p is None or p.municipality_code != scope_of(who):
                raise not_found("placement")
            placement = p.end_placement(placement_id, body.reason, body.end, self.now())
            await self._save(uow, p, who, "placement_end")
        return placement

    async def record_follow_up(self, participant_id: UUID, body: FollowUpIn,
                               who: Principal) -> FollowUp:
        """Record whether the participant is still employed at one follow-up."""
        async with unit_of_work(self.pool) as uow:
            p = await self._load(uow.conn, participant_id, who)
            follow_up = p.record_follow_up(body.offset_days, body.still_employed, who.sub,
                                           self.now(), self.offsets)
            await self._save(uow, p, who, "follow_up")
        return follow_up

    async def add_note(self, participant_id: UUID, body: NoteIn, who: Principal) -> Note:
        """A note on the case, sealed with the participant's data key."""
        async with unit_of_work(self.pool) as uow:
            p = await self._load(uow.conn, participant_id, who, personal=True)
            note = p.add_note(who.sub, body.confidential, self.now())
            data_key = self._data_key(p)
            assert data_key is not None  # add_note refuses an erased participant
            await store.insert_note(uow.conn, note, self.vault.seal(
                data_key, p.id, NOTE, {"text": body.text},
                self._note_context(note.id, note.confidential)))
            await store.log_access(uow.conn, [p.id], who.sub, "note")
        return Note(**note.model_dump(), text=body.text)

    async def timeline(self, participant_id: UUID, who: Principal) -> list[TimelineItem]:
        """Everything that happened on the case, oldest first.

        A confidential note's text is shown only to its author and the assigned case worker.
        """
        async with unit_of_work(self.pool) as uow:
            p = await self._load(uow.conn, participant_id, who, lock=False, personal=True)
            await store.log_access(uow.conn, [participant_id], who.sub, "timeline")
            history, sealed_notes = await store.history(uow.conn, p)
            employers = await self._employer_names(uow.conn, p)
        for e in history.employments:
            e.employer_name = employers.get(e.id)
        data_key = self._data_key(p)
        texts: dict[UUID, str | None] = {}
        for n in history.notes:
            sealed = sealed_notes.get(n.id)
            if data_key is None or sealed is None or not n.readable_by(who.sub, p.assigned_to):
                continue
            blob, sealed_with = sealed
            context = self._note_context(n.id, n.confidential) if sealed_with == 2 else b""
            doc = self._open(data_key, p, NOTE, blob, context)
            texts[n.id] = doc["text"] if doc else None
        return timeline(history, texts)

    async def access_log(self, participant_id: UUID, after: int | None, limit: int,
                         who: Principal) -> list[AccessLogEntry]:
        """Who read or changed the participant's data. An auditor whose token names a
        municipality sees that municipality's participants only (404 otherwise); the
        auditor's own read is logged too, after the page it read."""
        async with unit_of_work(self.pool) as uow:
            municipality = await store.municipality_of(uow.conn, participant_id)
            if municipality is None or who.municipality_code not in (None, municipality):
                raise not_found("participant")
            rows = await store.access_log(uow.conn, participant_id, after, limit)
            await store.log_access(uow.conn, [participant_id], who.sub, "access_log")
        return [AccessLogEntry(**dict(r)) for r in rows]

    # --- follow-ups due ------------------------------------------------------------------

    async def sweep_follow_ups(self, on: date, batch: int = 200) -> int:
        """Announce every follow-up due on or before `on`, each exactly once.

        A follow-up is marked announced in the transaction that writes its event, so
        a sweep that runs twice, or on two replicas, announces nothing twice.
        """
        announced = 0
        while True:
            async with unit_of_work(self.pool) as uow:
                claimed = await store.claim_due_follow_ups(uow.conn, on, batch)
                by_participant: dict[UUID, list[UUID]] = {}
                for participant_id, follow_up_id in claimed:
                    by_participant.setdefault(participant_id, []).append(follow_up_id)
                for participant_id, follow_up_ids in by_participant.items():
                    p = await store.load_participant(uow.conn, participant_id, lock=True)
                    assert p is not None
                    for follow_up_id in follow_up_ids:
                        p.announce_follow_up(follow_up_id, self.now())
                    await store.save_participant(uow.conn, p)
                    await self._publish(uow, p)
            announced += len(claimed)
            if len(claimed) < batch:
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

    async def reseal(self, batch: int = 200) -> tuple[int, int]:
        """Reseal what was sealed before notes were bound to their id and flag, and seal the
        employers' names written in clear; those of erased participants are dropped. Safe
        to stop and run again. Returns (notes, employer names) done."""
        notes = names = 0
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                rows = await store.notes_to_reseal(conn, batch)
                for r in rows:
                    sealed = None
                    if r["sealed"] is not None and r["wrapped"] is not None:
                        pid = r["participant_id"]
                        key = self.vault.unwrap(pid, WrappedKey(r["key_id"], bytes(r["wrapped"])))
                        doc = self.vault.open(key, pid, NOTE, bytes(r["sealed"]))
                        sealed = self.vault.seal(key, pid, NOTE, doc,
                                                 self._note_context(r["id"], r["confidential"]))
                    await store.reseal_note(conn, r["id"], sealed)
            notes += len(rows)
            if len(rows) < batch:
                break
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                rows = await store.employer_names_to_seal(conn, batch)
                for r in rows:
                    sealed = None
                    if r["wrapped"] is not None:
                        pid = r["participant_id"]
                        key = self.vault.unwrap(pid, WrappedKey(r["key_id"], bytes(r["wrapped"])))
                        sealed = self.vault.seal(key, pid, EMPLOYER, {"name": r["employer_name"]},
                                                 r["id"].bytes)
                    await store.seal_employer_name(conn, r["id"], sealed)
            names += len(rows)
            if len(rows) < batch:
                return notes, names

    # --- registry events -----------------------------------------------------------------

    async def apply_company(self, conn: Conn, version: int, payload: CompanyPayload) -> None:
        """Keep the read model at the newest version; flag placements at a deregistered company.

        Runs in the consumer's transaction, with the inbox row: the flagging and its event
        commit together with the fact that the event was handled.
        """
        company = Company.from_payload(payload, version)
        applied = await store.upsert_company(conn, company)
        log.info("company event", company_id=str(company.id), version=version, applied=applied,
                 status=company.status)
        reason = flag_reason(company, payload.deregistration_reason) if applied else None
        if reason is None:
            return
        flagged = await store.flag_active_placements(conn, company.id, reason, self.now())
        if not flagged:
            return
        await add_events(conn, [envelope(placements_flagged(company, reason, flagged))])
        log.warning("placements flagged: company deregistered", company_id=str(company.id),
                    placements=len(flagged))
        # Last: the stream's serial lock is held until the commit, so nothing comes after it.
        for f in flagged:
            await store.add_stream_event(conn, f.municipality_code, f.participant_id, {
                "participant_id": str(f.participant_id),
                "municipality_code": f.municipality_code, "stage": f.stage,
                "event": ev.PLACEMENTS_FLAGGED,
            })

    # --- statistics ----------------------------------------------------------------------

    async def outcomes(self, municipality: str | None, start: date | None,
                       end: date | None) -> Outcomes:
        """Outcome figures for a municipality (or all) and a period of whole months; counts
        only, and none small enough to single anybody out."""
        check_period(start, end)
        async with self.pool.acquire() as conn:
            counts = await store.outcome_counts(conn, municipality, start, end,
                                                swedish_date(self.now()))
        return outcomes(counts, municipality, start, end, self.stats_min_group)
