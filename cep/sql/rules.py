"""SQL rules in rule files: `.sql` files, and the `sql:` field of a YAML rule.

A `.sql` file holds one or more rules; each starts with a header of `-- key: value` comment
lines, the first being `-- rule: NAME`, followed by one MATCH_RECOGNIZE query (a trailing
`;` is allowed):

    -- rule: card_testing
    -- title: Tiny authorisations then a large purchase
    -- version: 2
    -- severity: high
    -- labels: card, testing
    -- emit_to: fraud.alerts
    SELECT * FROM txns MATCH_RECOGNIZE (
      PARTITION BY card_id ORDER BY ts
      MEASURES FIRST(S.ts) AS first_small, B.amount AS amount
      PATTERN (S{3,} B) WITHIN INTERVAL '10' MINUTE
      DEFINE S AS S.amount < 5.00, B AS B.amount > 500.00
    );

Header keys: rule (required, first), title, description, version, severity, labels
(comma-separated), enabled (true/false), emit_to (the alert topic). Each query is parsed
over a blank copy of the file holding only its own lines, so diagnostics keep the file's
true lines and columns; the same is done for a YAML `sql: |` block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from cep.errors import CepError, Diagnostic, Severity, Span, error
from cep.sql import ast
from cep.sql.parser import parse_query

HEADER_KEYS: tuple[str, ...] = ("rule", "title", "description", "version", "severity")
HEADER_KEYS += ("labels", "enabled", "emit_to")
_HEADER = re.compile(r"\s*--\s*([A-Za-z_]+)\s*:\s*(.*?)\s*\Z")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: YAML rule fields that belong to DSL rules only.
DSL_FIELDS = frozenset({"pattern", "where", "within", "skip", "emit", "on_timeout", "from"})


@dataclass(frozen=True)
class SqlRule:
    """A parsed SQL rule: its metadata and its query (compiled by `cep.sql.rule_compiler`)."""

    name: str
    query: ast.Query
    span: Span
    title: str = ""
    description: str = ""
    version: int = 1
    severity: str = "medium"
    labels: tuple[str, ...] = ()
    enabled: bool = True
    emit_to: str | None = None


def parse_sql_file(text: str, file: str) -> tuple[list[SqlRule], list[Diagnostic]]:
    """The rules of a `.sql` rule file and the problems found (syntax, header)."""
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if _is_rule_start(line)]
    out: list[Diagnostic] = []
    head = lines[: starts[0]] if starts else lines
    stray = next((i for i, line in enumerate(head) if _code(line)), None)
    if stray is not None or not starts:
        line = (stray or 0) + 1
        span = Span(file, line, 1, line, max(2, len(lines[line - 1]) + 1))
        out.append(error("E230", span, "each SQL rule starts with a `-- rule: NAME` header"))
    rules: list[SqlRule] = []
    for n, first in enumerate(starts):
        last = starts[n + 1] if n + 1 < len(starts) else len(lines)
        rule = _one_rule(lines, first, last, file, out)
        if rule is not None:
            rules.append(rule)
    return rules, out


def _is_rule_start(line: str) -> bool:
    found = _HEADER.match(line)
    return found is not None and found.group(1).lower() == "rule"


def _code(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("--")


def _one_rule(
    lines: list[str], first: int, last: int, file: str, out: list[Diagnostic]
) -> SqlRule | None:
    meta: dict[str, tuple[str, Span]] = {}
    body = first
    while body < last:
        found = _HEADER.match(lines[body])
        if found is None:
            break
        key = found.group(1).lower()
        span = Span(file, body + 1, 1, body + 1, len(lines[body]) + 1)
        if key not in HEADER_KEYS:
            out.append(
                error("E230", span, f"unknown header `{key}`; known: {', '.join(HEADER_KEYS)}")
            )
        meta[key] = (found.group(2), span)
        body += 1
    canvas = [""] * len(lines)
    canvas[body:last] = lines[body:last]
    _drop_semicolon(canvas, body, last)
    name, name_span = meta["rule"]
    if not _NAME.match(name):
        out.append(error("E230", name_span, "a rule name is made of letters, digits and _"))
        return None
    try:
        query = parse_query("\n".join(canvas), file)
    except CepError as exc:
        out.extend(exc.diagnostics)
        return None
    values = {k: v for k, (v, _) in meta.items()}
    return metadata_rule(name, query, name_span, values, file, out, meta)


def _drop_semicolon(canvas: list[str], body: int, last: int) -> None:
    """Blank the `;` that ends a query (the grammar has none), keeping columns."""
    for r in range(last - 1, body - 1, -1):
        text = canvas[r].split("--", 1)[0].rstrip()
        if text:
            if text.endswith(";"):
                canvas[r] = text[:-1] + " " + canvas[r][len(text) :]
            return


def metadata_rule(
    name: str,
    query: ast.Query,
    span: Span,
    values: dict[str, Any],
    file: str,
    out: list[Diagnostic],
    spans: dict[str, tuple[str, Span]] | None = None,
) -> SqlRule | None:
    """A `SqlRule` from header (strings) or YAML (typed) metadata; problems go to `out`."""

    def where(key: str) -> Span:
        return spans[key][1] if spans and key in spans else span

    try:
        version = int(values.get("version", 1))
    except (TypeError, ValueError):
        out.append(error("E230", where("version"), "`version` is a whole number"))
        return None
    labels = values.get("labels", ())
    if isinstance(labels, str):
        labels = [x.strip() for x in labels.split(",") if x.strip()]
    enabled = values.get("enabled", True)
    if isinstance(enabled, str):
        if enabled.lower() not in ("true", "false"):
            out.append(error("E230", where("enabled"), "`enabled` is true or false"))
        enabled = enabled.lower() != "false"
    emit_to = values.get("emit_to")
    return SqlRule(
        name=name,
        query=query,
        span=span,
        title=str(values.get("title", "")),
        description=str(values.get("description", "")),
        version=version,
        severity=str(values.get("severity", "medium")),
        labels=tuple(str(x) for x in labels),
        enabled=bool(enabled),
        emit_to=str(emit_to) if emit_to is not None else None,
    )


def yaml_sql_rule(
    lines: list[str], node: yaml.MappingNode, data: dict[str, Any], file: str, out: list[Diagnostic]
) -> SqlRule | None:
    """The SQL rule of a YAML rule mapping that has `sql:` (a `|` block scalar)."""
    name = str(data.get("name"))
    span = Span(
        file,
        node.start_mark.line + 1,
        node.start_mark.column + 1,
        node.end_mark.line + 1,
        node.end_mark.column + 1,
    )
    value: yaml.Node | None = None
    for key_node, value_node in node.value:
        key = key_node.value
        if key == "sql":
            value = value_node
        elif key in DSL_FIELDS:
            where = _node_span(file, key_node)
            hint = "; the query's FROM names the stream" if key == "from" else ""
            out.append(error("E230", where, f"`{key}` is for DSL rules, not with `sql:`{hint}"))
    if not (isinstance(value, yaml.ScalarNode) and value.style in ("|", ">")):
        where = _node_span(file, value) if value is not None else span
        out.append(error("E230", where, "`sql` holds one query in a block scalar: `sql: |`"))
        return None
    canvas = [""] * len(lines)
    end = value.end_mark.line + (1 if value.end_mark.column > 0 else 0)
    for r in range(value.start_mark.line + 1, min(end, len(lines))):
        canvas[r] = lines[r]
    _drop_semicolon(canvas, value.start_mark.line + 1, min(end, len(lines)))
    try:
        query = parse_query("\n".join(canvas), file)
    except CepError as exc:
        out.extend(exc.diagnostics)
        return None
    return metadata_rule(name, query, span, data, file, out)


def _node_span(file: str, node: yaml.Node) -> Span:
    start, end = node.start_mark, node.end_mark
    return Span(file, start.line + 1, start.column + 1, end.line + 1, end.column + 1)


def has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)
