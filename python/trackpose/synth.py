"""Synthetic fluorescence images with exact label masks, for tests, demos and training the built-in model.

Every generator is a pure function of its arguments and ``seed``: the same call gives the same pixels and labels
on every machine (numpy's PCG64 through ``np.random.default_rng``; only numpy and scipy are used).

How an image is made
--------------------
1. **Shapes.** Each object is star-shaped around its centre: an ellipse (random size, elongation and orientation)
   whose radius is modulated by a few random radial harmonics (irregular outlines) and, for cells, by narrow
   bumps (thin protrusions). For a pixel ``p`` the object has a *normalised distance* ``d(p)``: 0 at the centre,
   1 on the outline.
2. **Crowding.** Centres are placed at random with a minimum spacing that lets neighbours overlap; each pixel
   goes to the object with the smallest ``d`` (when that is < 1). Overlapping objects therefore *touch* along a
   curved border, as crowded nuclei and cells do. Each label is then reduced to its largest connected piece and
   objects that are too small are dropped, so labels are consecutive and every label is one component.
3. **Appearance.** Per-object brightness (log-normal: varied contrast, some dim objects), textured interiors
   (smoothed noise: chromatin, cytoplasm granules), a brightness profile that dims towards the outline, for cells
   a nucleus that is excluded from (or brighter in) the cytoplasm stain, out-of-focus haze, Gaussian blur (the
   microscope's point-spread function), a smooth background with a gradient, then photon (Poisson) noise, camera
   read noise (Gaussian) and a camera offset, at a random photon budget (varied signal-to-noise ratio).

The images are float32 "camera counts" (not normalised); the masks are int32, 0 = background, 1..n objects.

3D and time
-----------
``nuclei_volume`` / ``cells_volume`` build (Z, Y, X) stacks the same way with rotated, irregular ellipsoids placed
in physical space (Z step = ``anisotropy`` XY pixels, so objects look squashed along Z in voxel space), a
point-spread function wider along Z and growing with depth, and intensity falling with depth. ``movie`` simulates
moving, dividing cells (2D or 3D) and renders every frame with exact labels whose ids are the track ids, plus a
track table (``Movie.tracks``, CSV via ``write_tracks_csv``). See docs/synthetic-data.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
from scipy import ndimage

from .errors import InputError

#: Object kinds ``dataset`` can generate.
KINDS = ("nuclei", "cells", "mixed")


# ---------------------------------------------------------------------------------------------------- shapes

@dataclass
class _Shape:
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


def _random_shape(rng: np.random.Generator, cy: float, cx: float, diameter: float, elongation: float,
                  irregularity: float, protrusions: float) -> _Shape:
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
    return _Shape(cy, cx, a, b, rng.uniform(0, np.pi), harmonics, np.array(bumps, float).reshape(-1, 3))


def _place(rng: np.random.Generator, shape: tuple[int, int], n: int, diameter_range: Sequence[float],
           spacing: float, **shape_kw) -> list[_Shape]:
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
        shapes.append(_random_shape(rng, cy, cx, diameter, **shape_kw))
        centres = np.vstack([centres, [cy, cx]])
        radii = np.append(radii, diameter / 2)
    return shapes


def _rasterise(shapes: Sequence[_Shape], shape: tuple[int, int], min_area: int):
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
    labels, best, kept = _clean_labels(labels, best, min_area)
    return labels, best, [shapes[k - 1] for k in kept]


def _clean_labels(labels: np.ndarray, distance: np.ndarray, min_area: int):
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

def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field with correlation length ``sigma`` pixels."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    return field / max(float(field.std()), 1e-6)


def _slow_field(rng: np.random.Generator, shape: tuple[int, int], frequencies: int = 3) -> np.ndarray:
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
    texture = 1 + strength * _smooth_noise(rng, labels.shape, rng.uniform(0.7, 0.12 * mean_diameter + 0.8))
    if rng.random() < 0.5:  # nucleoli: a few darker blobs
        depth = rng.uniform(0.1, 0.4)
        texture -= depth * np.clip(_smooth_noise(rng, labels.shape, 0.1 * mean_diameter + 1) - 1.5, 0, None)
    signal = values[labels] * dome * np.clip(texture, 0.2, None)
    return np.where(labels > 0, signal, 0).astype(np.float32)


def _render_cytoplasm(rng: np.random.Generator, labels: np.ndarray, distance: np.ndarray,
                      nuclei: np.ndarray, mean_diameter: float) -> np.ndarray:
    """Noise-free cytoplasm stain: per-cell brightness, granular texture, dim borders, nuclei excluded or not."""
    values = _object_values(rng, labels, sigma=rng.uniform(0.2, 0.6), dim_fraction=rng.uniform(0, 0.2))
    d = np.where(labels > 0, distance, 1.0)
    border = 1 - rng.uniform(0.2, 0.7) * d ** rng.uniform(1.5, 4)
    texture = (1 + rng.uniform(0.1, 0.35) * _smooth_noise(rng, labels.shape, rng.uniform(0.8, 2.5))
               + rng.uniform(0.0, 0.25) * _smooth_noise(rng, labels.shape, 0.15 * mean_diameter))
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
    image = image + background * (1 + rng.uniform(0, 0.5) * _slow_field(rng, shape)) + gy * yy + gx * xx
    photons = np.exp(rng.uniform(np.log(8), np.log(3000)))  # photons at unit signal: from very noisy to clean
    counts = rng.poisson(np.clip(image, 0, None) * photons).astype(np.float32)
    counts += rng.normal(0, rng.uniform(0.5, 4.0), shape).astype(np.float32)  # read noise
    counts *= rng.uniform(0.5, 4.0)  # camera gain (arbitrary units of dynamic range)
    counts += rng.uniform(0, 500)  # camera offset
    if rng.random() < 0.1:  # some images saturate
        counts = np.minimum(counts, np.percentile(counts, rng.uniform(99.0, 99.9)))
    return counts.astype(np.float32)


# --------------------------------------------------------------------------------------------------- public

def _check_args(shape, diameter_range, n) -> tuple[tuple[int, int], tuple[float, float]]:
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
                 elongation: float = 1.8, irregularity: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
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

    Returns
    -------
    image : (Y, X) float32
        Camera counts (background offset, noise; not normalised).
    masks : (Y, X) int32
        0 = background, 1..n nuclei, each one connected piece.
    """
    shape, diameter_range = _check_args(shape, diameter_range, n)
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
    return _camera(rng, signal, mean_diameter), labels


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
    shape, diameter_range = _check_args(shape, diameter_range, n)
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
        nuclear_shapes.append(_random_shape(rng, s.cy + jitter[0], s.cx + jitter[1], size, elongation=1.5,
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


def _rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3D rotation matrix (from a random unit quaternion)."""
    w, x, y, z = rng.standard_normal(4)
    norm = np.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / norm, x / norm, y / norm, z / norm
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@dataclass
class _Shape3D:
    """A star-shaped 3D object: a rotated ellipsoid whose radius is modulated by smooth ripples and narrow bumps.

    centre : (z, y, x) physical; axes : three semi-axes along the columns of ``rotation``;
    ripples : (k, 6) direction (3), frequency, amplitude, phase; bumps : (m, 5) direction (3), height, width.
    """

    centre: np.ndarray
    axes: np.ndarray
    rotation: np.ndarray
    ripples: np.ndarray
    bumps: np.ndarray

    @property
    def reach(self) -> float:
        modulation = 1 + np.abs(self.ripples[:, 4]).sum() + (self.bumps[:, 3].sum() if len(self.bumps) else 0)
        return float(self.axes.max() * modulation + 1)

    def distance(self, zz: np.ndarray, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        """Normalised distance (0 at the centre, 1 on the surface) at physical coordinates (broadcastable).

        Voxels beyond the largest possible outline get ``inf`` without evaluating the modulation (most of a
        bounding box around an irregular shape).
        """
        zz, yy, xx = np.broadcast_arrays(zz - float(self.centre[0]), yy - float(self.centre[1]),
                                         xx - float(self.centre[2]))
        rotation = [[float(v) for v in row] for row in self.rotation]
        # coordinates along the object's own axes, in units of its semi-axes
        local = [(rotation[0][j] * zz + rotation[1][j] * yy + rotation[2][j] * xx) / float(self.axes[j])
                 for j in range(3)]
        rho = np.sqrt(local[0] ** 2 + local[1] ** 2 + local[2] ** 2)
        bound = 1 + np.abs(self.ripples[:, 4]).sum() + (self.bumps[:, 3].sum() if len(self.bumps) else 0)
        near = rho < bound
        r = rho[near]
        safe = np.maximum(r, 1e-6)
        direction = [component[near] / safe for component in local]
        modulation = np.ones_like(r)
        for vz, vy, vx, frequency, amplitude, phase in self.ripples:
            modulation += float(amplitude) * np.cos(float(frequency) * (float(vz) * direction[0] + float(vy)
                                                    * direction[1] + float(vx) * direction[2]) + float(phase))
        for vz, vy, vx, height, width in self.bumps:
            cos_offset = float(vz) * direction[0] + float(vy) * direction[1] + float(vx) * direction[2]
            modulation += float(height) * np.exp((cos_offset - 1) / float(width) ** 2)
        d = np.full(rho.shape, np.inf, rho.dtype)
        d[near] = r / np.maximum(modulation, 0.3)
        return d

    def moved(self, centre, scale: float = 1.0) -> "_Shape3D":
        return _Shape3D(np.asarray(centre, float), self.axes * scale, self.rotation, self.ripples, self.bumps)


def _random_shape3d(rng: np.random.Generator, centre, diameter: float, elongation: float, irregularity: float,
                    protrusions: float) -> _Shape3D:
    """A random 3D shape of volume-equivalent diameter about ``diameter`` (physical units)."""
    stretch = np.array([1.0 + (elongation - 1.0) * rng.random() ** 2,
                        1.0 + 0.5 * (elongation - 1.0) * rng.random() ** 2, 1.0])
    axes = diameter / 2 * stretch / np.prod(stretch) ** (1 / 3)
    k = 5
    frequencies = rng.uniform(1.5, 4.0, k)
    ripples = np.column_stack([_unit_vectors(rng, k), frequencies,
                               irregularity * rng.random(k) / frequencies ** 1.2 * 1.5, rng.uniform(0, 2 * np.pi, k)])
    n_bumps = int((rng.random(3) < protrusions).sum())
    bumps = np.column_stack([_unit_vectors(rng, n_bumps), rng.uniform(0.3, 0.7, n_bumps),
                             rng.uniform(0.12, 0.25, n_bumps)]).reshape(-1, 5)
    return _Shape3D(np.asarray(centre, float), axes, _rotation(rng), ripples, bumps)


def _shape_centre(s) -> np.ndarray:
    return s.centre if isinstance(s, _Shape3D) else np.array([s.cy, s.cx])


def _place_nd(rng: np.random.Generator, extent: np.ndarray, n: int, diameter_range, spacing: float,
              make_shape, margin: float = 0.2) -> list:
    """Up to ``n`` shapes with centres at least ``spacing`` x (sum of radii) apart, in a box of physical ``extent``.

    Centres may lie up to ``margin`` diameters outside the box (objects cut by the border, as in real images).
    """
    lo, hi = diameter_range
    shapes, centres, radii = [], np.zeros((0, len(extent))), np.zeros(0)
    for _ in range(n * 30):
        if len(shapes) == n:
            break
        diameter = np.exp(rng.uniform(np.log(lo), np.log(hi)))
        centre = rng.uniform(-margin * diameter, extent + margin * diameter)
        if len(shapes):
            gap = np.linalg.norm(centres - centre, axis=1) - spacing * (radii + diameter / 2)
            if gap.min() < 0:
                continue
        shapes.append(make_shape(centre, diameter))
        centres = np.vstack([centres, centre])
        radii = np.append(radii, diameter / 2)
    return shapes


def _paint(shapes: Sequence, grid: tuple, spacing: np.ndarray, min_size: int):
    """N-D rasterisation: each voxel to the shape of smallest normalised distance < 1.

    ``spacing`` is the physical size of a voxel along each axis. Returns (labels 1..n in placement order of the
    kept shapes, distance (inf outside), indices (0-based) of the kept shapes); as ``_rasterise`` for 2D.
    """
    labels = np.zeros(grid, np.int32)
    best = np.full(grid, np.inf, np.float32)
    grid_arr = np.array(grid)
    for index, s in enumerate(shapes, start=1):
        centre, reach = _shape_centre(s), s.reach
        start = np.maximum(0, np.floor((centre - reach) / spacing).astype(int))
        stop = np.minimum(grid_arr, np.ceil((centre + reach) / spacing).astype(int) + 1)
        if np.any(start >= stop):
            continue
        coords = np.ogrid[tuple(slice(a, b) for a, b in zip(start, stop))]
        coords = [(c * step).astype(np.float32) for c, step in zip(coords, spacing)]
        d = s.distance(*coords).astype(np.float32)
        window = tuple(slice(a, b) for a, b in zip(start, stop))
        current = best[window]
        win = (d < 1) & (d < current)
        current[win] = d[win]
        labels[window][win] = index
    labels, best, kept = _clean_labels(labels, best, min_size)
    return labels, best, [k - 1 for k in kept]


def _sigma(physical: float, spacing: np.ndarray) -> tuple:
    """A Gaussian width given in physical units, per axis in voxels."""
    return tuple(float(physical) / np.asarray(spacing, float))


@dataclass
class _Style:
    """Appearance of one volume or movie, drawn once (so frames of a movie look alike)."""

    kind: str
    stain: str
    brightness_sigma: float
    dim_fraction: float
    profile: float              # dimming towards the outline (dome for nuclei, border for cells)
    profile_power: float
    texture: float
    texture_sigma: float        # physical units
    fine_texture: float
    nucleoli: float             # depth of dark blobs (nuclei), 0 = none
    nucleus_factor: float       # cells: cytoplasm stain in the nucleus relative to the rest
    haze: float
    haze_sigma: float
    psf_xy: float
    psf_z: float                # physical units; wider than psf_xy
    depth_blur: float           # extra blur (physical) reached at the bottom of a stack
    attenuation: float          # intensity falls as exp(-z / attenuation) (physical units)
    background: float
    gradient: np.ndarray        # per axis, across the field
    slow_amplitude: float
    photons: float
    read_noise: float
    gain: float
    offset: float


def _draw_style(rng: np.random.Generator, kind: str, stain: str, mean_diameter: float, depth: float) -> _Style:
    psf_xy = rng.uniform(0.5, 1.2) + rng.uniform(0, 0.04) * mean_diameter
    background = rng.uniform(0.02, 0.3)
    nuclei = kind == "nuclei"
    return _Style(
        kind=kind, stain=stain,
        brightness_sigma=rng.uniform(0.15, 0.5) if nuclei else rng.uniform(0.2, 0.6),
        dim_fraction=rng.uniform(0, 0.15) if nuclei else rng.uniform(0, 0.2),
        profile=rng.uniform(0.1, 0.6) if nuclei else rng.uniform(0.2, 0.7),
        profile_power=rng.uniform(2, 6) if nuclei else rng.uniform(1.5, 4),
        texture=rng.uniform(0.05, 0.3) if nuclei else rng.uniform(0.1, 0.35),
        texture_sigma=rng.uniform(0.7, 0.12 * mean_diameter + 0.8) if nuclei else rng.uniform(0.8, 2.5),
        fine_texture=0.0 if nuclei else rng.uniform(0.0, 0.25),
        nucleoli=rng.uniform(0.1, 0.4) if (nuclei and rng.random() < 0.5) else 0.0,
        nucleus_factor=rng.uniform(0.3, 1.4),
        haze=rng.uniform(0.0, 0.4), haze_sigma=rng.uniform(0.5, 1.0) * mean_diameter,
        psf_xy=psf_xy, psf_z=psf_xy * rng.uniform(2.0, 4.0),
        depth_blur=rng.uniform(0.0, 1.5) * psf_xy,
        attenuation=depth * rng.uniform(1.0, 4.0),
        background=background,
        gradient=rng.uniform(-1, 1, 3) * rng.uniform(0, 0.6) * background,
        slow_amplitude=rng.uniform(0, 0.5),
        photons=float(np.exp(rng.uniform(np.log(20), np.log(3000)))),
        read_noise=rng.uniform(0.5, 4.0), gain=rng.uniform(0.5, 4.0), offset=rng.uniform(0, 500))


def _brightness(rng: np.random.Generator, style: _Style, n: int) -> np.ndarray:
    """Per-object brightness (log-normal, a fraction dim)."""
    values = np.exp(rng.normal(0, style.brightness_sigma, n))
    values[rng.random(n) < style.dim_fraction] *= rng.uniform(0.25, 0.5)
    return values.astype(np.float32)


def _boundaries(labels: np.ndarray) -> np.ndarray:
    """Voxels of a label that touch a different label or background along any axis (face neighbours)."""
    edge = np.zeros(labels.shape, bool)
    for axis in range(labels.ndim):
        a = [slice(None)] * labels.ndim
        b = [slice(None)] * labels.ndim
        a[axis], b[axis] = slice(1, None), slice(None, -1)
        differ = labels[tuple(a)] != labels[tuple(b)]
        edge[tuple(a)] |= differ
        edge[tuple(b)] |= differ
    return edge & (labels > 0)


def _stain(rng: np.random.Generator, style: _Style, labels: np.ndarray, distance: np.ndarray,
           values: np.ndarray, spacing: np.ndarray, nuclei: Optional[np.ndarray] = None) -> np.ndarray:
    """Noise-free stain (peak about 1) of labelled objects; ``values`` indexed by label id (0 -> 0)."""
    inside = labels > 0
    d = np.where(inside, distance, 1.0)
    profile = 1 - style.profile * d ** style.profile_power
    texture = 1 + style.texture * _smooth_noise(rng, labels.shape, _sigma(style.texture_sigma, spacing))
    if style.kind == "nuclei":
        if style.nucleoli > 0:
            blobs = _smooth_noise(rng, labels.shape, _sigma(0.1 * style.haze_sigma / 0.75 + 1, spacing))
            texture -= style.nucleoli * np.clip(blobs - 1.5, 0, None)
        signal = values[labels] * profile * np.clip(texture, 0.2, None)
    else:
        if style.fine_texture > 0:
            texture += style.fine_texture * _smooth_noise(rng, labels.shape, _sigma(0.2 * style.haze_sigma, spacing))
        signal = values[labels] * np.clip(texture, 0.15, None)
        if style.stain == "membrane":
            signal = signal * np.where(_boundaries(labels), 1.0, 0.15)
        else:
            signal = signal * profile
            if nuclei is not None:
                signal = signal * np.where(nuclei > 0, style.nucleus_factor, 1.0)
    return np.where(inside, signal, 0).astype(np.float32)


def _optics_and_camera(rng: np.random.Generator, style: _Style, signal: np.ndarray, spacing: np.ndarray,
                       slow: np.ndarray) -> np.ndarray:
    """Haze, point-spread function (wider along Z, wider with depth), depth falloff, background, noise."""
    spacing = np.asarray(spacing, float)
    volume = signal.ndim == 3
    psf = (style.psf_z,) + (style.psf_xy,) * 2 if volume else (style.psf_xy,) * 2
    image = ndimage.gaussian_filter(signal, tuple(np.array(psf) / spacing))
    if style.haze > 0:
        image += style.haze * ndimage.gaussian_filter(signal, _sigma(style.haze_sigma, spacing))
    shape = signal.shape
    axes = [np.linspace(-1, 1, n).reshape([-1 if i == k else 1 for i in range(len(shape))])
            for k, n in enumerate(shape)]
    if volume:
        z = (np.arange(shape[0]) * spacing[0]).reshape(-1, 1, 1)
        if style.depth_blur > 0 and shape[0] > 1:
            deeper = ndimage.gaussian_filter(image, _sigma(style.depth_blur, spacing))
            weight = (z / max(float(z.max()), 1e-6)).astype(np.float32)
            image = (1 - weight) * image + weight * deeper
        image = image * np.exp(-z / style.attenuation).astype(np.float32)
    gradient = sum(g * axis for g, axis in zip(style.gradient[-len(shape):], axes))
    image = image + style.background * (1 + style.slow_amplitude * slow) + gradient
    counts = rng.poisson(np.clip(image, 0, None) * style.photons).astype(np.float32)
    counts += rng.normal(0, style.read_noise, shape).astype(np.float32)
    return (counts * style.gain + style.offset).astype(np.float32)


def _check_volume_args(shape, diameter_range, n, anisotropy) -> tuple[tuple[int, int, int], tuple[float, float]]:
    if len(shape) != 3 or shape[0] < 1 or min(shape[1:]) < 8:
        raise InputError(f"shape must be (Z, Y, X) with Y, X >= 8 pixels and Z >= 1, got {shape}")
    if not np.isfinite(anisotropy) or anisotropy <= 0:
        raise InputError(f"anisotropy (Z step / XY pixel size) must be > 0, got {anisotropy}")
    _, diameter_range = _check_args(shape[1:], diameter_range, n)
    return (int(shape[0]), int(shape[1]), int(shape[2])), diameter_range


def _volume(kind: str, shape, n, diameter_range, anisotropy, seed, crowding, elongation, irregularity,
            protrusions, stain, nuclear_channel):
    shape, diameter_range = _check_volume_args(shape, diameter_range, n, anisotropy)
    rng = np.random.default_rng(seed)
    spacing = np.array([float(anisotropy), 1.0, 1.0])
    extent = np.array(shape) * spacing
    crowding = rng.uniform(0, 1) if crowding is None else float(np.clip(crowding, 0, 1))
    mean_diameter = float(np.exp(np.mean(np.log(diameter_range))))
    if n is None:
        fill = (rng.uniform(0.15, 0.3) + 0.35 * crowding) if kind == "nuclei" else (rng.uniform(0.25, 0.4)
                                                                                      + 0.4 * crowding)
        n = max(1, int(round(fill * np.prod(extent) / (np.pi / 6 * mean_diameter ** 3))))
    spacing_factor = (1.05 - 0.35 * crowding) if kind == "nuclei" else (0.95 - 0.4 * crowding)

    def make(centre, diameter):
        return _random_shape3d(rng, centre, diameter, elongation, irregularity, protrusions)

    shapes = _place_nd(rng, extent, n, diameter_range, spacing_factor, make)
    min_size = max(8, int(0.05 * diameter_range[0] ** 3 / anisotropy))
    labels, distance, kept = _paint(shapes, shape, spacing, min_size)
    style = _draw_style(rng, kind, stain, mean_diameter, extent[0])
    slow = _slow_field(rng, shape[1:])[None]
    values = np.concatenate([[0], _brightness(rng, style, len(kept))]).astype(np.float32)
    if kind == "nuclei":
        return _optics_and_camera(rng, style, _stain(rng, style, labels, distance, values, spacing), spacing,
                                  slow), labels
    # one nucleus per cell: a smaller, rounder shape near the cell's centre, clipped to the cell
    nuclear_shapes = []
    for k in kept:
        s = shapes[k]
        size = 2 * float(np.prod(s.axes)) ** (1 / 3) * rng.uniform(0.35, 0.55)
        nuclear_shapes.append(_random_shape3d(rng, s.centre + 0.1 * size * rng.standard_normal(3), size, 1.4, 0.15,
                                              0.0))
    nuclei, nuclear_distance, nuclear_kept = _paint(nuclear_shapes, shape, spacing, 1)
    ids = np.concatenate([[0], np.array(nuclear_kept, int) + 1])
    inside = ids[nuclei] == labels  # nucleus k belongs to cell k: keep the part inside its own cell
    nuclei = np.where(inside & (nuclei > 0), labels, 0)
    nuclear_distance = np.where(nuclei > 0, nuclear_distance, np.inf)
    image = _optics_and_camera(rng, style, _stain(rng, style, labels, distance, values, spacing, nuclei), spacing,
                               slow)
    if not nuclear_channel:
        return image, labels
    nuclear_style = _draw_style(rng, "nuclei", "nuclei", 0.45 * mean_diameter, extent[0])
    nuclear = _optics_and_camera(rng, nuclear_style, _stain(rng, nuclear_style, nuclei, nuclear_distance,
                                                            _brightness_lut(rng, nuclear_style, labels), spacing),
                                 spacing, slow)
    return np.stack([image, nuclear]), labels


def _brightness_lut(rng, style, labels) -> np.ndarray:
    return np.concatenate([[0], _brightness(rng, style, int(labels.max()))]).astype(np.float32)


def nuclei_volume(shape: Sequence[int] = (32, 128, 128), n: Optional[int] = None,
                  diameter_range: Sequence[float] = (12, 24), anisotropy: float = 1.0, seed=None,
                  crowding: Optional[float] = None, elongation: float = 1.6,
                  irregularity: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """A 3D nuclear-stain stack (confocal / light-sheet-like) and its exact labels.

    Parameters
    ----------
    shape : (Z, Y, X)
        Stack size in voxels.
    n : int, optional
        Number of nuclei to try to place. Default: from the volume and a random crowding level.
    diameter_range : (low, high)
        Volume-equivalent diameters in XY pixels (log-uniform).
    anisotropy : float
        Z step / XY pixel size. Objects are defined in physical space, so in voxel space they are squashed by this
        factor along Z (a 12-pixel nucleus spans 6 planes at anisotropy 2).
    seed : int or numpy SeedSequence, optional
        Same seed -> same stack and labels. No global random state is used.
    crowding : float in 0..1, optional
        0 = well separated, 1 = packed and touching. Default: random.
    elongation : float >= 1
        Largest axis ratio of the (randomly rotated, triaxial) ellipsoids.
    irregularity : float >= 0
        Strength of the smooth surface ripples (0 = ellipsoids).

    Returns
    -------
    image : (Z, Y, X) float32
        Camera counts: textured nuclei, a point-spread function wider along Z (and wider with depth), intensity
        falling with depth, a background gradient, Poisson and Gaussian noise. Not normalised.
    labels : (Z, Y, X) int32
        0 = background, 1..n nuclei, each one 6-connected piece; a voxel is labelled where its object is.
    """
    return _volume("nuclei", shape, n, diameter_range, anisotropy, seed, crowding, elongation, irregularity, 0.0,
                   "nuclei", False)


def cells_volume(shape: Sequence[int] = (32, 128, 128), n: Optional[int] = None,
                 diameter_range: Sequence[float] = (18, 36), anisotropy: float = 1.0, seed=None,
                 crowding: Optional[float] = None, stain: str = "cytoplasm", nuclear_channel: bool = False,
                 elongation: float = 2.0, irregularity: float = 0.5,
                 protrusions: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """A 3D stack of irregular, touching cells (cytoplasm or membrane stain) and its exact labels.

    Parameters
    ----------
    shape, n, diameter_range, anisotropy, seed, crowding, elongation, irregularity :
        As in :func:`nuclei_volume`; cells are larger, more irregular and more crowded by default.
    stain : "cytoplasm" or "membrane"
        Cytoplasm: filled, granular cells dimming towards their borders, the nucleus dimmer or brighter.
        Membrane: bright cell surfaces (where a cell touches another cell or the background) and a faint interior.
    nuclear_channel : bool
        Also return a nuclear-stain channel (one nucleus inside each cell).
    protrusions : float in 0..1
        Probability of each of up to three bumps (blebs, short protrusions) per cell.

    Returns
    -------
    image : (Z, Y, X) float32, or (2, Z, Y, X) with ``nuclear_channel`` (0: cell stain, 1: nuclei)
    labels : (Z, Y, X) int32
        Cell labels, 0 = background, 1..n.
    """
    if stain not in ("cytoplasm", "membrane"):
        raise InputError(f"stain must be 'cytoplasm' or 'membrane', got {stain!r}")
    return _volume("cells", shape, n, diameter_range, anisotropy, seed, crowding, elongation, irregularity,
                   protrusions, stain, nuclear_channel)


# ------------------------------------------------------------------------------------------------------ movies

#: Columns of a movie's track table (one row per track and frame) and of its CSV file.
TRACK_COLUMNS = ("track_id", "frame", "label", "z", "y", "x", "parent")
_TRACK_DTYPE = np.dtype([("track_id", np.int32), ("frame", np.int32), ("label", np.int32), ("z", np.float64),
                         ("y", np.float64), ("x", np.float64), ("parent", np.int32)])


@dataclass
class Movie:
    """A synthetic time-lapse with ground truth.

    Attributes
    ----------
    images : (T, Y, X) or (T, Z, Y, X) float32
        Camera counts, one frame per time point (background, optics and noise level shared by all frames).
    labels : same shape, int32
        0 = background; **a label id is the track id**, in every frame: the same id in two frames is the same
        cell, and a new cell (a daughter) gets a new id that no other track ever used.
    tracks : structured array, fields ``TRACK_COLUMNS``
        One row per (track, frame) in which the cell is visible, sorted by frame then track: ``label`` (= track
        id), centroid ``z, y, x`` of its label in voxel coordinates (``z = 0`` for 2D movies), ``parent`` = the
        mother's track id for a daughter, 0 otherwise. A mother's last row is the frame before her daughters'
        first. A track ends when its cell divides, dies, or leaves the field (or is hidden below the minimum size).
    anisotropy : float
        Z step / XY pixel size of the volumes (1 for 2D).
    """

    images: np.ndarray
    labels: np.ndarray
    tracks: np.ndarray
    anisotropy: float = 1.0

    def divisions(self) -> dict[int, list[int]]:
        """Mother track id -> daughter track ids (as visible in the movie)."""
        children: dict[int, list[int]] = {}
        first = self.tracks[np.unique(self.tracks["track_id"], return_index=True)[1]]
        for row in first:
            if row["parent"]:
                children.setdefault(int(row["parent"]), []).append(int(row["track_id"]))
        return children

    def write_tracks_csv(self, path) -> Path:
        """Write ``tracks`` as CSV with the header ``track_id,frame,label,z,y,x,parent``."""
        return write_tracks_csv(self.tracks, path)


def write_tracks_csv(tracks: np.ndarray, path) -> Path:
    """Write a track table (``Movie.tracks``) as CSV: ``track_id,frame,label,z,y,x,parent``; returns the path."""
    path = Path(path)
    if tracks.dtype.names is None or any(name not in tracks.dtype.names for name in TRACK_COLUMNS):
        raise InputError(f"tracks must be a structured array with fields {TRACK_COLUMNS} (Movie.tracks)")
    lines = [",".join(TRACK_COLUMNS)]
    for row in tracks:
        lines.append(f"{row['track_id']},{row['frame']},{row['label']},{row['z']:.3f},{row['y']:.3f},"
                     f"{row['x']:.3f},{row['parent']}")
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class _Cell:
    track_id: int
    parent: int
    template: object            # _Shape centred at 0 (2D) or _Shape3D
    centre: np.ndarray          # physical
    step: np.ndarray            # last displacement (persistence)
    scale: float                # size relative to the template (daughters start smaller and grow)
    brightness: float
    next_division: float
    push: np.ndarray            # daughters: extra velocity away from the sister for their first frames
    push_frames: int = 0

    def shape(self):
        s = self.template
        if isinstance(s, _Shape3D):
            return s.moved(self.centre, self.scale)
        return _Shape(float(self.centre[0]), float(self.centre[1]), s.a * self.scale, s.b * self.scale, s.angle,
                      s.harmonics, s.bumps)

    @property
    def diameter(self) -> float:
        s = self.template
        size = 2 * float(np.prod(s.axes)) ** (1 / 3) if isinstance(s, _Shape3D) else 2 * float(np.sqrt(s.a * s.b))
        return size * self.scale


def movie(n_frames: int = 20, shape: Sequence[int] = (256, 256), n_cells: Optional[int] = None,
          kind: str = "nuclei", diameter_range: Optional[Sequence[float]] = None, anisotropy: float = 1.0,
          speed: Optional[float] = None, drift: Optional[Sequence[float]] = None, division_interval: float = 15.0,
          death_rate: float = 0.0, stain: str = "cytoplasm", seed=None) -> Movie:
    """A time-lapse of moving, dividing cells (2D or 3D) with ground-truth labels and tracks.

    Cells follow a persistent random walk with drift and push their neighbours away; a displacement per frame
    never exceeds 0.3 of the cell's diameter (no teleporting). A cell divides after about ``division_interval``
    frames: in the frame before, it brightens (mitotic rounding); then its track ends and two daughters (new
    track ids, ``parent`` = the mother) appear on opposite sides of the mother's last position, 0.18 diameters
    away, smaller (half the volume), and move apart while growing back. Cells may die (``death_rate``) or leave
    the field; their tracks end.

    Parameters
    ----------
    n_frames : int
    shape : (Y, X) or (Z, Y, X)
        Frame size in pixels / voxels.
    n_cells : int, optional
        Cells in the first frame. Default: about a quarter of the field covered.
    kind : "nuclei" or "cells"
        Nuclear stain (compact, domed) or cell stain (larger, irregular; ``stain`` cytoplasm or membrane).
    diameter_range : (low, high), optional
        Cell diameters in XY pixels. Default (12, 24) for nuclei, (18, 36) for cells.
    anisotropy : float
        3D only: Z step / XY pixel size (objects squashed along Z in voxel space).
    speed : float, optional
        Standard deviation of the random part of a step, pixels per frame per axis. Default 0.06 x mean diameter.
    drift : sequence of floats, optional
        Common displacement per frame, (dy, dx) or (dz, dy, dx) pixels. Default: random direction in XY,
        0.04 x mean diameter per frame.
    division_interval : float
        Mean frames between divisions of a cell (standard deviation 20%); 0 or inf: no divisions.
    death_rate : float in 0..1
        Probability per frame that a cell disappears (its track ends without daughters).
    stain : "cytoplasm" or "membrane"
        Cell stain when ``kind="cells"``.
    seed : int or numpy SeedSequence, optional
        Same seed -> identical movie; no global random state.

    Returns
    -------
    Movie
        ``images`` and ``labels`` of shape (T,) + shape, ``tracks`` (see :class:`Movie`); label id = track id.
    """
    if kind not in ("nuclei", "cells"):
        raise InputError(f"kind must be 'nuclei' or 'cells', got {kind!r}")
    if stain not in ("cytoplasm", "membrane"):
        raise InputError(f"stain must be 'cytoplasm' or 'membrane', got {stain!r}")
    if int(n_frames) < 1:
        raise InputError(f"n_frames must be >= 1, got {n_frames}")
    if not 0 <= death_rate <= 1:
        raise InputError(f"death_rate is a probability per frame (0..1), got {death_rate}")
    if diameter_range is None:
        diameter_range = (12, 24) if kind == "nuclei" else (18, 36)
    if len(shape) == 3:
        grid, diameter_range = _check_volume_args(shape, diameter_range, n_cells, anisotropy)
        spacing = np.array([float(anisotropy), 1.0, 1.0])
    else:
        grid, diameter_range = _check_args(shape, diameter_range, n_cells)
        spacing = np.array([1.0, 1.0])
        anisotropy = 1.0
    ndim = len(grid)
    rng = np.random.default_rng(seed)
    extent = np.array(grid) * spacing
    mean_diameter = float(np.exp(np.mean(np.log(diameter_range))))
    speed = 0.06 * mean_diameter if speed is None else float(speed)
    if drift is None:
        angle = rng.uniform(0, 2 * np.pi)
        drift = np.zeros(ndim)
        drift[-2:] = 0.04 * mean_diameter * np.array([np.sin(angle), np.cos(angle)])
    drift = np.asarray(drift, float)
    if drift.shape != (ndim,):
        raise InputError(f"drift must have one value per axis of shape {tuple(grid)}, got {tuple(drift)}")
    interval = float(division_interval) if division_interval and np.isfinite(division_interval) else np.inf
    if n_cells is None:
        unit = np.pi / 4 * mean_diameter ** 2 if ndim == 2 else np.pi / 6 * mean_diameter ** 3
        n_cells = max(1, int(round(0.25 * np.prod(extent) / unit)))
    elongation, irregularity, protrusions = (1.6, 0.25, 0.0) if kind == "nuclei" else (2.0, 0.5, 0.3)

    def template(diameter, rounder=False):
        # freshly divided cells are rounder and smoother
        e, i, p = (1.0 + 0.5 * (elongation - 1), 0.5 * irregularity, 0.0) if rounder else (elongation, irregularity,
                                                                                          protrusions)
        if ndim == 3:
            return _random_shape3d(rng, np.zeros(3), diameter, e, i, p)
        return _random_shape(rng, 0.0, 0.0, diameter, e, i, p)

    def cycle(now):
        return now + max(3, int(round(rng.normal(interval, 0.2 * interval)))) if np.isfinite(interval) else np.inf

    axis_speed = np.array([0.3, 1.0, 1.0])  # 3D: cells wander less along Z
    smallest = 2 ** (-1 / ndim)  # a daughter has half its mother's volume (area in 2D)
    growth = 2 ** (1 / ndim / interval) if np.isfinite(interval) else 1.0
    style = _draw_style(rng, kind, stain, mean_diameter, extent[0] if ndim == 3 else 1.0)
    slow = _slow_field(rng, grid[-2:])
    slow = slow[None] if ndim == 3 else slow
    next_id = 1
    cells: list[_Cell] = []
    for s in _place_nd(rng, extent, n_cells, diameter_range, 1.1, lambda c, d: (c, d), margin=0.0):
        centre, diameter = s
        if ndim == 3:  # cells on a coverslip: a layer in the middle of the stack rather than cut by its ends
            centre = np.array([extent[0] * (0.3 + 0.4 * centre[0] / extent[0]), centre[1], centre[2]])
        first_division = rng.uniform(1, interval) if np.isfinite(interval) else np.inf
        cells.append(_Cell(next_id, 0, template(diameter), np.asarray(centre, float), np.zeros(ndim),
                           rng.uniform(smallest, 1.0), float(_brightness(rng, style, 1)[0]), first_division,
                           np.zeros(ndim)))
        next_id += 1
    min_size = max(8, int(0.1 * diameter_range[0] ** 2)) if ndim == 2 else max(8, int(0.05 * diameter_range[0] ** 3
                                                                                      / anisotropy))

    images, frames, rows = [], [], []
    for t in range(int(n_frames)):
        if t > 0:
            moved = []
            centres = np.array([c.centre for c in cells]).reshape(-1, ndim)
            radii = np.array([c.diameter / 2 for c in cells])
            for i, cell in enumerate(cells):
                if death_rate > 0 and rng.random() < death_rate:
                    continue
                if t >= cell.next_division:
                    direction = rng.standard_normal(ndim)
                    if ndim == 3:  # divide mostly in XY, as cells on a coverslip do
                        direction[0] *= 0.3
                    direction /= max(float(np.linalg.norm(direction)), 1e-9)
                    offset = 0.18 * cell.diameter * direction
                    for sign in (1, -1):
                        daughter = _Cell(next_id, cell.track_id, template(cell.diameter / cell.scale, rounder=True),
                                         cell.centre + sign * offset, np.zeros(ndim), cell.scale * smallest,
                                         cell.brightness * float(rng.uniform(0.9, 1.1)), cycle(t),
                                         sign * 0.08 * cell.diameter * direction, 3)
                        moved.append(daughter)
                        next_id += 1
                    continue
                # neighbours closer than their radii push each other apart (half the overlap per frame)
                gap = centres - cell.centre
                distance = np.linalg.norm(gap, axis=1)
                overlap = np.clip(0.9 * (radii + radii[i]) - distance, 0, None)
                overlap[i] = 0
                push = -(gap / np.maximum(distance, 1e-6)[:, None] * overlap[:, None]).sum(axis=0) * 0.5
                step = drift + 0.5 * cell.step + speed * rng.standard_normal(ndim) * (axis_speed if ndim == 3 else 1)
                step = step + push
                if ndim == 3:  # stay in the layer: a restoring step towards the middle third of the stack
                    low, high = 0.3 * extent[0], 0.7 * extent[0]
                    step[0] += 0.3 * (np.clip(cell.centre[0], low, high) - cell.centre[0])
                if cell.push_frames > 0:
                    step = step + cell.push
                    cell.push_frames -= 1
                limit = 0.3 * cell.diameter
                length = float(np.linalg.norm(step))
                if length > limit:
                    step *= limit / length
                cell.centre = cell.centre + step
                cell.step = step
                cell.scale = min(1.0, cell.scale * growth)
                moved.append(cell)
            cells = moved
        shapes = [cell.shape() for cell in cells]
        painted, distance, kept = _paint(shapes, grid, spacing, min_size)
        cells = [cells[k] for k in kept]  # a cell no longer visible (left, hidden) ends its track here
        ids = np.array([0] + [cell.track_id for cell in cells], np.int32)
        labels = ids[painted]
        values = np.zeros(next_id, np.float32)
        for cell in cells:
            mitotic = 1.5 if cell.next_division == t + 1 else 1.0
            values[cell.track_id] = cell.brightness * mitotic
        signal = _stain(rng, style, labels, distance, values, spacing)
        images.append(_optics_and_camera(rng, style, signal, spacing, slow))
        frames.append(labels)
        if cells:
            track_ids = ids[1:]
            centroids = np.array(ndimage.center_of_mass(np.ones(grid), labels, track_ids)).reshape(-1, ndim)
            for cell, centroid in zip(cells, centroids):
                z, y, x = (centroid if ndim == 3 else (0.0, *centroid))
                rows.append((cell.track_id, t, cell.track_id, z, y, x, cell.parent))
    tracks = np.array(rows, _TRACK_DTYPE)
    tracks = tracks[np.lexsort((tracks["track_id"], tracks["frame"]))]
    return Movie(np.stack(images), np.stack(frames), tracks, float(anisotropy))
