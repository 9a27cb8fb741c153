"""``cosep-deploy export``: ONNX with a dynamic batch, validated against PyTorch."""

from __future__ import annotations

import click

from .main import Context
from .options import run_option

__all__ = ["command"]


@click.command("export")
@run_option
@click.option("--opset", type=click.IntRange(17), default=18, show_default=True)
@click.pass_obj
def command(obj: Context, run_dir: str, opset: int) -> None:
    """Export the dense and pruned models to ONNX (writes RUN/onnx/)."""
    from ..export.onnx import ExportConfig
    from ..pipeline.deploy import export_stage

    arts = export_stage(run_dir, ExportConfig(opset=opset), progress=obj.progress())
    for name, art in arts.items():
        err = max(v["max_abs"] for k, v in art.validation.items() if isinstance(v, dict))
        obj.echo(f"{name}: {run_dir}/onnx/{art.path} (opset {art.opset}, max abs error vs PyTorch {err:.2e})")
