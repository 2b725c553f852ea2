"""Loss curves of a customization job as a PNG.

matplotlib is an optional dependency (the ``plot`` extra) and is imported only inside
:func:`render_loss_curves`, so importing this module costs nothing. The figure is drawn on
matplotlib's Agg canvas directly, without ``pyplot``: no global figure state, no GUI backend,
safe in worker processes and threads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["PNG_MAGIC", "PlotUnavailableError", "render_loss_curves"]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class PlotUnavailableError(ImportError):
    """Raised when matplotlib, needed to draw the plot, is not installed."""


def _moving_mean(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def render_loss_curves(summary: Mapping[str, Any], *, title: str | None = None, dpi: int = 110) -> bytes:
    """Draw training and validation loss against the step number and return the PNG bytes.

    :param summary: :func:`airflow_bedrock_ft.core.metrics.summarize` output (its ``series``
        is plotted, and the best validation loss is marked).
    :param title: the figure's title, e.g. the job name.
    :param dpi: resolution of the PNG.
    :raises PlotUnavailableError: without matplotlib (``pip install 'airflow-bedrock-ft[plot]'``).
    :raises ValueError: when the summary has no training or validation rows to plot.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise PlotUnavailableError(
            "Plotting loss curves needs matplotlib: pip install 'airflow-bedrock-ft[plot]'"
        ) from exc

    series = list(summary.get("series") or [])
    training = [r for r in series if r["split"] == "training"]
    validation = [r for r in series if r["split"] == "validation"]
    if not training and not validation:
        raise ValueError("no training or validation metrics to plot: the summary's series is empty")

    fig = Figure(figsize=(7.0, 4.0), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if training:
        steps, losses = [r["step"] for r in training], [r["loss"] for r in training]
        window = max(1, len(losses) // 40)
        ax.plot(steps, losses, label="training loss (per step)", color="#9ecae1", linewidth=0.8)
        if window > 1:
            ax.plot(steps, _moving_mean(losses, window), color="#1f4e79", linewidth=1.6,
                    label=f"training loss (mean of {window} steps)")
    if validation:
        ax.plot([r["step"] for r in validation], [r["loss"] for r in validation],
                label="validation loss", color="#d62728", marker="o", linewidth=1.6)
    best_step, best = summary.get("best_step"), summary.get("best_validation_loss")
    if best_step is not None and best is not None:
        ax.scatter([best_step], [best], s=90, facecolors="none", edgecolors="black", zorder=3,
                   label=f"best validation {best:.4g} (step {best_step})")
    final = summary.get("final_training_loss")
    if final is not None:
        ax.axhline(final, color="#1f77b4", linestyle=":", linewidth=1.0,
                   label=f"final training loss {final:.4g} (last-epoch mean)")
    every = [r["loss"] for r in series]
    if min(every) > 0 and max(every) / min(every) > 20:
        ax.set_yscale("log")  # losses that fall by orders of magnitude stay readable
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title, fontsize="medium")
    fig.tight_layout()

    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
