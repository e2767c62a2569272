"""Load rule files (DSL `.cep`, YAML `.yaml`/`.yml`) from files and folders, and compile them.

Errors of every file are collected and raised together. A DSL file keeps its tests in a
sidecar YAML file named after it (`card_testing.cep` -> `card_testing.tests.yaml`, a file
with a `tests:` list); a YAML rule file keeps them in its own `tests:` section.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cep import ast
from cep.compiler import CompiledRules, compile_rules
from cep.errors import CepError, Diagnostic, RuleSyntaxError
from cep.parser import parse_text
from cep.yaml_rules import parse_yaml

RULE_SUFFIXES = (".cep", ".yaml", ".yml")
TEST_SUFFIX = ".tests.yaml"


@dataclass
class LoadedRules:
    rule_file: ast.RuleFile = field(default_factory=ast.RuleFile)
    sources: dict[str, str] = field(default_factory=dict)
    tests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (file, test)

    def compile(self) -> CompiledRules:
        return compile_rules(self.rule_file, self.sources)


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
    if file.endswith((".yaml", ".yml")):
        rule_file, tests = parse_yaml(text, file)
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
        sidecar = path.with_name(path.stem + TEST_SUFFIX)
        if path.suffix == ".cep" and sidecar.exists():
            data = yaml.safe_load(sidecar.read_text(encoding="utf-8")) or {}
            result.tests.extend(
                (str(sidecar), t) for t in data.get("tests", []) if isinstance(t, dict)
            )
    if diagnostics:
        if declarations_ok:
            # Check what parsed, so one run reports semantic mistakes too.
            try:
                compile_rules(result.rule_file)
            except CepError as exc:
                diagnostics.extend(exc.diagnostics)
        raise RuleSyntaxError(diagnostics, result.sources)
    return result


def compile_paths(paths: Iterable[str | Path]) -> CompiledRules:
    return load_paths(paths).compile()
