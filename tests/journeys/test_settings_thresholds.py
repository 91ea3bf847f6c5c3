"""Each journey setting, set as a user sets it, at and just beyond its value.

The value goes in as the environment would give it (a string, in the setting's own unit) and
through `load_journey_settings` to the core, so a wrong unit conversion or an off-by-one at a
boundary shows here. For each setting: a journey exactly at the configured threshold and one
just past it (1 ms, or one more or fewer), and what each must conclude.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from streams.core.config import JourneyConfig
from streams.journey_settings import load_journey_settings
from tests.journeys.core_runner import run_core
from tests.journeys.outcome import Outcome
from tests.journeys.stories import H, buy, pv, web
from tests.journeys.story import Expect, Step, Story

pytestmark = pytest.mark.unit

D = 24 * H
#: No `parcours.toml` here: only the one setting applies.
NO_FILE_DIR = Path(__file__).parent / "no_such_directory"


#: Settings whose boundary is about late events as they arrive: measured with revisions off
#: (`revision_horizon_h` 0), or a revision would put the late event back either way.
WITHOUT_REVISIONS = {"grace_s", "late_horizon_h", "dedup_horizon_h"}


def config_from(setting: str, value: str) -> JourneyConfig:
    env = {f"PARCOURS_JOURNEY_{setting.upper()}": value, "PARCOURS_CONFIG": ""}
    if setting in WITHOUT_REVISIONS:
        env["PARCOURS_JOURNEY_REVISION_HORIZON_H"] = "0"
    return load_journey_settings(env, cwd=NO_FILE_DIR).settings.journey_config()


@dataclass(frozen=True)
class Case:
    setting: str
    value: str
    #: The journey with the threshold as parameter `x` (at: x = the value; beyond: just past it).
    steps: Callable[[float], list[Step]]
    at: float
    beyond: float
    #: What is measured, and its value at and beyond the threshold.
    measure: Callable[[Outcome], object]
    expected_at: object
    expected_beyond: object


def sessions(o: Outcome) -> int:
    return len(o.sessions)


def signal(kind: str) -> Callable[[Outcome], int]:
    return lambda o: o.signals.get(kind, 0)


def clicks(n: int, spacing: float) -> list[Step]:
    return [pv(0, "/p", "w61")] + [
        web(20 + i * spacing, "click", "w61", element="pay") for i in range(n)
    ]


def backtracks(n: int) -> list[Step]:
    kinds = ["begin_checkout", "add_shipping_info"]
    for _ in range(n):
        kinds += ["view_cart", "begin_checkout", "add_shipping_info"]
    return [web(i * 10, t, "w62", "c62") for i, t in enumerate(kinds)] + [
        buy(len(kinds) * 10, "web", "c62", "w62")
    ]


CASES = [
    Case(
        "session_gap_s",
        "900",
        lambda x: [pv(0, "/a"), pv(x, "/b")],
        900,
        900.001,
        sessions,
        1,
        2,
    ),
    Case(
        "session_cap_s",
        "3600",
        lambda x: [pv(t, f"/p{t}") for t in (0, 600, 1200, 1800, 2400, 3000)] + [pv(x, "/z")],
        3599.999,
        3600,
        sessions,
        1,
        2,
    ),
    Case(
        "grace_s",
        "300",
        # w2's event moves the watermark x past w1's last event + the gap; then w1's comes
        lambda x: [pv(0, "/a"), pv(5, "/b"), pv(1805 + x, "/x", "w2"), pv(1805, "/c")],
        300,
        300.001,
        lambda o: o.late,
        0,
        1,
    ),
    Case(
        "retro_window_days",
        "7",
        lambda x: [pv(0, "/a", device="w63"), web(x, "login", "w63", "c63")],
        7 * D,
        7 * D + 0.001,
        lambda o: o.resolved_persons["case-0"],
        "c63",
        "anon:w63",
    ),
    Case(
        "late_horizon_h",
        "3",
        # the watermark (newest - 2 min grace) x after w1's session ended, then w1's late event
        lambda x: [pv(0, "/a"), pv(5, "/b"), pv(x + 5 + 120, "/x", "w2"), pv(10, "/late")],
        3 * H,
        3 * H + 0.001,
        sessions,
        2,
        3,
    ),
    Case(
        # A late event x behind the watermark: revised into its session up to the horizon,
        # kept and flagged late beyond it.
        "revision_horizon_h",
        "3",
        lambda x: [pv(0, "/a"), pv(5, "/b"), pv(x + 10 + 120, "/x", "w2"), pv(10, "/late")],
        3 * H,
        3 * H + 0.001,
        lambda o: o.late,
        0,
        1,
    ),
    Case(
        # The dedup memory is pruned in steps (half a horizon), so the boundary is coarse:
        # a re-send within the horizon is dropped, one well beyond it is processed again.
        "dedup_horizon_h",
        "2",
        lambda x: [
            Step(0, "web", "page_view", "w1", None, {"page": "/a"}, id="again"),
            pv(4, "/b"),
            pv(x, "/x", device="w2"),
            Step(0, "web", "page_view", "w1", None, {"page": "/a"}, id="again"),
        ],
        H,
        5 * H,
        lambda o: o.duplicates,
        1,
        0,
    ),
    Case(
        "engaged_min_duration_s",
        "20",
        lambda x: [pv(0, "/home"), web(x, "click", "w1", element="menu")],
        20,
        20.001,
        signal("bounce"),
        1,
        0,
    ),
    Case(
        "engaged_min_views",
        "3",
        lambda x: [pv(i, f"/p{i}") for i in range(int(x))],
        3,
        2,
        signal("bounce"),
        0,
        1,
    ),
    Case(
        "checkout_timeout_s",
        "1800",
        lambda x: [web(0, "begin_checkout", "w64", "c64"), buy(x, "web", "c64", "w64")],
        1800,
        1800.001,
        signal("checkout_abandoned"),
        0,
        1,
    ),
    Case(
        "quick_back_s",
        "3",
        lambda x: [pv(0, "/list", "w65"), pv(10, "/item", "w65"), pv(10 + x, "/list", "w65")],
        3,
        3.001,
        signal("quick_back"),
        1,
        0,
    ),
    Case(
        "rage_click_window_s",
        "2",
        lambda x: clicks(3, x / 2),
        2,
        2.002,
        signal("rage_click"),
        1,
        0,
    ),
    Case(
        "rage_click_min_clicks",
        "4",
        lambda x: clicks(int(x), 0.2),
        4,
        3,
        signal("rage_click"),
        1,
        0,
    ),
    Case(
        "payment_failure_min_errors",
        "3",
        lambda x: (
            [web(i * 5, "payment_error", "w66", "c66", reason="declined") for i in range(int(x))]
            + [buy(60, "web", "c66", "w66")]
        ),
        3,
        2,
        signal("payment_failure"),
        1,
        0,
    ),
    Case(
        "search_frustration_min_zero_results",
        "2",
        lambda x: [
            web(i * 6, "search", "w67", search_term=f"q{i}", results_count=0) for i in range(int(x))
        ],
        2,
        1,
        signal("search_frustration"),
        1,
        0,
    ),
    Case(
        "checkout_loop_min_backtracks",
        "3",
        lambda x: backtracks(int(x)),
        3,
        2,
        signal("checkout_loop"),
        1,
        0,
    ),
    Case(
        "repeat_contact_window_h",
        "2",
        lambda x: [
            web(0, "support_contact", "w68", "c68", medium="chat"),
            web(x, "support_contact", "w68", "c68", medium="phone"),
        ],
        2 * H,
        2 * H + 0.001,
        signal("repeat_contact"),
        1,
        0,
    ),
    Case(
        "repeat_contact_min_distinct",
        "3",
        lambda x: [
            web(i * 60, "support_contact", "w69", "c69", medium=m)
            for i, m in enumerate(["chat", "phone", "email"][: int(x)])
        ],
        3,
        2,
        signal("repeat_contact"),
        1,
        0,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.setting for c in CASES])
def test_setting_at_and_just_beyond_its_value(case: Case) -> None:
    config = config_from(case.setting, case.value)
    results = []
    for x in (case.at, case.beyond):
        outcome, _ = run_core(Story("case", case.steps(x), Expect([])), config)
        results.append(case.measure(outcome))
    assert results == [case.expected_at, case.expected_beyond]
    # and the default differs somewhere: the setting, not the story, decides
    default = [
        case.measure(run_core(Story("case", case.steps(x), Expect([])))[0])
        for x in (case.at, case.beyond)
    ]
    assert default != results
