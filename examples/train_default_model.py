"""Train trackpose's built-in model ("trackpose_default") on synthetic nuclei and cells, on a CPU.

This script is the exact recipe of the shipped model (see docs/model-card.md). Run from the repository root:

    NUMBA_NUM_THREADS=1 PYTHONPATH=python nohup python examples/train_default_model.py \
        --workdir /tmp/trackpose_default_training > /tmp/train_default.log 2>&1 &

It writes checkpoints to ``WORKDIR/trackpose_default`` (last epoch, cellpose format) and
``WORKDIR/trackpose_default_best`` (best validation AP@0.5 during training). The export step then re-estimates the
batch-norm statistics of both (``trackpose.train.recalibrate_batchnorm``, 40 batches of training crops), keeps the
one with the higher validation AP@0.5 and writes it in float16 to ``WORKDIR/stage<N>_export``, or where
``--export-to`` says (``--export-to python/trackpose/data/trackpose_default`` replaces the shipped model; no stage
does that unless asked). ``--no-export`` skips the export; ``--export-only`` exports an existing run. An
interrupted run continues with ``--resume``.

``--stage 2`` continues from stage 1's export with small crowded cells added (``STAGE2_EXTRA``). It improves 2D
accuracy but was not shipped: it made 3D mode fail on thin slices (docs/development-notes.md, "Stage 2").
``--stage 3`` is stage 2 with a quarter of the batches cropped to thin strips like 3D mode's XZ/YZ slices. It fixed
3D mode but lost held-out 2D accuracy, so it was not shipped either (docs/development-notes.md, "Stage 3"; its strips
taught objects at zero padding to flow out of the image, fixed since).
``--stage 4`` continues from stage 2's export (``WORKDIR/stage2_export``) for a short run with
half of the batches thin strips. ``--stage 5`` continues from stage 4's export (``WORKDIR/stage4_export``) with an
auxiliary loss that teaches the style vector the objects' size (``style_size_weight``), for the size model.
``--stage 6`` continues from stage 5's export (``WORKDIR/stage5_export``) with nuclei images that hold unlabelled
out-of-focus nuclei (``STAGE6_EXTRA``); ``--without-out-of-focus`` is its control (the same images without them).
``--stage 7`` continues from stage 6's export (``WORKDIR/stage6_export``) with sections of generated nuclei stacks
(``STAGE7_EXTRA``); ``--without-sections`` is its control. ``--stage 8`` continues from stage 7's export for 300
more epochs on the same data (docs/development-notes.md, "Stage 8"). ``--stage 9`` continues from stage 8's export
with sections of stacks that 3D mode was given a wrong Z step for (``STAGE9_EXTRA``). ``--stage 10`` continues from
stage 9's export with sections of stacks blurred more along Z (``STAGE10_EXTRA``); it lost accuracy on ordinary
stacks without gaining on the blurred ones and was not shipped (docs/development-notes.md, "Stage 10").
``--stage 11`` continues from stage 9's export with sections of stacks whose nuclei stand in columns along Z
(``STAGE11_EXTRA``); at its own rate it gained on such stacks and lost on the others and on 2D images
(docs/development-notes.md, "Stage 11"). ``--without-columns`` is its control (stage 9's data only).
``--stage 11 --learning-rate 0.001`` (the columns at half the rate) gained on stacks given no Z step and lost on
isotropic stacks. ``--stage 12`` trains nothing: it writes ``0.7 x stage 9's export + 0.3 x stage 11's export``
(``STAGE12_WEIGHT``, ``trackpose.train.interpolate_models``), with ``WORKDIR/stage11_export`` the half-rate run.
**The shipped model is stage 12's**: stage 1, then 2, then 4, then 5, then 6, then 7, then 8, then 9, then 11 at
half rate, then 12, with the commands in docs/model-card.md, "Commands".
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

import trackpose
from trackpose import synth
from trackpose.models import save_model
from trackpose.train import evaluate, export_half, interpolate_models, prepare_pairs, recalibrate_batchnorm, train

#: (kind, number of images, seed, generator keyword arguments): 500 training images of 256 x 256 pixels.
TRAINING_RECIPE = [
    ("nuclei", 120, 101, {"diameter_range": (8, 20)}),
    ("nuclei", 120, 102, {"diameter_range": (12, 30)}),
    ("nuclei", 60, 103, {"diameter_range": (20, 45)}),
    ("cells", 150, 104, {"diameter_range": (20, 50), "nuclear_channel_fraction": 0.5}),
    ("cells", 50, 105, {"diameter_range": (30, 70), "nuclear_channel_fraction": 0.5}),
]
#: Small validation set used to pick the best checkpoint (seeds unused elsewhere).
VALIDATION_RECIPE = [
    ("nuclei", 2, 201, {"diameter_range": (12, 30)}),
    ("cells", 2, 202, {"diameter_range": (20, 50), "nuclear_channel_fraction": 0.5}),
]
SETTINGS = dict(n_epochs=200, nimg_per_epoch=16, batch_size=8, bsize=128, learning_rate=0.005,
                weight_decay=1e-5, rescale=True, diam_mean=30.0, seed=0, save_every=10, val_every=50,
                size_model_epochs=0)
#: Stage 2 (``--stage 2``): continue from stage 1's exported (recalibrated) checkpoint on the stage-1 images plus
#: small and medium crowded cells, which stage 1 never saw (its cells are 20-70 px; cells of 8-20 px were merged
#: with their neighbours after the 2.5x upscaling to 30 px).
STAGE2_EXTRA = [
    ("cells", 100, 106, {"diameter_range": (8, 20), "nuclear_channel_fraction": 0.5}),
    ("cells", 100, 107, {"diameter_range": (12, 30), "nuclear_channel_fraction": 0.5}),
]
STAGE2_SETTINGS = dict(SETTINGS, n_epochs=1000, seed=1, val_every=100)
#: Stage 3 (``--stage 3``): stage 2's data, continued from the shipped stage-1 model, with a quarter of the batches
#: cropped to thin strips (``thin_fraction``): 3D mode runs the network on XZ/YZ slices as thin as the stack has
#: planes, which stage 2 (square crops only) got wrong.
STAGE3_SETTINGS = dict(STAGE2_SETTINGS, seed=2, thin_fraction=0.25)
#: Stage 4 (``--stage 4``): stage 2's data, continued from stage 2's export (``WORKDIR/stage2_export``, written by
#: ``--stage 2``) for a short run at a lower learning rate with half of the batches
#: thin strips: the strips come only once the 2D model is trained, so that they cost less of its 2D accuracy.
STAGE4_SETTINGS = dict(STAGE2_SETTINGS, n_epochs=300, learning_rate=0.002, seed=3, thin_fraction=0.5, val_every=50)
#: Stage 5 (``--stage 5``): stage 4's settings, continued from stage 4's export (``WORKDIR/stage4_export``) for 150
#: epochs with the auxiliary style-size loss (``style_size_weight``): the style vector learns the objects' size at
#: their native scale, so that the size model (``train_default_size_model.py``) estimates diameters better.
STAGE5_SETTINGS = dict(STAGE4_SETTINGS, n_epochs=150, seed=6, style_size_weight=1.0)
#: Stage 6 (``--stage 6``): stage 5's settings, continued from stage 5's export (``WORKDIR/stage5_export``, the
#: shipped model) with nuclei images that hold unlabelled out-of-focus nuclei (``out_of_focus``): on the real StarDist
#: samples the model called the haze of defocused nuclei foreground (docs/development-notes.md, "Stage 6").
STAGE6_EXTRA = [
    ("nuclei", 150, 108, {"diameter_range": (8, 30), "out_of_focus": 0.5}),
    ("nuclei", 100, 109, {"diameter_range": (12, 40), "out_of_focus": 1.5}),
]
STAGE6_VALIDATION_EXTRA = [("nuclei", 2, 203, {"diameter_range": (12, 30), "out_of_focus": 1.0})]
STAGE6_SETTINGS = dict(STAGE5_SETTINGS, seed=7)
#: Stage 7 (``--stage 7``): stage 6's data and settings, continued from stage 6's export (``WORKDIR/stage6_export``)
#: with sections of generated nuclei stacks (``synth.nuclei_sections``: XY planes lit by the nuclei above and below,
#: the small caps of nuclei cut near their poles, XZ/YZ sections resampled as 3D mode does), labelled by the 3D
#: truth: on the real stack the model called the haze between nuclei foreground in every plane.
STAGE7_EXTRA = [("nuclei_sections", 40, 110, {"diameter_range": (8, 24)})]
STAGE7_VALIDATION_EXTRA = [("nuclei_sections", 1, 204, {"diameter_range": (8, 24), "planes": 3, "sides": 1})]
STAGE7_SETTINGS = dict(STAGE6_SETTINGS, seed=8)
#: Stage 8 (``--stage 8``): stage 7's data, continued from stage 7's export (``WORKDIR/stage7_export``) for 300 more
#: epochs: in stage 7's control, more epochs on the same images still helped (docs/development-notes.md, "Stage 7").
STAGE8_SETTINGS = dict(STAGE7_SETTINGS, n_epochs=300, seed=9)
#: Stage 9 (``--stage 9``): stage 7's data plus sections of stacks segmented with a wrong Z step, continued from stage
#: 8's export (``WORKDIR/stage8_export``) for 300 epochs: with the default anisotropy 1 on the real stack (a Z step of
#: about 2) the model merged nuclei of successive layers across the thinner gaps between them. The stacks have a Z
#: step of 1.5-3 pixels and their XZ/YZ sections are resampled with 1/3 to 2/3 of it (``anisotropy_error``), i.e.
#: as 3D mode resamples them when given an anisotropy of 0.5-2 (1 on average, the default); every section of these
#: stacks trains at the stack's XY nucleus diameter, the one 3D mode is given, not the one its labels show.
WRONG_Z_STEP = {"diameter_range": (8, 24), "anisotropy_range": (1.5, 3.0), "anisotropy_error": (1 / 3, 2 / 3),
                "with_diameter": True}
STAGE9_EXTRA = [("nuclei_sections", 40, 111, dict(WRONG_Z_STEP, planes=2, sides=4))]
STAGE9_VALIDATION_EXTRA = [("nuclei_sections", 1, 205, dict(WRONG_Z_STEP, planes=1, sides=3))]
STAGE9_SETTINGS = dict(STAGE8_SETTINGS, seed=10)
#: Stage 10 (``--stage 10``): stage 9's data plus sections of stacks whose point-spread function is 3-8 times wider
#: along Z than in XY (``axial_psf``; the generator's default is 2-4), continued from stage 9's export
#: (``WORKDIR/stage9_export``) for 300 epochs: the real stack keeps 40-74 % of a nucleus's contrast 2-8 pixels above
#: and below it (generated stacks at 2-4: 11-55 %), and 3D mode called that light nucleus (masks 1.2x the annotated
#: volume with the right Z step). Not shipped: it lost 0.04-0.06 AP@0.5 on ordinary stacks and gained nothing on
#: the blurred ones (docs/development-notes.md, "Stage 10").
AXIAL_BLUR = {"diameter_range": (8, 24), "axial_psf": (3.0, 8.0)}
STAGE10_EXTRA = [("nuclei_sections", 40, 112, dict(AXIAL_BLUR, planes=3, sides=3))]
STAGE10_VALIDATION_EXTRA = [("nuclei_sections", 1, 206, dict(AXIAL_BLUR, planes=1, sides=3))]
STAGE10_SETTINGS = dict(STAGE8_SETTINGS, seed=11)
#: Stage 11 (``--stage 11``): stage 9's data plus sections of stacks whose nuclei stand in columns along Z, each on
#: the next (``columns=True``), as the real 3D sample's do (0.9 stacked pairs per nucleus; the free placement gives
#: 0.2-0.4), some resampled with a wrong Z step as in stage 9; continued from stage 9's export
#: (``WORKDIR/stage9_export``). At this rate it gained on column stacks and lost on the free-placement stacks and
#: 2D images; with ``--learning-rate 0.001`` it is the shipped model (docs/development-notes.md, "Stage 11").
COLUMNS = {"diameter_range": (8, 24), "anisotropy_range": (1.5, 3.0), "columns": True}
STAGE11_EXTRA = [("nuclei_sections", 30, 113, dict(COLUMNS, planes=3, sides=3)),
                 ("nuclei_sections", 20, 114, dict(WRONG_Z_STEP, columns=True, planes=2, sides=4))]
STAGE11_VALIDATION_EXTRA = [("nuclei_sections", 1, 207, dict(COLUMNS, planes=1, sides=3))]
STAGE11_SETTINGS = dict(STAGE8_SETTINGS, seed=12)
#: Stage 12 (``--stage 12``): no training; stage 9's and stage 11's exports (the half-rate run) averaged weight by
#: weight, this much of stage 11's: the half-rate run lost nuclei in isotropic stacks that stage 9 found, and the
#: average keeps them (docs/development-notes.md, "Stage 12").
STAGE12_WEIGHT = 0.3
RECALIBRATION_BATCHES = 40
SHIPPED = Path(__file__).resolve().parents[1] / "python" / "trackpose" / "data" / "trackpose_default"


def make_pairs(recipe):
    """Images, masks and diameters (None: measured from the masks) of a recipe."""
    images, masks, diameters = [], [], []
    for kind, n, seed, kwargs in recipe:
        pairs = (synth.nuclei_sections(n, seed=seed, **kwargs) if kind == "nuclei_sections"
                 else synth.dataset(n, kind, seed=seed, **kwargs))
        for image, labels, *diameter in pairs:
            images.append(image)
            masks.append(labels)
            diameters.append(diameter[0] if diameter else None)
    return images, masks, diameters


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="/tmp/trackpose_default_training")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument("--export-only", action="store_true")
    parser.add_argument("--device", default=None, help="cpu (default) or cuda")
    parser.add_argument("--stage", type=int, choices=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), default=1,
                        help="1: train from scratch (TRAINING_RECIPE); 2: continue from stage 1's export "
                             "(WORKDIR/trackpose_default_recalibrated) with STAGE2_EXTRA added, into WORKDIR/stage2; "
                             "3: as 2 with thin-strip batches (STAGE3_SETTINGS), into WORKDIR/stage3; "
                             "4: continue from stage 2's export (WORKDIR/stage2_export) with thin-strip batches "
                             "(STAGE4_SETTINGS), into WORKDIR/stage4; 5: continue from stage 4's export "
                             "(WORKDIR/stage4_export) with the style-size loss (STAGE5_SETTINGS), into WORKDIR/stage5; "
                             "6: continue from stage 5's export (WORKDIR/stage5_export) with out-of-focus nuclei "
                             "(STAGE6_EXTRA), into WORKDIR/stage6; 7: continue from stage 6's export "
                             "(WORKDIR/stage6_export) with sections of generated stacks (STAGE7_EXTRA), into "
                             "WORKDIR/stage7; 8: continue from stage 7's export (WORKDIR/stage7_export) for 300 "
                             "epochs (STAGE8_SETTINGS), into WORKDIR/stage8; 9: continue from stage 8's export "
                             "(WORKDIR/stage8_export) with sections resampled with a wrong Z step (STAGE9_EXTRA), "
                             "into WORKDIR/stage9; 10: continue from stage 9's export (WORKDIR/stage9_export) with "
                             "sections of stacks blurred more along Z (STAGE10_EXTRA), into WORKDIR/stage10; 11: "
                             "continue from stage 9's export with sections of stacks of nuclei in columns "
                             "(STAGE11_EXTRA), into WORKDIR/stage11; 12: no training, WORKDIR/stage9_export and "
                             "WORKDIR/stage11_export averaged (STAGE12_WEIGHT of stage 11's)")
    parser.add_argument("--without-sections", action="store_true",
                        help="stage 7's control: stage 6's images only (same settings and validation set)")
    parser.add_argument("--without-columns", action="store_true",
                        help="stage 11's control: stage 9's images only, continued the same way (same settings and "
                             "validation set)")
    parser.add_argument("--without-out-of-focus", action="store_true",
                        help="stage 6's control: the same images without their out-of-focus nuclei")
    parser.add_argument("--epochs", type=int, default=None, help="override the stage's n_epochs")
    parser.add_argument("--style-size-weight", type=float, default=None, help="override the stage's style_size_weight")
    parser.add_argument("--learning-rate", type=float, default=None, help="override the stage's learning_rate")
    parser.add_argument("--export-to", type=Path, default=None,
                        help=f"where the float16 model goes (default WORKDIR/stage<N>_export; the shipped model is "
                             f"{SHIPPED})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    torch.set_num_threads(args.threads)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    save_path = workdir / "trackpose_default"
    if args.stage == 12:
        base, tuned = workdir / "stage9_export", workdir / "stage11_export"
        for path, stage in ((base, "9"), (tuned, "11 --learning-rate 0.001")):
            if not path.is_file():
                parser.error(f"stage 12 averages {base} and {tuned}: run stage {stage} (with its export) first")
        target = interpolate_models(base, tuned, STAGE12_WEIGHT, args.export_to or workdir / "stage12_export")
        print(f"exported {STAGE12_WEIGHT} x {tuned} + {1 - STAGE12_WEIGHT:g} x {base} -> {target}", flush=True)
        return
    recipe, settings, start = TRAINING_RECIPE, dict(SETTINGS), None
    if args.stage > 1:
        recipe = (TRAINING_RECIPE + STAGE2_EXTRA + (STAGE6_EXTRA if args.stage >= 6 else [])
                  + (STAGE7_EXTRA if args.stage >= 7 and not args.without_sections else [])
                  + (STAGE9_EXTRA if args.stage >= 9 else []) + (STAGE10_EXTRA if args.stage == 10 else [])
                  + (STAGE11_EXTRA if args.stage == 11 and not args.without_columns else []))
        settings = dict({2: STAGE2_SETTINGS, 3: STAGE3_SETTINGS, 4: STAGE4_SETTINGS, 5: STAGE5_SETTINGS,
                         6: STAGE6_SETTINGS, 7: STAGE7_SETTINGS, 8: STAGE8_SETTINGS, 9: STAGE9_SETTINGS,
                         10: STAGE10_SETTINGS, 11: STAGE11_SETTINGS}[args.stage])
        # stages 2 and 3 start from stage 1's checkpoint
        previous = {4: 2, 5: 4, 6: 5, 7: 6, 8: 7, 9: 8, 10: 9, 11: 9}.get(args.stage)
        start = workdir / (f"stage{previous}_export" if previous else "trackpose_default_recalibrated")
        save_path = workdir / f"stage{args.stage}" / "trackpose_default"
        if not start.is_file():
            before = f"stage {previous or 1} (with its export)"
            parser.error(f"stage {args.stage} continues from {start}: run {before} first")
    if args.epochs is not None:
        settings["n_epochs"] = args.epochs
    if args.style_size_weight is not None:
        settings["style_size_weight"] = args.style_size_weight
    if args.learning_rate is not None:
        settings["learning_rate"] = args.learning_rate

    if args.without_out_of_focus:  # the in-focus images and labels are the same (out_of_focus draws apart)
        recipe = [(kind, n, seed, {k: v for k, v in kw.items() if k != "out_of_focus"}) for kind, n, seed, kw in recipe]
    images, masks, diameters = make_pairs(recipe)
    val_images, val_masks, val_diameters = make_pairs(
        VALIDATION_RECIPE + (STAGE6_VALIDATION_EXTRA if args.stage >= 6 else [])
        + (STAGE7_VALIDATION_EXTRA if args.stage >= 7 else []) + (STAGE9_VALIDATION_EXTRA if args.stage >= 9 else [])
        + (STAGE10_VALIDATION_EXTRA if args.stage == 10 else [])
        + (STAGE11_VALIDATION_EXTRA if args.stage == 11 else []))
    if not args.export_only:
        result = train(images, masks, model=start, save_path=save_path, val_images=val_images,
                       val_masks=val_masks, resume=args.resume, device=args.device, diameters=diameters,
                       val_diameters=val_diameters, progress=lambda e: print(json.dumps(e), flush=True),
                       **settings)
        print(f"done: {len(result.history)} epochs, final loss {result.history[-1]['loss']:.4f}, "
              f"diam_labels {result.diam_labels:.1f}", flush=True)
    if not args.no_export:
        export(save_path, images, masks, val_images, val_masks,
               args.export_to or workdir / f"stage{args.stage}_export", diameters, val_diameters)


def export(save_path, images, masks, val_images, val_masks, target_path, diameters=None, val_diameters=None):
    """Recalibrate the batch-norms of the last and the best checkpoint, keep the better, write it in float16."""
    pairs = prepare_pairs(images, masks, diameters=diameters)
    val_pairs = prepare_pairs(val_images, val_masks, min_train_masks=1, what="validation", diameters=val_diameters)
    scores = {}
    for candidate in (save_path, save_path.with_name(save_path.name + "_best")):
        if not candidate.is_file():
            continue
        model = trackpose.load_model(candidate)
        recalibrate_batchnorm(model.net, pairs, RECALIBRATION_BATCHES, SETTINGS["batch_size"], SETTINGS["bsize"],
                              SETTINGS["diam_mean"], seed=SETTINGS["seed"])
        target = candidate.with_name(candidate.name + "_recalibrated")
        save_model(model.net, target, model.diam_mean, model.diam_labels)
        ap = evaluate(model.net, val_pairs, model.diam_mean, model.diam_labels, model.device)
        scores[target] = float(ap[0])
        print(f"{candidate.name}: validation AP@0.5 {ap[0]:.3f}, AP@0.75 {ap[1]:.3f} after recalibration",
              flush=True)
    chosen = max(scores, key=scores.get)
    export_half(chosen, target_path)
    print(f"exported {chosen} -> {target_path} ({target_path.stat().st_size / 1e6:.1f} MB, float16)", flush=True)


if __name__ == "__main__":
    main()
