"""`flask import-customers FILE`: all or nothing from the command line, problems on stderr with their line."""
from sqlalchemy import func, select

from workflow.models import db
from workflow.models.customers import Customer

GOOD = ("code,name,industry,unit_code,manager,tier,monthly_revenue,it_revenue,employees,products,credit\n"
        "C-1,杭州某集团,trade,T1,emp,core,50,5,300,3,90\n"
        "C-2,某区政府,government,T1,,,1,0,100,1,80\n")


def test_import_customers_loads_a_file(bank, app, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(GOOD, encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["import-customers", str(path)])
    assert result.exit_code == 0, result.output
    assert "customers: 2 created" in result.output
    held = db.session.scalar(select(Customer).filter_by(code="C-1"))
    assert held.manager.username == "emp" and held.tier == "core"


def test_a_bad_row_refuses_the_whole_file(bank, app, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(GOOD.replace("government,T1", "government,NOWHERE"), encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["import-customers", str(path)])
    assert result.exit_code != 0
    assert "line 3" in result.output and "unit_code" in result.output and "nothing was changed" in result.output
    assert db.session.scalar(select(func.count(Customer.id))) == 0
