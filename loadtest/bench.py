"""HTTP benchmark: ``POST /v1/ads`` against the floor of PERFORMANCE.md, in one run.

    python loadtest/bench.py [--rounds 3] [--duration 15] [--connections 32]
                             [--products N] [--campaigns N] [--workers 1] [--skip-floor]

1. Loads seeded demo data into a fresh temporary data directory (timed), starts
   ``python -m exchange serve`` pinned to CPU 0 and waits for ``/readyz`` (timed).
2. Builds a realistic request mix from the catalogue listing (~70% search queries made of
   title/brand/category words, ~30% product pages; varied shoppers, browser user agents,
   public IPs) and checks the fill rate on a few hundred requests.
3. Starts ``loadtest/floor.py`` (same uvicorn settings, same CPU) beside the exchange; both
   stay up, only one is loaded at a time.
4. ``--rounds`` times: warms up and measures the floor, then warms up and measures the
   exchange, with ``wrk`` pinned to CPU 1 (``loadtest/wrk/ads.lua`` rotates the bodies).
   The headline is the median over rounds (the ratio: median of the per-round ratios).
5. Prints a table and one JSON line, and writes it to ``loadtest/results/``.

Servers are stopped (SIGINT, SIGKILL after 15 s) and the temporary directory removed on
every exit path, Ctrl-C included. ``--target-floor-twice`` points the "ads" phase at a
stand-in (``floor.py --stand-in``) to try the harness without the exchange.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import ipaddress
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fraud.iprange import IpRanges  # noqa: E402

LUA = ROOT / "loadtest" / "wrk" / "ads.lua"
RESULTS = ROOT / "loadtest" / "results"
DEFAULT_OPERATOR_KEY = "dev-operator-key-change-me"

TARGET_RATIO = 0.40
TARGET_P99_MS = 10.0
STOP_TIMEOUT_S = 15.0

# Current desktop and mobile browsers (as sent in 2024-2025).
_DATACENTER = IpRanges.from_files(
    sorted((ROOT / "config" / "datacenter").glob("*.txt")))

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/125.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/125.0.6422.165 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.179 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) CriOS/125.0.6422.80 Mobile/15E148 Safari/604.1",
]


class Interrupted(KeyboardInterrupt):
    """SIGTERM/SIGHUP, turned into an exception so that cleanup runs."""


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which and where to look."""


# --- processes --------------------------------------------------------------------------


