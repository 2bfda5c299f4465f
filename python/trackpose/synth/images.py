"""2D synthetic images: star-shaped nuclei and cells, their appearance and camera noise (``nuclei_image``,
``cells_image``, ``sized_image``, ``dataset``: the built-in model's training data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional, Sequence

import numpy as np
from scipy import ndimage

from ..errors import InputError

#: Object kinds ``dataset`` can generate.
KINDS = ("nuclei", "cells", "mixed")


# ---------------------------------------------------------------------------------------------------- shapes

@dataclass
class Shape:
    """A star-shaped object: ellipse (semi-axes ``a`` along the rotated x axis, ``b``) with a radial modulation."""

    cy: float
    cx: float
    a: float
    b: float
    angle: float
    harmonics: np.ndarray     # (k, 3): order, amplitude, phase
    bumps: np.ndarray         # (m, 3): angle, height, width (radians)

    @property
    def reach(self) -> float:
        """Upper bound of the outline's distance from the centre (pixels)."""
        modulation = 1 + np.abs(self.harmonics[:, 1]).sum() + (self.bumps[:, 1].sum() if len(self.bumps) else 0)
        return max(self.a, self.b) * modulation + 1

    def distance(self, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        """Normalised distance ``d`` (0 at the centre, 1 on the outline) at pixel coordinates yy, xx."""
        dy, dx = yy - self.cy, xx - self.cx
        c, s = np.cos(self.angle), np.sin(self.angle)
        u = (c * dx + s * dy) / self.a
        v = (-s * dx + c * dy) / self.b
        rho = np.sqrt(u * u + v * v)
        # cos(k theta + phase) = Re(z**k e^(i phase)) with z = e^(i theta): powers by multiplication, no trig
        z = (u + 1j * v) / np.maximum(rho, 1e-6)
        power = np.ones_like(z)
        modulation = np.ones_like(rho)
        order_done = 0
        for order, amplitude, phase in self.harmonics:
            while order_done < order:
                power = power * z
                order_done += 1
            modulation += amplitude * (power * np.exp(1j * phase)).real
        for centre, height, width in self.bumps:
            # periodic Gaussian-like bump of angular width ``width`` (von Mises profile)
            cos_offset = (z * np.exp(-1j * centre)).real
            modulation += height * np.exp((cos_offset - 1) / width ** 2)
        return rho / np.maximum(modulation, 0.3)


def random_shape(rng: np.random.Generator, cy: float, cx: float, diameter: float, elongation: float,
                  irregularity: float, protrusions: float) -> Shape:
    """A random shape of equivalent diameter about ``diameter`` pixels.

    elongation : largest axis ratio drawn (1 = circles only); irregularity : scale of the harmonic amplitudes;
    protrusions : probability of each of up to three thin bumps.
    """
    ratio = 1.0 + (elongation - 1.0) * rng.random() ** 2
    radius = diameter / 2
    a, b = radius * np.sqrt(ratio), radius / np.sqrt(ratio)
    orders = np.arange(2, 7)
    amplitudes = irregularity * rng.random(len(orders)) / orders ** 1.2
    harmonics = np.stack([orders, amplitudes, rng.uniform(0, 2 * np.pi, len(orders))], axis=1)
    bumps = [(rng.uniform(0, 2 * np.pi), rng.uniform(0.4, 1.2), rng.uniform(0.08, 0.2))
             for _ in range(3) if rng.random() < protrusions]
    return Shape(cy, cx, a, b, rng.uniform(0, np.pi), harmonics, np.array(bumps, float).reshape(-1, 3))


def _place(rng: np.random.Generator, shape: tuple[int, int], n: int, diameter_range: Sequence[float],
           spacing: float, **shape_kw) -> list[Shape]:
    """Up to ``n`` shapes whose centres are at least ``spacing`` x (sum of radii) apart (rejection sampling)."""
    ly, lx = shape
    lo, hi = diameter_range
    shapes, centres, radii = [], np.zeros((0, 2)), np.zeros(0)
    for _ in range(n * 30):
        if len(shapes) == n:
            break
        diameter = np.exp(rng.uniform(np.log(lo), np.log(hi)))
        cy, cx = rng.uniform(-0.2 * diameter, ly + 0.2 * diameter), rng.uniform(-0.2 * diameter, lx + 0.2 * diameter)
        if len(shapes):
            gap = np.hypot(centres[:, 0] - cy, centres[:, 1] - cx) - spacing * (radii + diameter / 2)
            if gap.min() < 0:
                continue
        shapes.append(random_shape(rng, cy, cx, diameter, **shape_kw))
        centres = np.vstack([centres, [cy, cx]])
        radii = np.append(radii, diameter / 2)
    return shapes


def _rasterise(shapes: Sequence[Shape], shape: tuple[int, int], min_area: int):
    """Labels (each pixel to the object of smallest normalised distance < 1) and that distance (inf outside).

    Labels are reduced to their largest connected component, objects under ``min_area`` pixels are dropped, and
    the rest are numbered 1..n in placement order. Returns (labels, distance, shapes behind labels 1..n).
    """
    ly, lx = shape
    labels = np.zeros(shape, np.int32)
    best = np.full(shape, np.inf, np.float32)
    for index, s in enumerate(shapes, start=1):
        reach = s.reach
        y0, y1 = max(0, int(s.cy - reach)), min(ly, int(np.ceil(s.cy + reach)) + 1)
        x0, x1 = max(0, int(s.cx - reach)), min(lx, int(np.ceil(s.cx + reach)) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        d = s.distance(yy, xx).astype(np.float32)
        window = best[y0:y1, x0:x1]
        win = (d < 1) & (d < window)
        window[win] = d[win]
        labels[y0:y1, x0:x1][win] = index
    labels, best, kept = clean_labels(labels, best, min_area)
    return labels, best, [shapes[k - 1] for k in kept]


def clean_labels(labels: np.ndarray, distance: np.ndarray, min_area: int):
    out = np.zeros_like(labels)
    kept = []
    next_id = 1
    for index, region in enumerate(ndimage.find_objects(labels), start=1):
        if region is None:
            continue
        own = labels[region] == index
        pieces, count = ndimage.label(own)
        if count > 1:
            sizes = np.bincount(pieces.ravel())[1:]
            own = pieces == 1 + int(np.argmax(sizes))
        if own.sum() < min_area:
            continue
        out[region][own] = next_id
        kept.append(index)
        next_id += 1
    distance = np.where(out > 0, distance, np.inf).astype(np.float32)
    return out, distance, kept


# ------------------------------------------------------------------------------------------------ appearance

def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field with correlation length ``sigma`` pixels."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    return field / max(float(field.std()), 1e-6)


def slow_field(rng: np.random.Generator, shape: tuple[int, int], frequencies: int = 3) -> np.ndarray:
    """Smooth large-scale variation in about [-1, 1]: a random sum of low-frequency cosines (separable, cheap)."""
    def basis(length):
        t = np.linspace(0, np.pi, length)[:, None]
        return np.cos(t * np.arange(1, frequencies + 1)[None, :] + rng.uniform(0, 2 * np.pi, frequencies))
    coefficients = rng.standard_normal((frequencies, frequencies)) / frequencies
    field = basis(shape[0]) @ coefficients @ basis(shape[1]).T
    return np.clip(field, -1, 1).astype(np.float32)


def _object_values(rng: np.random.Generator, labels: np.ndarray, sigma: float, dim_fraction: float) -> np.ndarray:
    """Per-label brightness (index 0 = background = 0): log-normal, with a fraction of dim objects."""
    n = int(labels.max())
    values = np.exp(rng.normal(0, sigma, n + 1)).astype(np.float32)
    values[1:][rng.random(n) < dim_fraction] *= rng.uniform(0.25, 0.5)
    values[0] = 0
    return values


def _render_nuclei(rng: np.random.Generator, labels: np.ndarray, distance: np.ndarray,
                   mean_diameter: float) -> np.ndarray:
    """Noise-free nuclear stain (peak about 1): domed, textured, varied brightness; a few condensed bright ones."""
    values = _object_values(rng, labels, sigma=rng.uniform(0.15, 0.5), dim_fraction=rng.uniform(0, 0.15))
    bright = rng.random(len(values)) < 0.04  # condensed (mitotic / apoptotic) nuclei
    values[bright] *= rng.uniform(1.5, 2.5)
    d = np.where(labels > 0, distance, 1.0)
    dome = 1 - rng.uniform(0.1, 0.6) * d ** rng.uniform(2, 6)
    strength = rng.uniform(0.05, 0.3)
    texture = 1 + strength * smooth_noise(rng, labels.shape, rng.uniform(0.7, 0.12 * mean_diameter + 0.8))
    if rng.random() < 0.5:  # nucleoli: a few darker blobs
        depth = rng.uniform(0.1, 0.4)
        texture -= depth * np.clip(smooth_noise(rng, labels.shape, 0.1 * mean_diameter + 1) - 1.5, 0, None)
    signal = values[labels] * dome * np.clip(texture, 0.2, None)
    return np.where(labels > 0, signal, 0).astype(np.float32)


def _render_cytoplasm(rng: np.random.Generator, labels: np.ndarray, distance: np.ndarray,
                      nuclei: np.ndarray, mean_diameter: float) -> np.ndarray:
    """Noise-free cytoplasm stain: per-cell brightness, granular texture, dim borders, nuclei excluded or not."""
    values = _object_values(rng, labels, sigma=rng.uniform(0.2, 0.6), dim_fraction=rng.uniform(0, 0.2))
    d = np.where(labels > 0, distance, 1.0)
    border = 1 - rng.uniform(0.2, 0.7) * d ** rng.uniform(1.5, 4)
    texture = (1 + rng.uniform(0.1, 0.35) * smooth_noise(rng, labels.shape, rng.uniform(0.8, 2.5))
               + rng.uniform(0.0, 0.25) * smooth_noise(rng, labels.shape, 0.15 * mean_diameter))
    nucleus = np.where(nuclei > 0, rng.uniform(0.3, 1.4), 1.0)  # excluded from (<1) or enriched in (>1) the stain
    signal = values[labels] * border * np.clip(texture, 0.15, None) * nucleus
    return np.where(labels > 0, signal, 0).astype(np.float32)


def _camera(rng: np.random.Generator, signal: np.ndarray, mean_diameter: float) -> np.ndarray:
    """Blur, background, haze and noise: noise-free signal (peak about 1) -> float32 camera counts."""
    shape = signal.shape
    haze = ndimage.gaussian_filter(signal, rng.uniform(0.5, 1.0) * mean_diameter) * rng.uniform(0.0, 0.4)
    psf = rng.uniform(0.5, 1.2) + rng.uniform(0, 0.04) * mean_diameter
    image = ndimage.gaussian_filter(signal, psf) + haze
    background = rng.uniform(0.02, 0.3)
    gy, gx = rng.uniform(-1, 1, 2) * rng.uniform(0, 0.6) * background
    yy, xx = np.linspace(-1, 1, shape[0])[:, None], np.linspace(-1, 1, shape[1])[None, :]
    image = image + background * (1 + rng.uniform(0, 0.5) * slow_field(rng, shape)) + gy * yy + gx * xx
    photons = np.exp(rng.uniform(np.log(8), np.log(3000)))  # photons at unit signal: from very noisy to clean
    counts = rng.poisson(np.clip(image, 0, None) * photons).astype(np.float32)
    counts += rng.normal(0, rng.uniform(0.5, 4.0), shape).astype(np.float32)  # read noise
    counts *= rng.uniform(0.5, 4.0)  # camera gain (arbitrary units of dynamic range)
    counts += rng.uniform(0, 500)  # camera offset
    if rng.random() < 0.1:  # some images saturate
        counts = np.minimum(counts, np.percentile(counts, rng.uniform(99.0, 99.9)))
    return counts.astype(np.float32)


# --------------------------------------------------------------------------------------------------- public

def check_args(shape, diameter_range, n) -> tuple[tuple[int, int], tuple[float, float]]:
    if len(shape) != 2 or min(shape) < 8:
        raise InputError(f"shape must be (Y, X) with both sides >= 8 pixels, got {shape}")
    lo, hi = (float(v) for v in diameter_range)
    if not 3 <= lo <= hi:
        raise InputError(f"diameter_range must be (low, high) pixels with 3 <= low <= high, got {diameter_range}")
    if n is not None and n < 0:
        raise InputError(f"n (number of objects) must be >= 0, got {n}")
    return (int(shape[0]), int(shape[1])), (lo, hi)


def _default_count(rng, shape, diameter_range, fill: float) -> int:
    mean_area = np.pi / 4 * np.exp(np.mean(np.log(diameter_range))) ** 2
    return max(1, int(round(fill * shape[0] * shape[1] / mean_area)))


def nuclei_image(shape: Sequence[int] = (256, 256), n: Optional[int] = None,
                 diameter_range: Sequence[float] = (12, 30), seed=None, crowding: Optional[float] = None,
                 elongation: float = 1.8, irregularity: float = 0.25,
                 out_of_focus: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A nuclear-stain image (DAPI / Hoechst-like) and its labels.

    Parameters
    ----------
    shape : (Y, X)
        Image size in pixels.
    n : int, optional
        Number of nuclei to try to place (fewer when there is no room). Default: drawn from the image area and a
        random crowding level (sparse to dense).
    diameter_range : (low, high)
        Range of the nuclei's equivalent diameters in pixels (log-uniform).
    seed : int or numpy SeedSequence, optional
        Same seed -> same image and labels.
    crowding : float in 0..1, optional
        0 = well separated, 1 = packed and touching. Default: random.
    elongation : float >= 1
        Largest axis ratio of the ellipses.
    irregularity : float >= 0
        Strength of the outline's random harmonics (0 = ellipses).
    out_of_focus : float >= 0
        Nuclei above or below the focal plane, as a fraction of the in-focus count: blurred by 0.15-0.5 of a
        diameter, 0.2-1x as bright, anywhere (also behind in-focus nuclei), and not in the labels, as real
        annotations leave them out; thick samples and 3D stacks are full of them. 0 (default) draws nothing extra,
        so the image is the one the same seed always gave.

    Returns
    -------
    image : (Y, X) float32
        Camera counts (background offset, noise; not normalised).
    masks : (Y, X) int32
        0 = background, 1..n nuclei, each one connected piece.
    """
    shape, diameter_range = check_args(shape, diameter_range, n)
    rng = np.random.default_rng(seed)
    crowding = rng.uniform(0, 1) if crowding is None else float(np.clip(crowding, 0, 1))
    if n is None:
        n = _default_count(rng, shape, diameter_range, fill=rng.uniform(0.15, 0.35) + 0.4 * crowding)
    spacing = 1.05 - 0.35 * crowding  # < 1: neighbours may overlap, and then touch
    shapes = _place(rng, shape, n, diameter_range, spacing, elongation=elongation, irregularity=irregularity,
                    protrusions=0.0)
    mean_diameter = float(np.exp(np.mean(np.log(diameter_range))))
    labels, distance, _ = _rasterise(shapes, shape, min_area=max(8, int(0.1 * diameter_range[0] ** 2)))
    signal = _render_nuclei(rng, labels, distance, mean_diameter)
    if out_of_focus > 0:
        # its own stream (a child of the seed), so that the in-focus image keeps the draws it always had
        signal = signal + _out_of_focus(np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0]), shape,
                                        max(1, int(round(out_of_focus * max(len(shapes), 1)))), diameter_range,
                                        mean_diameter, elongation, irregularity)
    return _camera(rng, signal, mean_diameter), labels


def _out_of_focus(rng: np.random.Generator, shape: tuple[int, int], n: int, diameter_range, mean_diameter: float,
                  elongation: float, irregularity: float) -> np.ndarray:
    """Noise-free signal of ``n`` unlabelled, defocused nuclei (see :func:`nuclei_image`)."""
    shapes = _place(rng, shape, n, diameter_range, 0.6, elongation=elongation, irregularity=irregularity,
                    protrusions=0.0)
    labels, distance, _ = _rasterise(shapes, shape, min_area=4)
    sharp = _render_nuclei(rng, labels, distance, mean_diameter)
    dimming = rng.uniform(0.2, 1.0, int(labels.max()) + 1)
    blurred = ndimage.gaussian_filter(sharp * dimming[labels], rng.uniform(0.15, 0.5) * mean_diameter)
    return blurred.astype(np.float32)


def cells_image(shape: Sequence[int] = (256, 256), n: Optional[int] = None,
                diameter_range: Sequence[float] = (20, 50), seed=None, crowding: Optional[float] = None,
                nuclear_channel: bool = True, elongation: float = 2.5, irregularity: float = 0.6,
                protrusions: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """A cytoplasm-stain image of irregular, touching cells (optionally with a nuclear channel) and its labels.

    Parameters
    ----------
    shape, n, diameter_range, seed, crowding, elongation, irregularity :
        As in :func:`nuclei_image`; cells are larger, more irregular and more crowded by default.
    nuclear_channel : bool
        Also return a nuclear-stain channel (one nucleus inside each cell).
    protrusions : float in 0..1
        Probability of each of up to three thin protrusions per cell.

    Returns
    -------
    image : (Y, X) float32, or (2, Y, X) float32 with ``nuclear_channel``
        Channel 0: cytoplasm; channel 1: nuclei. Camera counts (not normalised).
    masks : (Y, X) int32
        Cell labels, 0 = background.
    """
    shape, diameter_range = check_args(shape, diameter_range, n)
    rng = np.random.default_rng(seed)
    crowding = rng.uniform(0, 1) if crowding is None else float(np.clip(crowding, 0, 1))
    if n is None:
        n = _default_count(rng, shape, diameter_range, fill=rng.uniform(0.25, 0.4) + 0.45 * crowding)
    spacing = 0.95 - 0.4 * crowding
    shapes = _place(rng, shape, n, diameter_range, spacing, elongation=elongation, irregularity=irregularity,
                    protrusions=protrusions)
    mean_diameter = float(np.exp(np.mean(np.log(diameter_range))))
    labels, distance, kept = _rasterise(shapes, shape, min_area=max(12, int(0.1 * diameter_range[0] ** 2)))

    # One nucleus per cell: a smaller, rounder shape near the cell's centre, clipped to the cell.
    nuclear_shapes = []
    for s in kept:
        size = 2 * np.sqrt(s.a * s.b) * rng.uniform(0.35, 0.55)
        jitter = 0.15 * size * rng.standard_normal(2)
        nuclear_shapes.append(random_shape(rng, s.cy + jitter[0], s.cx + jitter[1], size, elongation=1.5,
                                            irregularity=0.15, protrusions=0.0))
    nuclei = np.zeros(shape, np.int32)
    nuclear_distance = np.full(shape, np.inf, np.float32)
    for index, ns in enumerate(nuclear_shapes, start=1):
        reach = ns.reach
        y0, y1 = max(0, int(ns.cy - reach)), min(shape[0], int(np.ceil(ns.cy + reach)) + 1)
        x0, x1 = max(0, int(ns.cx - reach)), min(shape[1], int(np.ceil(ns.cx + reach)) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        d = ns.distance(yy, xx)
        inside = (d < 1) & (labels[y0:y1, x0:x1] == index)
        nuclei[y0:y1, x0:x1][inside] = index
        nuclear_distance[y0:y1, x0:x1][inside] = d[inside]

    cytoplasm = _camera(rng, _render_cytoplasm(rng, labels, distance, nuclei, mean_diameter), mean_diameter)
    if not nuclear_channel:
        return cytoplasm, labels
    nuclear = _camera(rng, _render_nuclei(rng, nuclei, nuclear_distance, 0.45 * mean_diameter), 0.45 * mean_diameter)
    return np.stack([cytoplasm, nuclear]), labels


def sized_image(kind: str, diameter: float, seed, shape: Sequence[int] = (256, 256)):
    """One image whose objects are all about ``diameter`` pixels across (0.9x to 1.1x), for diameter checks.

    kind "nuclei": a nuclei image; "cells": a cell image with a nuclear second channel. Returns
    ``(image, masks, segment_kwargs)``, the keyword arguments that segment it as intended (channels for cells).
    """
    diameter_range = (0.9 * diameter, 1.1 * diameter)
    if kind == "nuclei":
        image, masks = nuclei_image(shape, seed=seed, diameter_range=diameter_range)
        return image, masks, {}
    if kind == "cells":
        image, masks = cells_image(shape, seed=seed, nuclear_channel=True, diameter_range=diameter_range)
        return image, masks, {"channels": (1, 2), "channel_axis": 0}
    raise ValueError(f"kind must be 'nuclei' or 'cells', got {kind!r}")


def dataset(n: int, kind: str = "mixed", seed=0, shape: Sequence[int] = (256, 256),
            nuclear_channel_fraction: float = 0.5, **kwargs) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``n`` (image, masks) pairs.

    Parameters
    ----------
    n : int
        Number of pairs.
    kind : "nuclei", "cells" or "mixed"
        Mixed alternates at random (half nuclei, half cells).
    seed : int
        Item ``i`` depends only on (seed, i): the first k items of ``dataset(n, ...)`` equal ``dataset(k, ...)``.
    shape : (Y, X)
    nuclear_channel_fraction : float in 0..1
        Fraction of cell images that come with a nuclear channel ((2, Y, X) instead of (Y, X)).
    **kwargs :
        Passed to :func:`nuclei_image` / :func:`cells_image` (e.g. ``diameter_range``).

    Yields
    ------
    image : (Y, X) or (2, Y, X) float32
    masks : (Y, X) int32
    """
    if kind not in KINDS:
        raise InputError(f"kind must be one of {KINDS}, got {kind!r}")
    if n < 0:
        raise InputError(f"n must be >= 0, got {n}")
    for child in np.random.SeedSequence(seed).spawn(n):
        choice_seed, image_seed = child.spawn(2)
        choice_rng = np.random.default_rng(choice_seed)
        this_kind = kind if kind != "mixed" else ("nuclei" if choice_rng.random() < 0.5 else "cells")
        if this_kind == "nuclei":
            yield nuclei_image(shape, seed=image_seed, **kwargs)
        else:
            with_nuclei = bool(choice_rng.random() < nuclear_channel_fraction)
            yield cells_image(shape, seed=image_seed, nuclear_channel=with_nuclei, **kwargs)


# ======================================================================================= 3D volumes and movies
#
# The 2D functions above keep their exact random streams (the built-in model's training recipe regenerates its
# data from them). Volumes and movies use the same ideas (star-shaped objects, smallest normalised distance
# wins, largest connected piece kept) through N-dimensional helpers, with the appearance drawn once per call as a
# style so that a movie's objects, background and optics stay the same from frame to frame.
#
# Coordinates: objects live in *physical* units of one XY pixel. A volume (Z, Y, X) has voxels of size
# (anisotropy, 1, 1): plane k sits at z = k * anisotropy, so an object looks squashed by ``anisotropy`` along Z in
# voxel space, as in a real stack whose Z step is larger than its pixel size.
