"""The synthetic layered world: procedural clips with exact layers, captions and attributes.

It is the embedded default model's training data and the evaluation ground truth.
One seed gives one clip: a single foreground object over a textured background.

Vocabulary (kept small so a tiny model can learn it):

- foreground colour: red, yellow, green, purple, cyan
- shape: circle, square, triangle, ring; size: small, large
- motion: direction left, right, up, down; speed slow, fast; optionally spinning
  (square, triangle), growing or shrinking, bouncing off the frame edge (always when a
  straight path would leave the frame)
- opacity: opaque, or translucent (0.45-0.8); edges soft over 0.6-2 px (at 32 px)
- background pattern: stripes, checks, dots, waves, gradient, in two of the colours
  blue, white, grey, black, orange, brown, with a fine texture; still, or drifting
  left, right, up or down

Captions are built from these words, e.g. fg "a large red circle moving left fast",
bg "blue and white stripes, drifting up", blend "<fg>, in front of <bg>". The sample's
json keeps every attribute under ``attributes`` = ``{"fg": {...}, "bg": {...}}``
(:class:`FgAttributes`, :class:`BgAttributes`); :func:`render` rebuilds the exact clip
from them, so an evaluation oracle can read them back.

Seed split: training seeds are ``0 <= seed < 1_000_000``, evaluation (held-out) seeds
are ``1_000_000 <= seed < 2**31``; a config whose seeds cross its split is rejected.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from layerflow_model.clip import LayeredClip, LayerPrompts, composite

from .recipe import RecipeConfig
from .sample import LayeredSample

TRAIN_SEED_LIMIT = 1_000_000  # training seeds: [0, 1e6); evaluation seeds: [1e6, 2**31)
MAX_SEED = 2**31 - 1
REFERENCE_SIZE = 32.0  # pixel sizes below are given for a 32-pixel frame and scale with min(H, W)

FG_COLOURS = {
    "red": (0.90, 0.12, 0.10),
    "yellow": (0.95, 0.85, 0.10),
    "green": (0.15, 0.75, 0.20),
    "purple": (0.55, 0.20, 0.80),
    "cyan": (0.10, 0.80, 0.85),
}
SHAPES = ("circle", "square", "triangle", "ring")
SIZES = {"small": (0.12, 0.17), "large": (0.20, 0.27)}  # radius range, fraction of min(H, W)
DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}  # (dx, dy), y down
SPEEDS = {"slow": 0.03, "fast": 0.06}  # fraction of min(H, W) per frame
SCALINGS = {"none": 1.0, "growing": 1.4, "shrinking": 0.7}  # scale reached at the last frame
BG_COLOURS = {
    "blue": (0.15, 0.30, 0.75),
    "white": (0.92, 0.92, 0.90),
    "grey": (0.50, 0.50, 0.52),
    "black": (0.08, 0.08, 0.10),
    "orange": (0.95, 0.55, 0.15),
    "brown": (0.45, 0.28, 0.15),
}
PATTERNS = ("stripes", "checks", "dots", "waves", "gradient")
BG_MOTIONS = ("still", *DIRECTIONS)


####################################################################################
# Seeds
####################################################################################


def seed_split(seed: int) -> Literal["train", "eval"]:
    """Which split a seed belongs to: ``train`` below 1_000_000, ``eval`` from there."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be in [0, {MAX_SEED}], got {seed}")
    return "train" if seed < TRAIN_SEED_LIMIT else "eval"


def check_seed_range(seed: int, count: int, split: Literal["train", "eval"]) -> None:
    """Raise ``ValueError`` unless seeds ``seed .. seed + count - 1`` all lie in ``split``."""
    first, last = seed_split(seed), seed_split(seed + count - 1)
    if first != split or last != split:
        raise ValueError(
            f"seeds {seed}..{seed + count - 1} are not all {split} seeds: training seeds are "
            f"[0, {TRAIN_SEED_LIMIT}), evaluation seeds [{TRAIN_SEED_LIMIT}, {MAX_SEED + 1})"
        )


####################################################################################
# Attributes
####################################################################################


