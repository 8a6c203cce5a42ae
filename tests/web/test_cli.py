"""The command line: init-db through the migrations, the imports, set-password, demo, tick, audit-verify
and policy-check."""
import datetime as dt
from pathlib import Path

import pytest
import yaml
from sqlalchemy import inspect, select, text

from web import create_app
from web.config import TestingConfig
from workflow import clock, engine, policy as policy_mod
from workflow.models import db, Case, Person, PolicyVersion, Score, Setting

BANK = Path(policy_mod.POLICY_DIR / "bank_corporate.yaml")
UNITS = "code,name,level,parent_code\nHQ,总行,hq,\nB1,杭州分行,branch,HQ\nT1,一团队,team,B1\n"
PEOPLE = ("username,name,unit_code,grade,grade_since,hired_on,education,status,roles,password\n"
          "boss,管理员,HQ,,,,,,admin@HQ,boss-pass\n"
          "emp,张三,T1,manager-2,2024-05-01,2020-07-01,college,,,\n")
SCORES = "username,period,kind,value\nemp,2025-07,performance,91\nemp,2025,skill_test,pass\n"


def variant_file(tmp_path, **changes):
    """bank_corporate with some keys changed, written as a new policy file."""
    doc = yaml.safe_load(BANK.read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        node = doc
        *path, last = dotted.split(".")
        for key in path:
            node = node[key]
        node[last] = value
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return str(path)


def person(username):
    return db.session.scalar(select(Person).where(Person.username == username).execution_options(
        populate_existing=True))


@pytest.fixture
def fresh(tmp_path):
    """An app on a new, empty SQLite file: no tables until init-db."""
    app = create_app({**{k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()},
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'fresh.db'}",
                      "GRADEFLOW_TODAY": "2026-03-02"})
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()
    clock.fix_today(None)


def run(app, *args, input=None):
    return app.test_cli_runner().invoke(args=list(args), input=input)


def assert_clean_failure(result):
    """Exit 1 with a message on stderr, and no traceback."""
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


class TestInitDb:
    def test_fresh_database_through_the_migrations(self, fresh, tmp_path):
        result = run(fresh, "init-db")
        assert result.exit_code == 0, result.output
        assert "active policy: bank_corporate" in result.stdout
        tables = set(inspect(db.engine).get_table_names())
        assert {"alembic_version", "cases", "events", "people", "org_units"} <= tables
        pv, pol = engine.active_policy()
        assert pol.id == "bank_corporate" and pv.source.endswith("bank_corporate.yaml")
        # Twice is fine: the schema is current and the policy already active.
        assert run(fresh, "init-db").exit_code == 0
        assert db.session.scalar(select(db.func.count()).select_from(PolicyVersion)) == 1

    def test_another_policy_by_path(self, fresh, tmp_path):
        path = variant_file(tmp_path, **{"version": "2026.2"})
        result = run(fresh, "init-db", "--policy", str(path))
        assert result.exit_code == 0, result.output
        assert engine.active_policy()[1].version == "2026.2"

    def test_a_bad_policy_changes_nothing(self, fresh, tmp_path):
        path = variant_file(tmp_path, **{"scoring.weights.panel": "forty"})
        result = run(fresh, "init-db", "--policy", str(path))
        assert_clean_failure(result)
        assert f"{path}: scoring.weights.panel: must be a number" in result.stderr
        assert "alembic_version" not in inspect(db.engine).get_table_names()

    def test_an_unknown_policy_name(self, fresh):
        result = run(fresh, "init-db", "--policy", "no_such_bank")
        assert_clean_failure(result)
        assert "no such policy" in result.stderr

    def test_the_whole_command_line_on_a_fresh_database(self, fresh, tmp_path):
        assert run(fresh, "init-db").exit_code == 0
        result = run(fresh, "import-org", write(tmp_path, "u.csv", UNITS), write(tmp_path, "p.csv", PEOPLE))
        assert result.exit_code == 0, result.output
        assert "units: 3 created" in result.stdout and "people: 2 created" in result.stdout
        result = run(fresh, "import-scores", write(tmp_path, "s.csv", SCORES))
        assert result.exit_code == 0 and "scores: 2 created" in result.stdout
        assert run(fresh, "set-password", "emp", "--stdin", input="emp-pass-1\n").exit_code == 0
        assert person("emp").check_password("emp-pass-1") and person("boss").check_password("boss-pass")
        result = run(fresh, "audit-verify")
        assert result.exit_code == 0 and "audit ok" in result.stdout

    def test_demo_right_after_init_db(self, fresh):
        assert run(fresh, "init-db").exit_code == 0
        result = run(fresh, "demo")
        assert result.exit_code == 0, result.output
        assert "demo loaded: 15 units, 67 people, 11 cases" in result.stdout
        assert "password: demo123" in result.stdout
        assert any(line.startswith("admin ") and "admin@HQ" in line for line in result.stdout.splitlines())
        assert run(fresh, "audit-verify").exit_code == 0
        again = run(fresh, "demo")
        assert again.exit_code == 0 and "already loaded; nothing was changed" in again.stdout
        assert "password: demo123" in again.stdout


