"""The `cep` command: check and explain rules, run the daemon, run the demo.

Exit codes: 0 success, 1 the rules or the run failed (diagnostics printed), 2 usage error
(argparse's convention), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from cep.errors import CepError, Severity
from cep.loader import load_paths

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def library_path() -> Path:
    """The shipped rule library (`patterns/`, installed as the package `cep.patterns`)."""
    return Path(str(resources.files("cep.patterns")))


def _check(args: argparse.Namespace) -> int:
    paths = args.paths or [library_path()]
    try:
        loaded = load_paths(paths)
        compiled = loaded.compile()
    except CepError as exc:
        print(exc.render(), file=sys.stderr)
        errors = sum(1 for d in exc.diagnostics if d.severity is Severity.ERROR)
        print(f"{errors} error(s)", file=sys.stderr)
        return EXIT_FAILED
    for warning in compiled.warnings:
        print(warning.render(loaded.sources.get(warning.span.file)), file=sys.stderr)
    print(f"ok: {len(compiled.rules)} rule(s), {len(compiled.schema.streams)} stream(s)")
    return EXIT_OK


def _explain(args: argparse.Namespace) -> int:
    from nfa.explain import describe, to_dot

    try:
        compiled = load_paths(args.rules or [library_path()]).compile()
    except CepError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_FAILED
    choice = compiled.engine(args.rule)  # a SQL rule: which engine runs it, and why
    try:
        program = compiled.program(args.rule)
    except KeyError:
        if choice is not None:
            print(
                f"SQL rule {args.rule!r} runs on the row-pattern engine ({choice.reason}): "
                "it has no automaton to explain",
                file=sys.stderr,
            )
        else:
            print(f"no rule named {args.rule!r}", file=sys.stderr)
        return EXIT_FAILED
    if choice is not None and not args.dot:
        print(f"SQL rule {args.rule!r}, compiled to an automaton: {choice.reason}")
    print(to_dot(program) if args.dot else describe(program))
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from service.runner import run_service

    return run_service(args.config)


def _demo(args: argparse.Namespace) -> int:
    from service.demo import run_demo

    return run_demo(
        duration=args.duration, rate=args.rate, metrics_port=args.metrics_port, engine=args.engine
    )


def _test(args: argparse.Namespace) -> int:
    from service.ruletest import main_test

    return main_test([str(p) for p in args.paths] or [str(library_path())])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cep", description="Complex event processing for fraud rules."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="parse and check rule files; print every diagnostic")
    check.add_argument(
        "paths", nargs="*", help="rule files or folders (default: the shipped library)"
    )
    check.set_defaults(func=_check)

    explain = sub.add_parser("explain", help="print a rule's automaton (states and edges)")
    explain.add_argument("rule", help="rule name")
    explain.add_argument(
        "--rules", action="append", help="rule files or folders (default: shipped library)"
    )
    explain.add_argument("--dot", action="store_true", help="print Graphviz DOT instead of text")
    explain.set_defaults(func=_explain)

    test = sub.add_parser("test", help="run the tests embedded in rule files; exit 1 on a failure")
    test.add_argument(
        "paths", nargs="*", help="rule files or folders (default: the shipped library)"
    )
    test.set_defaults(func=_test)

    from service.replay import add_replay_arguments, main_replay
    from service.trace import add_trace_arguments, main_trace

    replay = sub.add_parser(
        "replay", help="run rules over event files (backtest); --labels, --compare"
    )
    add_replay_arguments(replay)
    replay.set_defaults(func=main_replay)

    trace = sub.add_parser(
        "trace", help="explain step by step why a rule did or did not fire for a key"
    )
    add_trace_arguments(trace)
    trace.set_defaults(func=main_trace)

    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", required=True, help="service.yaml")
    run.set_defaults(func=_run)

    demo = sub.add_parser("demo", help="run everything on an embedded broker and Redis")
    demo.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    demo.add_argument("--rate", type=float, default=2000.0, help="synthetic events per second")
    demo.add_argument("--metrics-port", type=int, default=9464, help="0 to not serve metrics")
    demo.add_argument(
        "--engine", choices=["numba", "reference"], default="numba", help="matching engine"
    )
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
