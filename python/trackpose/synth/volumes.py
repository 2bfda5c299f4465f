"""3D synthetic stacks (``nuclei_volume``, ``cells_volume``) and the physical-space renderer that movies share:
rotated irregular ellipsoids placed in physical space, painted on a voxel grid, stained, blurred by a depth-
dependent point-spread function and imaged with camera noise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from scipy import ndimage

from ..errors import InputError
from .images import check_args, clean_labels, slow_field, smooth_noise


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
class Shape3D:
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

    def moved(self, centre, scale: float = 1.0) -> "Shape3D":
        return Shape3D(np.asarray(centre, float), self.axes * scale, self.rotation, self.ripples, self.bumps)


def random_shape3d(rng: np.random.Generator, centre, diameter: float, elongation: float, irregularity: float,
                    protrusions: float) -> Shape3D:
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
    return Shape3D(np.asarray(centre, float), axes, _rotation(rng), ripples, bumps)


def _shape_centre(s) -> np.ndarray:
    return s.centre if isinstance(s, Shape3D) else np.array([s.cy, s.cx])


def place_nd(rng: np.random.Generator, extent: np.ndarray, n: int, diameter_range, spacing: float,
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


def place_columns(rng: np.random.Generator, extent: np.ndarray, n: Optional[int], diameter_range, spacing: float,
                  make_shape, pitch: float = 1.5, margin: float = 0.2) -> list:
    """Up to ``n`` shapes stacked in columns along Z (the first axis), as nuclei stand in an epithelium or a dense
    tissue: column axes on a jittered hexagonal grid ``pitch`` x the mean diameter apart in Y and X, and in each
    column shapes one on top of the next, centres ``spacing`` x the sum of their radii apart along Z, from a random
    start; each centre jittered by a tenth of its diameter. Centres may lie up to ``margin`` diameters outside the
    box. Which ``n`` of the candidates are kept is random (None: all).
    """
    lo, hi = diameter_range
    mean_diameter = float(np.exp(np.mean(np.log(diameter_range))))
    pitch = pitch * mean_diameter
    centres = []
    for row, y in enumerate(np.arange(-margin * mean_diameter, extent[1] + margin * mean_diameter, pitch * 0.866)):
        for x in np.arange(-margin * mean_diameter + (pitch / 2) * (row % 2), extent[2] + margin * mean_diameter,
                           pitch):
            axis = np.array([y, x]) + rng.normal(0, 0.15 * pitch, 2)
            z, previous = rng.uniform(-mean_diameter, 0), 0.0
            while True:
                diameter = np.exp(rng.uniform(np.log(lo), np.log(hi)))
                z += spacing * (previous + diameter) / 2 if previous else 0.0
                if z > extent[0] + margin * diameter:
                    break
                centres.append((diameter, np.array([z, *axis]) + rng.normal(0, 0.1 * diameter, 3)))
                previous = diameter
    order = rng.permutation(len(centres))[:n]
    return [make_shape(centres[i][1], centres[i][0]) for i in sorted(order)]


def paint(shapes: Sequence, grid: tuple, spacing: np.ndarray, min_size: int):
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
    labels, best, kept = clean_labels(labels, best, min_size)
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


def draw_style(rng: np.random.Generator, kind: str, stain: str, mean_diameter: float, depth: float,
               axial_psf: Sequence[float] = (2.0, 4.0)) -> _Style:
    """One volume's (or movie's) appearance; ``axial_psf`` (low, high) bounds the PSF's Z / XY width ratio."""
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
        psf_xy=psf_xy, psf_z=psf_xy * rng.uniform(*axial_psf),
        depth_blur=rng.uniform(0.0, 1.5) * psf_xy,
        attenuation=depth * rng.uniform(1.0, 4.0),
        background=background,
        gradient=rng.uniform(-1, 1, 3) * rng.uniform(0, 0.6) * background,
        slow_amplitude=rng.uniform(0, 0.5),
        photons=float(np.exp(rng.uniform(np.log(20), np.log(3000)))),
        read_noise=rng.uniform(0.5, 4.0), gain=rng.uniform(0.5, 4.0), offset=rng.uniform(0, 500))


def object_brightness(rng: np.random.Generator, style: _Style, n: int) -> np.ndarray:
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


