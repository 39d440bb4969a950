"""``odop shift``: real runs of the command against replayed traces and a fake
Electricity Maps server; the command waits for the dip, runs in it, and reports what it
saved; bad input is refused naming what is allowed."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from odop.cli.main import main

pytestmark = pytest.mark.timeout(120)
DOCS = Path(__file__).resolve().parent.parent / "docs"
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}


def doc_example() -> str:
    """The shell block of docs/cli.md's odop shift section, as written."""
    section = DOCS.joinpath("cli.md").read_text().split("## `odop shift`\n", 1)[1]
    return re.search(r"```bash\n(.*?)```", section.split("\n## ", 1)[0], re.S)[1]  # type: ignore[index]


def shift(*args: str, cwd: Path, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "odop", "shift", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=90, env=env or ENV)


def summary(out: str) -> dict[str, Any]:
    return json.loads(out.strip().splitlines()[-1])


def trace(path: Path, rows: list[tuple[float, float, float]]) -> Path:
    """A replay file of (t, carbon, price) rows."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["t", "carbon", "price"])
        w.writerows(rows)
    return path


def test_the_doc_example_runs_in_the_dip(tmp_path: Path) -> None:
    done = subprocess.run(["bash", "-ec", doc_example()], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((tmp_path / "grid.csv").open()))
    dip, after = float(rows[1]["t"]), float(rows[2]["t"])
    s = summary(done.stdout)
    assert done.stdout.splitlines()[0] == "trained"
    assert dip <= s["started_at"] < after and s["exit_code"] == 0 and s["on_time"]
    assert s["expected"]["mean_signal"] == 50 and s["expected"]["mean_at_once"] == 400
    assert s["actual"]["saving_pct"] == pytest.approx(87.5)
    assert s["actual"]["saved"] > 0 and s["signal_source"] == "replay:grid.csv"
    assert "the cleanest 2s window" in done.stderr and "87.5 % less" in done.stderr
    assert "odop shift: waiting [" in done.stderr and "starts in" in done.stderr


def test_a_deadline_before_the_dip_runs_at_once(tmp_path: Path) -> None:
    """--within shorter than the wait for the dip: no cleaner window; also --watts and
    the command's exit status."""
    now = time.time()
    grid = trace(tmp_path / "g.csv", [(now, 400, 0), (now + 20, 50, 0), (now + 30, 400, 0)])
    done = shift("--within", "10s", "--runtime", "2s", "--provider", "replay", "--file",
                 str(grid), "--watts", "3600", "--json", "--", sys.executable, "-c",
                 "import sys; sys.exit(3)", cwd=tmp_path)
    assert done.returncode == 3
    s = summary(done.stdout)
    assert s["started_at"] < now + 20 and s["exit_code"] == 3
    assert "no cleaner window" in done.stderr and "running at once" in done.stderr
    assert s["watts"] == 3600 and s["power"] == "--watts"
    wall = s["ended_at"] - s["started_at"]
    assert s["actual"]["cost"] == pytest.approx(3600 * wall * 400 / 3.6e6)


