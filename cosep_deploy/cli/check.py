"""``cosep-deploy check``: can every TensorRT release of a target parse this ONNX file?"""

from __future__ import annotations

import json

import click

from cosep_deploy.cli.context import Context
from cosep_deploy.cli.options import json_option

__all__ = ["command"]


@click.command("check")
@click.option("--target", required=True, help="Target profile name or TOML path (its tensorrt_releases are checked).")
@json_option("Print the verdicts as JSON.")
@click.argument("onnx_file", type=click.Path(dir_okay=False))
@click.pass_obj
def command(obj: Context, target: str, as_json: bool, onnx_file: str) -> None:
    """Check ONNX_FILE's opset and operators against the ONNX parser of every TensorRT release the target
    supports (table: cosep_deploy/onnx_tensorrt_support.json). Exits 1 if any release cannot parse it."""
    from cosep_deploy.errors import ConfigError
    from cosep_deploy.onnx_compat import check_onnx
    from cosep_deploy.targets import get_target

    profile = get_target(target)
    if not profile.tensorrt_releases:
        raise ConfigError(f"target {profile.name!r} runs {profile.backend}: no TensorRT release to check against")
    verdicts = check_onnx(onnx_file, profile.tensorrt_releases)
    ok = all(v.ok for v in verdicts)
    if as_json:
        doc = {"file": onnx_file, "target": profile.name, "ok": ok, "releases": [v.to_json() for v in verdicts]}
        click.echo(json.dumps(doc, indent=2))
    else:
        for v in verdicts:
            click.echo(f"TensorRT {v.release}: {'ok' if v.ok else 'REFUSED'}")
            for problem in v.problems:
                click.echo(f"  - {problem}")
        click.echo(f"{onnx_file}: {'parses on every release of ' if ok else 'fails on some release of '}{profile.name}")
    if not ok:
        raise click.exceptions.Exit(1)
