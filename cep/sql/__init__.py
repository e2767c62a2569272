"""SQL:2016 row pattern recognition (MATCH_RECOGNIZE) front end.

Public API: `parse_query`, `parse_match_recognize` (text to `cep.sql.ast`), and
`compile_match_recognize` (AST to an `nfa.rowpattern` program that `nfa.rowpattern_run`
executes with standard row-pattern semantics). Rules (`cep.sql.rules`) are compiled by
`cep.sql.rule_compiler`: those whose meaning provably equals FlinkCEP's
(`cep.sql.nfa_subset`) to ordinary NFA programs, the others for the row-pattern engine.
"""

from cep.sql.parser import parse_expr, parse_match_recognize, parse_pattern, parse_query

__all__ = ["parse_expr", "parse_match_recognize", "parse_pattern", "parse_query"]
