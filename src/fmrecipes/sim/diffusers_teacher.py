"""A local diffusers ``UNet2DModel`` as the teacher (``images.teacher_path=DIR``): an epsilon-prediction DDPM
trained elsewhere, wrapped as an EDM denoiser by :class:`~fmrecipes.sim.edm.DDPMEpsDenoiser` (SIM notes A.4).

``DIR`` is the UNet's directory (``config.json`` + weights) or a pipeline directory holding ``unet/`` and
``scheduler/``. The DDPM table comes from ``scheduler_config.json`` (in ``scheduler/`` or beside the UNet); without
one, diffusers' defaults (1000 linear betas from 1e-4 to 0.02) are used, as ``DDPMScheduler()`` has them.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import FmError
from .edm import DDPMEpsDenoiser

DEFAULT_SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02, "beta_schedule": "linear",
                    "prediction_type": "epsilon"}


def _schedule(root: Path, unet_dir: Path) -> dict:
    for path in (root / "scheduler" / "scheduler_config.json", unet_dir / "scheduler_config.json"):
        if path.is_file():
            found = {**DEFAULT_SCHEDULE, **json.loads(path.read_text())}
            break
    else:
        found = dict(DEFAULT_SCHEDULE)
    if found["beta_schedule"] != "linear" or found.get("trained_betas"):
        raise FmError(f"teacher {root}: the scheduler's beta_schedule is {found['beta_schedule']!r}; the DDPM "
                      "wrapper reads a linear one")
    if found["prediction_type"] != "epsilon":
        raise FmError(f"teacher {root} predicts {found['prediction_type']!r}; the DDPM wrapper reads epsilon")
    return found


def load_diffusers_teacher(path: str | Path, shape: tuple[int, int, int], num_classes: int) -> DDPMEpsDenoiser:
    """The UNet at ``path`` as an EDM denoiser for images of ``shape`` (C, H, W); a one-line error when it is not a
    local ``UNet2DModel``, predicts something other than epsilon, or was trained on other image sizes, channels
    or classes."""
    root = Path(path)
    unet_dir = root / "unet" if (root / "unet" / "config.json").is_file() else root
    if not (unet_dir / "config.json").is_file():
        raise FmError(f"teacher {root} is not a diffusers UNet2DModel directory (no config.json, no unet/)")
    config = json.loads((unet_dir / "config.json").read_text())
    if config.get("_class_name") != "UNet2DModel":
        raise FmError(f"teacher {unet_dir} holds a {config.get('_class_name')!r}, not a UNet2DModel")
    from diffusers import UNet2DModel

    try:
        unet = UNet2DModel.from_pretrained(str(unet_dir), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise FmError(f"cannot load the UNet2DModel in {unet_dir}: {str(exc).splitlines()[0]}") from None
    c, h, _ = shape
    size = unet.config.sample_size
    size = size[0] if isinstance(size, (list, tuple)) else size
    if (unet.config.in_channels, size) != (c, h):
        raise FmError(f"teacher {unet_dir} is for {unet.config.in_channels}-channel {size}px images; the data is "
                      f"{c}-channel {h}px (set images.resolution / images.channels to match)")
    if (unet.config.num_class_embeds or 0) != num_classes:
        raise FmError(f"teacher {unet_dir} has {unet.config.num_class_embeds or 0} class embeddings; the run needs "
                      f"{num_classes} (images.conditional)")
    s = _schedule(root, unet_dir)
    return DDPMEpsDenoiser(unet, c, s["num_train_timesteps"], s["beta_start"], s["beta_end"])
