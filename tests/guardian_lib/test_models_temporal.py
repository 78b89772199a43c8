"""TemporalAnomalyScorer: streaming equals batch, level shifts, seasonality, spikes."""

import numpy as np
import pandas as pd
import pytest

from guardian_lib.models.temporal import TemporalAnomalyScorer, seasonal_period

PERIOD = 24


def _seasonal(rng, n, noise=0.3, phase0=0):
    t = np.arange(phase0, phase0 + n)
    return 10 + 3 * np.sin(2 * np.pi * t / PERIOD) + rng.normal(0, noise, n)


def test_seasonal_period_is_found_and_absent_without_season(rng):
    assert seasonal_period(_seasonal(rng, 24 * 12), 100) == PERIOD
    # A smooth random walk is similar to itself at small lags but has no season.
    assert seasonal_period(rng.normal(size=600), 100) == 0


def test_streaming_equals_batch_on_several_series(rng):
    n = 24 * 8
    frames = []
    for s in range(3):
        frames.append(
            pd.DataFrame(
                {
                    "onu_id": f"o{s}",
                    "t": np.arange(n),
                    "latency_ms": _seasonal(rng, n, phase0=5 * s),
                    "rx_dbm": -20 + rng.normal(0, 0.2, n),
                }
            )
        )
    # Rows of the series interleaved in time order, as a fleet frame is.
    frame = pd.concat(frames).sort_values(["t", "onu_id"], kind="stable").drop(columns="t")
    frame = frame.reset_index(drop=True)
    cut = len(frame) // 2
    kw = dict(series_column="onu_id", period=PERIOD, window=6)
    batch = TemporalAnomalyScorer(**kw).fit(frame.iloc[:cut])
    whole = batch.anomaly_score(frame.iloc[cut:])
    stream = TemporalAnomalyScorer(**kw).fit(frame.iloc[:cut])
    parts = [
        stream.anomaly_score(frame.iloc[a:b])
        for a, b in ((cut, cut + 7), (cut + 7, cut + 100), (cut + 100, len(frame)))
    ]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert ((whole >= 0) & (whole <= 1)).all()
    # update=False scores against the reference without moving it.
    probe = frame.iloc[:6]
    before = stream.anomaly_score(probe, update=False)
    np.testing.assert_array_equal(stream.anomaly_score(probe, update=False), before)
    with pytest.raises(ValueError, match="series_column 'pon' is not a column"):
        TemporalAnomalyScorer(series_column="pon").fit(frame)


def test_level_shift_fires_then_becomes_the_new_normal(rng):
    n_fit, n = 24 * 10, 24 * 12
    x = _seasonal(rng, n_fit + n)
    shift_at = n_fit + 24 * 3
    # A shift of three noise sigmas: single points reach the 0.99 mark only by chance
    # (missed on 2 of 8 seeds with window=1); the mean of the last 8 residuals does.
    x[shift_at:] += 3 * 0.3
    model = TemporalAnomalyScorer(period=PERIOD, window=8).fit(pd.DataFrame({"v": x[:n_fit]}))
    s = model.anomaly_score(pd.DataFrame({"v": x[n_fit:]}))
    k = shift_at - n_fit
    before, during, after = s[:k], s[k : k + 12], s[-48:]
    assert (during >= 0.99).any()
    assert np.quantile(before, 0.95) < 0.99
    # The reference follows the new level: a day later the shift is normal again.
    assert np.mean(after >= 0.99) < 0.1


def test_seasonality_and_spikes(rng):
    n_fit = 24 * 10
    x = _seasonal(rng, n_fit + 24 * 4)
    model = TemporalAnomalyScorer(period=PERIOD).fit(pd.DataFrame({"v": x[:n_fit]}))
    rest = x[n_fit:].copy()
    # The daily peak (13) at the daily trough's hour: in range for the day, not the hour.
    trough = int(np.argmin(np.sin(2 * np.pi * np.arange(n_fit, n_fit + 24) / PERIOD)))
    rest[trough] = 13.0
    spike = 24 * 2 + 5
    rest[spike] += 10.0
    s = model.anomaly_score(pd.DataFrame({"v": rest}))
    assert s[trough] >= 0.99 and s[spike] >= 0.99
    # The spike did not drag the reference: half a day later scores are ordinary.
    assert np.mean(s[spike + 12 : spike + 36] >= 0.99) < 0.15
