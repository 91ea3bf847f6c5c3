"""The expected rate of a friction series for an hour: what a spike is judged against.

Intuition: the expected rate (`baseline_rate`), per hour of event time, is made only of hours
outside any spike, from two rates:
- a **robust rolling rate**: the median of the daily rates of the last `rolling_days` days
  (each day pooled: its signals over its denominator), so one bad day does not move it; while
  less than a day is known, everything known so far, pooled;
- a **week-aware rate**: the same hour of the week in the last `weeks` weeks, pooled, shrunk
  towards the rolling rate by `prior_hours` hours of it (a gamma-Poisson posterior mean), so
  that Saturday evening is compared with Saturday evenings once there are some, and a thin
  hour of the week does not make the baseline noisy. Each week's hour is counted in hours of
  its own day's traffic (its denominator over the mean hourly denominator of the 24 hours up
  to it), so the weights are the same whatever the volume: when traffic doubles at the same
  rates, last weeks' evenings still weigh what they did against the prior, and the expected
  rate does not move (weighed against today's traffic they counted for half as much, pulling
  an evening's baseline towards the day's rate).
Hours are folded into the baseline `fold_lag_hours` after they end, once a spike that covers
them has had time to be decided (and so to be left out).

An hour's rate rests only on hours folded before it, so it is the same whenever it is asked
for (`rate_at`: the multi-scale scan looks back up to 2 hours, judged again after a restore).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streams.core.spikes import SeriesState, SpikeSettings


def in_spike(state: SeriesState, step: int) -> bool:
    """Whether `step` is inside the open spike or a closed one (left out of the baseline)."""
    d = state.decision
    if d.spike is not None and step >= d.spike[0]:
        return True
    for spike in reversed(state.closed):
        if spike.start_step <= step <= spike.end_step:
            return True
        if spike.end_step < step - 10_000:
            break
    return False


def fold(state: SeriesState, hour: int, settings: SpikeSettings) -> None:
    """Add an hour's steps outside spikes to the baseline."""
    sph = settings.steps_per_hour
    x = n = 0
    for step in range(hour * sph, (hour + 1) * sph):
        cell = state.counts.get(step)
        if cell is not None and not in_spike(state, step):
            x += cell[0]
            n += cell[1]
    if n or x:
        state.hours[hour] = (x, n)


def baseline_rate(state: SeriesState, hour: int, settings: SpikeSettings) -> float | None:
    """The expected rate for `hour` (cached per hour), or None while too little is known."""
    if state.rate_hour == hour:
        return state.rate
    state.rate_hour, state.rate = hour, compute_rate(state, hour, settings)
    return state.rate


def rate_at(state: SeriesState, hour: int, settings: SpikeSettings) -> float | None:
    """The expected rate of an hour already judged or being judged: the same as when it was
    judged, as it rests only on hours folded before it (`fold_lag_hours`)."""
    if hour == state.rate_hour:
        return state.rate
    if hour not in state.rates:
        state.rates[hour] = compute_rate(state, hour, settings)
    return state.rates[hour]


def compute_rate(state: SeriesState, hour: int, settings: SpikeSettings) -> float | None:
    last = hour - settings.fold_lag_hours  # newest hour folded
    daily: list[float] = []
    pooled_x = pooled_n = hours_known = 0
    for day in range(settings.rolling_days):
        dx = dn = known = 0
        for h in range(last - 24 * (day + 1) + 1, last - 24 * day + 1):
            cell = state.hours.get(h)
            if cell is not None:
                dx += cell[0]
                dn += cell[1]
                known += 1
        pooled_x += dx
        pooled_n += dn
        hours_known += known
        if known >= 20 and dn > 0:  # a (nearly) whole day outside spikes
            daily.append(dx / dn)
    if pooled_x < settings.min_baseline_count or pooled_n == 0:
        return None
    if daily and pooled_x >= settings.min_baseline_count * len(daily):
        daily.sort()
        mid = len(daily) // 2
        rolling = daily[mid] if len(daily) % 2 else (daily[mid - 1] + daily[mid]) / 2
    else:  # under a day known, or too few signals a day for a median to be fair
        rolling = pooled_x / pooled_n
    # Each week's cell in hours of its own day's traffic (the 24 hours up to it), and the
    # prior in hours too: a gamma-Poisson mean whose weights no change of volume moves (twice
    # the traffic since last week at the same rates leaves the expected rate where it was).
    week_x = week_n = 0.0
    for week in range(1, settings.weeks + 1):
        at = hour - 168 * week
        cell = state.hours.get(at)
        if cell is None:
            continue
        day_n = day_hours = 0
        for h in range(at - 23, at + 1):
            around = state.hours.get(h)
            if around is not None:
                day_n += around[1]
                day_hours += 1
        if day_n > 0:
            per_hour = day_n / day_hours
            week_x += cell[0] / per_hour
            week_n += cell[1] / per_hour
    if week_n == 0:
        return rolling
    return (week_x + rolling * settings.prior_hours) / (week_n + settings.prior_hours)