def test_by_price_waits_for_the_cheap_window_not_the_clean_one(tmp_path: Path) -> None:
    now = time.time()
    rows = [(now, 400, 90), (now + 3, 50, 90), (now + 6, 400, 20), (now + 9, 400, 90),
            (now + 60, 400, 90)]
    grid = trace(tmp_path / "g.csv", rows)
    done = shift("--within", "1min", "--runtime", "2s", "--by", "price", "--provider",
                 "replay", "--file", str(grid), "--json", "--", "true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    s = summary(done.stdout)
    assert now + 6 <= s["started_at"] < now + 9
    assert s["by"] == "price" and s["unit"] == "EUR" and s["expected"]["mean_signal"] == 20
    assert "EUR/MWh" in done.stderr


def test_an_unreachable_provider_runs_at_once_and_says_so(tmp_path: Path) -> None:
    config = tmp_path / "odop.toml"
    config.write_text('[energy]\nbase_url = "http://127.0.0.1:9"\ntimeout_s = 2\n')
    done = shift("--within", "2h", "--runtime", "1h", "--provider", "ukci", "--config",
                 str(config), "--json", "--", "true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    s = summary(done.stdout)
    assert "provider ukci unreachable" in s["fallback"] and s["signal_source"] == "static"
    assert "unreachable" in done.stderr and "running at once" in done.stderr
    assert s["waited_s"] < 3600


class FakeElectricityMaps:
    """/carbon-intensity/{latest,forecast}?zone=Z: zone DE has a dip 4-8 s from its
    start, any other zone is flat at 400 g/kWh."""

    def __init__(self) -> None:
        self.t0, self.zones = time.time(), []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                url = urllib.parse.urlparse(self.path)
                zone = urllib.parse.parse_qs(url.query)["zone"][0]
                fake.zones.append(zone)
                body = fake.body(zone, url.path.endswith("latest"))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(body).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def body(self, zone: str, latest: bool) -> dict[str, Any]:
        def value(t: float) -> float:
            return 50.0 if zone == "DE" and 4 <= t - self.t0 < 8 else 400.0
        if latest:
            return {"zone": zone, "carbonIntensity": value(self.t0), "datetime": self.t0}
        times = [self.t0 + 2 * i for i in range(60)]
        return {"zone": zone, "forecast": [{"carbonIntensity": value(t), "datetime": t}
                                           for t in times]}


@pytest.fixture
def em() -> Iterator[FakeElectricityMaps]:
    fake = FakeElectricityMaps()
    yield fake
    fake.server.shutdown()


def test_zone_and_config_choose_the_remote_signal(tmp_path: Path,
                                                  em: FakeElectricityMaps) -> None:
    config = tmp_path / "odop.toml"
    config.write_text(f'[energy]\nbase_url = "{em.url}"\ntoken_env = "EM_TOKEN"\n')
    done = shift("--within", "1min", "--runtime", "2s", "--provider", "electricitymaps",
                 "--zone", "DE", "--config", str(config), "--json", "--", "true",
                 cwd=tmp_path, env={**ENV, "EM_TOKEN": "secret"})
    assert done.returncode == 0, done.stderr
    s = summary(done.stdout)
    assert set(em.zones) == {"DE"} and s["fallback"] is None
    assert em.t0 + 4 <= s["started_at"] < em.t0 + 8
    assert s["expected"]["mean_signal"] == 50 and s["signal_source"] == "electricity-maps"


@pytest.mark.parametrize(("argv", "words"), [
    (["--within", "1h", "--runtime", "2h"], ["--runtime 2h", "longer than --within 1h",
                                             "allowed: a runtime up to 1h"]),
    (["--within", "30min"], ["--runtime 1h (the default)", "up to 30m"]),
    (["--within", "soon"], ["--within 'soon'", "'90s', '10min'"]),
    (["--within", "1h", "--provider", "nowhere"], ["invalid choice: 'nowhere'", "'replay'",
                                                   "'electricitymaps'"]),
    (["--within", "1h", "--zone", "DE"], ["provider 'static' has no zones",
                                          "allowed with --provider electricitymaps"]),
    (["--within", "1h", "--by", "price"], ["--by price", "gives carbon only",
                                           "allowed: --by carbon"]),
    (["--within", "1h", "--watts", "-5"], ["--watts -5.0", "watts >= 0"]),
    (["--within", "1h", "--", "no-such-program-here"], ["'no-such-program-here' not found"]),
    (["--within", "1h"], ["needs a command after '--'"]),
])
def test_bad_input_is_refused_naming_what_is_allowed(
        argv: list[str], words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    command = [] if "--" in argv or argv[-1:] == ["1h"] and len(argv) == 2 else ["--", "true"]
    try:
        rc = main(["shift", *argv, *command])
    except SystemExit as exc:  # argparse's own refusals
        rc = int(exc.code or 0)
    err = " ".join(capsys.readouterr().err.split())
    assert rc == 2
    for word in words:
        assert word in err, err
