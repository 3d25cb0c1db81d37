"""``python -m exchange reconcile``: exit 0 when the ledger is the event log, 1 otherwise."""

from __future__ import annotations

import pytest
import redis

from exchange.cli import main
from pacing.keys import spend_key

DAY = "20261123"


def test_reconcile_reports_a_ledger_that_disagrees_with_the_events(
        redis_url: str, redis_sync: redis.Redis, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    redis_sync.xadd("ex:events", {"k": "click", "e": "{}", "c": 500, "p": 500, "cid": 4,
                                  "d": DAY})
    redis_sync.hset(spend_key(4), f"d:{DAY}", 500)
    assert main(["reconcile", "--day", DAY]) == 0
    assert "0 mismatch(es)" in capsys.readouterr().out
    redis_sync.hincrby(spend_key(4), f"d:{DAY}", 1)  # money the events do not explain
    assert main(["reconcile", "--day", DAY]) == 1
    assert "cmp_4: ledger 501 != events 500" in capsys.readouterr().out
