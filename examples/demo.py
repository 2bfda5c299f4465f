"""The main job, end to end, with the built-in model and data the demo makes itself.

1. Generates a fluorescence-like image of nuclei with its ground truth (trackpose.synth, fixed seed).
2. Segments it with `trackpose segment` (the command line), as a user would, and scores it with `trackpose eval`;
   draws the outlines over the image, coloured by match to the truth (found green, false red, missed blue).
3. Runs one bridge job on a 3-frame movie exactly as the TrackMate detector does (`trackpose job DIR`), prints
   the events and detected objects per frame, and draws a montage of the frames with their outlines.

Outputs go to the folder given (default: ./trackpose-demo).
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import tifffile

from trackpose import io, overlay, synth


def run(*args) -> subprocess.CompletedProcess:
    print("$ trackpose " + " ".join(str(a) for a in args), flush=True)
    p = subprocess.run([sys.executable, "-m", "trackpose", *map(str, args)], text=True, capture_output=True)
    if p.returncode != 0:
        sys.exit(f"demo step failed (exit {p.returncode}):\n{p.stdout}{p.stderr}")
    return p


def main(out: Path) -> None:
    images, truth = out / "images", out / "truth"
    images.mkdir(parents=True, exist_ok=True)
    truth.mkdir(exist_ok=True)
    image, masks = synth.nuclei_image((384, 384), diameter_range=(14, 26), seed=2024)
    scaled = (image / image.max() * 4000).astype(np.uint16)
    meta = io.ImageMeta(axes="YX", pixel_size_x=0.65, pixel_size_y=0.65, unit="micron")
    io.write_tiff(images / "nuclei.tif", scaled.astype(np.float32), meta)
    io.write_labels(truth / "nuclei_masks.tif", masks, meta)
    print(f"made {images / 'nuclei.tif'} with {masks.max()} nuclei (ground truth in {truth})")

    p = run("segment", images, "--diameter", 20, "--savedir", out / "masks")
    print(p.stdout.strip())
    p = run("eval", out / "masks", truth)
    print(p.stdout.strip())
    found, _ = io.read_image(out / "masks" / "nuclei_cp_masks.tif")
    picture = io.write_png(out / "nuclei_overlay.png", overlay.outline_overlay(scaled, found, truth=masks))
    matched, missed = overlay.match_classes(found, masks)
    print(f"picture: {picture} (green: {len(matched)} found, red: {int(found.max()) - len(matched)} false, "
          f"blue: {len(missed)} missed)")

    job = out / "job"
    job.mkdir(exist_ok=True)
    movie = np.stack([synth.nuclei_image((256, 256), diameter_range=(14, 26), seed=s)[0] for s in (7, 8, 9)])
    tifffile.imwrite(job / "input.tif", (movie / movie.max() * 4000).astype(np.uint16), imagej=True,
                     resolution=(1 / 0.65, 1 / 0.65), metadata={"axes": "TYX", "unit": "micron"})
    (job / "job.json").write_text(json.dumps({
        "version": 1, "frames": [0, 1, 2], "calibration": {"x": 0.65, "y": 0.65, "z": 1.0, "unit": "micron"},
        "settings": {"diameter": 20.0}, "outputs": {"labels": True, "shapes": True}}))
    p = run("job", job)
    events = [json.loads(line) for line in p.stdout.splitlines()]
    print(f"bridge job: {len(events)} events, last: {events[-1]}")
    shapes = json.loads((job / "shapes.json").read_text())
    for frame in shapes["frames"]:
        first = frame["objects"][0] if frame["objects"] else None
        print(f"  frame {frame['frame']}: {len(frame['objects'])} objects"
              + (f"; first at ({first['centroid'][0]:.1f}, {first['centroid'][1]:.1f}) px, "
                 f"area {first['area']} px, {len(first['polygon'])}-vertex outline" if first else ""))
    labels, _ = io.read_image(job / "labels.tif")
    montage = io.write_png(out / "job_frames.png", overlay.stack_overlay(movie, labels))
    print(f"picture: {montage} (the job's {len(movie)} frames with their outlines)")
    print(f"done: outputs in {out}; pictures: {picture.name}, {montage.name}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("trackpose-demo"))
