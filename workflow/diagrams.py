"""Pictures and tables of the state machines, drawn from the same module data the engine runs.

For each rulebook (workflow.machines.RULEBOOKS) this builds a separate `transitions` GraphMachine from its
machine module's STATES and TRANSITIONS, never from a case row, and renders it to SVG with Graphviz's
`dot`. Where Graphviz is missing, `table()` gives the same states and transitions as rows to show instead.
Words come in through `Labels`, so this module knows no language and no request.
"""
from __future__ import annotations

import functools
import importlib.util
import shutil
from dataclasses import dataclass
from typing import Any, Mapping

from transitions import State
from transitions.extensions.diagrams import GraphMachine

from .machines import RULEBOOKS, Rulebook

# The transition keys whose callables decide whether an action may happen (prepare raises, conditions choose).
GUARD_KEYS = ("prepare", "conditions", "unless")
CHOOSING_KEYS = ("conditions", "unless")     # they pick which of an action's transitions is taken
SYSTEM = "system"          # who takes an automatic action
CURRENT = "current"        # the node style of the highlighted state
TERMINAL = "terminal"
START = "__start__"        # the dot a new case comes from


@dataclass(frozen=True)
class Labels:
    """The words of one language: id -> label per table, and a title per kind. Hashable, so that a rendered
    SVG can be cached per language."""
    states: tuple[tuple[str, str], ...] = ()
    actions: tuple[tuple[str, str], ...] = ()
    duties: tuple[tuple[str, str], ...] = ()
    guards: tuple[tuple[str, str], ...] = ()
    titles: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, **tables: Mapping[str, Any]) -> "Labels":
        return cls(**{name: tuple(sorted((k, str(v)) for k, v in table.items()))
                      for name, table in tables.items()})

    def word(self, table: str, key: str | None) -> str:
        """The label of an id, or the id itself when the table does not name it."""
        if key is None:
            return ""
        return dict(getattr(self, table)).get(key, key)


# --- the rulebook as rows ------------------------------------------------------------------------------

def _names(value) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    return [getattr(f, "__name__", str(f)) for f in items]


def _sources(source) -> list[str]:
    return list(source) if isinstance(source, (list, tuple)) else [source]


def duty_of(rb: Rulebook, action: str) -> list[str]:
    """Who takes an action: its ACTORS duty; `system` for automatic actions and as a second actor where the
    rulebook lets tick or a rule take it too."""
    duty = rb.actors.get(action)
    if duty is None:
        return [SYSTEM] if action in rb.automatic else []
    return [duty, SYSTEM] if action in rb.system_also and duty != SYSTEM else [duty]


@dataclass(frozen=True)
class Row:
    """One transition of a rulebook: `dest` None means the case stays where it is (an internal transition)."""
    action: str
    sources: tuple[str, ...]
    dest: str | None
    duties: tuple[str, ...]
    guards: tuple[str, ...]
    automatic: bool
    conditions: tuple[str, ...] = ()     # the guards that choose between an action's transitions


@dataclass(frozen=True)
class Table:
    kind: str
    created: str
    states: tuple[tuple[str, bool], ...]     # (state, terminal) in the rulebook's order
    rows: tuple[Row, ...]                     # in the rulebook's order


def table(kind: str) -> Table:
    """The states (with their terminal flag) and every transition of a kind, as data."""
    rb = RULEBOOKS[kind]
    rows = tuple(
        Row(action=t["trigger"], sources=tuple(_sources(t["source"])), dest=t.get("dest"),
            duties=tuple(duty_of(rb, t["trigger"])),
            guards=tuple(name for key in GUARD_KEYS for name in _names(t.get(key))),
            automatic=t["trigger"] in rb.automatic,
            conditions=tuple(name for key in CHOOSING_KEYS for name in _names(t.get(key))))
        for t in rb.transitions)
    states = tuple((s, s in rb.terminal) for s in rb.states)
    return Table(kind=kind, created=rb.created, states=states, rows=rows)


# --- the rulebook as a picture -------------------------------------------------------------------------

def graphviz_available() -> bool:
    """Both halves are there: the `graphviz` Python package and Graphviz's `dot` program."""
    return importlib.util.find_spec("graphviz") is not None and shutil.which("dot") is not None


