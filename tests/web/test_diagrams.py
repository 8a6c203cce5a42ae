"""The state-machine pages: drawn from the rulebooks (SVG where Graphviz is installed, else tables), every
state and transition present, the case's state highlighted, labels in the user's language."""
from __future__ import annotations

import re
import types
import xml.etree.ElementTree as ET

import pytest
from flask_babel import force_locale

from web.views import ACTIONS, STATES
from workflow import diagrams
from workflow.machines import RULEBOOKS, build

SVG = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(not diagrams.graphviz_available(),
                               reason="Graphviz is not installed (apt-get install graphviz)")


def text(resp) -> str:
    assert resp.status_code == 200, resp.status_code
    return resp.get_data(as_text=True)


def the_svg(html: str) -> ET.Element:
    """The one inline SVG drawing of a page, parsed."""
    found = re.findall(r"<svg\b.*?</svg>", html, re.S)
    assert len(found) == 1, len(found)
    return ET.fromstring(found[0])


def nodes(svg: ET.Element) -> dict[str, ET.Element]:
    return {g.findtext(f"{SVG}title"): g for g in svg.iter(f"{SVG}g") if "node" in g.get("class", "").split()}


def edges(svg: ET.Element) -> dict[tuple[str, str], list[str]]:
    """(source, dest) -> the lines of the arrow's label."""
    out = {}
    for g in svg.iter(f"{SVG}g"):
        if g.get("class") == "edge":
            src, _arrow, dst = g.findtext(f"{SVG}title").partition("->")
            out[(src, dst)] = [t.text or "" for t in g.iter(f"{SVG}text")]
    return out


def current_nodes(svg: ET.Element) -> list[str]:
    return [name for name, g in nodes(svg).items() if "current" in g.get("class", "").split()]


@pytest.fixture
def no_graphviz(monkeypatch):
    monkeypatch.setattr(diagrams, "graphviz_available", lambda: False)


# --- the rulebook as data ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(RULEBOOKS))
def test_the_table_holds_every_state_and_transition_of_the_rulebook(kind):
    rb = RULEBOOKS[kind]
    table = diagrams.table(kind)
    assert [s for s, _t in table.states] == list(rb.states)
    assert {s for s, terminal in table.states if terminal} == rb.terminal
    assert [(r.action, r.dest) for r in table.rows] == [(t["trigger"], t.get("dest")) for t in rb.transitions]
    for row in table.rows:
        assert set(row.sources) <= set(rb.states)
        assert row.duties, f"nobody takes {row.action}"
        for source in row.sources:
            assert rb.can_fire(source, row.action)


def test_who_acts_and_the_guards_come_from_the_module():
    rows = {(r.action, r.dest): r for r in diagrams.table("promotion").rows}
    assert rows[("return", "returned")].duties == ("decide",)
    assert rows[("return", "returned")].guards == ("require_comment",)
    assert rows[("make_effective", "effective")].duties == ("decide", "system")     # tick takes it too
    assert rows[("scoring_complete", "hr_approval")].duties == ("system",)
    assert rows[("scoring_complete", "hr_approval")].automatic
    assert rows[("approve", "effective")].guards == ("last_signature", "effective_on_approval")
    assert rows[("approve", "effective")].conditions == ("last_signature", "effective_on_approval")
    assert rows[("return", "returned")].conditions == ()
    assert rows[("withdraw", "withdrawn")].sources == ("qualification_review", "returned", "panel_scoring",
                                                       "hr_approval", "appeal_review")
    assert rows[("appeal", "appeal_review")].guards == ("require_statement", "require_appeal_open")


# --- the drawing ----------------------------------------------------------------------------------------

@needs_dot
@pytest.mark.parametrize("kind", sorted(RULEBOOKS))
def test_the_svg_draws_every_state_and_transition(bank, page, kind):
    svg = the_svg(text(page("emp").get(f"/machines/{kind}")))
    rb = RULEBOOKS[kind]
    drawn = nodes(svg)
    assert set(rb.states) <= set(drawn)
    with force_locale("en"):
        state_words = {s: str(STATES.get(s, s)) for s in rb.states}
        action_words = {t["trigger"]: str(ACTIONS.get(t["trigger"], t["trigger"])) for t in rb.transitions}
    for state in rb.states:
        assert state_words[state] in " ".join(t.text or "" for t in drawn[state].iter(f"{SVG}text"))
    arrows = edges(svg)
    for t in rb.transitions:
        for source in _sources(t):
            lines = arrows[(source, t.get("dest") or source)]
            word = action_words[t["trigger"]]
            assert any(line.startswith(word) for line in lines), (t["trigger"], source, lines)
    assert current_nodes(svg) == []


@needs_dot
def test_the_svg_highlights_the_state_asked_for(bank, page):
    svg = the_svg(text(page("emp").get("/machines/promotion?state=hr_approval")))
    assert current_nodes(svg) == ["hr_approval"]
    # an unknown state highlights nothing
    assert current_nodes(the_svg(text(page("emp").get("/machines/promotion?state=nowhere")))) == []


@needs_dot
def test_the_arrows_name_who_acts_and_the_conditions_that_choose_the_way(bank, page):
    arrows = edges(the_svg(text(page("emp").get("/machines/promotion"))))
    # "needs a comment" is a check of the input, shown in the table; the conditions tell the arrows apart.
    assert arrows[("qualification_review", "returned")] == ["Return (Decision)"]
    assert arrows[("hr_approval", "effective")] == [
        "Approve (Decision) [last signature, policy: effective on approval]"]


