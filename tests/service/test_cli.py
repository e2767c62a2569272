"""The `cep` command's language subcommands: exit codes and output."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main

GOOD = """
stream txns key card_id time ts fields { card_id: string, amount: float, ts: timestamp }
rule r from txns pattern a next b where a: amount > 1 within 1m
"""


def test_check_clean_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "r.cep").write_text(GOOD)
    assert main(["check", str(tmp_path)]) == EXIT_OK
    assert "ok: 1 rule(s)" in capsys.readouterr().out


def test_check_reports_errors_with_carets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "r.cep").write_text(GOOD.replace("amount > 1", "amount > > 1"))
    assert main(["check", str(tmp_path / "r.cep")]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "r.cep:3:" in err and "^" in err and "1 error(s)" in err


def test_check_usage_error() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["check", "--bogus"])
    assert caught.value.code == EXIT_USAGE


def test_check_shipped_library(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == EXIT_OK


def test_explain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "r.cep").write_text(GOOD)
    assert main(["explain", "r", "--rules", str(tmp_path)]) == EXIT_OK
    assert "states:" in capsys.readouterr().out
    assert main(["explain", "r", "--rules", str(tmp_path), "--dot"]) == EXIT_OK
    assert capsys.readouterr().out.startswith('digraph "r"')
    assert main(["explain", "nope", "--rules", str(tmp_path)]) == EXIT_FAILED
