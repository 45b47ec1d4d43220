"""The step graph of a workflow document: where each step may lead, and the loops a run could go
round without ever waiting (refused at publish: one booking must never fire a stream of sends)."""

from __future__ import annotations

from actions import STEP_TYPES
from actions.base import END


def edges(steps: list[dict]) -> dict[str, list[str]]:
    """Step id → the step ids a run may move to next (``END`` and exits lead nowhere)."""
    ids = [s["id"] for s in steps]
    out: dict[str, list[str]] = {}
    for i, step in enumerate(steps):
        following = ids[i + 1] if i + 1 < len(ids) else None
        found: list[str] = []
        for succ in STEP_TYPES.get(step["type"]).successors(step):
            if succ is None:  # "the step after it": its next override, else the following step
                succ = step.get("next") or following
            if succ and succ != END and succ not in found:
                found.append(succ)
        out[step["id"]] = found
    return out


def loops_without_wait(steps: list[dict]) -> list[list[str]]:
    """Each group of steps (in document order) that a run can go round without passing a step that
    holds (a time delay of more than zero): the strongly connected components of the graph with the
    holding steps taken out (Tarjan's algorithm, iterative)."""
    holding = {s["id"] for s in steps if STEP_TYPES.get(s["type"]).holds(s)}
    graph = {k: [v for v in vs if v not in holding] for k, vs in edges(steps).items() if k not in holding}
    order = {s["id"]: i for i, s in enumerate(steps)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            succs = graph.get(node, [])
            if child < len(succs):
                work.append((node, child + 1))
                nxt = succs[child]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, []):
                    found.append(sorted(component, key=order.__getitem__))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return sorted(found, key=lambda c: order[c[0]])
