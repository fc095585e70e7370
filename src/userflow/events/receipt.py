"""What the ingest knows about a request, independent of the payload's format."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Receipt:
    company_id: uuid.UUID
    received_at: datetime
    retention_days: int
    max_future_seconds: int
    # The caller's address and user agent, used when the payload names none.
    request_ip: str | None = None
    request_user_agent: str | None = None
    # Segment's batch-level sentAt; a message's own sentAt wins.
    sent_at: datetime | None = None
    # Only set when the raw body contains an escaped NUL, so the deep scan of
    # properties runs only for the payloads that need it.
    may_contain_nul: bool = False
