"""Quality targets of the GIVT user-agent rules, measured on public data that ships in two
test-only packages: crawler-user-agents (every ``instances`` example of its crawler list)
and fake-useragent (its bundled database of real browser User-Agents, read whole).

Targets: >= 99 % of crawler examples flagged; <= 0.1 % of browser User-Agents flagged.
Run with ``-s`` to see the measured figures.
"""

from __future__ import annotations

import json
from importlib import resources

import crawleruseragents
import pytest

from fraud.givt import GivtFilter

HOME_IP = "81.2.69.160"


def _crawler_instances() -> list[str]:
    return [
        ua
        for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA
        for ua in entry.get("instances", ())
    ]


def _browser_rows() -> list[dict[str, object]]:
    text = (resources.files("fake_useragent") / "data" / "browsers.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def givt() -> GivtFilter:
    return GivtFilter()


def test_flags_at_least_99_percent_of_known_crawlers(givt: GivtFilter) -> None:
    instances = _crawler_instances()
    assert len(instances) > 1000
    missed = [ua for ua in instances if givt.check(ua, HOME_IP) == ""]
    flagged = 1 - len(missed) / len(instances)
    report = f"crawlers flagged: {flagged:.2%} of {len(instances)}; missed {len(missed)}:\n" + (
        "\n".join(f"  {ua}" for ua in missed)
    )
    print(report)
    assert flagged >= 0.99, report


def test_flags_at_most_0_1_percent_of_real_browsers(givt: GivtFilter) -> None:
    rows = _browser_rows()
    browsers = {str(row["browser"]) for row in rows}
    assert {"Chrome", "Mobile Safari", "Firefox", "Edge", "Samsung Internet"} <= browsers
    distinct = sorted({str(row["useragent"]) for row in rows})
    flagged = [(ua, reason) for ua in distinct if (reason := givt.check(ua, HOME_IP))]
    flagged_rows = sum(1 for row in rows if givt.check(str(row["useragent"]), HOME_IP))
    rate = len(flagged) / len(distinct)
    report = (
        f"browsers flagged: {rate:.3%} of {len(distinct)} distinct UAs, "
        f"{flagged_rows / len(rows):.3%} of {len(rows)} rows; flagged:\n"
        + "\n".join(f"  {reason}: {ua}" for ua, reason in flagged)
    )
    print(report)
    assert rate <= 0.001, report
    assert flagged_rows / len(rows) <= 0.001, report
