"""Crash safety: gunicorn (2 workers) serves the JSON API while client threads drive decisions and record
every 2xx answer; the master and its workers are killed with SIGKILL in the middle of the load, gunicorn is
started again, and so on. At the end: the invariants (workflow/invariants.py) hold, every decision a client
saw succeed is stored, and none is half applied.

    .venv/bin/python bench/crash.py                       # SQLite file, 5 kills
    .venv/bin/python bench/crash.py --database postgresql+psycopg://postgres@127.0.0.1:5432/gf_me --kills 10

tests/test_crash.py runs a bounded version (one kill).
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: import from the checkout, never bench/'s own modules in place of the standard library.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from bench import race  # noqa: E402
from workflow import invariants  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
READY_SECONDS = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn with `workers` workers on a free loopback port, in a process group of its own so that
    `kill()` reaches the master and every worker at once."""

    def __init__(self, url: str, workers: int = 2, log: Path | None = None):
        self.url, self.workers, self.log = url, workers, log
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, token: str) -> None:
        from web.config import TestingConfig
        env = {**os.environ, "DATABASE_URL": self.url, "GRADEFLOW_ENV": "production",
               "SECRET_KEY": "crash-test-" + "0" * 32,
               # The same audit key as the process that seeded the database: one chain, one verification.
               "AUDIT_KEY": TestingConfig.SECRET_KEY}
        # The workers fork from a master that has loaded the app (--preload): quicker to start again.
        with open(self.log or os.devnull, "ab") as out:
            self.proc = subprocess.Popen(
                [str(GUNICORN), "--workers", str(self.workers), "--bind", f"127.0.0.1:{self.port}",
                 "--graceful-timeout", "5", "--preload", "wsgi:app"],
                cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True)
        send = race.http_sender(self.base, timeout=5)
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode} (log: {self.log})")
            if send("GET", "/me", token)[0] == 200:
                return
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"gunicorn did not answer within {READY_SECONDS} s (log: {self.log})")

    def kill(self) -> None:
        """SIGKILL to the master and its workers: nothing is shut down, nothing is flushed."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc:
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def load_until(server: Server, world: race.World, clients: int, successes: int, seed: int,
               then=None) -> race.Tally:
    """`clients` threads drive decisions at the server until the clients have seen `successes` 2xx
    answers in all; then `then()` (the kill) runs while they are still sending, and they stop."""
    stop = threading.Event()
    racers = [race.Racer(race.http_sender(server.base), world, random.Random(seed * 100 + i))
              for i in range(clients)]
    threads = [threading.Thread(target=r.run, args=(10 ** 9, stop), name=f"client-{i}")
               for i, r in enumerate(racers)]
    for t in threads:
        t.start()
    while sum(r.tally.ok for r in racers) < successes and all(t.is_alive() for t in threads):
        time.sleep(0.05)
    if then:
        then()
        # Keep sending a little after the kill: those requests must fail cleanly, never half apply.
        time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    total = race.Tally()
    for r in racers:
        total.add(r.tally)
    return total


def run(app, url: str, world: race.World, kills: int, successes: int, clients: int, log: Path | None,
        seed: int = 1, out=print) -> tuple[race.Tally, list[str]]:
    """Serve, load, kill (`kills` times), serve again and load once more without a kill; answer what the
    clients saw and the problems found."""
    total = race.Tally()
    for round_ in range(kills + 1):
        server = Server(url, log=log)
        server.start(world.tokens["admin"])
        last = round_ == kills
        tally = load_until(server, world, clients, successes, seed + round_,
                           then=None if last else server.kill)
        if last:
            server.stop()
        total.add(tally)
        out(f"round {round_ + 1}: {tally.attempts} attempts, {tally.ok} acknowledged, {tally.lost} lost"
            + ("" if last else ", then SIGKILL to gunicorn's master and workers"))
    with app.app_context():
        problems = invariants.check() + race.acknowledged_problems(total.acknowledged, exact=False)
    return total, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="a database URL to empty and use (default: a new SQLite file)")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--successes", type=int, default=300, help="2xx answers seen before each kill")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--employees", type=int, default=12)
    args = parser.parse_args(argv)
    tmp = tempfile.TemporaryDirectory()
    url = args.database or f"sqlite:///{os.path.join(tmp.name, 'crash.db')}"
    app = race.make_app(url)
    with app.app_context():
        world = race.seed(args.employees)
    start = time.perf_counter()
    tally, problems = run(app, url, world, args.kills, args.successes, args.clients,
                          Path(tmp.name) / "gunicorn.log")
    print(f"database: {url.split('@')[-1]}; {args.kills} kill(s), {args.clients} clients")
    race.report(tally, problems, time.perf_counter() - start)
    tmp.cleanup()
    return 1 if problems or tally.unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
