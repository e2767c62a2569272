"""Semantic checks on parsed rule files: an ordered tuple of small passes.

Each pass looks at one concern and appends every problem it finds as a diagnostic; the
compiler runs all passes and raises once, so an author sees all mistakes in one run.
Expression-level checks (unknown fields, types) happen while lowering, in `cep.lower`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import pairwise

from cep import ast
from cep.errors import Diagnostic, error, warning

Pass = Callable[[ast.RuleFile, list[Diagnostic]], None]
#: Words that read as pattern syntax; the contextual lexer would accept them as stage names.
RESERVED = frozenset(
    {
        "next",
        "followed",
        "by",
        "any",
        "not",
        "until",
        "greedy",
        "consecutive",
        "combinations",
        "rule",
        "stream",
        "const",
        "where",
        "within",
        "skip",
        "emit",
        "pattern",
        "from",
    }
)


def stages_of(pattern: ast.Pattern) -> Iterator[tuple[ast.Step, ast.Stage]]:
    """Every stage of a pattern in order, with the step that holds it (groups flattened)."""
    for step in pattern.steps:
        element = step.element
        if isinstance(element, ast.Stage):
            yield step, element
        else:
            for alternative in element.alternatives:
                yield from stages_of(alternative)


def check_streams(rule_file: ast.RuleFile, out: list[Diagnostic]) -> None:
    seen: set[str] = set()
    for stream in rule_file.streams:
        if stream.name in seen:
            out.append(error("E250", stream.span, f"stream `{stream.name}` is declared twice"))
        seen.add(stream.name)
        fields = {f.name: f for f in stream.fields}
        if not stream.fields:
            out.append(error("E251", stream.span, f"stream `{stream.name}` declares no fields"))
        for f in stream.fields:
            if f.type not in ast.FIELD_TYPES:
                out.append(
                    error(
                        "E252",
                        f.span,
                        f"unknown type `{f.type}`; use one of {', '.join(ast.FIELD_TYPES)}",
                    )
                )
        if len(fields) != len(stream.fields):
            out.append(error("E250", stream.span, f"stream `{stream.name}` declares a field twice"))
        if stream.key is None:
            out.append(error("E253", stream.span, f"stream `{stream.name}` needs a `key` field"))
        elif stream.key not in fields:
            out.append(
                error("E254", stream.span, f"key `{stream.key}` is not a field of `{stream.name}`")
            )
        if stream.time_source is ast.TimeSource.FIELD:
            if stream.time_field is None:
                out.append(
                    error(
                        "E255",
                        stream.span,
                        f"stream `{stream.name}` needs `time FIELD`, `time kafka` or `time processing`",
                    )
                )
            elif stream.time_field not in fields:
                out.append(
                    error(
                        "E254",
                        stream.span,
                        f"time field `{stream.time_field}` is not a field of `{stream.name}`",
                    )
                )
            elif fields[stream.time_field].type not in ("timestamp", "int"):
                out.append(
                    error(
                        "E256", fields[stream.time_field].span, "the time field must be a timestamp"
                    )
                )


def check_consts(rule_file: ast.RuleFile, out: list[Diagnostic]) -> None:
    seen: set[str] = set()
    for const in rule_file.consts:
        if const.name in seen:
            out.append(error("E260", const.span, f"constant `{const.name}` is declared twice"))
        seen.add(const.name)


def check_rule_heads(rule_file: ast.RuleFile, out: list[Diagnostic]) -> None:
    streams = {s.name for s in rule_file.streams}
    seen: set[str] = set()
    for rule in rule_file.rules:
        if rule.name in seen:
            out.append(error("E270", rule.span, f"rule `{rule.name}` is declared twice"))
        seen.add(rule.name)
        if not rule.streams:
            out.append(error("E271", rule.span, f"rule `{rule.name}` needs `from STREAM`"))
        for name in rule.streams:
            if name not in streams:
                out.append(error("E203", rule.span, f"unknown stream `{name}`"))
        if rule.pattern is None:
            out.append(error("E272", rule.span, f"rule `{rule.name}` needs a `pattern`"))
        if rule.version < 1:
            out.append(error("E273", rule.span, "a rule's version starts at 1"))


def check_patterns(rule_file: ast.RuleFile, out: list[Diagnostic]) -> None:
    for rule in rule_file.rules:
        if rule.pattern is None:
            continue
        names: set[str] = set()
        for step, stage in stages_of(rule.pattern):
            if stage.name in names:
                out.append(
                    error(
                        "E280",
                        stage.span,
                        f"stage `{stage.name}` appears twice; give each stage its own name",
                    )
                )
            names.add(stage.name)
            if stage.name in RESERVED:
                out.append(
                    error(
                        "E289",
                        stage.span,
                        f"`{stage.name}` is a keyword of patterns; give the stage another name",
                    )
                )
            if stage.stream is not None and stage.stream not in rule.streams:
                out.append(
                    error(
                        "E281",
                        stage.span,
                        f"stage `{stage.name}` reads `{stage.stream}`, which the rule does not read (`from`)",
                    )
                )
            if stage.stream is None and len(rule.streams) > 1:
                out.append(
                    error(
                        "E282",
                        stage.span,
                        f"rule reads several streams: say which one stage `{stage.name}` accepts, as `{stage.name}: STREAM`",
                    )
                )
            _check_quantified(stage, out)
            if step.negated and stage.quantifier != ast.ONCE:
                out.append(error("E283", stage.span, "a negated stage cannot have a quantifier"))
        _check_groups(rule.pattern, out)
        steps = rule.pattern.steps
        if steps and steps[0].negated:
            out.append(error("E284", steps[0].span, "a pattern cannot start with a negation"))
        if steps and steps[-1].negated:
            last = steps[-1]
            if last.contiguity is ast.Contiguity.RELAXED and rule.within is None:
                out.append(
                    error(
                        "E285",
                        last.span,
                        "a pattern that ends with `not followed by` needs a `within` window (absence is decided when the window passes)",
                    )
                )
        for a, b in pairwise(steps):
            if a.negated and b.negated:
                out.append(error("E286", b.span, "two negations in a row are not supported"))
        unbounded = [
            s for _, s in stages_of(rule.pattern) if s.quantifier.max is None and s.until is None
        ]
        if unbounded and rule.within is None:
            stage = unbounded[0]
            out.append(
                warning(
                    "W240",
                    stage.span,
                    f"loop `{stage.name}` has neither `within` nor `until`: its partial matches live until the per-key bound drops them",
                )
            )
        skip = rule.skip
        if skip.kind in (ast.SkipKind.TO_FIRST, ast.SkipKind.TO_LAST) and skip.stage not in names:
            out.append(error("E204", skip.span, f"unknown stage `{skip.stage}` in skip strategy"))


def _check_groups(pattern: ast.Pattern, out: list[Diagnostic]) -> None:
    for step in pattern.steps:
        group = step.element
        if not isinstance(group, ast.Group):
            continue
        if step.negated:
            out.append(error("E301", group.span, "a group cannot be negated; negate its stages"))
        if group.greedy or group.until is not None:
            out.append(
                error(
                    "E301", group.span, "`greedy` and `until` apply to single stages, not to groups"
                )
            )
        for alternative in group.alternatives:
            if alternative.steps and alternative.steps[0].negated:
                out.append(
                    error("E284", alternative.steps[0].span, "a group cannot start with a negation")
                )
            _check_groups(alternative, out)


def _check_quantified(stage: ast.Stage, out: list[Diagnostic]) -> None:
    q = stage.quantifier
    if q.max is not None and (q.max < q.min or q.max == 0):
        out.append(error("E287", q.span, f"quantifier {{{q.min},{q.max}}} matches nothing"))
    repeats = q.max is None or q.max > 1
    if not repeats:
        if stage.inner is not ast.LoopContiguity.RELAXED:
            out.append(error("E288", stage.span, f"`{stage.inner.value}` applies to loops only"))
        if stage.until is not None:
            out.append(error("E288", stage.span, "`until` applies to loops only"))
        if stage.greedy:
            out.append(error("E288", stage.span, "`greedy` applies to loops only"))


def check_conditions(rule_file: ast.RuleFile, out: list[Diagnostic]) -> None:
    for rule in rule_file.rules:
        if rule.pattern is None:
            continue
        names = {stage.name for _, stage in stages_of(rule.pattern)}
        seen: set[str] = set()
        for condition in rule.conditions:
            if condition.stage not in names:
                out.append(
                    error(
                        "E205", condition.span, f"condition for unknown stage `{condition.stage}`"
                    )
                )
            if condition.stage in seen:
                out.append(
                    error(
                        "E206",
                        condition.span,
                        f"stage `{condition.stage}` has two conditions; join them with `and`",
                    )
                )
            seen.add(condition.stage)


PASSES: tuple[Pass, ...] = (
    check_streams,
    check_consts,
    check_rule_heads,
    check_patterns,
    check_conditions,
)


def run_checks(rule_file: ast.RuleFile) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for check in PASSES:
        check(rule_file, out)
    return out
