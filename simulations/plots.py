"""PNG plots of a run and of a sweep (matplotlib, headless Agg backend).

Imported lazily by the runner: matplotlib costs about a second to import and
sweeps' worker processes never plot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # the Agg backend must be chosen before this import

from simulations.metrics import SERIES_COLUMNS, Metrics

_PNG_META = {"Software": None}  # no version string: same run, same bytes


def plot_run(out_dir: Path, metrics: Metrics) -> list[Path]:
    cols = {name: [row[i] for row in metrics.series] for i, name in enumerate(SERIES_COLUMNS)}
    hours = [t / 3600 for t in cols["t_s"]]
    paths = [
        _line(
            out_dir / "utilisation.png",
            hours,
            {"utilisation": cols["utilisation"]},
            "GPU utilisation",
            "share of online GPU time busy",
        ),
        _line(
            out_dir / "price.png",
            hours,
            {"price": price_with_gaps(cols["price_wei_per_ru"], cols["frames_accepted"])},
            "Price paid",
            "wei per render unit",
        ),
        _line(
            out_dir / "detection.png",
            hours,
            {"caught": cols["cheats_caught"], "missed": cols["cheats_missed"]},
            "Cheat detection",
            "cheating results (cumulative)",
        ),
    ]
    spans = sorted(
        (j.finished_ms - j.submitted_ms) / 3_600_000
        for j in metrics.jobs.values()
        if j.finished_ms is not None
    )
    fig, ax = plt.subplots(figsize=(6, 4))
    total = max(len(metrics.jobs), 1)
    ax.step(spans, [(i + 1) / total for i in range(len(spans))], where="post")
    ax.set(
        title="Job completion CDF",
        xlabel="job time (h)",
        ylabel="share of jobs ended",
        ylim=(0, 1.02),
    )
    paths.append(_save(fig, out_dir / "job_completion_cdf.png"))
    return paths


def price_with_gaps(prices: Sequence[float], frames_accepted: Sequence[float]) -> list[float]:
    """The price series with NaN (a gap in the line) where an interval accepted no frame.

    The series records 0 for an interval with nothing paid (no render units to
    divide by); drawn as 0 it reads as free work. No frame accepted in the
    interval means no payment was priced there.
    """
    out = []
    before = 0.0
    for price, frames in zip(prices, frames_accepted, strict=True):
        out.append(price if frames > before else math.nan)
        before = frames
    return out


def _line(
    path: Path, xs: Sequence[float], series: dict[str, Sequence[Any]], title: str, ylabel: str
) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, ys in series.items():
        ax.plot(xs, ys, label=label)
    ax.set(title=title, xlabel="simulated time (h)", ylabel=ylabel)
    if len(series) > 1:
        ax.legend()
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata=_PNG_META)
    plt.close(fig)
    return path


def plot_sweep(
    out_dir: Path, param: str, xs: Sequence[Any], stats: dict[str, list[tuple[float, float]]]
) -> list[Path]:
    """One PNG per metric: mean with a 95 % confidence interval against ``param``."""
    paths = []
    labels = [str(x) for x in xs]
    for metric, points in stats.items():
        fig, ax = plt.subplots(figsize=(6, 4))
        means = [m for m, _ in points]
        errs = [h for _, h in points]
        ax.errorbar(range(len(labels)), means, yerr=errs, capsize=4, marker="o")
        ax.set_xticks(range(len(labels)), labels)
        ax.set(title=f"{metric} (mean, 95 % CI)", xlabel=param, ylabel=metric)
        paths.append(_save(fig, out_dir / f"sweep_{metric}.png"))
    return paths
