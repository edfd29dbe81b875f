"""Casework's settings: the shared ones, its own defaults, and the data key."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from asf_kit.settings import Secret, ServiceSettings


class CaseworkSettings(ServiceSettings):
    database_url: str = "postgresql://postgres@127.0.0.1:5432/asf_casework"
    port: int = 8002

    casework_data_key: Annotated[str | None, Secret(encoding="base64")] = Field(
        default=None,
        description="Master key for personal data: base64 of 32 random bytes "
        "(`python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())'`).",
    )
    casework_data_key_id: str = Field(
        default="k1", description="Id of `casework_data_key`, stored with each row it wraps"
    )
    casework_previous_data_keys: Annotated[
        dict[str, str], Secret(required=False, encoding="base64")
    ] = Field(
        default_factory=dict,
        description="Older master keys by id (JSON), still able to unwrap rows during rotation",
    )
    follow_up_offsets_days: list[int] = Field(
        default_factory=lambda: [90, 180, 365],
        description="Days after employment start at which a follow-up is due",
    )
    follow_up_sweep_interval: float = Field(
        default=3600.0, description="Seconds between follow-up sweeps in the app; 0 turns it off"
    )
    plan_review_sweep_interval: float = Field(
        default=3600.0, description="Seconds between sweeps announcing plan reviews due; 0: off"
    )
    statement_sweep_interval: float = Field(
        default=3600.0,
        description="Seconds between sweeps closing the previous month (from the first working "
        "day of a month); 0: off",
    )
    stats_min_group: int = Field(
        default=5, ge=1,
        description="The smallest group `/stats/outcomes` shows; counts from 1 to one less "
        "are null (1 shows everything)",
    )
    stream_retention_hours: float = Field(
        default=48.0, ge=24.0,
        description="How long `/stream` keeps changes for clients resuming with Last-Event-ID",
    )
    stream_max_per_user: int = Field(
        default=5, ge=1, description="Open `/stream` connections per person, across replicas")
    stream_max_per_process: int = Field(
        default=500, ge=1, description="Open `/stream` connections per process")
    stream_heartbeat_seconds: float = Field(
        default=30.0, gt=0,
        description="How often a replica marks its open streams alive (a stream of a replica "
        "that stopped counts no more after three of these)",
    )

    @field_validator("follow_up_offsets_days")
    @classmethod
    def _offsets(cls, v: list[int]) -> list[int]:
        if not v or any(not 1 <= o <= 3650 for o in v):
            raise ValueError("follow-up offsets are 1 to 3650 days, at least one")
        return sorted(set(v))
