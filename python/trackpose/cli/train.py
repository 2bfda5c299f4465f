"""``trackpose train``: train or fine-tune a cellpose-format model on a folder of images and label masks."""
from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train or fine-tune a model on images with label masks",
                       description="Train a cellpose-format model on FOLDER/<name>.tif + FOLDER/<name>_masks.tif "
                                   "pairs (cellpose naming). The result loads in trackpose and in cellpose 3.")
    p.add_argument("folder", help="training images and their <name>_masks label images")
    p.add_argument("--val-folder", default=None, help="validation images + masks (AP per epoch, best checkpoint) "
                   "[default: none]")
    p.add_argument("--model", default=None, help="start from this model (name or file) [default: random weights]")
    p.add_argument("--save", default="trackpose_model", help="output model file [default: trackpose_model]")
    p.add_argument("--epochs", type=int, default=100, help="passes over the training images [default: 100]")
    p.add_argument("--learning-rate", type=float, default=None, help="initial learning rate [default: 0.005 with AdamW, 0.2 with --sgd]")
    p.add_argument("--sgd", action="store_true", help="SGD with momentum instead of AdamW")
    p.add_argument("--batch-size", type=int, default=8, help="crops per optimisation step [default: 8]")
    p.add_argument("--bsize", type=int, default=224, help="training crop size in pixels (e.g. 512 for long thin "
                   "cells) [default: 224]")
    p.add_argument("--no-rescale", action="store_true",
                   help="do not rescale objects to the model's diameter (keeps thin protrusions at full size)")
    p.add_argument("--diam-mean", type=float, default=None, help="training scale diameter [default: 30, or the "
                   "starting model's]")
    p.add_argument("--chan", type=int, default=0, help="channel to train on, counted from 1; 0 = grayscale "
                   "[default: 0]")
    p.add_argument("--chan2", type=int, default=0, help="optional nuclear channel, counted from 1; 0 = none "
                   "[default: 0]")
    p.add_argument("--seed", type=int, default=0, help="random seed of weights, crops and augmentation "
                   "[default: 0]")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint next to --save")
    p.add_argument("--size-model-epochs", type=int, default=2, help="passes over the images to fit the size "
                   "model (<save>_size.npy, used by --diameter 0) after training; 0 = do not fit one [default: 2]")
    p.add_argument("--thin-fraction", type=float, default=0.0,
                   help="share of batches cropped to thin strips, as 3D mode's XZ/YZ slices of stacks with few "
                        "planes (e.g. 0.25 for a model used in 3D) [default: 0]")
    p.add_argument("--style-size-weight", type=float, default=0.0,
                   help="weight of an auxiliary loss that teaches the style vector the objects' size, for a more "
                        "accurate size model (--diameter 0); the built-in model used 1 [default: 0, as cellpose]")
    p.add_argument("--gpu", action="store_true", help="train on a CUDA or Apple GPU when available")
    p.set_defaults(func=_train_main)


def _train_main(args) -> int:
    from ..train import load_folder, train
    images, masks, _ = load_folder(args.folder)
    val_images = val_masks = None
    if args.val_folder:
        val_images, val_masks, _ = load_folder(args.val_folder)

    def report(entry: dict) -> None:
        val = f"  val AP@0.5 {entry['val_ap'][0]:.3f}" if entry.get("val_ap") is not None else ""
        print(f"epoch {entry['epoch']}/{args.epochs}  loss {entry['loss']:.4f}  lr {entry['learning_rate']:.2e}"
              f"{val}  ({entry['seconds']:.0f} s)", flush=True)

    result = train(images, masks, model=args.model, n_epochs=args.epochs, learning_rate=args.learning_rate,
                   sgd=args.sgd, batch_size=args.batch_size, bsize=args.bsize, rescale=not args.no_rescale,
                   diam_mean=args.diam_mean, save_path=args.save, seed=args.seed, val_images=val_images,
                   val_masks=val_masks, channels=(args.chan, args.chan2), resume=args.resume, gpu=args.gpu,
                   size_model_epochs=args.size_model_epochs, thin_fraction=args.thin_fraction,
                   style_size_weight=args.style_size_weight, progress=report)
    print(f"saved {result.model_path}" + (f" (best: {result.best_path})" if result.best_path else "")
          + (f", size model {result.size_path}" if result.size_path else ""))
    return 0
