"""``cosep-deploy doctor``: what this machine can do."""

from __future__ import annotations

import json

import click

from cosep_deploy.cli.options import json_option

__all__ = ["command"]


@click.command("doctor")
@json_option("Print JSON.")
def command(as_json: bool) -> None:
    """Report torch/CUDA, ONNX Runtime providers, TensorRT (version, DLA cores), trtexec and Jetson state."""
    from cosep_deploy.doctor import diagnose

    report = diagnose()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    t = report["torch"]
    click.echo(
        f"torch {t['version']} (CUDA build {t['cuda_build']}); CUDA available: {t['cuda_available']} "
        f"{', '.join(t['devices'])}"
    )
    o = report["onnxruntime"]
    click.echo(f"onnxruntime {o['version']}; providers: {', '.join(o['providers'])}")
    trt = report["tensorrt"]
    if trt["available"]:
        click.echo(f"TensorRT {trt['version']}; DLA cores: {trt.get('dla_cores', trt.get('builder'))}")
    else:
        click.echo(f"TensorRT: not available ({trt['why']})")
    click.echo(f"trtexec: {report['trtexec']['path'] or 'not found on PATH or /usr/src/tensorrt/bin'}")
    click.echo(
        f"torch-tensorrt: {report['torch_tensorrt']['version'] or 'not installed'}; "
        f"cuda-python: {report['cuda_python']['version'] or 'not installed'}; "
        f"pycuda: {report['pycuda']['version'] or 'not installed'}"
    )
    j = report["jetson"]
    click.echo(f"Jetson: {'yes, ' + j.get('nvpmodel', '') if j['is_jetson'] else 'no'}")
