"""Structured logs: one JSON object per line, extra fields, masking of sensitive fields."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from service.logs import JsonFormatter, Masker, SensitiveFilter, configure_logging, mask_value


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _capture(fmt: str, masker: Masker | None = None) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(fmt, "DEBUG", masker, logging.StreamHandler(stream))
    return stream


def test_json_lines_have_time_level_logger_message_and_extras(restore_root: None) -> None:
    stream = _capture("json")
    logging.getLogger("cep.test").info("assigned %d", 3, extra={"partitions": [0, 1, 2]})
    logging.getLogger("cep.test").debug("second")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "INFO" and first["logger"] == "cep.test"
    assert first["message"] == "assigned 3" and first["partitions"] == [0, 1, 2]
    assert first["time"].endswith("+00:00") and "T" in first["time"]
    assert set(second) == {"time", "level", "logger", "message"}


def test_json_exception_and_unserialisable_extras(restore_root: None) -> None:
    stream = _capture("json")
    try:
        raise ValueError("bad value")
    except ValueError:
        logging.getLogger("cep").exception("failed", extra={"where": object()})
    document = json.loads(stream.getvalue())
    assert "ValueError: bad value" in document["exception"]
    assert document["where"].startswith("<object object")


def test_text_format(restore_root: None) -> None:
    stream = _capture("text")
    logging.getLogger("cep.x").warning("hello")
    assert stream.getvalue().strip().endswith("WARNING cep.x: hello")


def test_sensitive_extras_are_masked_in_both_formats(restore_root: None) -> None:
    masker = Masker({"txns": ["card_number"]})
    for fmt in ("json", "text"):
        stream = _capture(fmt, masker)
        if fmt == "text":
            stream.truncate(0)
            logging.getLogger().handlers[0].setFormatter(
                logging.Formatter("%(message)s %(card_number)s %(event)s")
            )
        logging.getLogger("cep").info(
            "rejected",
            extra={
                "card_number": "4111111111111111",
                "event": {"card_number": "5500009999", "n": 1},
            },
        )
        out = stream.getvalue()
        assert "4111111111111111" not in out and "5500009999" not in out
        assert "****1111" in out and "****9999" in out


def test_mask_value() -> None:
    assert mask_value("4111111111111111") == "****1111"
    assert mask_value(12345) == "****2345"
    assert mask_value("abcd") == "****" and mask_value("") == "****"


def test_masker_per_stream() -> None:
    masker = Masker({"txns": ["card_number"], "logins": ["ip"]})
    assert masker.is_sensitive("txns", "card_number") and not masker.is_sensitive(
        "logins", "card_number"
    )
    assert masker.fields(
        "txns", {"card_number": "4111111111111111", "amount": 3.0, "ip": "1.2.3.4"}
    ) == {
        "card_number": "****1111",
        "amount": 3.0,
        "ip": "1.2.3.4",
    }
    assert masker.fields("txns", {"card_number": None}) == {"card_number": None}


def test_filter_without_sensitive_fields_changes_nothing() -> None:
    record = logging.LogRecord("cep", logging.INFO, "f", 1, "m", None, None)
    record.__dict__["card_number"] = "4111111111111111"
    assert SensitiveFilter(Masker()).filter(record)
    assert record.__dict__["card_number"] == "4111111111111111"
    assert json.loads(JsonFormatter().format(record))["card_number"] == "4111111111111111"
