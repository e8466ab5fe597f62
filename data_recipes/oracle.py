"""Prompt adherence on the synthetic world: read the prompted attributes back from layers.

The synthetic recipe (:mod:`data_recipes.synthetic`) records each clip's attributes; its
captions name them. :class:`SyntheticOracle` reads four of them back from a (generated)
layered clip, so generated layers can be checked against the prompt they were made from:

- ``colour`` (fg): the palette colour (``FG_COLOURS``) closest in hue to the mean
  foreground colour (cosine similarity of RGB, so the object's shading does not matter);
- ``shape`` (fg): the shape whose template, rendered by the recipe's own renderer at the
  matte's centroid, with the radius its area implies, at the best of all rotations,
  differs least from the matte (opacity normalised away);
- ``direction`` (fg): the axis along which the matte's centroid moves most, signed by its
  first clear step (a bouncing object reverses later);
- ``pattern`` (bg): the majority of the 5 nearest training-seed backgrounds in a small
  feature space (colour contrast along the main colour axis: saturation, balance,
  orientation coherence, gradient scale).

A reading is ``None`` when the layer shows nothing to read (an empty matte, a still matte
for the direction); :func:`accuracy` counts ``None`` as wrong.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from layerflow_model.clip import LayeredClip

from .synthetic import (
    FG_COLOURS,
    PATTERNS,
    FgAttributes,
    render_background,
    render_foreground,
    sample_attributes,
)

ATTRIBUTES = ("colour", "shape", "direction", "pattern")
SHAPE_AREA = {"circle": math.pi, "square": 1.7**2, "triangle": math.sqrt(3.0), "ring": 0.84 * math.pi}  # area / r^2
SHAPE_SYMMETRY = {"circle": 1, "ring": 1, "square": 90, "triangle": 120}  # degrees after which a shape repeats
ANGLE_STEP = 5  # degrees between tried rotations
MIN_OPACITY = 0.1  # a matte whose peak is below this shows no object
MIN_STEP_PX = 0.1  # smallest centroid step that counts as motion
NEIGHBOURS = 5


def truth_of(attributes: Mapping) -> dict[str, str]:
    """The four attributes of a sample's ``attributes`` json (``{"fg": {...}, "bg": {...}}``)."""
    fg, bg = attributes["fg"], attributes["bg"]
    return {"colour": fg["colour"], "shape": fg["shape"], "direction": fg["direction"], "pattern": bg["pattern"]}


####################################################################################
# Foreground: colour, shape, direction
####################################################################################


def _normalised_matte(alpha: np.ndarray) -> np.ndarray | None:
    """alpha (T, H, W) in [0, 1] -> alpha / its peak (opacity removed), or None when nothing is there."""
    peak = float(alpha.max())
    return None if peak < MIN_OPACITY else alpha / peak


def read_colour(fg: np.ndarray, alpha: np.ndarray) -> str | None:
    """fg (T, H, W, 3) straight colour and alpha (T, H, W), in [0, 1] -> a ``FG_COLOURS`` name or None."""
    matte = _normalised_matte(alpha)
    if matte is None:
        return None
    mean = fg[matte > 0.5].mean(axis=0)  # (3,)
    if np.linalg.norm(mean) < 1e-6:
        return None
    names = list(FG_COLOURS)
    palette = np.array([FG_COLOURS[n] for n in names])  # (K, 3)
    cosine = palette @ mean / (np.linalg.norm(palette, axis=1) * np.linalg.norm(mean))
    return names[int(np.argmax(cosine))]


def _centroids(matte: np.ndarray) -> np.ndarray:
    """matte (T, H, W) -> (T, 2) alpha-weighted centres (x, y) in pixel-centre coordinates; NaN when empty."""
    height, width = matte.shape[1:]
    y, x = np.mgrid[0:height, 0:width] + 0.5
    mass = matte.sum(axis=(1, 2))  # (T,)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([(matte * x).sum(axis=(1, 2)) / mass, (matte * y).sum(axis=(1, 2)) / mass], axis=1)