@needs_dot
def test_the_svg_is_cached_per_kind_language_and_state(bank, page):
    diagrams.svg.cache_clear()
    for _ in range(2):
        page("emp").get("/machines/promotion?state=returned")
        page("emp", "zh_CN").get("/machines/promotion?state=returned")
    info = diagrams.svg.cache_info()
    assert (info.misses, info.hits) == (2, 2)


@needs_dot
def test_the_case_page_draws_the_case_where_it_stands(bank, page):
    p = page("emp")
    case_id = _file(p)
    html = text(p.get(f"/cases/{case_id}"))
    assert 'id="case-machine"' in html
    assert current_nodes(the_svg(html)) == ["qualification_review"]
    assert 'href="/machines/promotion?state=qualification_review"' in html


@needs_dot
def test_labels_in_chinese(bank, page):
    svg = the_svg(text(page("emp", "zh_CN").get("/machines/promotion")))
    words = " ".join(t.text or "" for t in svg.iter(f"{SVG}text"))
    assert "资格审核" in words and "晋级" in words and "审批" in words
    assert "Qualification review" not in words


# --- without Graphviz: the tables ----------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(RULEBOOKS))
def test_without_graphviz_the_page_shows_the_tables(bank, page, no_graphviz, kind):
    html = text(page("emp").get(f"/machines/{kind}"))
    rb = RULEBOOKS[kind]
    assert "<svg" not in html and "machine-fallback" in html
    assert re.findall(r'<tr data-state="(\w+)"', html) == list(rb.states)
    terminal = re.findall(r'<tr data-state="(\w+)"[^>]*>(?:(?!</tr>).)*badge text-bg-secondary terminal',
                          html, re.S)
    assert set(terminal) == rb.terminal
    rows = re.findall(r'<tr data-action="(\w+)" data-dest="(\w*)"', html)
    assert rows == [(t["trigger"], t.get("dest") or "") for t in rb.transitions]


def test_without_graphviz_the_case_page_marks_the_state_in_the_table(bank, page, no_graphviz):
    p = page("emp")
    case_id = _file(p)
    html = text(p.get(f"/cases/{case_id}"))
    assert "<svg" not in html
    marked = re.findall(r'<tr data-state="(\w+)" class="table-warning current"', html)
    assert marked == ["qualification_review"]
    leaving = re.findall(r'<tr data-action="(\w+)" data-dest="\w*" class="table-warning from-current"', html)
    rb = RULEBOOKS["promotion"]
    assert leaving == [t["trigger"] for t in rb.transitions if "qualification_review" in _sources(t)]


def test_a_failing_dot_falls_back_to_the_tables(bank, page, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("dot crashed")
    monkeypatch.setattr(diagrams, "graphviz_available", lambda: True)
    monkeypatch.setattr(diagrams, "svg", broken)
    html = text(page("emp").get("/machines/promotion"))
    assert "<svg" not in html and "machine-fallback" in html


# --- every kind, also those added later -----------------------------------------------------------------

def test_the_index_lists_every_kind_and_links_it(bank, page):
    html = text(page("emp").get("/machines/"))
    for kind in RULEBOOKS:
        assert f'id="machine-{kind}"' in html and f'href="/machines/{kind}"' in html
    assert 'href="/machines/"' in html      # the navigation bar


def test_a_kind_added_later_is_listed_and_drawn(bank, page, monkeypatch, no_graphviz):
    toy = types.SimpleNamespace(
        KIND="transfer", CREATED="requested", STATES=["requested", "done", "refused"],
        TERMINAL=["done", "refused"],
        STEPS={}, ACTORS={"accept": "decide", "refuse": "decide"}, AUTOMATIC=[], SYSTEM_ALSO=[], DECISIONS=[],
        VERSION_FREE=[], TRANSITIONS=[{"trigger": "accept", "source": "requested", "dest": "done"},
                                      {"trigger": "refuse", "source": "requested", "dest": "refused"}])
    monkeypatch.setitem(RULEBOOKS, "transfer", build(toy))
    assert 'id="machine-transfer"' in text(page("emp").get("/machines/"))
    html = text(page("emp").get("/machines/transfer"))
    assert re.findall(r'<tr data-state="(\w+)"', html) == ["requested", "done", "refused"]
    # every kind takes 转办 and 抄送 (workflow/machines/handover.py)
    assert re.findall(r'<tr data-action="(\w+)"', html) == ["accept", "refuse", "hand_over", "copy"]


def test_unknown_kind_is_404_and_anonymous_must_log_in(bank, page, client):
    assert page("emp").get("/machines/nothing").status_code == 404
    resp = client.get("/machines/promotion")
    assert resp.status_code == 302 and "/login" in resp.location


def _sources(t: dict) -> list[str]:
    return t["source"] if isinstance(t["source"], list) else [t["source"]]


def _file(p) -> int:
    data = {"employee": "emp", "target_grade": "senior-1", "statement": "请审批", "submit": "1"}
    resp = p.post("/cases/new", data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return int(resp.location.rstrip("/").rsplit("/", 1)[1])


def test_every_guard_of_the_machines_has_words():
    from web.diagrams import GUARDS
    named = {g for kind in RULEBOOKS for row in diagrams.table(kind).rows for g in row.guards}
    assert named - set(GUARDS) == set()