@dataclass(frozen=True)
class FgAttributes:
    """Everything that determines the foreground; lengths in pixels, angles in degrees."""

    colour: str
    shape: str
    size: str
    direction: str
    speed: str
    opacity: float  # 1.0 opaque, else translucent
    scaling: str
    spin: bool
    bounce: bool
    radius: float
    speed_px: float  # per frame
    edge_px: float  # width of the soft edge
    start: tuple[float, float]  # (x, y) centre at frame 0
    angle: float  # at frame 0
    spin_per_frame: float
    shade: float  # light direction over the object, degrees

    @property
    def translucent(self) -> bool:
        return self.opacity < 1.0


@dataclass(frozen=True)
class BgAttributes:
    """Everything that determines the background; lengths in pixels, angles in degrees."""

    pattern: str
    colours: tuple[str, str]
    motion: str
    speed_px: float  # drift per frame, 0 when still
    period: float
    angle: float
    phase: tuple[float, float]
    texture: tuple[tuple[float, float, float, float], ...]  # (amplitude, period, angle, phase) gratings


def sample_attributes(rng: np.random.Generator, frames: int, height: int, width: int
                      ) -> tuple[FgAttributes, BgAttributes]:
    """Draw one world's attributes for a (frames, height, width) clip."""
    scale = min(height, width)
    px = scale / REFERENCE_SIZE
    shape = str(rng.choice(SHAPES))
    size = str(rng.choice(list(SIZES)))
    direction = str(rng.choice(list(DIRECTIONS)))
    speed = str(rng.choice(list(SPEEDS)))
    radius = float(rng.uniform(*SIZES[size]) * scale)
    speed_px = SPEEDS[speed] * scale
    scaling = str(rng.choice(list(SCALINGS), p=[0.6, 0.2, 0.2]))
    wall_radius = _wall_radius(radius, scaling)
    along_extent = width if DIRECTIONS[direction][0] else height
    travel = speed_px * (frames - 1)
    can_bounce = along_extent > 2 * wall_radius + speed_px
    would_leave = travel > along_extent - wall_radius  # a straight path would leave the frame
    bounce = can_bounce and (would_leave or bool(rng.random() < 0.3))
    spin = shape in ("square", "triangle") and bool(rng.random() < 0.4)
    fg = FgAttributes(
        colour=str(rng.choice(list(FG_COLOURS))),
        shape=shape,
        size=size,
        direction=direction,
        speed=speed,
        opacity=1.0 if rng.random() < 0.7 else round(float(rng.uniform(0.45, 0.8)), 3),
        scaling=scaling,
        spin=spin,
        bounce=bounce,
        radius=radius,
        speed_px=speed_px,
        edge_px=float(rng.uniform(0.6, 2.0) * px),
        start=_start_position(rng, direction, travel, wall_radius, bounce, width, height),
        angle=float(rng.uniform(0, 360)) if shape in ("square", "triangle") else 0.0,
        spin_per_frame=float(rng.choice([-1, 1]) * rng.uniform(8, 20)) if spin else 0.0,
        shade=float(rng.uniform(0, 360)),
    )
    motion = str(rng.choice(BG_MOTIONS, p=[0.4, 0.15, 0.15, 0.15, 0.15]))
    bg = BgAttributes(
        pattern=str(rng.choice(PATTERNS)),
        colours=tuple(str(c) for c in rng.choice(list(BG_COLOURS), size=2, replace=False)),
        motion=motion,
        speed_px=0.0 if motion == "still" else float(rng.uniform(0.02, 0.04) * scale),
        period=float(rng.uniform(0.2, 0.4) * scale),
        angle=float(rng.choice([0.0, 45.0, 90.0, 135.0])),
        phase=(float(rng.uniform(0, 1)), float(rng.uniform(0, 1))),
        texture=tuple(
            (float(rng.uniform(0.01, 0.03)), float(rng.uniform(3, 8) * px), float(rng.uniform(0, 180)),
             float(rng.uniform(0, 1)))
            for _ in range(3)
        ),
    )
    return fg, bg


def _wall_radius(radius: float, scaling: str) -> float:
    """How far the centre stays from a wall it bounces off: the largest radius over the clip."""
    return radius * max(1.0, SCALINGS[scaling])


