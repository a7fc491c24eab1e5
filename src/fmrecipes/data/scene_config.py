"""Configuration of the FashionScenes generator (canvas, objects, and the rates of alt-text phenomena)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from .scene_graph import COLOURS
from .textures import BACKGROUNDS


@dataclass
class AltTextRates:
    """How often each web alt-text phenomenon occurs (the defects Altogether's annotators repaired, Sec. 3).

    ``empty`` and ``filename`` are per alt-text; ``missing`` (an object left out), ``brand`` (its brand, a true
    but non-visual fact, stated), ``colour`` (its colour stated at all), ``wrong_colour`` (given stated) and
    ``wrong_class`` are per object of a text alt-text; ``extra`` (a hallucinated object) and ``seo`` (shop
    boilerplate appended) are per text alt-text.
    """

    empty: float = 0.1
    filename: float = 0.1
    missing: float = 0.3
    brand: float = 0.4
    colour: float = 0.7
    wrong_colour: float = 0.15
    wrong_class: float = 0.1
    extra: float = 0.1
    seo: float = 0.3


@dataclass
class SceneConfig:
    """A FashionScenes distribution; every scene is a pure function of (seed, split, index) and this config."""

    size: int = 64
    min_objects: int = 1
    max_objects: int = 3
    small_scale: float = 0.34   # object side as a fraction of the canvas side
    large_scale: float = 0.56
    jitter: float = 0.06        # position jitter, fraction of the canvas side
    min_visible: float = 0.35   # an object must keep this fraction of its pixels unoccluded
    backgrounds: list[str] = field(default_factory=lambda: list(BACKGROUNDS))
    colours: list[str] = field(default_factory=lambda: list(COLOURS))
    n_alt_texts: int = 3
    alt_text: AltTextRates = field(default_factory=AltTextRates)
    fashion_dir: str | None = None  # default: $FMRECIPES_FASHION_MNIST or the Debian package's directory
    seed: int = 0

    def validate(self) -> None:
        """One-line :class:`ConfigError` naming the first bad key."""
        if self.size < 16:
            raise ConfigError(f"data.size={self.size} is too small; use at least 16 pixels")
        if not 1 <= self.min_objects <= self.max_objects <= 5:
            raise ConfigError(f"data.min_objects={self.min_objects}, data.max_objects={self.max_objects}: need "
                              "1 <= min_objects <= max_objects <= 5 (one object per named position)")
        for key, values, known in (("backgrounds", self.backgrounds, BACKGROUNDS), ("colours", self.colours, COLOURS)):
            bad = [v for v in values if v not in known]
            if bad or not values:
                raise ConfigError(f"data.{key}={values!r}: choose a non-empty subset of {', '.join(known)}")
        if len(self.colours) < 2:
            raise ConfigError("data.colours needs at least two colours (a wrong colour must differ from the true one)")
        for name, value in vars(self.alt_text).items():
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"data.alt_text.{name}={value} is not a probability in [0, 1]")
        if self.alt_text.empty + self.alt_text.filename > 1.0:
            raise ConfigError("data.alt_text.empty + data.alt_text.filename must not exceed 1")
        if self.n_alt_texts < 1:
            raise ConfigError(f"data.n_alt_texts={self.n_alt_texts}: need at least one alt-text per image")
