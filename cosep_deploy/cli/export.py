"""``cosep-deploy export``: ONNX with a dynamic batch, validated against PyTorch, plus fp16/int8 variants."""

from __future__ import annotations

import click

from cosep_deploy.cli.context import Context
from cosep_deploy.cli.options import run_option

__all__ = ["command"]


@click.command("export")
@run_option
@click.option(
    "--opset", type=click.IntRange(17), default=17, show_default=True, help="17: what TensorRT 8.5/8.6 parse."
)
@click.option(
    "--precisions",
    default="fp16,int8",
    show_default=True,
    help="Variants besides fp32, decided in the ONNX file (empty string for none).",
)
@click.option(
    "--calibration-per-class",
    type=click.IntRange(1),
    default=32,
    show_default=True,
    help="INT8 calibration images per class (class-balanced, from the training split).",
)
@click.option(
    "--calibration-method", type=click.Choice(["minmax", "entropy", "percentile"]), default="minmax", show_default=True
)
@click.pass_obj
def command(
    obj: Context, run_dir: str, opset: int, precisions: str, calibration_per_class: int, calibration_method: str
) -> None:
    """Export the dense and pruned models to ONNX (writes RUN/onnx/ with accuracy.json)."""
    from cosep_deploy.artifacts import read_json
    from cosep_deploy.export.onnx import ExportConfig
    from cosep_deploy.export.precision import PrecisionConfig
    from cosep_deploy.pipeline.deploy import export_stage

    pcfg = PrecisionConfig(
        precisions=tuple(p.strip() for p in precisions.split(",") if p.strip()),
        calibration_per_class=calibration_per_class,
        calibration_method=calibration_method,
    )
    arts = export_stage(run_dir, ExportConfig(opset=opset), precision=pcfg, progress=obj.progress())
    accuracy = read_json(f"{run_dir}/onnx/accuracy.json")
    for art in arts.values():
        top1 = accuracy.get(art.path, {}).get("top1")
        shown = f"{100 * top1:.2f}%" if top1 is not None else "n/a"
        obj.echo(f"{run_dir}/onnx/{art.path}: {art.precision}, validation top-1 (ONNX Runtime) {shown}")
