"""Render a program's automaton as text or Graphviz DOT, for `cep explain`."""

from __future__ import annotations

from nfa.expr import AggKind, Const, EventTime, Expr, Field, Op, StageAgg
from nfa.program import F_AND, F_NOT, F_OR, F_TRUE, Action, Program, StateKind


def expression(program: Program, node: Expr) -> str:
    """A readable form of a typed expression."""
    columns = program.schema.columns
    if isinstance(node, Const):
        return repr(node.value) if node.value is not None else "null"
    if isinstance(node, Field):
        return columns[node.column].field
    if isinstance(node, EventTime):
        return "time"
    if isinstance(node, StageAgg):
        stage = program.stage_names[node.stage]
        if node.kind is AggKind.COUNT and node.column < 0:
            return f"count({stage})"
        target = columns[node.column].field if node.column >= 0 else "time"
        return f"{node.kind.value}({stage}.{target})"
    assert isinstance(node, Op)
    args = [expression(program, a) for a in node.args]
    if node.op == "stream_is":
        return f"stream == {program.schema.streams[int(node.params[0])].name}"  # type: ignore[arg-type]
    if (len(args) == 2 and not node.op.isalpha()) or node.op in ("and", "or"):
        return f"({args[0]} {node.op} {args[1]})"
    if node.op == "not":
        return f"not {args[0]}"
    if node.op == "in":
        return f"{args[0]} in {list(node.params)!r}"
    params = [repr(p) for p in node.params]
    return f"{node.op}({', '.join(args + params)})"


def formula(program: Program, edge: int) -> str:
    stack: list[str] = []
    for code in program.formula(edge):
        if code >= 0:
            stack.append(f"[{code}]")
        elif code == F_TRUE:
            stack.append("true")
        elif code == F_NOT:
            stack.append(f"!{stack.pop()}")
        elif code in (F_AND, F_OR):
            b, a = stack.pop(), stack.pop()
            stack.append(f"({a} {'&' if code == F_AND else '|'} {b})")
    return stack.pop()


def describe(program: Program) -> str:
    lines = [f"rule {program.info.name} v{program.info.version}"]
    if program.window_ms:
        lines.append(f"  window {program.window_ms} ms")
    lines.append(f"  skip {program.skip.name.lower()}")
    lines.append("  conditions:")
    for i, atom in enumerate(program.atoms):
        lines.append(f"    [{i}] {expression(program, atom)}")
    lines.append("  states:")
    for state in range(program.n_states):
        kind = StateKind(int(program.state_kind[state])).name.lower()
        start = " (start)" if state == program.start_state else ""
        lines.append(f"    s{state} {program.state_names[state]} [{kind}]{start}")
        for edge in program.edges_of(state):
            action = Action(int(program.edge_action[edge])).name.lower()
            target = int(program.edge_target[edge])
            lines.append(f"      {action:<7} -> s{target}  if {formula(program, edge)}")
    return "\n".join(lines)


def to_dot(program: Program) -> str:
    out = [f'digraph "{program.info.name}" {{', "  rankdir=LR;"]
    for state in range(program.n_states):
        kind = StateKind(int(program.state_kind[state]))
        shape = {StateKind.FINAL: "doublecircle", StateKind.STOP: "octagon"}.get(kind, "circle")
        label = program.state_names[state].replace('"', "'")
        out.append(f'  s{state} [shape={shape}, label="{label}"];')
    for state in range(program.n_states):
        for edge in program.edges_of(state):
            action = Action(int(program.edge_action[edge])).name.lower()
            label = f"{action} {formula(program, edge)}".replace('"', "'")
            out.append(f'  s{state} -> s{int(program.edge_target[edge])} [label="{label}"];')
    out.append("}")
    return "\n".join(out)