def stain_objects(rng: np.random.Generator, style: _Style, labels: np.ndarray, distance: np.ndarray,
           values: np.ndarray, spacing: np.ndarray, nuclei: Optional[np.ndarray] = None) -> np.ndarray:
    """Noise-free stain (peak about 1) of labelled objects; ``values`` indexed by label id (0 -> 0)."""
    inside = labels > 0
    d = np.where(inside, distance, 1.0)
    profile = 1 - style.profile * d ** style.profile_power
    texture = 1 + style.texture * smooth_noise(rng, labels.shape, _sigma(style.texture_sigma, spacing))
    if style.kind == "nuclei":
        if style.nucleoli > 0:
            blobs = smooth_noise(rng, labels.shape, _sigma(0.1 * style.haze_sigma / 0.75 + 1, spacing))
            texture -= style.nucleoli * np.clip(blobs - 1.5, 0, None)
        signal = values[labels] * profile * np.clip(texture, 0.2, None)
    else:
        if style.fine_texture > 0:
            texture += style.fine_texture * smooth_noise(rng, labels.shape, _sigma(0.2 * style.haze_sigma, spacing))
        signal = values[labels] * np.clip(texture, 0.15, None)
        if style.stain == "membrane":
            signal = signal * np.where(_boundaries(labels), 1.0, 0.15)
        else:
            signal = signal * profile
            if nuclei is not None:
                signal = signal * np.where(nuclei > 0, style.nucleus_factor, 1.0)
    return np.where(inside, signal, 0).astype(np.float32)


