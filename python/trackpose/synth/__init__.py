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

Layout
------
``images`` (2D), ``volumes`` (3D and the physical-space renderer) and ``movies`` (time-lapses, 2D or 3D, on the
volumes' renderer). The 2D pipeline is not folded into the n-dimensional one: the built-in model's training recipe
draws its images from ``dataset`` / ``nuclei_image`` / ``cells_image``, and its tests pin digests of those pixels;
the 2D generators draw their random numbers in an order and with operations (pixel-grid rasterisation, 2D noise
fields) that the n-D renderer does not reproduce, so merging them would change the training data. The public names
are re-exported here: ``from trackpose import synth; synth.nuclei_image(...)``.
"""
from __future__ import annotations

from .images import KINDS, cells_image, dataset, nuclei_image, sized_image
from .movies import TRACK_COLUMNS, Movie, movie, write_tracks_csv
from .volumes import cells_volume, nuclei_sections, nuclei_volume, volume_diameter
from .colony import Colony, colony

__all__ = ["KINDS", "nuclei_image", "cells_image", "sized_image", "dataset", "nuclei_volume", "nuclei_sections",
           "volume_diameter", "cells_volume", "TRACK_COLUMNS", "Movie", "movie", "write_tracks_csv", "Colony", "colony"]