@dataclass
class Procs:
    """Every child this run starts; each in its own session so Ctrl-C reaches us only."""

    tmp: Path
    running: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def log_path(self, name: str) -> Path:
        return self.tmp / f"{name}.log"

    def start(self, name: str, argv: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = self.log_path(name).open("ab")
        try:
            proc = subprocess.Popen(
                list(argv),
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self.running.append((name, proc))
        return proc

    def tail(self, name: str, lines: int = 30) -> str:
        try:
            text = self.log_path(name).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGINT, wait, then SIGKILL the whole process group; never leaves a zombie."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                print(f"  pid {proc.pid} did not stop in {timeout:.0f}s; killing it", flush=True)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # Anything left in its process group (uvicorn workers, helpers) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        self.running = [(n, p) for n, p in self.running if p is not proc]

    def stop_all(self) -> None:
        for _, proc in reversed(list(self.running)):
            self.stop(proc)


def kill_stray_redis(data_dir: Path) -> None:
    """Stop an embedded redis-server of ``data_dir`` that outlived its owner (it is in its
    own session, so process-group kills do not reach it)."""
    state = data_dir / "redis.json"
    try:
        pid = int(json.loads(state.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    try:
        # redis-server rewrites its title ("redis-server unixsocket:<dir>/redis.sock"),
        # so look for both parts anywhere in the raw command line.
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if b"redis-server" not in cmdline or str(data_dir).encode() not in cmdline:
        return
    print(f"  stopping leftover redis-server pid {pid}", flush=True)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """Cleanup must not be cut short by a second Ctrl-C; it is bounded anyway."""
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    old = {s: signal.signal(s, signal.SIG_IGN) for s in sigs}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# --- CPU pinning ------------------------------------------------------------------------


def pin(cpus: str | None, argv: Sequence[str]) -> list[str]:
    if cpus is None:
        return list(argv)
    return ["taskset", "-c", cpus, *argv]


def choose_pinning(server_cpus: str, wrk_cpus: str) -> tuple[str | None, str | None]:
    if shutil.which("taskset") is None:
        print("warning: taskset not found; nothing is pinned", flush=True)
        return None, None
    available = os.sched_getaffinity(0)
    if len(available) < 2:
        print("warning: fewer than 2 CPUs; server and wrk share them, unpinned", flush=True)
        return None, None
    return server_cpus, wrk_cpus


def group_cpu_s(pgid: int) -> float:
    """User + system CPU seconds of every live process in process group ``pgid``."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            rest = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(rest) > 12 and rest[2] == str(pgid):
            total += int(rest[11]) + int(rest[12])
    return total / os.sysconf("SC_CLK_TCK")


# --- HTTP helpers -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(
    procs: Procs, name: str, proc: subprocess.Popen[bytes], base: str, timeout: float
) -> float:
    """Seconds from now until ``GET /readyz`` answers 200."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(
                f"{name} exited with {proc.returncode} before it was ready:\n{procs.tail(name)}"
            )
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return time.monotonic() - t0
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise BenchError(f"{name} not ready after {timeout:.0f}s:\n{procs.tail(name)}")


def get_json(url: str, headers: dict[str, str] | None = None) -> Any:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def fetch_catalog(base: str, key: str, pages: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(pages):
        query = {"limit": "500"}
        if cursor:
            query["cursor"] = cursor
        url = f"{base}/v1/catalog/products?{urllib.parse.urlencode(query)}"
        try:
            page = get_json(url, {"Authorization": f"Bearer {key}"})
        except urllib.error.HTTPError as exc:
            raise BenchError(f"catalogue listing failed: {exc.code} {exc.read()[:300]!r}") from exc
        items.extend(page.get("items") or [])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    items = [p for p in items if p.get("sku") and p.get("title")]
    if not items:
        raise BenchError("the catalogue listing is empty; was demo data loaded?")
    return items


@dataclass
class Sample:
    sent: int = 0
    ok: int = 0
    filled: int = 0
    ads: int = 0
    first_error: str = ""

    @property
    def fill_rate(self) -> float | None:
        return self.filled / self.ok if self.ok else None


_INVALID_LINE = re.compile(r'^endcap_invalid_ad_requests_total\{[^}]*reason="([^"]+)"\} (\S+)$')


def screened_out(base: str) -> dict[str, int]:
    """Ad requests the exchange screened out as invalid traffic, by reason (/metrics)."""
    try:
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out: dict[str, int] = {}
    for line in text.splitlines():
        m = _INVALID_LINE.match(line)
        if m:
            out[m.group(1)] = out.get(m.group(1), 0) + int(float(m.group(2)))
    return out


def sample_fill(url: str, bodies: Sequence[bytes]) -> Sample:
    """POST each body once (sequentially) and count answers with at least one ad."""
    s = Sample()
    for body in bodies:
        req = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        s.sent += 1
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                answer = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if not s.first_error:
                s.first_error = f"{exc.code} {exc.read()[:300]!r} for {body[:200]!r}"
            continue
        except (urllib.error.URLError, OSError, ValueError) as exc:
            if not s.first_error:
                s.first_error = repr(exc)
            continue
        s.ok += 1
        n = len(answer.get("ads") or [])
        s.ads += n
        s.filled += n > 0
    return s


# --- request mix ------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9][a-z0-9'&-]*[a-z0-9]|[a-z]")
_STOP = {"a", "an", "and", "the", "of", "for", "with", "in", "by", "to", "&", "x", "oz", "ct"}


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(str(text).lower()) if w not in _STOP and not w.isdigit()]


def make_query(rnd: random.Random, product: dict[str, Any]) -> str:
    title = words(product.get("title", ""))
    brand = words(product.get("brand", ""))
    category = words(product.get("category", ""))
    roll = rnd.random()
    if roll < 0.20 and brand:
        # "silk", "silk oat" ...
        q = brand[:2] if rnd.random() < 0.5 else brand[:1] + title[:1]
    elif roll < 0.40 and category:
        start = rnd.randrange(len(category))
        q = category[start : start + rnd.choice((1, 1, 2))]
    else:
        ws = title or brand or category or ["milk"]
        n = min(len(ws), rnd.choices((1, 2, 3), weights=(35, 45, 20))[0])
        start = rnd.randrange(len(ws) - n + 1)
        q = ws[start : start + n]
    return " ".join(q[:3]) or "milk"


def public_ip(rnd: random.Random) -> str:
    """A shopper's address: global, and not in the data-centre ranges the exchange screens
    out (shoppers browse from consumer networks; the bench measures serving, not GIVT)."""
    while True:
        addr = ipaddress.IPv4Address(rnd.getrandbits(32))
        if addr.is_global and not addr.is_multicast and not _DATACENTER.contains(str(addr)):
            return str(addr)


def build_bodies(
    catalog: Sequence[dict[str, Any]], n: int, seed: int, known_shoppers: int = 100_000
) -> list[bytes]:
    """``n`` compact JSON bodies: ~70% search, ~30% product page.

    ~60% of the shoppers are signed-in loyalty members of the demo data (``shp_000001``
    ... with segments), the rest anonymous; each keeps one browser and one IP. One shopper
    per body: wrk replays the bodies thousands of times a second, and a shopper behind
    several of them would browse at bot speed and be rate-limited (correctly)."""
    rnd = random.Random(seed)
    shoppers = []
    for i in range(max(50, n)):
        member = known_shoppers > 0 and rnd.random() < 0.6
        shoppers.append(
            {
                "id": f"c_{rnd.getrandbits(64):016x}",
                "loyalty_id": f"shp_{rnd.randrange(1, known_shoppers + 1):06d}" if member else None,
                "ua": rnd.choice(USER_AGENTS),
                "ip": public_ip(rnd),
                "store": f"S{rnd.randrange(1, 41):03d}" if i % 3 else None,
            }
        )
    bodies = []
    for i in range(n):
        shopper = shoppers[i % len(shoppers)]
        product = rnd.choice(catalog)
        # A storefront sends a fresh id per page view; wrk replays this one every
        # ``n`` requests (the exchange only echoes it and seeds tie-breaks with it).
        body: dict[str, Any] = {"request_id": str(uuid.UUID(int=rnd.getrandbits(128), version=4))}
        if rnd.random() < 0.70:
            body["placement"] = "search_top"
            body["page"] = {"type": "search", "query": make_query(rnd, product)}
        else:
            body["placement"] = "product_carousel"
            body["page"] = {"type": "product", "sku": product["sku"]}
        who: dict[str, str] = {"id": shopper["id"]}
        if shopper["loyalty_id"]:
            who["loyalty_id"] = shopper["loyalty_id"]
        body["shopper"] = who
        if shopper["store"]:
            body["store_id"] = shopper["store"]
        body["device"] = {"ua": shopper["ua"], "ip": shopper["ip"]}
        bodies.append(json.dumps(body, separators=(",", ":")).encode())
    return bodies


# --- wrk --------------------------------------------------------------------------------


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    p90_ms: float
    p999_ms: float
    max_ms: float
    requests: int
    non_2xx: int
    errors: int
    errors_by_kind: dict[str, int]
    avg_response_bytes: float


def run_wrk(
    procs: Procs,
    cpus: str | None,
    url: str,
    bodies_file: Path,
    *,
    duration: float,
    connections: int,
    threads: int,
    name: str,
) -> WrkResult:
    argv = pin(
        cpus,
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "5s",
            "--latency",
            "-s",
            str(LUA),
            url,
            "--",
            str(bodies_file),
        ],
    )
    proc = procs.start(name, argv, dict(os.environ))
    try:
        proc.wait(timeout=duration + 60)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish:\n{procs.tail(name)}") from exc
    finally:
        procs.stop(proc)
    out = procs.log_path(name).read_text(errors="replace")
    line = next((ln for ln in out.splitlines() if ln.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({proc.returncode}):\n{out[-2000:]}")
    d = json.loads(line.removeprefix("WRKJSON "))
    requests = int(d["requests"])
    seconds = d["duration_us"] / 1e6
    kinds = {k: int(d[k]) for k in ("connect", "read", "write", "timeout")}
    return WrkResult(
        rps=requests / seconds if seconds else 0.0,
        p50_ms=d["p50_us"] / 1000,
        p90_ms=d["p90_us"] / 1000,
        p99_ms=d["p99_us"] / 1000,
        p999_ms=d["p999_us"] / 1000,
        max_ms=d["max_us"] / 1000,
        requests=requests,
        non_2xx=int(d["status"]),
        errors=sum(kinds.values()),
        errors_by_kind=kinds,
        avg_response_bytes=d["bytes"] / requests if requests else 0.0,
    )


def drive(
    procs: Procs,
    args: argparse.Namespace,
    wrk_cpus: str | None,
    url: str,
    bodies_file: Path,
    label: str,
    *,
    warmup: float,
    idle: subprocess.Popen[bytes] | None = None,
) -> tuple[WrkResult, float | None]:
    """Warm up, then measure; also returns the CPU share (%) that the idle server
    ``idle`` used during the measurement (it should be ~0: it only waits)."""
    if warmup > 0:
        print(f"  warm-up {warmup:.0f}s ...", flush=True)
        run_wrk(
            procs,
            wrk_cpus,
            url,
            bodies_file,
            duration=warmup,
            connections=args.connections,
            threads=args.threads,
            name=f"wrk-{label}-warmup",
        )
    print(f"  wrk -t{args.threads} -c{args.connections} -d{args.duration:.0f}s ...", flush=True)
    idle_cpu0 = group_cpu_s(idle.pid) if idle is not None else 0.0
    t0 = time.monotonic()
    res = run_wrk(
        procs,
        wrk_cpus,
        url,
        bodies_file,
        duration=args.duration,
        connections=args.connections,
        threads=args.threads,
        name=f"wrk-{label}",
    )
    idle_pct = None
    if idle is not None:
        idle_pct = 100 * (group_cpu_s(idle.pid) - idle_cpu0) / (time.monotonic() - t0)
    print(
        f"  {res.rps:,.0f} req/s  p50 {res.p50_ms:.2f} ms  p99 {res.p99_ms:.2f} ms  "
        f"non-2xx {res.non_2xx}  errors {res.errors}"
        + ("" if idle_pct is None else f"  (idle server {idle_pct:.1f}% CPU)"),
        flush=True,
    )
    return res, idle_pct


def combine(results: Sequence[WrkResult]) -> dict[str, Any]:
    """One phase's figures over all rounds, shaped like ``vars(WrkResult)``: rates and
    percentiles are medians, counts are sums, ``max_ms`` is the maximum."""
    requests = sum(r.requests for r in results)
    return {
        "rps": statistics.median(r.rps for r in results),
        "p50_ms": statistics.median(r.p50_ms for r in results),
        "p99_ms": statistics.median(r.p99_ms for r in results),
        "p90_ms": statistics.median(r.p90_ms for r in results),
        "p999_ms": statistics.median(r.p999_ms for r in results),
        "max_ms": max(r.max_ms for r in results),
        "requests": requests,
        "non_2xx": sum(r.non_2xx for r in results),
        "errors": sum(r.errors for r in results),
        "errors_by_kind": {
            k: sum(r.errors_by_kind.get(k, 0) for r in results) for k in results[0].errors_by_kind
        },
        "avg_response_bytes": (
            sum(r.avg_response_bytes * r.requests for r in results) / requests if requests else 0.0
        ),
    }


# --- the servers ------------------------------------------------------------------------


def start_floor(
    procs: Procs, cpus: str | None, name: str, *, stand_in: bool, ready_timeout: float
) -> tuple[subprocess.Popen[bytes], str, float]:
    port = free_port()
    argv = [
        sys.executable,
        str(ROOT / "loadtest" / "floor.py"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if stand_in:
        argv.append("--stand-in")
    proc = procs.start(name, pin(cpus, argv), dict(os.environ))
    base = f"http://127.0.0.1:{port}"
    return proc, base, wait_ready(procs, name, proc, base, ready_timeout)


def exchange_env(data_dir: Path, key: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env.update(
        ENDCAP_DATA_DIR=str(data_dir),
        ENDCAP_OPERATOR_KEY=key,
        ENDCAP_LOG_LEVEL="warning",
        PYTHONUNBUFFERED="1",
    )
    return env


def load_demo_data(procs: Procs, args: argparse.Namespace, env: dict[str, str]) -> float:
    argv = [sys.executable, "-m", "exchange", "demo-data"]
    for opt in ("products", "campaigns", "shoppers", "seed"):
        value = getattr(args, opt)
        if value is not None:
            argv += [f"--{opt}", str(value)]
    print(f"loading demo data: {' '.join(argv[1:])}", flush=True)
    t0 = time.monotonic()
    proc = procs.start("demo-data", argv, env)
    try:
        rc = proc.wait(timeout=args.demo_timeout)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"demo-data took over {args.demo_timeout}s") from exc
    finally:
        procs.stop(proc)
    if rc != 0:
        raise BenchError(f"demo-data exited with {rc}:\n{procs.tail('demo-data')}")
    return time.monotonic() - t0


def start_exchange(
    procs: Procs, args: argparse.Namespace, cpus: str | None, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str, float]:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "exchange",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(args.workers),
    ]
    proc = procs.start("exchange", pin(cpus, argv), env)
    base = f"http://127.0.0.1:{port}"
    ready = wait_ready(procs, "exchange", proc, base, args.ready_timeout)
    repin_redis(Path(env["ENDCAP_DATA_DIR"]), args.wrk_cpus if cpus is not None else None)
    repin_rollup(proc.pid, args.wrk_cpus if cpus is not None else None)
    return proc, base, ready


def repin_rollup(server_pid: int, cpus: str | None) -> None:
    """Move the report rollup process (``serve`` starts it) off the server's core too: it
    is analytics, which production runs beside Redis or on its own machines."""
    if cpus is None:
        return
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines()
                          if ":\t" in line)
            cmdline = (status.parent / "cmdline").read_bytes()
            if int(fields.get("PPid", "0")) != server_pid or b"rollup" not in cmdline:
                continue
            os.sched_setaffinity(int(status.parent.name), {int(c) for c in cpus.split(",")})
            print(f"  rollup pid {status.parent.name} pinned to CPU(s) {cpus} (beside wrk)",
                  flush=True)
        except (OSError, ValueError):
            continue


def repin_redis(data_dir: Path, cpus: str | None) -> None:
    """Move the embedded redis-server off the server's core, next to wrk.

    It inherits the exchange's pinning; left there it would take CPU from the process
    under test, which production (Redis on its own machines) never does.
    """
    if cpus is None:
        return
    try:
        pid = int(json.loads((data_dir / "redis.json").read_text())["pid"])
        os.sched_setaffinity(pid, {int(c) for c in cpus.split(",")})
        print(f"  redis-server pid {pid} pinned to CPU(s) {cpus} (beside wrk)", flush=True)
    except (OSError, ValueError, KeyError) as exc:
        print(f"  warning: could not re-pin redis-server: {exc}", flush=True)


# --- reporting --------------------------------------------------------------------------


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("uvicorn", "starlette", "msgspec", "numba", "numpy", "uvloop", "httptools"):
        out[dist] = _version(dist)
    try:
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=5)
        first = (wrk.stdout or wrk.stderr).split()
        out["wrk"] = first[1] if len(first) > 1 else None
    except (OSError, subprocess.SubprocessError):
        out["wrk"] = None
    return out


def machine() -> dict[str, Any]:
    model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model or platform.processor() or None,
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
    }


def git_info() -> tuple[str | None, bool | None]:
    def git(*a: str) -> str | None:
        try:
            r = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    sha = git("rev-parse", "HEAD")
    status = git("status", "--porcelain")
    return sha, (bool(status) if status is not None else None)


def _mark(ok: bool | None) -> str:
    return "" if ok is None else ("ok" if ok else "MISSED")


def print_table(r: dict[str, Any]) -> None:
    def f(v: float | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    def row(
        name: str,
        rps: float | None,
        p50: float | None,
        p99: float | None,
        non2xx: int | None,
        errors: int | None,
        ratio: float | None = None,
    ) -> str:
        return (
            f"{name:<34}{f(rps, ',.0f'):>10}{f(p50, '.2f'):>10}{f(p99, '.2f'):>10}"
            f"{f(non2xx, 'd'):>9}{f(errors, 'd'):>8}" + ("" if ratio is None else f"{ratio:>9.3f}")
        )

    print()
    print(
        f"{'':<34}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>9}{'errors':>8}{'ratio':>9}"
    )
    for rd in r["rounds"]:
        i = rd["round"]
        if rd.get("floor_rps") is not None:
            print(
                row(
                    f"#{i} floor",
                    rd["floor_rps"],
                    rd["floor_p50_ms"],
                    rd["floor_p99_ms"],
                    rd.get("floor_non_2xx"),
                    rd.get("floor_errors"),
                )
            )
        print(
            row(
                f"#{i} {r['ads_label']}",
                rd["ads_rps"],
                rd["ads_p50_ms"],
                rd["ads_p99_ms"],
                rd["non_2xx"],
                rd["errors"],
                rd["ratio"],
            )
        )
    n = len(r["rounds"])
    print(
        row(
            "floor (starlette+msgspec) median" if n > 1 else "floor (starlette+msgspec)",
            r["floor_rps"],
            r["floor_p50_ms"],
            r["floor_p99_ms"],
            r.get("floor_non_2xx"),
            r.get("floor_errors"),
        )
    )
    print(
        row(
            f"{r['ads_label']} median" if n > 1 else r["ads_label"],
            r["ads_rps"],
            r["ads_p50_ms"],
            r["ads_p99_ms"],
            r["non_2xx"],
            r["errors"],
            r["ratio"],
        )
    )
    ratio = r["ratio"]
    p99 = r["ads_p99_ms"]
    print()
    print(
        f"ratio ads/floor        {'-' if ratio is None else f'{ratio:.3f}':>10}   "
        f"target >= {TARGET_RATIO:.2f}  "
        f"{_mark(None if ratio is None else ratio >= TARGET_RATIO)}"
    )
    if r.get("ratio_min") is not None and n > 1:
        print(
            f"  per-round ratios     {r['ratio_min']:>10.3f} .. {r['ratio_max']:.3f} "
            f"(median of {n} rounds)"
        )
    print(
        f"ads p99                {p99:>10.2f}   target <= {TARGET_P99_MS:.0f} ms  "
        f"{_mark(p99 <= TARGET_P99_MS)}"
    )
    fill = r["fill_rate"]
    print(
        f"fill rate (>= 1 ad)    {'-' if fill is None else f'{fill:.3f}':>10}   "
        f"over {r['fill_sample']} requests before the load"
    )
    if r.get("fill_rate_after") is not None:
        print(f"fill rate after load   {r['fill_rate_after']:>10.3f}")
    if r["demo_load_s"] is not None:
        print(f"demo data load         {r['demo_load_s']:>10.1f} s")
    print(f"ready (/readyz)        {r['index_ready_s']:>10.2f} s after start")
    print(
        f"{n} round(s) of floor then ads, {r['duration_s']:.0f} s per phase, "
        f"{r['connections']} connections, "
        f"{r['bodies']} bodies (avg {r['avg_body_bytes']:.0f} B); "
        f"{r['machine']['cpu']} x{r['machine']['nproc']}"
    )
    print()


# --- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--rounds", type=int, default=3, help="alternating floor/ads rounds; medians (3)"
    )
    p.add_argument("--duration", type=float, default=15.0, help="seconds per phase (15)")
    p.add_argument(
        "--warmup", type=float, default=3.0, help="warm-up seconds per phase, round 1 (3)"
    )
    p.add_argument(
        "--round-warmup",
        type=float,
        default=1.0,
        help="warm-up seconds per phase from round 2 on (1)",
    )
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    p.add_argument("--products", type=int, default=None, help="demo products (demo default)")
    p.add_argument("--campaigns", type=int, default=None, help="demo campaigns (demo default)")
    p.add_argument("--shoppers", type=int, default=None, help="demo shoppers (demo default)")
    p.add_argument("--seed", type=int, default=None, help="demo data seed (demo default)")
    p.add_argument("--workers", type=int, default=1, help="exchange workers (1)")
    p.add_argument("--skip-floor", action="store_true", help="do not measure the floor")
    p.add_argument("--bodies", type=int, default=4000, help="distinct request bodies (4000)")
    p.add_argument("--mix-seed", type=int, default=20240607, help="seed of the request mix")
    p.add_argument("--catalog-pages", type=int, default=10, help="listing pages of 500 (10)")
    p.add_argument("--fill-sample", type=int, default=300, help="requests for the fill rate")
    p.add_argument("--server-cpus", default="0", help="taskset list for servers (0)")
    p.add_argument("--wrk-cpus", default="1", help="taskset list for wrk (1)")
    p.add_argument("--ready-timeout", type=float, default=300.0)
    p.add_argument("--demo-timeout", type=float, default=900.0)
    p.add_argument("--no-save", action="store_true", help="do not write loadtest/results/")
    p.add_argument(
        "--target-floor-twice",
        action="store_true",
        help="harness self-test: the 'ads' phase hits floor.py --stand-in, not the exchange",
    )
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    return args


def run(args: argparse.Namespace, procs: Procs) -> dict[str, Any]:
    tmp = procs.tmp
    key = os.environ.get("ENDCAP_OPERATOR_KEY") or DEFAULT_OPERATOR_KEY
    server_cpus, wrk_cpus = choose_pinning(args.server_cpus, args.wrk_cpus)
    if args.workers > 1 and server_cpus is not None:
        print(f"note: {args.workers} workers all pinned to CPU(s) {server_cpus}", flush=True)
    if shutil.which("wrk") is None:
        raise BenchError("wrk not found: apt-get install -y wrk (make bench does this)")

    # 1. data + server
    demo_load_s: float | None = None
    if args.target_floor_twice:
        print("SELF-TEST: the 'ads' phase drives floor.py --stand-in, not the exchange")
        server, base, ready_s = start_floor(
            procs, server_cpus, "stand-in", stand_in=True, ready_timeout=args.ready_timeout
        )
        label = "stand-in (floor)"
    else:
        data_dir = tmp / "data"
        env = exchange_env(data_dir, key)
        try:
            demo_load_s = load_demo_data(procs, args, env)
            print(f"  demo data loaded in {demo_load_s:.1f}s", flush=True)
            print("starting the exchange ...", flush=True)
            server, base, ready_s = start_exchange(procs, args, server_cpus, env)
        except BaseException:
            kill_stray_redis(data_dir)
            raise
        label = "ads (exchange)"
    print(f"  ready in {ready_s:.2f}s at {base}", flush=True)

    # 2. request mix
    catalog = fetch_catalog(base, key, args.catalog_pages)
    known = 0 if args.target_floor_twice else (args.shoppers or 100_000)
    bodies = build_bodies(catalog, args.bodies, args.mix_seed, known)
    bodies_file = tmp / "bodies.jsonl"
    bodies_file.write_bytes(b"\n".join(bodies) + b"\n")
    avg_body = sum(map(len, bodies)) / len(bodies)
    searches = sum(b'"type":"search"' in b for b in bodies) / len(bodies)
    print(
        f"  {len(catalog)} products listed; {len(bodies)} bodies, {searches:.0%} search, "
        f"avg {avg_body:.0f} B",
        flush=True,
    )

    url = base + "/v1/ads"
    sample = sample_fill(url, bodies[: args.fill_sample])
    print(
        f"  sample: {sample.ok}/{sample.sent} answered 200, fill rate "
        f"{'-' if sample.fill_rate is None else f'{sample.fill_rate:.3f}'}, "
        f"{sample.ads / max(1, sample.ok):.2f} ads/answer",
        flush=True,
    )
    valid = sample.sent > 0 and sample.ok / sample.sent >= 0.9
    if not valid:
        print(
            f"WARNING: only {sample.ok}/{sample.sent} sample requests got 200; the load "
            f"figures measure an error path. First error: {sample.first_error}",
            flush=True,
        )

    # 3. the floor, beside the exchange (idle while the other one is loaded)
    fproc: subprocess.Popen[bytes] | None = None
    fbase = ""
    if not args.skip_floor:
        print("starting the floor (loadtest/floor.py) ...", flush=True)
        fproc, fbase, fready = start_floor(
            procs, server_cpus, "floor", stand_in=False, ready_timeout=args.ready_timeout
        )
        check = sample_fill(fbase + "/v1/ads", bodies[:50])
        if check.ok != check.sent:
            raise BenchError(f"the floor rejected a body: {check.first_error}")
        print(f"  ready in {fready:.2f}s at {fbase}", flush=True)

    # 4. alternating rounds: floor, then ads
    floors: list[WrkResult] = []
    adss: list[WrkResult] = []
    rounds: list[dict[str, Any]] = []
    for i in range(1, args.rounds + 1):
        warmup = args.warmup if i == 1 else args.round_warmup
        entry: dict[str, Any] = {"round": i}
        floor: WrkResult | None = None
        if fproc is not None:
            print(f"round {i}/{args.rounds} load: floor (loadtest/floor.py)", flush=True)
            floor, idle_pct = drive(
                procs,
                args,
                wrk_cpus,
                fbase + "/v1/ads",
                bodies_file,
                f"floor-r{i}",
                warmup=warmup,
                idle=server,
            )
            floors.append(floor)
            entry.update(
                floor_rps=round(floor.rps, 1),
                floor_p50_ms=round(floor.p50_ms, 3),
                floor_p99_ms=round(floor.p99_ms, 3),
            )
        print(f"round {i}/{args.rounds} load: {label}", flush=True)
        ads, ads_idle_pct = drive(
            procs, args, wrk_cpus, url, bodies_file, f"ads-r{i}", warmup=warmup, idle=fproc
        )
        adss.append(ads)
        entry.update(
            ads_rps=round(ads.rps, 1),
            ads_p50_ms=round(ads.p50_ms, 3),
            ads_p99_ms=round(ads.p99_ms, 3),
            ratio=round(ads.rps / floor.rps, 4) if floor and floor.rps else None,
            non_2xx=ads.non_2xx,
            errors=ads.errors,
        )
        if floor is not None:
            entry.update(
                floor_non_2xx=floor.non_2xx,
                floor_errors=floor.errors,
                # CPU share of the idle server while the other one was measured
                idle_exchange_cpu_pct=None if idle_pct is None else round(idle_pct, 2),
                idle_floor_cpu_pct=None if ads_idle_pct is None else round(ads_idle_pct, 2),
            )
        rounds.append(entry)
        if entry["ratio"] is not None:
            print(f"  round {i} ratio {entry['ratio']:.3f}", flush=True)

    after = sample_fill(url, bodies[-min(100, len(bodies)) :])
    screened = screened_out(base) if not args.target_floor_twice else {}
    if screened:
        print(f"  screened out as invalid traffic: {screened}", flush=True)
    if fproc is not None:
        procs.stop(fproc)
    procs.stop(server)
    if not args.target_floor_twice:
        kill_stray_redis(tmp / "data")

    # 5. report: medians over rounds
    ads_all = combine(adss)
    floor_all = combine(floors) if floors else None
    ratios = [r["ratio"] for r in rounds if r["ratio"] is not None]
    ratio = statistics.median(ratios) if ratios else None
    idle_pcts = [
        v
        for r in rounds
        for v in (r.get("idle_exchange_cpu_pct"), r.get("idle_floor_cpu_pct"))
        if v is not None
    ]
    if idle_pcts and max(idle_pcts) > 2.0:
        print(
            f"WARNING: an idle server used up to {max(idle_pcts):.1f}% CPU while the other "
            "was measured; see rounds[].idle_*_cpu_pct",
            flush=True,
        )
    sha, dirty = git_info()
    return {
        "bench": "http",
        "floor_rps": round(floor_all["rps"], 1) if floor_all else None,
        "floor_p50_ms": round(floor_all["p50_ms"], 3) if floor_all else None,
        "floor_p99_ms": round(floor_all["p99_ms"], 3) if floor_all else None,
        "ads_rps": round(ads_all["rps"], 1),
        "ads_p50_ms": round(ads_all["p50_ms"], 3),
        "ads_p99_ms": round(ads_all["p99_ms"], 3),
        "ratio": None if ratio is None else round(ratio, 4),
        "fill_rate": None if sample.fill_rate is None else round(sample.fill_rate, 4),
        "non_2xx": ads_all["non_2xx"],
        "errors": ads_all["errors"],
        "demo_load_s": None if demo_load_s is None else round(demo_load_s, 2),
        "index_ready_s": round(ready_s, 3),
        "connections": args.connections,
        "duration_s": args.duration,
        "machine": machine(),
        "versions": versions(),
        "rounds": rounds,
        "git_sha": sha,
        # details beyond the headline figures
        "git_dirty": dirty,
        "targets": {"ratio_min": TARGET_RATIO, "ads_p99_ms_max": TARGET_P99_MS},
        "ads_label": label,
        "self_test": bool(args.target_floor_twice),
        "valid": valid,
        "ratio_min": min(ratios) if ratios else None,
        "ratio_max": max(ratios) if ratios else None,
        "round_warmup_s": args.round_warmup,
        "workers": args.workers,
        "threads": args.threads,
        "warmup_s": args.warmup,
        "pinning": {"server": server_cpus, "wrk": wrk_cpus},
        "demo_args": {k: getattr(args, k) for k in ("products", "campaigns", "shoppers", "seed")},
        "catalog_listed": len(catalog),
        "bodies": len(bodies),
        "search_share": round(searches, 3),
        "avg_body_bytes": round(avg_body, 1),
        "fill_sample": sample.sent,
        "fill_ok": sample.ok,
        "ads_per_answer": round(sample.ads / sample.ok, 3) if sample.ok else None,
        "fill_rate_after": None if after.fill_rate is None else round(after.fill_rate, 4),
        "screened_out": screened,
        # over all rounds (medians of rates and percentiles, sums of counts) ...
        "ads_detail": ads_all,
        "floor_detail": floor_all,
        "floor_non_2xx": floor_all["non_2xx"] if floor_all else None,
        "floor_errors": floor_all["errors"] if floor_all else None,
        # ... and per round
        "ads_detail_rounds": [vars(r) for r in adss],
        "floor_detail_rounds": [vars(r) for r in floors],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Also when started in the background with SIGINT ignored: Ctrl-C must clean up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupted)
    signal.signal(signal.SIGHUP, _raise_interrupted)
    tmp = Path(tempfile.mkdtemp(prefix="endcap-bench-"))
    procs = Procs(tmp)
    result: dict[str, Any] | None = None
    try:
        result = run(args, procs)
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr, flush=True)
        return 130
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        with signals_ignored():
            procs.stop_all()
            kill_stray_redis(tmp / "data")
            shutil.rmtree(tmp, ignore_errors=True)

    print_table(result)
    line = json.dumps(result, separators=(", ", ": "))
    headline = {k: result[k] for k in list(result)[: list(result).index("git_sha") + 1]}
    print(json.dumps(headline))
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS / f"http-{stamp}.json"
        path.write_text(line + "\n")
        print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