def _start_position(rng: np.random.Generator, direction: str, travel: float, wall_radius: float, bounce: bool,
                    width: int, height: int) -> tuple[float, float]:
    """Centre at frame 0: a straight path inside the frame, or (bounce) a start near the wall it heads to."""
    dx, dy = DIRECTIONS[direction]
    along_extent, across_extent = (width, height) if dx else (height, width)
    sign = dx or dy
    if bounce:
        gap = rng.uniform(0.1, 0.4) * travel  # distance to the wall: the object reaches it mid-clip
        along = along_extent - wall_radius - gap if sign > 0 else wall_radius + gap
        along = float(np.clip(along, wall_radius, along_extent - wall_radius))
    else:  # the path's midpoint keeps the centre at least half a radius inside the frame, if it can
        low, high = wall_radius / 2 + travel / 2, along_extent - wall_radius / 2 - travel / 2
        middle = rng.uniform(low, high) if low < high else along_extent / 2
        along = float(middle - sign * travel / 2)
    across = float(rng.uniform(0.3, 0.7) * across_extent)
    return (along, across) if dx else (across, along)


####################################################################################
# Rendering
####################################################################################


def _fold(position: np.ndarray, low: float, high: float) -> np.ndarray:
    """Reflect positions into [low, high], as an object bouncing between two walls."""
    span = high - low
    if span <= 0:
        return position
    u = np.mod(position - low, 2 * span)
    return low + np.where(u <= span, u, 2 * span - u)


def _shape_sdf(shape: str, x: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
    """Signed distance (negative inside) to a shape of radius ``r`` centred at the origin."""
    if shape == "circle":
        return np.hypot(x, y) - r
    if shape == "ring":
        return np.abs(np.hypot(x, y) - 0.7 * r) - 0.3 * r
    if shape == "square":
        half = 0.85 * r
        qx, qy = np.abs(x) - half, np.abs(y) - half
        return np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)
    if shape == "triangle":  # equilateral, pointing up (image y grows downward)
        k = math.sqrt(3.0)
        px, py = np.abs(x) - r, -y + r / k
        fold = px + k * py > 0
        px, py = np.where(fold, (px - k * py) / 2, px), np.where(fold, (-k * px - py) / 2, py)
        px = px - np.clip(px, -2 * r, 0)
        return -np.hypot(px, py) * np.sign(py)
    raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")


