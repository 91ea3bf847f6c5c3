"""`PARCOURS_SPIKES_*`: each setting of the detector, refused clearly when wrong."""

from __future__ import annotations

import pytest

from streams.spike_settings import SpikeSettingsError, spike_settings

pytestmark = pytest.mark.unit


def test_settings_come_from_the_environment() -> None:
    settings = spike_settings({"PARCOURS_SPIKES_THRESHOLD": "6", "PARCOURS_SPIKES_WEEKS": "2"})
    assert (settings.threshold, settings.weeks) == (6.0, 2)
    assert spike_settings({}).threshold == 8.0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PARCOURS_SPIKES_TRESHOLD": "6"}, "PARCOURS_SPIKES_TRESHOLD: unknown"),
        ({"PARCOURS_SPIKES_THRESHOLD": "high"}, "not a number"),
        ({"PARCOURS_SPIKES_TARGET_RATIO": "0.5"}, "target_ratio must be > 1"),
    ],
)
def test_a_wrong_setting_is_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SpikeSettingsError, match=message):
        spike_settings(env)
