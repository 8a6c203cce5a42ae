"""The tiering benchmark (bench/tiering.py) runs the cycle through the engine: on a small SQLite database its
start classifies every customer, the bulk approval decides every pending proposal and determine applies the
changes, leaving verified audit chains."""
from __future__ import annotations

from sqlalchemy import func, select

from bench import generate, tiering as bench_tiering
from workflow import audit
from workflow.models import db
from workflow.models.customers import CustomerTier, TieringRun, TierProposal


def test_the_benchmark_runs_the_whole_cycle(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'tiering.db'}"
    monkeypatch.setenv("BENCH_TIERING_SQLITE_URL", url)
    assert bench_tiering.main(["--customers", "200", "--reps", "1"]) == 0
    out = capsys.readouterr().out
    assert "tiering run of 200 customers on sqlite, median of 1" in out
    assert all(step in out for step in ("start", "approve", "determine"))
    with generate.app_for(url).app_context():
        run = db.session.scalar(select(TieringRun))
        assert run.state == "effective" and run.counts["customers"] == 200
        assert db.session.scalar(select(func.count()).select_from(TierProposal)
                                 .where(TierProposal.state == "pending")) == 0
        changes = db.session.scalar(select(func.count()).select_from(CustomerTier))
        assert changes == run.counts["determined"]["changed"] > 0
        assert audit.verify().ok
        db.session.remove()
        db.engine.dispose()