def test_commands_before_init_db_say_so(fresh, tmp_path):
    result = run(fresh, "import-scores", write(tmp_path, "s.csv", SCORES))
    assert_clean_failure(result)
    assert "init-db" in result.stderr


class TestImports:
    def test_import_org_and_scores(self, app, tmp_path):
        result = run(app, "import-org", write(tmp_path, "u.csv", UNITS), write(tmp_path, "p.csv", PEOPLE))
        assert result.exit_code == 0, result.output
        result = run(app, "import-scores", write(tmp_path, "s.csv", SCORES))
        assert result.exit_code == 0, result.output
        db.session.expire_all()
        assert person("emp").grade == "manager-2"
        assert db.session.scalar(select(db.func.count()).select_from(Score)) == 2

    def test_a_bad_file_lists_every_problem_and_changes_nothing(self, app, tmp_path):
        people = PEOPLE + "x,某人,T1,boss,,,,,,\ny,某人,NOPE,,,,,,,\n"
        result = run(app, "import-org", write(tmp_path, "u.csv", UNITS), write(tmp_path, "p.csv", people))
        assert_clean_failure(result)
        assert "p.csv, line 4, column 'grade': unknown level 'boss'" in result.stderr
        assert "p.csv, line 5, column 'unit_code': unknown unit 'NOPE'" in result.stderr
        assert "refused: 2 problem(s); nothing was changed" in result.stderr
        assert db.session.scalar(select(db.func.count()).select_from(Person)) == 0

    def test_a_missing_file(self, app, tmp_path):
        result = run(app, "import-scores", str(tmp_path / "nope.csv"))
        assert result.exit_code == 2 and "does not exist" in result.stderr


class TestSetPassword:
    @pytest.fixture
    def emp(self, app, tmp_path):
        result = run(app, "import-org", write(tmp_path, "u.csv", UNITS), write(tmp_path, "p.csv", PEOPLE))
        assert result.exit_code == 0, result.output
        return person("emp")

    def test_from_stdin(self, app, emp):
        result = run(app, "set-password", "emp", "--stdin", input="s3cret-pass\n")
        assert result.exit_code == 0, result.output
        assert person("emp").check_password("s3cret-pass")

    def test_asked_twice(self, app, emp):
        result = run(app, "set-password", "emp", input="s3cret-pass\ns3cret-pass\n")
        assert result.exit_code == 0, result.output
        assert person("emp").check_password("s3cret-pass")

    def test_too_short(self, app, emp):
        result = run(app, "set-password", "emp", "--stdin", input="abc\n")
        assert_clean_failure(result)
        assert "at least" in result.stderr and person("emp").password_hash is None

    def test_unknown_username(self, app):
        result = run(app, "set-password", "ghost", "--stdin", input="s3cret-pass\n")
        assert_clean_failure(result)
        assert "unknown username 'ghost'" in result.stderr


@pytest.fixture
def approved(bank, tmp_path):
    """A promotion approved under a policy that makes it effective on the first of next month (2026-04-01)."""
    path = variant_file(tmp_path, **{"effective.when": "first_of_next_month"})
    engine.activate_policy(policy_mod.load_file(str(path)), "variant")
    db.session.commit()
    p = person
    case = engine.create_promotion(p("emp"), p("emp"), "senior", "申请")
    engine.fire(case, "qualify", p("appr_b1"))
    engine.fire(case, "assign_panel", p("hr_b1"), {"members": ["panel1", "panel2", "panel3"]})
    for member in ("panel1", "panel2", "panel3"):
        engine.fire(case, "score", p(member), {"score": 80})
    engine.fire(case, "supervisor_score", p("sup_t1"), {"score": 85})
    engine.fire(case, "approve", p("hr_b1"))
    db.session.commit()
    assert case.state == "approved" and case.effective_on == dt.date(2026, 4, 1)
    return case.id


