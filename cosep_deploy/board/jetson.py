"""The Jetson board this code runs on: what it is, which L4T/JetPack it runs, its power mode and clocks.

On a board, ``cosep-deploy build --target jetson-*`` builds and benchmarks the engines directly (off the board
it writes a deploy bundle instead). Three facts decide whether those numbers mean anything, and all three are
read here:

- **which board**: ``/proc/device-tree/model`` ("NVIDIA Jetson AGX Orin Developer Kit", NUL-terminated). The
  shipped Jetson profiles are named after the board (``jetson-agx-orin`` -> the words "agx" and "orin"), so a
  model string is matched against those words, and an engine for one board is not built on another.
- **which software**: the first line of ``/etc/nv_tegra_release`` (``# R36 (release), REVISION: 4.3, GCID:
  ..., BOARD: generic, EABI: aarch64, DATE: ...``) is the L4T release, 36.4.3 here, which maps to a JetPack
  release (6.2) through the table of NVIDIA's JetPack archive below; a release missing from it maps to None.
- **which power state**: ``nvpmodel -q`` (the power mode: "NV Power Mode: MAXN" and its id) and
  ``jetson_clocks --show`` (CPU/GPU/EMC clocks; usually needs root). Missing tools or a refusal are recorded
  with the reason instead of failing the build.

Every reader takes ``root`` (default ``/``), so tests point it at a folder holding real files.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cosep_deploy.board.onboard.parse import clocks_key, parse_jetson_clocks
from cosep_deploy.board.onboard.parse import parse_nvpmodel_query as parse_nvpmodel  # one parser, host and board
from cosep_deploy.errors import ConfigError, TargetMismatchError
from cosep_deploy.target_profile import TargetProfile
from cosep_deploy.targets import list_targets

__all__ = [
    "JETPACK_FOR_L4T",
    "JetsonInfo",
    "L4TRelease",
    "PowerState",
    "check_board_matches",
    "detect_jetson",
    "parse_l4t_release",
    "parse_nvpmodel",
    "power_state",
    "target_for_model",
]

RELEASE_FILE = Path("etc/nv_tegra_release")
MODEL_FILE = Path("proc/device-tree/model")

# L4T release -> JetPack release, exact releases only (NVIDIA's JetPack archive). Anything else: None.
JETPACK_FOR_L4T: dict[str, str] = {
    "35.1.0": "5.0.2",
    "35.2.1": "5.1",
    "35.3.1": "5.1.1",
    "35.4.1": "5.1.2",
    "35.5.0": "5.1.3",
    "35.6.0": "5.1.4",
    "35.6.1": "5.1.5",
    "36.2.0": "6.0 DP",
    "36.3.0": "6.0",
    "36.4.0": "6.1",
    "36.4.3": "6.2",
    "36.4.4": "6.2.1",
    "38.2.0": "7.0",
}

_RELEASE_RE = re.compile(r"^#\s*R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)(?:\.(\d+))?")
# AGX Xavier boards report a bare "Jetson-AGX" on some L4T releases
_MODEL_ALIASES = {"jetson-agx": "jetson-agx-xavier"}


@dataclasses.dataclass(frozen=True)
class L4TRelease:
    """An L4T (Jetson Linux) release: ``R36, REVISION: 4.3`` is 36.4.3."""

    major: int
    minor: int
    patch: int

    @property
    def version(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def jetpack(self) -> str | None:
        """The JetPack release that ships this L4T release, or None if the table does not list it."""
        return JETPACK_FOR_L4T.get(self.version)


def parse_l4t_release(text: str) -> L4TRelease:
    """The release on the first line of ``/etc/nv_tegra_release`` (``# R36 (release), REVISION: 4.3, ...``)."""
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    m = _RELEASE_RE.match(first)
    if not m:
        raise ConfigError(
            f"cannot read an L4T release from {first!r}: expected a first line like "
            "'# R36 (release), REVISION: 4.3, GCID: ...' (the format of /etc/nv_tegra_release)"
        )
    return L4TRelease(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))


@dataclasses.dataclass(frozen=True)
class JetsonInfo:
    """What the board says about itself. ``target`` is the shipped profile its model string names, if any."""

    model: str | None  # /proc/device-tree/model; None if unreadable
    release_line: str  # first line of /etc/nv_tegra_release, as written
    l4t: L4TRelease | None  # None if that line is not in the documented format
    target: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "release_line": self.release_line,
            "l4t": self.l4t.version if self.l4t else None,
            "jetpack": self.l4t.jetpack if self.l4t else None,
            "target": self.target,
        }


