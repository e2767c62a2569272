"""Logging of the daemon: JSON lines or text, with sensitive fields masked.

`JsonFormatter` writes one JSON object per line: time (UTC, ISO 8601), level, logger,
message, then the record's extra fields (`log.info("...", extra={"partition": 3})`) and,
on errors, the traceback. `SensitiveFilter` masks extra fields named as sensitive in the
config (`sensitive_fields`), in both formats; it cannot see into the message text, so code
must pass event values as extra fields, never formatted into the message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

MASK = "****"
# Attributes every LogRecord has; anything else on a record came in through `extra`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def mask_value(value: object) -> str:
    """ "****" followed by the last 4 characters (all masked when there are 4 or fewer)."""
    text = str(value)
    return MASK + text[-4:] if len(text) > 4 else MASK


class Masker:
    """Which fields of which stream are sensitive (`sensitive_fields` in the config)."""

    def __init__(self, sensitive: Mapping[str, Iterable[str]] | None = None):
        self.by_stream = {stream: frozenset(names) for stream, names in (sensitive or {}).items()}
        self.names = frozenset(name for names in self.by_stream.values() for name in names)

    def is_sensitive(self, stream: str, field: str) -> bool:
        return field in self.by_stream.get(stream, ())

    def fields(self, stream: str, values: Mapping[str, object]) -> dict[str, object]:
        """`values` (one event of `stream`) with the sensitive ones masked; nulls stay."""
        return {
            name: mask_value(value)
            if value is not None and self.is_sensitive(stream, name)
            else value
            for name, value in values.items()
        }

    def nested(self, value: object) -> object:
        """`value` with every mapping entry named like a sensitive field masked, at any depth
        (used for log records, which do not say which stream a value came from)."""
        if isinstance(value, Mapping):
            return {
                k: mask_value(v) if k in self.names and v is not None else self.nested(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.nested(v) for v in value]
        return value


class SensitiveFilter(logging.Filter):
    """Masks a record's extra fields that are named as sensitive (and inside mappings)."""

    def __init__(self, masker: Masker):
        super().__init__()
        self.masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        if self.masker.names:
            for name, value in list(vars(record).items()):
                if name in _STANDARD:
                    continue
                if name in self.masker.names and value is not None:
                    setattr(record, name, mask_value(value))
                else:
                    setattr(record, name, self.masker.nested(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, extra fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in document:
                document[name] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(
    fmt: str = "text",
    level: str | int = "INFO",
    masker: Masker | None = None,
    handler: logging.Handler | None = None,
) -> logging.Handler:
    """Route the root logger to one handler (stderr by default) in the chosen format,
    replacing handlers set up earlier (the command line's text logging)."""
    handler = handler or logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(SensitiveFilter(masker or Masker()))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