def render_foreground(fg: FgAttributes, frames: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Foreground colour (T, H, W, 3) straight, 0 where transparent, and alpha (T, H, W), in [0, 1]."""
    t = np.arange(frames, dtype=np.float64)[:, None, None]  # (T, 1, 1)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5  # pixel centres, (H, W)
    dx, dy = DIRECTIONS[fg.direction]
    cx = fg.start[0] + dx * fg.speed_px * t
    cy = fg.start[1] + dy * fg.speed_px * t
    scale = 1.0 + (SCALINGS[fg.scaling] - 1.0) * t / max(frames - 1, 1)  # (T, 1, 1)
    if fg.bounce:
        wall = _wall_radius(fg.radius, fg.scaling)
        cx, cy = _fold(cx, wall, width - wall), _fold(cy, wall, height - wall)
    theta = np.deg2rad(fg.angle + fg.spin_per_frame * t)
    ux, uy = x - cx, y - cy  # (T, H, W), object-centred
    lx = (np.cos(theta) * ux + np.sin(theta) * uy) / scale  # rotate into the object's frame, unscale
    ly = (-np.sin(theta) * ux + np.cos(theta) * uy) / scale
    sdf = _shape_sdf(fg.shape, lx, ly, fg.radius) * scale  # pixels
    alpha = fg.opacity * np.clip(0.5 - sdf / fg.edge_px, 0.0, 1.0)  # (T, H, W)
    light = np.deg2rad(fg.shade)
    shade = np.clip(0.5 + 0.5 * (np.cos(light) * lx + np.sin(light) * ly) / fg.radius, 0, 1)
    colour = np.asarray(FG_COLOURS[fg.colour]) * (0.8 + 0.2 * shade[..., None])  # (T, H, W, 3)
    colour = np.where(alpha[..., None] > 0, colour, 0.0)
    return colour.astype(np.float32), alpha.astype(np.float32)


def _grating(x: np.ndarray, y: np.ndarray, period: float, angle: float, phase: float) -> np.ndarray:
    a = np.deg2rad(angle)
    return np.sin(2 * np.pi * ((x * np.cos(a) + y * np.sin(a)) / period + phase))


def render_background(bg: BgAttributes, frames: int, height: int, width: int) -> np.ndarray:
    """Background (T, H, W, 3) in [0, 1]: a two-colour pattern with texture, drifting as a whole."""
    t = np.arange(frames, dtype=np.float64)[:, None, None]
    y, x = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    dx, dy = DIRECTIONS.get(bg.motion, (0.0, 0.0))
    x, y = x - dx * bg.speed_px * t, y - dy * bg.speed_px * t  # content moves with the drift, (T, H, W)
    p, (ph0, ph1) = bg.period, bg.phase
    if bg.pattern == "stripes":
        mix = np.clip(0.5 + 2.0 * _grating(x, y, p, bg.angle, ph0), 0, 1)
    elif bg.pattern == "checks":
        mix = np.clip(0.5 + 3.0 * _grating(x, y, p, 0, ph0) * _grating(x, y, p, 90, ph1), 0, 1)
    elif bg.pattern == "dots":
        ox, oy = np.mod(x / p + ph0, 1.0) - 0.5, np.mod(y / p + ph1, 1.0) - 0.5
        mix = np.clip(0.5 - (np.hypot(ox, oy) * p - 0.25 * p), 0, 1)
    elif bg.pattern == "waves":
        mix = 0.5 + 0.5 * np.sin(2 * np.pi * ((y + 0.15 * p * np.sin(2 * np.pi * x / (2 * p) + ph0)) / p + ph1))
    elif bg.pattern == "gradient":
        mix = 0.5 + 0.5 * _grating(x, y, 2.5 * min(height, width), bg.angle, ph0)
    else:
        raise ValueError(f"pattern must be one of {PATTERNS}, got {bg.pattern!r}")
    first, second = (np.asarray(BG_COLOURS[c]) for c in bg.colours)
    image = first * (1 - mix[..., None]) + second * mix[..., None]  # (T, H, W, 3)
    texture = sum(a * _grating(x, y, period, angle, phase) for a, period, angle, phase in bg.texture)
    return np.clip(image + texture[..., None], 0, 1).astype(np.float32)


def render(fg: FgAttributes, bg: BgAttributes, frames: int, height: int, width: int) -> LayeredClip:
    """The exact layered clip for given attributes: fg, alpha, bg and their composite blend."""
    colour, alpha = render_foreground(fg, frames, height, width)
    background = render_background(bg, frames, height, width)
    return LayeredClip(fg=colour, alpha=alpha, bg=background, blend=composite(colour, alpha, background))


####################################################################################
# Captions
####################################################################################


def describe_foreground(fg: FgAttributes) -> str:
    """E.g. ``"a translucent small red circle moving left slowly, bouncing"``."""
    words = ["a", "translucent" if fg.translucent else "", fg.size, fg.colour, fg.shape, "moving", fg.direction,
             "slowly" if fg.speed == "slow" else "fast"]
    extras = [e for e, on in (("spinning", fg.spin), (fg.scaling, fg.scaling != "none"), ("bouncing", fg.bounce)) if on]
    return ", ".join([" ".join(w for w in words if w), *extras])


def describe_background(bg: BgAttributes) -> str:
    """E.g. ``"blue and white stripes, drifting up"`` or ``"grey and black dots, still"``."""
    motion = "still" if bg.motion == "still" else f"drifting {bg.motion}"
    return f"{bg.colours[0]} and {bg.colours[1]} {bg.pattern}, {motion}"


def describe(fg: FgAttributes, bg: BgAttributes) -> LayerPrompts:
    """Per-layer captions built from the attributes; blend is ``"<fg>, in front of <bg>"``."""
    fg_text, bg_text = describe_foreground(fg), describe_background(bg)
    return LayerPrompts(fg=fg_text, bg=bg_text, blend=f"{fg_text}, in front of {bg_text}")


####################################################################################
# Recipe
####################################################################################


def attributes_to_json(fg: FgAttributes, bg: BgAttributes) -> dict:
    """The ``attributes`` json field: ``{"fg": {...}, "bg": {...}}`` (tuples become lists)."""
    return {"fg": asdict(fg), "bg": asdict(bg)}


def attributes_from_json(attributes: dict) -> tuple[FgAttributes, BgAttributes]:
    """Inverse of :func:`attributes_to_json`, e.g. from a shard sample's json."""
    fg, bg = dict(attributes["fg"]), dict(attributes["bg"])
    fg["start"] = tuple(fg["start"])
    bg["colours"], bg["phase"] = tuple(bg["colours"]), tuple(bg["phase"])
    bg["texture"] = tuple(tuple(g) for g in bg["texture"])
    return FgAttributes(**fg), BgAttributes(**bg)


class SyntheticConfig(RecipeConfig):
    """Seeds ``seed .. seed + count - 1`` of one split, at a given clip shape."""

    recipe: Literal["synthetic"] = "synthetic"
    seed: int = Field(default=0, ge=0, le=MAX_SEED, description="first seed")
    count: int = Field(default=1000, gt=0, description="number of clips (one per seed)")
    split: Literal["train", "eval"] = Field(default="train", description="train: seeds < 1e6; eval: seeds >= 1e6")
    frames: int = Field(default=8, ge=1, description="frames per clip")
    height: int = Field(default=32, ge=8, description="height in pixels")
    width: int = Field(default=32, ge=8, description="width in pixels")
    fps: float = Field(default=8.0, gt=0)
    licence: str = "CC0-1.0: procedural clips from the LayerFlow synthetic world"

    @model_validator(mode="after")
    def _seeds_in_split(self) -> "SyntheticConfig":
        check_seed_range(self.seed, self.count, self.split)
        return self


def synthetic_sample(seed: int, config: SyntheticConfig) -> LayeredSample:
    """The clip of one seed (deterministic), with captions and attributes."""
    rng = np.random.default_rng(seed)
    fg, bg = sample_attributes(rng, config.frames, config.height, config.width)
    return LayeredSample(
        key=f"synthetic-{seed:010d}",
        clip=render(fg, bg, config.frames, config.height, config.width),
        prompts=describe(fg, bg),
        recipe=SyntheticRecipe.name,
        source=f"synthetic:seed={seed}",
        fps=config.fps,
        static=False,
        licence=config.licence,
        extra={"seed": seed, "split": seed_split(seed), "attributes": attributes_to_json(fg, bg)},
    )


def synthetic_samples(count: int, frames: int, height: int, width: int, first_seed: int,
                      split: Literal["train", "eval"]) -> list[LayeredSample]:
    """``count`` clips of seeds ``first_seed ..``, frames x height x width; ValueError unless all lie in ``split``."""
    check_seed_range(first_seed, count, split)  # the plain message, before the config's validation wraps it
    config = SyntheticConfig(split=split, seed=first_seed, count=count, frames=frames, height=height, width=width)
    return [synthetic_sample(seed, config) for seed in range(first_seed, first_seed + count)]


def held_out_samples(count: int, frames: int, height: int, width: int,
                     first_seed: int = TRAIN_SEED_LIMIT) -> list[LayeredSample]:
    """``count`` clips of evaluation seeds ``first_seed ..`` (never trained on), frames x height x width."""
    return synthetic_samples(count, frames, height, width, first_seed, split="eval")


class SyntheticRecipe:
    """Recipe ``synthetic``: one item per seed."""

    name: ClassVar[str] = "synthetic"

    def __init__(self, config: SyntheticConfig) -> None:
        self.config = config

    def plan(self) -> list[str]:
        return [str(s) for s in range(self.config.seed, self.config.seed + self.config.count)]

    def make(self, item: str) -> list[LayeredSample]:
        return [synthetic_sample(int(item), self.config)]