def optics_and_camera(rng: np.random.Generator, style: _Style, signal: np.ndarray, spacing: np.ndarray,
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


def check_axial_psf(axial_psf) -> tuple[float, float]:
    lo, hi = (float(v) for v in axial_psf)
    if not 0 < lo <= hi:
        raise InputError(f"axial_psf must be (low, high) Z / XY PSF width ratios with 0 < low <= high, got {axial_psf}")
    return lo, hi


def check_volume_args(shape, diameter_range, n, anisotropy) -> tuple[tuple[int, int, int], tuple[float, float]]:
    if len(shape) != 3 or shape[0] < 1 or min(shape[1:]) < 8:
        raise InputError(f"shape must be (Z, Y, X) with Y, X >= 8 pixels and Z >= 1, got {shape}")
    if not np.isfinite(anisotropy) or anisotropy <= 0:
        raise InputError(f"anisotropy (Z step / XY pixel size) must be > 0, got {anisotropy}")
    _, diameter_range = check_args(shape[1:], diameter_range, n)
    return (int(shape[0]), int(shape[1]), int(shape[2])), diameter_range


def _volume(kind: str, shape, n, diameter_range, anisotropy, seed, crowding, elongation, irregularity,
            protrusions, stain, nuclear_channel, axial_psf=(2.0, 4.0), columns=False):
    shape, diameter_range = check_volume_args(shape, diameter_range, n, anisotropy)
    axial_psf = check_axial_psf(axial_psf)
    rng = np.random.default_rng(seed)
    spacing = np.array([float(anisotropy), 1.0, 1.0])
    extent = np.array(shape) * spacing
    crowding = rng.uniform(0, 1) if crowding is None else float(np.clip(crowding, 0, 1))
    mean_diameter = float(np.exp(np.mean(np.log(diameter_range))))
    if n is None and not columns:
        fill = (rng.uniform(0.15, 0.3) + 0.35 * crowding) if kind == "nuclei" else (rng.uniform(0.25, 0.4)
                                                                                      + 0.4 * crowding)
        n = max(1, int(round(fill * np.prod(extent) / (np.pi / 6 * mean_diameter ** 3))))
    spacing_factor = (1.05 - 0.35 * crowding) if kind == "nuclei" else (0.95 - 0.4 * crowding)

    def make(centre, diameter):
        return random_shape3d(rng, centre, diameter, elongation, irregularity, protrusions)

    if columns:  # touching along Z; the columns' pitch from 2 diameters (crowding 0) to 1 (crowding 1)
        shapes = place_columns(rng, extent, n, diameter_range, spacing_factor, make, pitch=2.0 - crowding)
    else:
        shapes = place_nd(rng, extent, n, diameter_range, spacing_factor, make)
    min_size = max(8, int(0.05 * diameter_range[0] ** 3 / anisotropy))
    labels, distance, kept = paint(shapes, shape, spacing, min_size)
    style = draw_style(rng, kind, stain, mean_diameter, extent[0], axial_psf)
    slow = slow_field(rng, shape[1:])[None]
    values = np.concatenate([[0], object_brightness(rng, style, len(kept))]).astype(np.float32)
    if kind == "nuclei":
        return optics_and_camera(rng, style, stain_objects(rng, style, labels, distance, values, spacing), spacing,
                                  slow), labels
    # one nucleus per cell: a smaller, rounder shape near the cell's centre, clipped to the cell
    nuclear_shapes = []
    for k in kept:
        s = shapes[k]
        size = 2 * float(np.prod(s.axes)) ** (1 / 3) * rng.uniform(0.35, 0.55)
        nuclear_shapes.append(random_shape3d(rng, s.centre + 0.1 * size * rng.standard_normal(3), size, 1.4, 0.15,
                                              0.0))
    nuclei, nuclear_distance, nuclear_kept = paint(nuclear_shapes, shape, spacing, 1)
    ids = np.concatenate([[0], np.array(nuclear_kept, int) + 1])
    inside = ids[nuclei] == labels  # nucleus k belongs to cell k: keep the part inside its own cell
    nuclei = np.where(inside & (nuclei > 0), labels, 0)
    nuclear_distance = np.where(nuclei > 0, nuclear_distance, np.inf)
    image = optics_and_camera(rng, style, stain_objects(rng, style, labels, distance, values, spacing, nuclei), spacing,
                               slow)
    if not nuclear_channel:
        return image, labels
    nuclear_style = draw_style(rng, "nuclei", "nuclei", 0.45 * mean_diameter, extent[0], axial_psf)
    nuclear = optics_and_camera(rng, nuclear_style, stain_objects(rng, nuclear_style, nuclei, nuclear_distance,
                                                            _brightness_lut(rng, nuclear_style, labels), spacing),
                                 spacing, slow)
    return np.stack([image, nuclear]), labels


def _brightness_lut(rng, style, labels) -> np.ndarray:
    return np.concatenate([[0], object_brightness(rng, style, int(labels.max()))]).astype(np.float32)


def nuclei_volume(shape: Sequence[int] = (32, 128, 128), n: Optional[int] = None,
                  diameter_range: Sequence[float] = (12, 24), anisotropy: float = 1.0, seed=None,
                  crowding: Optional[float] = None, elongation: float = 1.6,
                  irregularity: float = 0.25,
                  axial_psf: Sequence[float] = (2.0, 4.0), columns: bool = False) -> tuple[np.ndarray, np.ndarray]:
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
    axial_psf : (low, high)
        The point-spread function's width along Z as a multiple of its width in XY, drawn uniformly from this range
        (default 2-4, a confocal-like stack). Widefield and spinning-disk stacks blur far more along Z: (4, 8) gives
        nuclei the light above and below them that such stacks show (docs/synthetic-data.md).
    columns : bool
        Stack the nuclei in columns along Z, each touching the ones above and below it, as in an epithelium or a
        dense tissue (``place_columns``), instead of placing them anywhere at the crowding's spacing. ``n`` then
        caps the count (default: every column filled).

    Returns
    -------
    image : (Z, Y, X) float32
        Camera counts: textured nuclei, a point-spread function wider along Z (and wider with depth), intensity
        falling with depth, a background gradient, Poisson and Gaussian noise. Not normalised.
    labels : (Z, Y, X) int32
        0 = background, 1..n nuclei, each one 6-connected piece; a voxel is labelled where its object is.
    """
    return _volume("nuclei", shape, n, diameter_range, anisotropy, seed, crowding, elongation, irregularity, 0.0,
                   "nuclei", False, axial_psf, columns)


def nuclei_sections(n: int, seed=None, shape: Sequence[int] = (24, 128, 128),
                    diameter_range: Sequence[float] = (8, 24), anisotropy_range: Sequence[float] = (1.0, 3.0),
                    planes: int = 6, sides: int = 2, min_area: int = 4,
                    anisotropy_error: Sequence[float] = (1.0, 1.0), with_diameter: bool = False,
                    axial_psf: Sequence[float] = (2.0, 4.0), columns: bool = False,
                    crowding: Optional[float] = None) -> list[tuple]:
    """2D sections of ``n`` generated nuclei stacks (``nuclei_volume``), as 3D mode and 2D + Z stitching show
    them to the network, with the labels the 3D truth gives them.

    From each stack (anisotropy drawn log-uniformly from ``anisotropy_range``): ``planes`` XY planes, which hold the
    light of nuclei above and below the plane (the PSF is wider along Z) and the small caps of nuclei cut near their
    poles; and ``sides`` XZ or YZ sections resampled along Z to square pixels (linear for the image, nearest for
    the labels), as 3D mode resamples a stack. In each section every connected piece of a nucleus is its own label
    and pieces under ``min_area`` pixels are background. Returns a list of (image float32, labels int32) pairs, the
    same for the same arguments.

    ``anisotropy_error`` (low, high): each XZ/YZ section is resampled with the stack's anisotropy times a factor
    drawn log-uniformly from this range, as 3D mode resamples a stack whose Z step it was told wrongly: below 1,
    nuclei squashed along Z and the gaps between them thinner (a Z step of 2-3 pixels segmented with the default
    anisotropy 1 gives 1/3-1/2); the sections are cut at the same places as without it. The default (1, 1)
    resamples exactly.

    ``axial_psf``, ``columns`` and ``crowding`` are passed to ``nuclei_volume`` (the PSF's Z / XY width ratio
    range; nuclei stacked in columns along Z; their spacing, default random).

    ``with_diameter=True`` returns (image, labels, diameter) triples instead, ``diameter`` being the stack's median
    volume-equivalent nucleus diameter in XY pixels: what 3D mode is given for the stack, which the labels of a
    section (caps, squashed nuclei) do not tell.
    """
    lo, hi = (float(v) for v in anisotropy_range)
    if not 0 < lo <= hi:
        raise InputError(f"anisotropy_range must be (low, high) with 0 < low <= high, got {anisotropy_range}")
    err_lo, err_hi = (float(v) for v in anisotropy_error)
    if not 0 < err_lo <= err_hi:
        raise InputError(f"anisotropy_error must be (low, high) with 0 < low <= high, got {anisotropy_error}")
    check_axial_psf(axial_psf)
    pairs = []
    for child in np.random.SeedSequence(seed).spawn(int(n)):
        rng = np.random.default_rng(child)
        anisotropy = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        image, labels = nuclei_volume(shape, diameter_range=diameter_range, anisotropy=anisotropy,
                                      seed=child.spawn(1)[0], axial_psf=axial_psf, columns=columns,
                                      crowding=crowding)
        # the Z-step errors come from their own stream: the sections are cut where they are without them
        wrong_z = None if (err_lo, err_hi) == (1.0, 1.0) else np.random.default_rng(child.spawn(1)[0])
        extra = (volume_diameter(labels, anisotropy),) if with_diameter else ()
        for z in np.sort(rng.choice(image.shape[0], min(planes, image.shape[0]), replace=False)):
            pairs.append((image[z], _section_labels(labels[z], min_area)) + extra)
        for _ in range(sides):
            axis = int(rng.integers(1, 3))  # 1: an XZ section (fixed Y), 2: a YZ section (fixed X)
            at = int(rng.integers(0, image.shape[axis]))
            section, truth = np.take(image, at, axis=axis), np.take(labels, at, axis=axis)
            given = anisotropy
            if wrong_z is not None:
                given *= float(np.exp(wrong_z.uniform(np.log(err_lo), np.log(err_hi))))
            rows = max(2, int(round(section.shape[0] * given)))
            zoom = (rows / section.shape[0], 1.0)
            pairs.append((ndimage.zoom(section, zoom, order=1).astype(np.float32),
                          _section_labels(ndimage.zoom(truth, zoom, order=0), min_area)) + extra)
    return pairs


def volume_diameter(labels: np.ndarray, anisotropy: float = 1.0) -> float:
    """Median volume-equivalent diameter of a stack's labels in XY pixels (a Z voxel is ``anisotropy`` pixels
    tall): the diameter to give 3D mode for a generated stack."""
    voxels = np.bincount(np.asarray(labels).ravel())[1:]
    voxels = voxels[voxels > 0]
    return float(np.median(np.cbrt(6 * voxels * anisotropy / np.pi)))


def _section_labels(labels: np.ndarray, min_area: int) -> np.ndarray:
    """Each connected piece of each label its own id (1..k, in order); pieces under ``min_area`` pixels -> 0."""
    out = np.zeros(labels.shape, np.int32)
    next_id = 1
    for index, region in enumerate(ndimage.find_objects(labels), start=1):
        if region is None:
            continue
        pieces, count = ndimage.label(labels[region] == index)
        sizes = np.bincount(pieces.ravel(), minlength=count + 1)
        for k in range(1, count + 1):
            if sizes[k] >= min_area:
                out[region][pieces == k] = next_id
                next_id += 1
    return out


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