def detect_jetson(root: str | Path = Path("/")) -> JetsonInfo | None:
    """The board under ``root``, or None when ``root/etc/nv_tegra_release`` does not exist (not a Jetson)."""
    base = Path(root)
    release_file = base / RELEASE_FILE
    if not release_file.is_file():
        return None
    text = release_file.read_text(encoding="utf-8", errors="replace")
    line = text.strip().splitlines()[0] if text.strip() else ""
    try:
        l4t: L4TRelease | None = parse_l4t_release(text)
    except ConfigError:
        l4t = None
    model = _read_model(base / MODEL_FILE)
    return JetsonInfo(model=model, release_line=line, l4t=l4t, target=target_for_model(model) if model else None)


def _read_model(path: Path) -> str | None:
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    text = raw.replace(b"\x00", b"").decode("utf-8", errors="replace").strip()
    return text or None


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def target_for_model(model: str, profiles: Iterable[TargetProfile] | None = None) -> str | None:
    """The Jetson profile a device-tree model string names: every word of the profile's name after "jetson"
    must appear in the model string (``jetson-orin-nano`` <- "NVIDIA Jetson Orin Nano Developer Kit"); the
    profile naming the most words wins. None if no profile fits (a carrier board with its own name)."""
    alias = _MODEL_ALIASES.get(model.strip().lower())
    if alias:
        return alias
    have = _words(model)
    best: tuple[int, str] | None = None
    for profile in profiles if profiles is not None else list_targets():
        if profile.kind != "jetson":
            continue
        need = set(profile.name.split("-")) - {"jetson"}
        if need and need <= have and (best is None or len(need) > best[0]):
            best = (len(need), profile.name)
    return best[1] if best else None


def check_board_matches(
    profile: TargetProfile,
    info: JetsonInfo,
    *,
    allow_other_device: bool = False,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Refuse to build ``profile``'s engines on a board identified as another Jetson.

    Engines are tuned to the board they are built on, so numbers from an Orin Nano filed under AGX Orin
    would be wrong. ``allow_other_device`` turns the refusal into a message; a board whose model string
    names no shipped profile (custom carrier, custom profile) is accepted with a message.
    """
    say = progress or (lambda _msg: None)
    if info.target is None:
        say(f"could not tell which Jetson this is (model {info.model!r}); building for {profile.name} as asked")
        return
    if info.target == profile.name:
        return
    shipped = {p.name for p in list_targets() if p.kind == "jetson"}
    if profile.name not in shipped:
        say(f"this board is a {info.target} ({info.model}); building for the custom profile {profile.name}")
        return
    message = (
        f"this board is a {info.model} (target {info.target}), not a {profile.name}: engines and timings "
        f"belong to the board they are built on; use --target {info.target}"
    )
    if not allow_other_device:
        raise TargetMismatchError(message + ", or pass --allow-other-device to build anyway")
    say(message + " (building anyway: --allow-other-device)")


@dataclasses.dataclass(frozen=True)
class PowerState:
    """``nvpmodel -q`` and ``jetson_clocks --show`` as the board printed them; None with a reason if not read.
    ``clocks_mhz`` is the clock table parsed to MHz and ``clocks_key`` what two runs must share (GPU and EMC
    frequency, slowest CPU, locked or not): runs are compared by frequencies, never by the raw text."""

    nvpmodel: str | None
    nvpmodel_mode: str | None
    nvpmodel_id: int | None
    clocks: str | None
    reasons: dict[str, str]  # tool -> why its output is missing
    clocks_mhz: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    clocks_key: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _run_tool(name: str, args: list[str], path: str | None, timeout_s: float) -> tuple[str | None, str]:
    exe = shutil.which(name, path=path)
    if exe is None:
        return None, f"{name} not found on PATH"
    try:
        proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{name} {' '.join(args)} could not run: {exc}"
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        hint = " (it usually needs root: run the build with sudo to record clocks)" if name == "jetson_clocks" else ""
        return None, f"{name} {' '.join(args)} exited with {proc.returncode}: {detail[-1] if detail else ''}{hint}"
    return proc.stdout.strip(), ""


def power_state(*, path: str | None = None, timeout_s: float = 20.0) -> PowerState:
    """The board's power mode and clock state (``path``: where to look for the tools; default ``$PATH``)."""
    reasons: dict[str, str] = {}
    nvp, why = _run_tool("nvpmodel", ["-q"], path, timeout_s)
    if nvp is None:
        reasons["nvpmodel"] = why
    clocks, why = _run_tool("jetson_clocks", ["--show"], path, timeout_s)
    if clocks is None:
        reasons["jetson_clocks"] = why
    mode, ident = parse_nvpmodel(nvp) if nvp else (None, None)
    parsed = parse_jetson_clocks(clocks) if clocks else {}
    return PowerState(
        nvpmodel=nvp,
        nvpmodel_mode=mode,
        nvpmodel_id=ident,
        clocks=clocks,
        reasons=reasons,
        clocks_mhz=parsed,
        clocks_key=clocks_key(parsed) if parsed else None,
    )
