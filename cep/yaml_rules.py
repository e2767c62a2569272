"""Rules in YAML files, with the DSL inside block scalars so diagnostics keep true positions.

A YAML rule file looks like this (every DSL part is a `|` block or a plain scalar):

    streams: |                      # optional: stream and const declarations (DSL)
      stream txns key card_id time ts ...
    rules:
      - name: card_testing
        title: Tiny authorisations then a large purchase
        version: 1
        severity: high
        labels: [card, testing]
        enabled: true
        from: [txns]
        pattern: |
          small{3,} consecutive next big
        where: |
          small: amount < 5.00
          big: amount > 500.00
        within: 10m
        skip: past last
        emit: |
          to "fraud.alerts" { tests: count(small) }
        on_timeout: |
          to "fraud.timeouts" { }
      - name: big_after_small         # a SQL rule: `sql:` instead of pattern/where/...
        severity: high
        emit_to: fraud.alerts
        sql: |
          SELECT * FROM txns MATCH_RECOGNIZE (PARTITION BY card_id ORDER BY ts ...)
    tests: [...]                    # rule tests, run by `cep test`

The DSL parts are laid onto a blank copy of the file (same lines, same columns), each under
its clause keyword, and parsed by the DSL parser; metadata comes from the YAML values.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import yaml

from cep import ast
from cep.errors import Diagnostic, RuleSyntaxError, Severity, Span
from cep.parser import parse_text
from cep.sql.rules import DSL_FIELDS, SqlRule, yaml_sql_rule

_DSL_CLAUSES = {
    "pattern": "pattern",
    "where": "where",
    "within": "within",
    "skip": "skip",
    "emit": "emit",
    "on_timeout": "on timeout emit",
}
_METADATA = {"name", "title", "description", "version", "severity", "labels", "enabled", "from"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def parse_yaml(text: str, file: str) -> tuple[ast.RuleFile, list[dict[str, Any]]]:
    """Parse a YAML rule file; return its rules and its raw `tests` section."""
    rule_file, _sql, tests = parse_yaml_rules(text, file)
    return rule_file, tests


def parse_yaml_rules(
    text: str, file: str
) -> tuple[ast.RuleFile, list[SqlRule], list[dict[str, Any]]]:
    """Parse a YAML rule file: its DSL rules, its SQL rules (`sql:`) and its `tests`."""
    diagnostics: list[Diagnostic] = []
    sql_rules: list[SqlRule] = []
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = getattr(exc, "problem", None) or str(exc)
        span = Span(file, line, column, line, column + 1)
        raise RuleSyntaxError(
            [Diagnostic("E110", Severity.ERROR, span, f"invalid YAML: {problem}")], {file: text}
        ) from None
    if root is None:
        return ast.RuleFile(), [], []
    if not isinstance(root, yaml.MappingNode):
        raise RuleSyntaxError(
            [_error(file, root, "a rule file is a mapping with `rules:`")], {file: text}
        )
    lines = text.split("\n")
    result = ast.RuleFile()
    nodes = {k.value: v for k, v in root.value}
    streams = nodes.get("streams")
    if streams is not None:
        result = _parse_overlay(
            _block_overlay(lines, streams, None, file, diagnostics), file, text, diagnostics, result
        )
    rules = nodes.get("rules")
    if rules is not None:
        if not isinstance(rules, yaml.SequenceNode):
            diagnostics.append(_error(file, rules, "`rules` must be a list"))
        else:
            for rule_node, rule_data in zip(rules.value, data.get("rules") or [], strict=False):
                if _is_sql(rule_node, rule_data):
                    sql = _sql_rule(lines, rule_node, rule_data, file, diagnostics)
                    sql_rules.extend([sql] if sql is not None else [])
                    continue
                rule = _rule(lines, rule_node, rule_data, file, text, diagnostics)
                if rule is not None:
                    result = result.merged(ast.RuleFile(rules=(rule,)))
    for key, _value in root.value:
        if key.value not in ("streams", "rules", "tests"):
            diagnostics.append(
                _error(
                    file, key, f"unknown section `{key.value}`; expected streams, rules or tests"
                )
            )
    if diagnostics:
        declarations_ok = (
            not any(d.span.line <= streams.end_mark.line for d in diagnostics) if streams else True
        )
        raise RuleSyntaxError(diagnostics, {file: text}, result, declarations_ok)
    tests = data.get("tests") or []
    return result, sql_rules, tests if isinstance(tests, list) else []


def _is_sql(node: yaml.Node, data: Any) -> bool:
    return isinstance(node, yaml.MappingNode) and isinstance(data, dict) and "sql" in data


def _sql_rule(
    lines: list[str], node: yaml.MappingNode, data: dict[str, Any], file: str, out: list[Diagnostic]
) -> SqlRule | None:
    """A rule with `sql:` instead of `pattern:`; its other keys are the DSL rule metadata."""
    if not isinstance(data.get("name"), str) or not _NAME.match(data["name"]):
        out.append(_error(file, node, "a rule needs `name:` made of letters, digits and _"))
        return None
    for key_node, _value in node.value:
        known = key_node.value in _METADATA | {"sql", "emit_to", "tests"} | DSL_FIELDS
        if not known:
            out.append(_error(file, key_node, f"unknown rule field `{key_node.value}`"))
    return yaml_sql_rule(lines, node, data, file, out)


def _rule(
    lines: list[str], node: yaml.Node, data: Any, file: str, text: str, out: list[Diagnostic]
) -> ast.Rule | None:
    if not isinstance(node, yaml.MappingNode) or not isinstance(data, dict):
        out.append(_error(file, node, "each rule is a mapping with at least `name` and `pattern`"))
        return None
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        out.append(_error(file, node, "a rule needs `name:` made of letters, digits and _"))
        return None
    canvas = [""] * len(lines)
    canvas[0] = f"rule {name}"
    for key_node, value_node in node.value:
        key = key_node.value
        if key in _DSL_CLAUSES:
            _overlay_clause(canvas, lines, key_node, value_node, _DSL_CLAUSES[key])
        elif key not in _METADATA and key != "tests":
            out.append(_error(file, key_node, f"unknown rule field `{key}`"))
    parsed = _parse_overlay("\n".join(canvas), file, text, out, ast.RuleFile())
    if not parsed.rules:
        return None
    rule = parsed.rules[0]
    streams = data.get("from", ())
    labels = data.get("labels", ())
    return replace(
        rule,
        title=str(data.get("title", "")),
        description=str(data.get("description", "")),
        version=int(data.get("version", 1)),
        severity=str(data.get("severity", "medium")),
        labels=tuple(str(x) for x in ([labels] if isinstance(labels, str) else labels)),
        enabled=bool(data.get("enabled", True)),
        streams=tuple(str(x) for x in ([streams] if isinstance(streams, str) else streams)),
        span=_span(file, node),
    )


def _overlay_clause(
    canvas: list[str], lines: list[str], key: yaml.Node, value: yaml.Node, keyword: str
) -> None:
    row, column = key.start_mark.line, key.start_mark.column
    canvas[row] = " " * column + keyword
    if isinstance(value, yaml.ScalarNode) and value.style in ("|", ">"):
        for r in _block_lines(value, len(lines)):
            canvas[r] = lines[r]
    elif isinstance(value, yaml.ScalarNode):
        start, end = value.start_mark, value.end_mark
        if start.line == end.line == row:
            pad = max(0, start.column - len(canvas[row]))
            canvas[row] += " " * pad + lines[row][start.column : end.column]
        else:
            canvas[row] += " " + str(value.value)


def _block_overlay(
    lines: list[str], node: yaml.Node, _key: None, file: str, out: list[Diagnostic]
) -> str:
    canvas = [""] * len(lines)
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        for r in _block_lines(node, len(lines)):
            canvas[r] = lines[r]
    else:
        out.append(_error(file, node, "`streams` holds DSL text in a block scalar: `streams: |`"))
    return "\n".join(canvas)


def _parse_overlay(
    canvas: str, file: str, text: str, out: list[Diagnostic], into: ast.RuleFile
) -> ast.RuleFile:
    try:
        return into.merged(parse_text(canvas, file))
    except RuleSyntaxError as exc:
        out.extend(exc.diagnostics)
        return into


def _block_lines(node: yaml.Node, n_lines: int) -> range:
    """The file lines (0-based) holding a block scalar's content.

    The end mark of a block scalar is the start of the next token, usually column 0 of the
    line after the block, which then does not belong to it.
    """
    end = node.end_mark.line + (1 if node.end_mark.column > 0 else 0)
    return range(node.start_mark.line + 1, min(end, n_lines))


def _span(file: str, node: yaml.Node) -> Span:
    start, end = node.start_mark, node.end_mark
    return Span(file, start.line + 1, start.column + 1, end.line + 1, end.column + 1)


def _error(file: str, node: yaml.Node, message: str) -> Diagnostic:
    return Diagnostic("E111", Severity.ERROR, _span(file, node), message)