def _template_error(shape: str, centre: np.ndarray, area: float, frame: np.ndarray) -> float:
    """Least mean |template - frame| over rotations of ``shape`` at ``centre`` with area ``area``."""
    height, width = frame.shape
    angles = max(1, SHAPE_SYMMETRY[shape] // ANGLE_STEP)
    hypothesis = FgAttributes(
        colour="red", shape=shape, size="small", direction="right", speed="slow", opacity=1.0, scaling="none",
        spin=False, bounce=False, radius=math.sqrt(area / SHAPE_AREA[shape]), speed_px=0.0, edge_px=1.0,
        start=(float(centre[0]), float(centre[1])), angle=0.0, spin_per_frame=float(ANGLE_STEP), shade=0.0,
    )
    _, templates = render_foreground(hypothesis, angles, height, width)  # (angles, H, W): one rotation each
    return float(np.abs(templates - frame).mean(axis=(1, 2)).min())


def read_shape(alpha: np.ndarray) -> str | None:
    """alpha (T, H, W) in [0, 1] -> one of the synthetic ``SHAPES``, or None when the matte is empty.

    Frames whose matte touches the image border (a clipped object) are skipped unless all do.
    """
    matte = _normalised_matte(alpha)
    if matte is None:
        return None
    solid = matte > 0.5
    present = solid.any(axis=(1, 2))
    inside = present & ~(solid[:, 0].any(axis=1) | solid[:, -1].any(axis=1) | solid[:, :, 0].any(axis=1)
                         | solid[:, :, -1].any(axis=1))
    frames = np.flatnonzero(inside if inside.any() else present)
    centres = _centroids(matte)
    errors = {
        shape: sum(_template_error(shape, centres[t], float(matte[t].sum()), matte[t]) for t in frames)
        for shape in SHAPE_SYMMETRY
    }
    return min(errors, key=errors.get)


def matte_travel(alpha: np.ndarray) -> float:
    """alpha (T, H, W) in [0, 1] -> how far (pixels) the matte's alpha-weighted centre moves from the first
    frame to the last, in [0, inf); NaN when either frame's matte is empty."""
    centres = _centroids(alpha)  # (T, 2)
    return float(np.hypot(*(centres[-1] - centres[0])))


def read_direction(alpha: np.ndarray) -> str | None:
    """alpha (T, H, W) in [0, 1] -> left, right, up or down (image y grows downward), or None."""
    matte = _normalised_matte(alpha)
    if matte is None:
        return None
    centres = _centroids(matte)
    steps = np.diff(centres[~np.isnan(centres).any(axis=1)], axis=0)  # (S, 2), pixels per frame
    if len(steps) == 0:
        return None
    axis = int(np.abs(steps).sum(axis=0).argmax())  # 0: x, 1: y
    clear = steps[np.abs(steps[:, axis]) > MIN_STEP_PX, axis]
    if len(clear) == 0:
        return None
    positive = clear[0] > 0
    return ("right" if positive else "left") if axis == 0 else ("down" if positive else "up")


####################################################################################
# Background: pattern
####################################################################################


def pattern_features(bg: np.ndarray) -> np.ndarray:
    """bg (T, H, W, 3) in [0, 1] -> (4,) features, the same for either order of the two colours.

    The colours are projected on their first principal axis and stretched to [0, 1] between
    the 2nd and 98th percentiles (``m``). Features: the fraction of near-saturated ``m``, the
    balance of the two colours, the coherence of the gradients' structure tensor (1 for a
    pattern varying along one direction, 0 for an isotropic one) and the mean gradient
    magnitude times min(H, W) (patterns scale with the frame).
    """
    pixels = bg.reshape(-1, 3).astype(np.float64)
    centred = pixels - pixels.mean(axis=0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]  # (3,), main colour axis
    m = (centred @ axis).reshape(bg.shape[:3])  # (T, H, W)
    low, high = np.percentile(m, [2, 98])
    m = np.clip((m - low) / max(high - low, 1e-6), 0.0, 1.0)
    gy, gx = np.gradient(m, axis=(1, 2))  # (T, H, W) each
    jxx, jyy, jxy = (gx * gx).sum(), (gy * gy).sum(), (gx * gy).sum()
    coherence = math.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / max(jxx + jyy, 1e-12)
    above = float((m > 0.5).mean())
    return np.array([
        float((np.abs(m - 0.5) > 0.4).mean()),
        min(above, 1.0 - above),
        coherence,
        float(np.hypot(gx, gy).mean() * min(bg.shape[1:3])),
    ])  # fmt: skip


class PatternReader:
    """Nearest-neighbour pattern classifier over reference backgrounds of training seeds 0 .. count-1.

    The references are rendered by the recipe at the clip shape to be read, so no
    evaluation seed is ever used to build the reader.
    """

    def __init__(self, frames: int, height: int, width: int, count: int = 200) -> None:
        labels, features = [], []
        for seed in range(count):
            _, bg = sample_attributes(np.random.default_rng(seed), frames, height, width)
            labels.append(bg.pattern)
            features.append(pattern_features(render_background(bg, frames, height, width)))
        self.labels = np.array(labels)
        features = np.stack(features)  # (N, 4)
        self.scale = features.std(axis=0) + 1e-6
        self.features = features / self.scale

    def read(self, bg: np.ndarray) -> str:
        """bg (T, H, W, 3) in [0, 1] -> one of the synthetic ``PATTERNS``."""
        distance = np.linalg.norm(self.features - pattern_features(bg) / self.scale, axis=1)
        votes = list(self.labels[np.argsort(distance)[:NEIGHBOURS]])
        return max(PATTERNS, key=votes.count)


####################################################################################
# Clips and accuracy
####################################################################################


class SyntheticOracle:
    """Reads :data:`ATTRIBUTES` back from clips of one shape (frames, height, width)."""

    def __init__(self, frames: int, height: int, width: int, reference_count: int = 200) -> None:
        self.pattern_reader = PatternReader(frames, height, width, reference_count)

    def read(self, clip: LayeredClip) -> dict[str, str | None]:
        """A clip with fg, alpha and bg -> ``{attribute: value or None}``."""
        clip.require("fg", "alpha", "bg", purpose="reading attributes back")
        return {
            "colour": read_colour(clip.fg, clip.alpha),
            "shape": read_shape(clip.alpha),
            "direction": read_direction(clip.alpha),
            "pattern": self.pattern_reader.read(clip.bg),
        }


def accuracy(readings: Iterable[Mapping[str, str | None]], truths: Iterable[Mapping[str, str]]) -> dict[str, float]:
    """Fraction of clips whose reading equals the truth, per attribute, in [0, 1]; None counts as wrong.

    Raises ``ValueError`` for no clips or lists of different lengths.
    """
    readings, truths = list(readings), list(truths)
    if not truths or len(readings) != len(truths):
        raise ValueError(f"accuracy needs one reading per truth, got {len(readings)} readings and {len(truths)} truths")
    return {name: sum(r[name] == t[name] for r, t in zip(readings, truths)) / len(truths) for name in ATTRIBUTES}
