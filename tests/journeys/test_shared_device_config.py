"""Which devices are shared is configuration: device types and device-id patterns."""

from __future__ import annotations

import pytest

from streams.core.config import JourneyConfig
from tests.journeys.core_runner import run_core
from tests.journeys.story import Expect, Step, Story

pytestmark = pytest.mark.unit

M = 60.0


def receipt(at: float, customer: str | None, device: str) -> Step:
    """A receipt from a till that does not send its `device_type`."""
    props = {"transaction_id": f"r{int(at)}", "value": 12.5, "currency": "EUR"}
    return Step(at, "store", "purchase", device, customer, props)


STORY = Story(
    "untyped_till_loyalty_then_guest",
    [receipt(0, "c41", "till-7"), receipt(5 * M, None, "till-7")],
    Expect([]),
)


def test_a_till_without_device_type_links_unless_a_pattern_names_it() -> None:
    plain, _ = run_core(STORY)
    assert plain.links == [("till-7", "c41")]  # the bug the patterns exist for
    assert plain.resolved_persons["untyped_till_loyalty_then_guest-1"] == "c41"
    config = JourneyConfig(shared_device_patterns=("kiosk-*", "till-*"))
    shared, _ = run_core(STORY, config)
    assert shared.links == []
    guest = "anon:till-7:untyped_till_loyalty_then_guest-1"
    assert shared.resolved_persons["untyped_till_loyalty_then_guest-1"] == guest
    assert sorted(s.person for s in shared.sessions) == sorted(["c41", guest])


@pytest.mark.parametrize(
    ("patterns", "shared"),
    [(("till-*",), True), (("till-?",), True), (("till-7*",), True), (("Till-*",), False)],
)
def test_patterns_are_globs_matched_case_sensitively(
    patterns: tuple[str, ...], shared: bool
) -> None:
    outcome, _ = run_core(STORY, JourneyConfig(shared_device_patterns=patterns))
    assert (outcome.links == []) is shared


def test_shared_device_types_are_configurable() -> None:
    typed = Story(
        "typed_till",
        [
            Step(0, "store", "login", "till-8", "c42", {"device_type": "pos"}),
            Step(
                60, "store", "store_visit", "till-8", None, {"device_type": "pos", "store_id": "x"}
            ),
        ],
        Expect([]),
    )
    default, _ = run_core(typed)
    assert default.links == []
    not_shared, _ = run_core(typed, JourneyConfig(shared_device_types=frozenset({"kiosk"})))
    assert not_shared.links == [("till-8", "c42")]
