"""The pure steps: decoding messages into a batch, and gathering messages into batches."""

from __future__ import annotations

import ipaddress
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from confluent_kafka import Message

from userflow.consumer.batch import Batch, BatchMessages
from userflow.consumer.decode import DecodeRows, decode_batch
from userflow.consumer.rows import COLUMNS, USER_AGENT_ID, clip_user_agent
from userflow.consumer.steps import MessageRejected
from userflow.events.enrich import Geo
from userflow.events.model import Event, encode

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
COMPANY = uuid.uuid4()


class Collect:
    """The end of a chain in these tests: keeps what it is given, refuses while `busy`."""

    def __init__(self) -> None:
        self.taken: list[Any] = []
        self.busy = False

    def submit(self, payload: Any) -> None:
        if self.busy:
            raise MessageRejected
        self.taken.append(payload)

    def poll(self) -> None:
        pass

    def join(self, timeout: float) -> None:
        self.busy = False

    def close(self) -> None:
        pass

    def terminate(self) -> None:
        pass


def event(**fields: Any) -> Event:
    now = datetime.now(UTC)
    base: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "company_id": COMPANY,
        "event_type": "click",
        "event_timestamp": now,
        "received_at": now,
    }
    return Event(**(base | fields))


def message(value: bytes | None, offset: int, partition: int = 0) -> Message:
    return Message(topic="t", partition=partition, offset=offset, key=b"k", value=value)


def decode(*values: bytes | None) -> Batch:
    return decode_batch([message(v, i) for i, v in enumerate(values)], Geo(), timedelta(days=1))


def test_an_event_becomes_a_row_in_column_order() -> None:
    e = event(
        user_agent=IPHONE,
        ip_address="8.8.8.8",
        x_coordinate=5,
        metadata={"plan": "pro"},
        element_text="Añadir",
    )
    batch = decode(encode(e))
    assert batch.user_agents == [IPHONE]
    row = dict(zip(COLUMNS, batch.rows[0], strict=True))
    assert row["event_id"] == e.event_id and row["company_id"] == COMPANY
    assert row["event_timestamp"] == e.event_timestamp
    assert row["event_type"] == "click" and row["x_coordinate"] == 5
    assert row["element_text_id"] == "Añadir"  # the writer swaps the text for its id
    assert orjson.loads(row["metadata"]) == {"plan": "pro"}
    assert ipaddress.ip_address(bytes(row["ip_address"][4:])) == ipaddress.ip_address("8.8.8.8")
    # The agent's reading lives in user_agent; the row keeps the client's own claims.
    assert (row["device_type"], row["browser"], row["os"], row["country"]) == (
        None,
        None,
        None,
        "US",
    )
    assert row["is_bot"] is False and row["user_agent_id"] is None
    assert COLUMNS.index("user_agent_id") == USER_AGENT_ID


def test_poison_gets_a_reason_and_offsets_still_advance() -> None:
    batch = decode(
        b"\x00garbage",
        b'{"v":99}',
        encode(event(element_text="a\x00b")),
        encode(event(x_coordinate=2**40)),
        encode(event(metadata={"big": 2**70})),
        b'{"v":1,"event_id":5}',
        None,
        encode(event()),
    )
    assert [p.reason for p in batch.poison] == [
        "malformed_json",
        "unknown_version",
        "nul_byte:element_text",
        "out_of_range:x_coordinate",
        "bad_json:metadata",
        "invalid_event",
        "empty_message",
    ]
    assert [p.message.offset() for p in batch.poison] == [0, 1, 2, 3, 4, 5, 6]
    assert len(batch.rows) == 1
    assert batch.offsets == {("t", 0): 8}
    assert batch.consumed == 8


def test_duplicates_inside_a_batch_give_one_row_the_first() -> None:
    first = event(page_url="https://a/1")
    retry = event(
        event_id=first.event_id,
        page_url="https://a/2",
        event_timestamp=first.event_timestamp + timedelta(days=1),
    )
    other_company = event(event_id=first.event_id, company_id=uuid.uuid4())
    batch = decode(encode(first), encode(retry), encode(other_company))
    assert len(batch.rows) == 2 and batch.duplicates == 1
    assert batch.rows[0][COLUMNS.index("page_url_id")] == "https://a/1"


def test_offsets_are_per_partition() -> None:
    messages = [
        message(encode(event()), 7, 0),
        message(encode(event()), 3, 1),
        message(encode(event()), 8, 0),
    ]
    batch = decode_batch(messages, Geo(), timedelta(days=1))
    assert batch.offsets == {("t", 0): 9, ("t", 1): 4}


def test_long_user_agents_are_clipped_to_fit_the_index() -> None:
    assert len(clip_user_agent("a" * 5000)) == 1024
    assert len(clip_user_agent("é" * 5000).encode()) <= 2048


def test_batches_close_at_the_size_limit_and_split_chunks() -> None:
    end = Collect()
    step = BatchMessages(end, max_events=3, max_seconds=60)
    step.submit([message(b"", i) for i in range(7)])
    assert [len(b) for b in end.taken] == [3, 3]
    step.join(1)
    assert [len(b) for b in end.taken] == [3, 3, 1]


def test_batches_close_at_the_time_limit() -> None:
    end = Collect()
    step = BatchMessages(end, max_events=100, max_seconds=0.05)
    step.submit([message(b"", 0)])
    step.poll()
    assert end.taken == []
    time.sleep(0.06)
    step.poll()
    assert [len(b) for b in end.taken] == [1]


def test_a_busy_next_step_holds_the_rest_and_refuses_more() -> None:
    end = Collect()
    step = BatchMessages(end, max_events=2, max_seconds=60)
    end.busy = True
    step.submit([message(b"", i) for i in range(5)])
    with pytest.raises(MessageRejected):
        step.submit([message(b"", 9)])
    end.busy = False
    step.poll()
    assert [len(b) for b in end.taken] == [2, 2]
    step.join(1)
    assert sum(len(b) for b in end.taken) == 5


def test_decode_holds_a_refused_batch_without_decoding_it_again() -> None:
    end = Collect()
    step = DecodeRows(end, Geo(), timedelta(days=1))
    end.busy = True
    step.submit([message(encode(event()), 0)])
    with pytest.raises(MessageRejected):
        step.submit([message(encode(event()), 1)])
    end.busy = False
    step.poll()
    assert len(end.taken) == 1 and end.taken[0].offsets == {("t", 0): 1}
