"""Processes as a PaaS runs them, for the deployment tests (imported by their conftest).

``Procs.start`` runs a command the way a PaaS runs a Procfile line (``bash -c "exec ..."`` in the
repository root, output to a log file), each in a process group of its own; ``kill9`` kills one
group (gunicorn's workers included) and waits until it is gone, ``kill_all`` every group still
alive. ``procfile``, ``process_env`` and ``run_procfile_line`` serve ``bench/load.py`` too.
``Deployment`` is what a test sees of a running deployment: its API over HTTP.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from app.client import GridOperatorClient
from app.config import ROOT, without_settings
from app.exchange.scenario import Scenario


def procfile() -> dict[str, str]:
    """The Procfile's process types and their commands."""
    entries = {}
    for line in (ROOT / "Procfile").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


def process_env(**settings: str) -> dict[str, str]:
    """This environment without our settings, plus ``settings``, with the venv's tools on PATH."""
    env = without_settings(os.environ)  # a value from the calling shell (CI) must not leak in
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    return env


def run_procfile_line(command: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``command`` as a PaaS runs a Procfile line: ``bash -c "exec ..."`` in the repository
    root, output to ``log``, in a process group of its own (``os.killpg`` ends all of it)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Procs:
    workdir: Path
    started: list[Proc] = field(default_factory=list)

    def start(self, name: str, command: str, env: dict[str, str]) -> Proc:
        """Run ``command`` as bash does for a Procfile line, in its own process group."""
        log = self.workdir / f"{name}.log"
        proc = Proc(name, run_procfile_line(command, env, log), log)
        self.started.append(proc)
        return proc

    def release(self, env: dict[str, str]) -> None:
        """Run the Procfile's ``release:`` (the migrations) to its end; it must succeed."""
        release = self.start("release", procfile()["release"], env)
        assert release.popen.wait(timeout=60) == 0, release.tail()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} (pid {p.pid}) ---\n{p.tail()}" for p in self.started)

    def kill9(self, *procs: Proc, timeout: float = 10) -> None:
        """SIGKILL the process groups of ``procs`` (a gunicorn master and its workers) at once, then
        wait until no process of them is left."""
        for proc in procs:
            _kill_group(proc.pid)
        deadline = time.monotonic() + timeout
        for proc in procs:
            proc.popen.wait(timeout=timeout)
            if not _group_gone(proc.pid, deadline, every=0.02):
                raise AssertionError(f"processes of {proc.name} survived SIGKILL")

    def kill_all(self) -> None:
        for proc in self.started:
            _kill_group(proc.pid)  # the group: gunicorn's workers too
            try:
                proc.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + 10  # a forked worker may outlive its master by a moment
        left = [proc.name for proc in self.started if not _group_gone(proc.pid, deadline, every=0.05)]
        if left:
            raise AssertionError(f"processes of {', '.join(left)} survived SIGKILL")


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _group_gone(pid: int, deadline: float, every: float) -> bool:
    """Wait until no process of group ``pid`` is left (True) or ``deadline`` passed (False)."""
    while True:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(every)


def answers(base: str) -> bool:
    """Whether the web process at ``base`` answers HTTP (its OpenAPI document)."""
    try:
        return requests.get(f"{base}/api/v1/openapi.json", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def wait_until(what: str, predicate, timeout: float, procs: Procs, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{procs.logs()}")


class Deployment:
    """What a test sees of the running deployment: its API over HTTP, its processes, its store."""

    def __init__(self, procs: Procs, port: int, url: str, scenario: Scenario):
        self.procs, self.port, self.url, self.scenario = procs, port, url, scenario
        self.base = f"http://127.0.0.1:{port}"
        self.start = dt.datetime.fromisoformat(str(scenario.start))
        self.step = dt.timedelta(minutes=scenario.slot_length_min)
        self.client: GridOperatorClient | None = None

    def index(self, label: str | None) -> int:
        return -1 if label is None else int((dt.datetime.fromisoformat(label) - self.start) / self.step)

    def label(self, index: int) -> str:
        return (self.start + index * self.step).strftime("%Y-%m-%dT%H:%M")

    def up(self) -> bool:
        return answers(self.base)

    def last_closed(self) -> int:
        return self.index(self.client.clock()["last_closed_slot"])

    def wait_for_slot(self, index: int, timeout: float) -> int:
        return wait_until(
            f"slot {index} closed",
            lambda: self.last_closed() >= index and self.last_closed(),
            timeout,
            self.procs,
        )

    def history_labels(self, area_uuid: str) -> list[str]:
        return [row["slot"] for row in self.client.history(area_uuid)["rows"]]
