"""Load rule files (DSL `.cep`, YAML `.yaml`/`.yml`, SQL `.sql`) from files and folders,
and compile them.

Errors of every file are collected and raised together. A DSL or SQL file keeps its tests
in a sidecar YAML file named after it (`card_testing.cep` -> `card_testing.tests.yaml`, a
file with a `tests:` list); a YAML rule file keeps them in its own `tests:` section. SQL
rules (`.sql` files, YAML `sql:` fields) are compiled after the DSL rules, against the
streams all files declare: those in the NFA subset (`cep.sql.nfa_subset`) into
`CompiledRules.programs`, after the DSL rules, the others into `CompiledRules.sql_programs`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from cep import ast
from cep.compiler import CompiledRules, build_schema, compile_rules
from cep.errors import CepError, Diagnostic, RuleCheckError, RuleSyntaxError
from cep.parser import parse_text
from cep.sql.rule_compiler import compile_sql_rules
from cep.sql.rules import SqlRule, parse_sql_file
from cep.yaml_rules import parse_yaml_rules

RULE_SUFFIXES = (".cep", ".yaml", ".yml", ".sql")
TEST_SUFFIX = ".tests.yaml"


@dataclass
class LoadedRules:
    rule_file: ast.RuleFile = field(default_factory=ast.RuleFile)
    sources: dict[str, str] = field(default_factory=dict)
    tests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (file, test)
    sql_rules: list[SqlRule] = field(default_factory=list)

    def compile(self, sql_on_nfa: bool = True) -> CompiledRules:
        """Compile DSL and SQL rules; raise one `RuleCheckError` with both kinds' errors.

        `sql_on_nfa` False keeps every SQL rule on the row-pattern engine (for its tests).
        """
        try:
            compiled = compile_rules(self.rule_file, self.sources)
        except CepError as exc:
            if self.sql_rules:
                sql_errors = _sql_diagnostics(self.rule_file, self.sql_rules)
                raise RuleCheckError([*exc.diagnostics, *sql_errors], self.sources) from None
            raise
        if not self.sql_rules:
            return compiled
        taken = [p.info.name for p in compiled.programs]
        sql = compile_sql_rules(self.sql_rules, compiled.schema, taken, sql_on_nfa)
        if sql.diagnostics:
            raise RuleCheckError([*compiled.warnings, *sql.diagnostics], self.sources)
        return replace(
            compiled,
            programs=(*compiled.programs, *sql.programs),
            warnings=(*compiled.warnings, *sql.notes),
            sql_programs=tuple(sql.sql_programs),
            engines=tuple(sql.engines),
        )


def _sql_diagnostics(rule_file: ast.RuleFile, rules: list[SqlRule]) -> list[Diagnostic]:
    """The SQL rules' errors while the DSL part has errors too (one run reports all)."""
    try:
        schema = build_schema(rule_file.streams)
    except Exception:  # broken declarations were reported already
        return []
    return compile_sql_rules(rules, schema, [r.name for r in rule_file.rules]).diagnostics


def rule_files(paths: Iterable[str | Path]) -> list[Path]:
    """The rule files named by `paths`, folders searched recursively, in a stable order."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        candidates = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for candidate in candidates:
            if candidate.name.endswith(TEST_SUFFIX):
                continue
            if candidate.suffix in RULE_SUFFIXES or not path.is_dir():
                found.append(candidate)
    return found


def load_text(text: str, file: str) -> LoadedRules:
    """Parse one file's text (DSL or YAML by its suffix)."""
    loaded = LoadedRules(sources={file: text})
    if file.endswith(".sql"):
        rules, diagnostics = parse_sql_file(text, file)
        if diagnostics:
            raise RuleSyntaxError(diagnostics, {file: text}, ast.RuleFile(), True)
        loaded.sql_rules.extend(rules)
        return loaded
    if file.endswith((".yaml", ".yml")):
        rule_file, sql_rules, tests = parse_yaml_rules(text, file)
        loaded.sql_rules.extend(sql_rules)
        loaded.tests.extend((file, t) for t in tests if isinstance(t, dict))
    else:
        rule_file = parse_text(text, file)
    loaded.rule_file = rule_file
    return loaded


def load_paths(paths: Iterable[str | Path]) -> LoadedRules:
    """Parse every rule file under `paths`; raise one error holding every file's problems."""
    result = LoadedRules()
    diagnostics: list[Diagnostic] = []
    declarations_ok = True
    for path in rule_files(paths):
        text = path.read_text(encoding="utf-8")
        name = str(path)
        result.sources[name] = text
        if path.suffix == ".sql":  # keep the rules that parsed: their checks run too
            sql_rules, problems = parse_sql_file(text, name)
            result.sql_rules.extend(sql_rules)
            diagnostics.extend(problems)
            _add_sidecar(result, path)
            continue
        try:
            loaded = load_text(text, name)
        except RuleSyntaxError as exc:
            diagnostics.extend(exc.diagnostics)
            declarations_ok &= exc.declarations_ok
            if isinstance(exc.partial, ast.RuleFile):
                result.rule_file = result.rule_file.merged(exc.partial)
            continue
        result.rule_file = result.rule_file.merged(loaded.rule_file)
        result.tests.extend(loaded.tests)
        result.sql_rules.extend(loaded.sql_rules)
        if path.suffix == ".cep":
            _add_sidecar(result, path)
    if diagnostics:
        if declarations_ok:
            # Check what parsed, so one run reports semantic mistakes too.
            try:
                result.compile()
            except CepError as exc:
                diagnostics.extend(exc.diagnostics)
        raise RuleSyntaxError(diagnostics, result.sources)
    return result


def _add_sidecar(result: LoadedRules, path: Path) -> None:
    """The tests of a DSL or SQL rule file, from `NAME.tests.yaml` beside it."""
    sidecar = path.with_name(path.stem + TEST_SUFFIX)
    if sidecar.exists():
        data = yaml.safe_load(sidecar.read_text(encoding="utf-8")) or {}
        result.tests.extend((str(sidecar), t) for t in data.get("tests", []) if isinstance(t, dict))


def compile_paths(paths: Iterable[str | Path]) -> CompiledRules:
    return load_paths(paths).compile()