class _LabelledState(State):
    """A state that carries the word to draw (the markup of GraphMachine reads `label`)."""

    def __init__(self, *args, label: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.label = label or str(self.name)


class DiagramMachine(GraphMachine):
    """A GraphMachine for drawing only: never given a model, never fired."""

    state_cls = _LabelledState
    machine_attributes = {**GraphMachine.machine_attributes, "rankdir": "TB", "nodesep": "0.5",
                          "ranksep": "0.8", "fontname": "Noto Sans CJK SC", "labelloc": "t", "fontsize": "16"}
    style_attributes = {
        "node": {
            "default": {"style": "rounded,filled", "shape": "rectangle", "fillcolor": "white",
                        "color": "#495057", "fontname": "Noto Sans CJK SC", "fontsize": "12",
                        "peripheries": "1"},
            TERMINAL: {"fillcolor": "#e9ecef", "color": "#495057", "peripheries": "2"},
            CURRENT: {"fillcolor": "#ffc107", "color": "#b02a37", "penwidth": "2.5", "peripheries": "1",
                      "class": "current"},
            "inactive": {"fillcolor": "white", "color": "#495057", "peripheries": "1"},
        },
        "edge": {
            "default": {"color": "#495057", "fontname": "Noto Sans CJK SC", "fontsize": "10",
                        "fontcolor": "#212529"},
            "internal": {"color": "#868e96", "style": "dashed", "fontcolor": "#495057"},
            "previous": {"color": "#0d6efd"},
        },
        "graph": GraphMachine.style_attributes["graph"],
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.graph_cls = _graph_class(self.graph_cls)


@functools.cache
def _graph_class(base):
    class Graph(base):
        """Draws each transition with the label it was given; the internal ones are styled, not suffixed."""

        def _transition_label(self, tran):
            return tran.get("label", tran["trigger"])

        def _add_edges(self, transitions, container):
            # One arrow per (source, dest), its actions one per line rather than joined by " | ".
            labels: dict[tuple[str, str], list[str]] = {}
            for tran in transitions:
                key = (tran["source"], tran.get("dest", tran["source"]))
                labels.setdefault(key, []).append(self._transition_label(tran))
            for (src, dst), lines in labels.items():
                style = self.custom_styles["edge"][src][dst]
                container.edge(src, dst, label="\\n".join(lines),
                               **self.machine.style_attributes.get("edge", {}).get(style, {}))
    return Graph


def edge_label(row: Row, labels: Labels) -> str:
    """`Action (who) [conditions]`: the words on an arrow. `(who)` is left out where it repeats the action's
    name (a panel score is given by the panel); of the guards only the conditions are drawn, which tell an
    action's arrows apart (approve: to publicity, or effective at once); the checks of the input (a comment,
    a score) are in the table, so that the drawing stays readable."""
    text = labels.word("actions", row.action)
    who = [labels.word("duties", d) for d in row.duties]
    if who and who != [text]:
        text += f" ({' / '.join(who)})"
    if row.conditions:
        text += f" [{', '.join(labels.word('guards', g) for g in row.conditions)}]"
    return text


def machine_for(kind: str, labels: Labels) -> DiagramMachine:
    """A drawing machine of a kind, from its machine module's states and transitions, with labels."""
    rb = RULEBOOKS[kind]
    data = table(kind)
    states = [{"name": s, "label": labels.word("states", s), "final": terminal}
              for s, terminal in data.states]
    transitions = []
    for row in data.rows:
        for source in row.sources:
            transitions.append({"trigger": row.action, "source": source, "dest": row.dest,
                                "label": edge_label(row, labels)})
    return DiagramMachine(model=None, states=states, transitions=transitions, initial=rb.created,
                          auto_transitions=False, title=labels.word("titles", kind), graph_engine="graphviz")


def graph(kind: str, labels: Labels, current: str | None = None):
    """The graphviz Digraph of a kind, terminal states framed twice, `current` filled."""
    machine = machine_for(kind, labels)
    drawing = machine.graph_cls(machine)
    for state in RULEBOOKS[kind].terminal:
        drawing.set_node_style(state, TERMINAL)
    for row in table(kind).rows:
        if row.dest is None:
            for source in row.sources:
                drawing.custom_styles["edge"][source][source] = "internal"
    if current is not None:
        drawing.set_node_style(current, CURRENT)
    digraph = drawing.get_graph(title=labels.word("titles", kind))
    # Opening a case is no transition of the machine; an arrow from a dot (the usual initial-state mark)
    # shows where a new case starts, whoever opens it.
    digraph.node(START, label="", shape="point", width="0.15", style="filled", fillcolor="#212529")
    digraph.edge(START, RULEBOOKS[kind].created)
    return digraph


@functools.lru_cache(maxsize=256)
def svg(kind: str, labels: Labels, current: str | None = None) -> str:
    """The SVG of a kind's machine (an `<svg>` element, ready to inline), cached per kind, language and
    highlighted state. Needs `graphviz_available()`."""
    if kind not in RULEBOOKS:
        raise KeyError(kind)
    if current is not None and current not in RULEBOOKS[kind].states:
        raise ValueError(f"{kind} has no state {current!r}")
    out = graph(kind, labels, current).pipe(format="svg", encoding="utf-8")
    return out[out.index("<svg"):]
