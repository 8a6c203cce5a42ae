"""Jobs on the web: the API that starts and shows them, the pages, the worker command and the
application's own runner."""
import io
import re

import pytest
from sqlalchemy import func, select

from tests.web.api_checks import err, ok
from workflow import engine, jobs
from workflow.models import db, Case, Event, Person
from workflow.models.jobs import Job

PEOPLE = ("username,name,unit_code,grade,grade_since,hired_on,education,status,roles\n"
          "newbie,新人,T1,assistant-1,2026-01-05,2026-01-05,bachelor,active,\n"
          "senior1,老员工,T2,senior-1,2023-01-01,2015-01-01,master,active,panel@B1\n")


def count(model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def filed(bank):
    """Two promotions waiting for appr_b1's qualification and one for appr_t1's."""
    ids = []
    for username, target in (("emp", "senior"), ("emp2", "manager-2")):
        ids.append(engine.create_promotion(bank[username], bank[username], target, "申请").id)
    db.session.commit()
    return ids


def work(app):
    """`flask --app wsgi worker --once`: runs what is queued, then exits."""
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    return result.stdout


class TestApi:
    def test_a_bulk_decision_is_accepted_then_run_by_the_worker(self, app, api, filed):
        emp_case, low_case = filed
        resp = api("appr_b1").post("/jobs/bulk-decisions",
                                   {"action": "qualify", "cases": [emp_case, low_case], "comment": "一并通过"})
        job = ok(resp, 202)
        assert resp.headers["Location"].endswith(f"/api/v1/jobs/{job['id']}")
        assert (job["kind"], job["status"], job["done"], job["created_by"]) == \
            ("bulk_decision", "queued", 0, "appr_b1")
        assert f"job {job['id']} (bulk_decision): done, 2/2" in work(app)
        job = ok(api("appr_b1").get(f"/jobs/{job['id']}"))
        assert (job["status"], job["percent"], job["result"]["ok"], job["result"]["refused"]) == \
            ("done", 100, 1, 1)
        first, second = job["result"]["items"]
        assert (first["case"], first["ok"], first["state"]) == (emp_case, True, "panel_scoring")
        assert (second["case"], second["ok"], second["status"], second["code"]) == \
            (low_case, False, 403, "forbidden")
        assert db.session.get(Case, low_case).state == "qualification_review"

    def test_only_who_started_it_and_root_admins_see_a_job(self, app, api, page, filed):
        job = ok(api("appr_b1").post("/jobs/bulk-decisions", {"action": "qualify", "cases": filed}), 202)
        err(api("appr_t1").get(f"/jobs/{job['id']}"), 404)
        assert ok(api("appr_t1").get("/jobs"))["total"] == 0
        assert ok(api("admin").get(f"/jobs/{job['id']}"))["id"] == job["id"]
        assert ok(api("admin").get("/jobs?status=queued"))["total"] == 1
        err(api("admin").get("/jobs/999"), 404)
        err(app.test_client().get(f"/api/v1/jobs/{job['id']}"), 401)
        assert page("appr_t1").get(f"/jobs/{job['id']}").status_code == 404
        err(api("appr_t1").post(f"/jobs/{job['id']}/retry"), 404)
        assert "only a failed job" in err(api("appr_b1").post(f"/jobs/{job['id']}/retry"), 409)["message"]

    def test_bad_bodies_are_400_and_store_nothing(self, app, api, bank):
        for body, field in [
                ({"action": "qualify"}, "cases"), ({"action": "burn", "cases": [1]}, "action"),
                ({"action": "qualify", "cases": [1, "2"]}, "cases"),
                ({"action": "qualify", "cases": [1, 2**40]}, "cases"),    # no such id can exist
                ({"action": "qualify", "cases": [1], "comment": []}, "comment"),
                ({"action": "qualify", "cases": [1], "versions": {"x": 1}}, "versions")]:
            e = err(api("appr_b1").post("/jobs/bulk-decisions", body), 400)
            assert e["details"]["field"] == field
        assert count(Job) == 0

    def test_an_import_is_uploaded_by_a_root_admin(self, app, api, bank):
        def upload(username, name, content=PEOPLE.encode()):
            user = api(username)
            return user.client.post("/api/v1/jobs/imports", headers=user.headers,
                                    data={"people": (io.BytesIO(content), name)})
        assert "administrator" in err(upload("hr_b1", "people.csv"), 403)["message"]
        err(upload("admin", "people.xls", b"x"), 400)
        job = ok(upload("admin", "people.csv"), 202)
        assert job["files"] == [{"purpose": "people", "name": "people.csv", "size": len(PEOPLE.encode())}]
        work(app)
        job = ok(api("admin").get(f"/jobs/{job['id']}"))
        assert job["status"] == "done" and job["result"]["counts"]["people_created"] == 2
        senior = db.session.scalar(select(Person).where(Person.username == "senior1"))
        assert senior.role_strings() == ["panel@B1"]


class TestPages:
    def test_the_import_page_starts_a_job_whose_page_polls_its_progress(self, app, page, bank):
        assert page("hr_b1").get("/jobs/import").status_code == 403
        admin = page("admin")
        assert admin.get("/jobs/import").status_code == 200
        resp = admin.post("/jobs/import", data={"people": (io.BytesIO(PEOPLE.encode()), "people.csv")},
                          content_type="multipart/form-data")
        assert resp.status_code == 302
        job_id = int(resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
        html = admin.get(f"/jobs/{job_id}").get_data(as_text=True)
        assert f'data-url="/api/v1/jobs/{job_id}"' in html and 'data-status="queued"' in html
        assert "/static/js/jobs.js" in html
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "no inline script"
        script = admin.get("/static/js/jobs.js")
        assert script.status_code == 200 and b"fetch(url" in script.get_data()
        script.close()
        work(app)
        html = admin.get(f"/jobs/{job_id}").get_data(as_text=True)
        assert 'data-status="done"' in html and 'id="import-counts"' in html
        assert f'data-job="{job_id}"' in admin.get("/jobs/").get_data(as_text=True)

    def test_a_refused_file_shows_the_line_and_column(self, app, page, bank):
        bad = PEOPLE.replace("assistant-1", "boss-1").encode()
        resp = page("admin").post("/jobs/import", data={"people": (io.BytesIO(bad), "people.csv")},
                                  content_type="multipart/form-data")
        work(app)
        html = page("admin").get(resp.headers["Location"]).get_data(as_text=True)
        assert 'data-status="failed"' in html and "people.csv, line 2, column &#39;grade&#39;" in html
        assert count(Person, Person.username == "newbie") == 0

    def test_an_upload_that_is_no_csv_or_xlsx_is_refused(self, app, page, bank):
        resp = page("admin").post("/jobs/import", data={"people": (io.BytesIO(b"x"), "people.pdf")},
                                  content_type="multipart/form-data")
        assert resp.status_code == 400 and count(Job) == 0

    def test_the_bulk_page_offers_the_inbox_and_starts_a_job(self, app, page, filed):
        appr = page("appr_b1")
        html = appr.get("/jobs/bulk").get_data(as_text=True)
        assert 'id="nav-jobs"' in html and 'id="nav-jobs"' not in page("emp").get("/").get_data(as_text=True)
        emp_case, low_case = filed
        assert f'value="{emp_case}"' in html and f'value="{low_case}"' not in html
        resp = appr.post("/jobs/bulk", data={"action": "qualify", "case": [str(emp_case)],
                                             f"version-{emp_case}": "1", "comment": "好"})
        assert resp.status_code == 302
        work(app)
        html = appr.get(resp.headers["Location"]).get_data(as_text=True)
        assert 'id="bulk-results"' in html and f'data-case="{emp_case}" data-ok="true"' in html
        ev = db.session.scalar(select(Event).where(Event.case_id == emp_case, Event.action == "qualify"))
        assert (ev.actor, ev.comment) == ("appr_b1", "好")

    def test_the_bulk_page_refuses_nothing_ticked(self, app, page, filed):
        resp = page("appr_b1").post("/jobs/bulk", data={"action": "qualify"})
        assert resp.status_code == 400 and count(Job) == 0


def test_the_app_runs_its_own_jobs_where_configured(app, api, filed):
    app.config["GRADEFLOW_RUN_JOBS"] = "1"
    job = ok(api("appr_b1").post("/jobs/bulk-decisions", {"action": "qualify", "cases": filed[:1]}), 202)
    jobs.wait_for_runner(timeout=60)
    db.session.expire_all()
    assert ok(api("appr_b1").get(f"/jobs/{job['id']}"))["status"] == "done"


def test_a_review_job_through_the_api(app, api, bank, make_person):
    from tests.workflow.test_review import managers
    managers(make_person, "T1", "senior-3", list(range(99, 59, -2)), "s")
    err(api("appr_b1").post("/jobs/reviews", {"unit": "B1", "period": "2025"}), 403)
    err(api("appr_t1").post("/jobs/reviews", {"unit": "B1", "period": "2025"}), 404)   # above their sight
    err(api("hr_b1").post("/jobs/reviews", {"unit": "NOPE", "period": "2025"}), 404)
    err(api("hr_b1").post("/jobs/reviews", {"unit": "B1", "period": "soon"}), 400)
    job = ok(api("hr_b1").post("/jobs/reviews", {"unit": "B1", "period": "2025"}), 202)
    work(app)
    job = ok(api("hr_b1").get(f"/jobs/{job['id']}"))
    assert job["status"] == "done" and job["result"]["opened"] == 2
    review = ok(api("hr_b1").get(f"/reviews/{job['result']['review']}"))
    assert sorted(o["username"] for o in review["outcomes"] if o["case"]) == ["s18", "s19"]
