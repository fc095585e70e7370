"""Settings: every UF_* variable reaches its field, with its old default; bad values name
their variable."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import get_type_hints

import pytest

from userflow.config import Settings, from_environ
from userflow.store import migrate

# The variables the operator, the consumer's metrics and the migrations runner used to
# read on their own: (variable, field, default, a value, what the value gives). The
# names are a public contract (the chart, the image and the README set them).
MOVED = [
    ("UF_STRIMZI_NAMESPACE", "strimzi_namespace", "", "kafka", "kafka"),
    ("UF_STRIMZI_CLUSTER", "strimzi_cluster", "userflow", "main", "main"),
    ("UF_STRIMZI_TOPIC_REPLICAS", "strimzi_topic_replicas", 1, "3", 3),
    ("UF_OPERATOR_DRIFT_SECONDS", "operator_drift_seconds", 20.0, "1.5", 1.5),
    ("UF_OPERATOR_KEY_GRACE_SECONDS", "operator_key_grace_seconds", 3600.0, "3", 3.0),
    ("UF_OPERATOR_DB_POOL_MAX", "operator_db_pool_max", 4, "8", 8),
    ("UF_OPERATOR_DB_WAIT_SECONDS", "operator_db_wait_seconds", 10.0, "2", 2.0),
    ("UF_CONSUMER_METRICS_PORT", "consumer_metrics_port", 0, "9400", 9400),
    ("UF_SQL_DIR", "sql_dir", "", "/app/sql", "/app/sql"),
]
NUMBERS = [f for f in dataclasses.fields(Settings) if get_type_hints(Settings)[f.name] in (int, float)]


@pytest.mark.parametrize(("variable", "field", "default", "value", "parsed"), MOVED)
def test_a_moved_variable_reaches_its_field(variable: str, field: str, default: object,
                                           value: str, parsed: object) -> None:
    assert getattr(from_environ({}), field) == default
    assert getattr(from_environ({variable: value}), field) == parsed


def test_the_migrations_are_in_sql_dir_else_in_the_checkout() -> None:
    checkout = Path(__file__).resolve().parents[2] / "sql"
    assert migrate.migrations_dir(Settings()) == checkout
    assert migrate.discover(checkout)[0].path.name == "001_tenants.sql"
    assert migrate.migrations_dir(Settings(sql_dir="/app/sql")) == Path("/app/sql")


def test_every_field_is_read_from_its_variable() -> None:
    # Each field type a setting may have: a value, and what it gives.
    samples: dict[type, tuple[str, object]] = {
        str: ("x", "x"), int: ("7", 7), float: ("0.25", 0.25), bool: ("no", False)}
    hints = get_type_hints(Settings)
    made = from_environ({f"UF_{f.name.upper()}": samples[hints[f.name]][0]
                         for f in dataclasses.fields(Settings)})
    for f in dataclasses.fields(Settings):
        assert getattr(made, f.name) == samples[hints[f.name]][1], f.name


def test_every_default_has_its_fields_type() -> None:
    # `seconds: float = 20` would be an int until the variable is set.
    hints = get_type_hints(Settings)
    for f in dataclasses.fields(Settings):
        assert type(f.default) is hints[f.name], f.name


@pytest.mark.parametrize("field", NUMBERS, ids=lambda f: f.name)
def test_a_bad_number_names_its_variable(field: dataclasses.Field[object]) -> None:
    variable = f"UF_{field.name.upper()}"
    with pytest.raises(ValueError, match=f"^{variable}='x' is not a valid "):
        from_environ({variable: "x"})


def test_an_empty_number_keeps_its_default() -> None:
    # `UF_CONSUMER_METRICS_PORT=` has always meant no metrics endpoint.
    assert from_environ({"UF_CONSUMER_METRICS_PORT": ""}).consumer_metrics_port == 0
    assert from_environ({"UF_OPERATOR_DRIFT_SECONDS": ""}).operator_drift_seconds == 20.0


@pytest.mark.parametrize(("raw", "value"), [("1", True), ("TRUE", True), (" yes ", True), ("on", True),
                                            ("0", False), ("no", False), ("", False)])
def test_booleans(raw: str, value: bool) -> None:
    assert from_environ({"UF_INGEST_DOCS": raw}).ingest_docs is value


def test_other_variables_are_ignored() -> None:
    assert from_environ({"UF_NO_SUCH_SETTING": "x", "KUBECONFIG": "/k"}) == Settings()