class TestTick:
    def test_nothing_before_the_date(self, app, approved):
        result = run(app, "tick", "--today", "2026-03-31")
        assert result.exit_code == 0 and "0 done" in result.stdout
        assert db.session.get(Case, approved).state == "approved"

    def test_twice_does_it_once(self, app, approved):
        result = run(app, "tick", "--today", "2026-04-01")
        assert result.exit_code == 0, result.output
        assert f"case {approved}: make_effective (approved → effective)" in result.stdout
        assert "tick 2026-04-01: 1 done, 0 skipped, 0 failed" in result.stdout
        result = run(app, "tick", "--today", "2026-04-01")
        assert result.exit_code == 0 and "0 done" in result.stdout
        case = db.session.get(Case, approved)
        db.session.refresh(case)
        assert case.state == "effective" and person("emp").grade == "senior-1"
        assert [e.action for e in case.events].count("make_effective") == 1
        assert case.events[-1].actor == "system"

    def test_a_case_handled_by_another_tick_is_skipped(self, app, approved, monkeypatch):
        # Two machines saw the same due case: the second finds it moved on and skips it.
        monkeypatch.setattr(engine, "due_for_tick", lambda today: [(approved, "make_effective")] * 2)
        result = run(app, "tick", "--today", "2026-04-02")
        assert result.exit_code == 0, result.output
        assert "1 done, 1 skipped, 0 failed" in result.stdout

    def test_an_overdue_step_is_escalated_once(self, app, bank, tmp_path, monkeypatch):
        path = variant_file(tmp_path, **{"steps.qualification_review.escalate_after_days": 2})
        engine.activate_policy(policy_mod.load_file(str(path)), "escalating")
        case = engine.create_promotion(person("emp"), person("emp"), "senior", "申请")
        db.session.commit()
        # Two machines listed the same overdue case; the second must not send it up a second time.
        due = engine.due_for_tick
        monkeypatch.setattr(engine, "due_for_tick", lambda today: due(today) * 2 if due(today) else [])
        result = run(app, "tick", "--today", "2026-03-12")
        assert result.exit_code == 0, result.output
        assert f"case {case.id}: escalate (qualification_review, now at R1)" in result.stdout
        assert "1 done, 1 skipped, 0 failed" in result.stdout
        assert "0 done" in run(app, "tick", "--today", "2026-03-12").stdout
        db.session.refresh(case)
        assert [e.action for e in case.events] == ["create", "escalate"]

    def test_today_is_a_date(self, app):
        result = run(app, "tick", "--today", "April 1st")
        assert result.exit_code == 2 and "is not a date YYYY-MM-DD" in result.stderr


class TestAuditVerify:
    def test_ok_and_tampered(self, app, approved):
        result = run(app, "audit-verify")
        assert result.exit_code == 0, result.output
        assert "audit ok: 9 events in 1 chains" in result.stdout and "checked 1/1 chains" in result.stderr
        db.session.execute(text("UPDATE events SET comment = 'edited' WHERE seq = 2"))
        db.session.commit()
        result = run(app, "audit-verify")
        assert_clean_failure(result)
        assert f"case:{approved} #2: the event was altered" in result.stderr


class TestPolicyCheck:
    def test_a_good_policy(self, app):
        result = run(app, "policy-check", str(BANK))
        assert result.exit_code == 0 and "ok — bank_corporate 2026.1" in result.stdout
        assert run(app, "policy-check", "bank_corporate").exit_code == 0

    @pytest.mark.parametrize("changes, where", [
        ({"steps.hr_approval.role": "chairman"}, "steps.hr_approval.role: unknown role 'chairman'"),
        ({"authority.senior.panel_scoring": "city"},
         "authority.senior.panel_scoring: unknown org level 'city'"),
        ({"eligibility": [{"rule": "months_at_grade"}]}, "eligibility[0].min: is required"),
    ])
    def test_a_bad_policy_names_file_key_and_problem(self, app, tmp_path, changes, where):
        path = variant_file(tmp_path, **changes)
        result = run(app, "policy-check", str(path))
        assert_clean_failure(result)
        assert f"{path}: {where}" in result.stderr

    def test_not_yaml(self, app, tmp_path):
        result = run(app, "policy-check", write(tmp_path, "bad.yaml", "policy: [unclosed\n"))
        assert_clean_failure(result)
        assert "not valid YAML" in result.stderr

    def test_the_active_policy_is_untouched(self, app, tmp_path):
        before = db.session.get(Setting, engine.ACTIVE_POLICY_KEY).value
        run(app, "policy-check", str(variant_file(tmp_path, version="9")))
        assert db.session.get(Setting, engine.ACTIVE_POLICY_KEY).value == before
