"""The spike detector's settings from `PARCOURS_SPIKES_<NAME>` environment variables.

Every numeric field of `streams.core.spikes.SpikeSettings` can be set (`PARCOURS_SPIKES_THRESHOLD=6`);
a misspelt name or a value that is not a number stops the command with an error naming it,
rather than being ignored (as the journey's settings do).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import fields

from streams.core.spikes import SpikeSettings
from streams.errors import ParcoursError

PREFIX = "PARCOURS_SPIKES_"


class SpikeSettingsError(ParcoursError):
    """A `PARCOURS_SPIKES_*` variable that is unknown or not a valid value."""


def spike_settings(environ: Mapping[str, str] | None = None) -> SpikeSettings:
    env = os.environ if environ is None else environ
    known = {f.name: f.type for f in fields(SpikeSettings)}
    values: dict[str, float | int] = {}
    for key, text in env.items():
        if not key.startswith(PREFIX):
            continue
        name = key[len(PREFIX) :].lower()
        if name not in known:
            raise SpikeSettingsError(f"{key}: unknown; one of {', '.join(sorted(known))}")
        try:
            values[name] = int(text) if known[name] in ("int", int) else float(text)
        except ValueError:
            raise SpikeSettingsError(f"{key}={text!r}: not a number") from None
    try:
        return SpikeSettings(**values)  # type: ignore[arg-type]
    except ValueError as exc:
        raise SpikeSettingsError(f"{PREFIX}*: {exc}") from None
