"""Rendering loss curves to PNG (matplotlib, Agg canvas, no pyplot)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from airflow_bedrock_ft.core.metrics import parse_training_metrics, parse_validation_metrics, summarize
from airflow_bedrock_ft.core.plot import PNG_MAGIC, render_loss_curves

TRAINING = "step_number,epoch_number,training_loss,perplexity\n" + "".join(
    f"{i},{i // 4},{3.0 / (i + 1)},1\n" for i in range(12))
VALIDATION = "step_number,epoch_number,validation_loss,perplexity\n3,0,1.5,1\n7,1,0.9,1\n11,2,1.1,1\n"


def test_render_loss_curves_makes_a_png_of_sensible_size() -> None:
    summary = summarize(parse_training_metrics(TRAINING), parse_validation_metrics(VALIDATION))
    png = render_loss_curves(summary, title="job-1", dpi=50)
    assert png.startswith(PNG_MAGIC)
    # IHDR carries width and height: 7 x 4 inches at 50 dpi.
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (350, 200)


def test_render_without_validation_rows() -> None:
    assert render_loss_curves(summarize(parse_training_metrics(TRAINING)), dpi=40).startswith(PNG_MAGIC)


def test_render_refuses_an_empty_summary() -> None:
    with pytest.raises(ValueError, match="series is empty"):
        render_loss_curves(summarize([]))


def test_importing_the_module_does_not_import_matplotlib() -> None:
    code = "import sys, airflow_bedrock_ft.core.plot, airflow_bedrock_ft.core.metrics; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_rendering_uses_no_pyplot_and_no_gui_backend() -> None:
    code = (
        "import sys\n"
        "from airflow_bedrock_ft.core.metrics import summarize, parse_training_metrics\n"
        "from airflow_bedrock_ft.core.plot import render_loss_curves\n"
        f"render_loss_curves(summarize(parse_training_metrics({TRAINING!r})), dpi=30)\n"
        "print('matplotlib.pyplot' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"MPLBACKEND": "TkAgg", "PATH": ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
