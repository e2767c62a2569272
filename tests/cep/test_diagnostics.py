"""Diagnostics against golden files: every error of a file, with file, line, column, caret.

Each `golden/NAME` input has `golden/NAME.expected` beside it, holding what `cep check`
prints. Regenerate after a deliberate change with CEP_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cep.errors import CepError, RuleSyntaxError, Severity
from cep.loader import load_paths

GOLDEN = Path(__file__).parent / "golden"
INPUTS = sorted(p for p in GOLDEN.iterdir() if p.suffix in (".cep", ".yaml"))


def render(path: Path) -> tuple[str, CepError | None]:
    try:
        loaded = load_paths([path])
        compiled = loaded.compile()
    except CepError as exc:
        return exc.render().replace(str(GOLDEN) + "/", "") + "\n", exc
    text = "\n".join(w.render(loaded.sources[w.span.file]) for w in compiled.warnings)
    return text.replace(str(GOLDEN) + "/", "") + "\n", None


@pytest.mark.parametrize("path", INPUTS, ids=[p.name for p in INPUTS])
def test_golden(path: Path) -> None:
    actual, _ = render(path)
    expected_file = path.with_name(path.name + ".expected")
    if os.environ.get("CEP_UPDATE_GOLDEN"):
        expected_file.write_text(actual)
    assert actual == expected_file.read_text()


def codes(path: str) -> list[tuple[str, int, int]]:
    _, error = render(GOLDEN / path)
    assert error is not None
    return [(d.code, d.span.line, d.span.column) for d in error.diagnostics]


def test_every_syntax_error_is_reported_with_recovery() -> None:
    _, error = render(GOLDEN / "syntax_errors.cep")
    assert isinstance(error, RuleSyntaxError)
    lines = sorted(d.span.line for d in error.diagnostics)
    # 10x (line 7), `< <` (line 12), `skip past first` (line 14); then the checks of the
    # rule that parsed: `next` used as a stage name (line 18)
    assert lines == [7, 12, 14, 18]
    assert all(d.expected for d in error.diagnostics if d.code == "E101")


def test_semantic_errors_are_all_reported() -> None:
    found = codes("names_and_types.cep")
    assert ("E203", 4, 1) in found  # unknown stream `cards`
    assert {c for c, _, _ in found} >= {"E203", "E282", "E205"}


def test_type_and_name_errors_after_structure_is_valid(tmp_path: Path) -> None:
    text = (GOLDEN / "names_and_types.cep").read_text().replace("from txns, cards", "from txns")
    text = text.replace("        c: amount > 1\n", "")
    (tmp_path / "names.cep").write_text(text)
    with pytest.raises(CepError) as caught:
        load_paths([tmp_path]).compile()
    kinds = {d.code for d in caught.value.diagnostics}
    assert {"E201", "E222", "E215", "E217", "E220"} <= kinds


def test_structure_errors_and_warning() -> None:
    found = codes("structure.cep")
    kinds = [c for c, _, _ in found]
    for code in ("E250", "E253", "E254", "E285", "E204", "E270", "E280"):
        assert code in kinds, code


def test_warning_alone_does_not_fail() -> None:
    _, error = render(GOLDEN / "structure.cep")
    assert error is not None
    assert any(d.severity is Severity.WARNING and d.code == "W240" for d in error.diagnostics)


def test_yaml_block_scalars_keep_true_lines() -> None:
    found = codes("rules_with_errors.yaml")
    assert ("E101", 12, 23) in found  # `> >` inside the where block
