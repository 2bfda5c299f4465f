"""Model names, files and loading.

A model is a CPnet weight file in cellpose's format (a ``torch.save``'d state dict, no extension) plus the two
diameters that define its scale. Cellpose's built-in names resolve to files in ``$CELLPOSE_LOCAL_MODELS_PATH`` or
``~/.cellpose/models``; the project's own default model ships inside the package.
"""
from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from . import settings
from .errors import ModelError
from .net import CPnet, NBASE, fuse_for_inference

log = logging.getLogger("trackpose")

#: Name of the project's own built-in model (shipped in trackpose/data when trained; see the README).
DEFAULT_MODEL = settings.default("model")
_PACKAGE_DATA = Path(__file__).resolve().parent / "data"

#: cellpose built-in names whose file name differs from the name.
CELLPOSE_FILES = {"cyto": "cytotorch_0", "cyto2": "cyto2torch_0", "nuclei": "nucleitorch_0"}
CELLPOSE_NAMES = ("cyto3", "cyto2_cp3", "tissuenet_cp3", "livecell_cp3", "yeast_PhC_cp3", "yeast_BF_cp3",
                  "bact_phase_cp3", "bact_fluor_cp3", "deepbacs_cp3", "cyto", "cyto2", "nuclei")
#: cellpose uses these training-scale diameters for its built-in models whatever the file says.
CELLPOSE_DIAM_MEAN = {"nuclei": 17.0}
CELLPOSE_URL = "https://www.cellpose.org/models/{}"


def cellpose_models_dir() -> Path:
    """Folder where cellpose keeps its model files (``$CELLPOSE_LOCAL_MODELS_PATH`` or ``~/.cellpose/models``)."""
    env = os.environ.get("CELLPOSE_LOCAL_MODELS_PATH")
    return Path(env) if env else Path.home() / ".cellpose" / "models"


def select_device(device: Union[None, str, torch.device] = None, gpu: bool = False) -> torch.device:
    """Pick the torch device: an explicit ``device`` wins; ``gpu=True`` takes CUDA, then Apple MPS; else CPU.

    On CPU the torch thread count is left at torch's default (the number of physical cores) unless the
    ``TRACKPOSE_THREADS`` environment variable sets it.
    """
    if device is not None:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ModelError(f"device {device!r} was asked for but CUDA is not available in this torch build; "
                             "use device='cpu' or install a CUDA-enabled torch")
        if dev.type == "mps" and not torch.backends.mps.is_available():
            raise ModelError("device 'mps' was asked for but Apple MPS is not available; use device='cpu'")
    elif gpu and torch.cuda.is_available():
        dev = torch.device("cuda")
    elif gpu and torch.backends.mps.is_available():
        dev = torch.device("mps")
    else:
        if gpu:
            log.warning("a GPU was asked for but neither CUDA nor MPS is available: running on the CPU")
        dev = torch.device("cpu")
    threads = os.environ.get("TRACKPOSE_THREADS")
    if dev.type == "cpu" and threads:
        torch.set_num_threads(max(1, int(threads)))
    return dev


@dataclass
class Model:
    """A loaded network and the scale it works at.

    Attributes
    ----------
    net : CPnet
        The torch module as loaded (train-compatible, batch-norms intact). ``net(x)`` with x (B, 2, H, W) returns
        ``(y, style)``, y (B, 3, H, W) = (dY, dX, cell-probability logit), style (B, 256).
    diam_mean : float
        Diameter (pixels) objects are rescaled to before the network sees them.
    diam_labels : float
        Mean diameter of the training labels; the diameter assumed when none is given.
    size_path : Path, optional
        The size-model file found next to the model file (``<model>_size.npy``; for cellpose's built-ins
        ``size_<file>.npy``), None when there is none. Read on first use of :attr:`size_model`.
    """

    net: CPnet
    diam_mean: float
    diam_labels: float
    name: str
    path: Optional[Path]
    device: torch.device
    builtin: bool = False
    size_path: Optional[Path] = None
    _inference_net: Optional[CPnet] = field(default=None, repr=False)
    _size_model: Optional[object] = field(default=None, repr=False)

    @property
    def inference_net(self) -> CPnet:
        """Batch-norm-folded, channels-last copy of ``net`` for fast inference (built on first use)."""
        if self._inference_net is None:
            self._inference_net = fuse_for_inference(self.net).to(self.device)
        return self._inference_net

    @property
    def size_model(self):
        """The :class:`trackpose.size_model.SizeModel` of this model (style -> diameter), or None when it has none.

        Raises ModelError when the size file exists but is not a valid size model.
        """
        if self._size_model is None and self.size_path is not None:
            from .size_model import load_size_model
            self._size_model = load_size_model(self.size_path)
            if abs(self._size_model.diam_mean - self.diam_mean) > 1e-3:
                log.warning("size model %s was fitted at diam_mean %.1f but model %s works at %.1f",
                            self.size_path, self._size_model.diam_mean, self.name, self.diam_mean)
        return self._size_model

    @property
    def nchan(self) -> int:
        return self.net.nbase[0]


def _resolve(name_or_path: Union[str, os.PathLike]) -> tuple[Path, str, bool]:
    """Return (file, display name, is a cellpose built-in)."""
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_file():
        builtin = path.name in CELLPOSE_FILES.values() or path.name in CELLPOSE_NAMES
        return path, path.name, builtin
    if text in (DEFAULT_MODEL, "default"):
        shipped = _PACKAGE_DATA / DEFAULT_MODEL
        if shipped.is_file():
            return shipped, DEFAULT_MODEL, False
        raise ModelError(f"the built-in model {DEFAULT_MODEL!r} is not in this installation ({shipped} is missing); "
                         "reinstall trackpose, or pass a cellpose model name or file with --model")
    if os.sep in text or text.endswith((".pth", ".pt")) or (os.altsep and os.altsep in text):
        raise ModelError(f"model file {text!r} does not exist; check the path")
    folder = cellpose_models_dir()
    filename = CELLPOSE_FILES.get(text, text)
    candidate = folder / filename
    if candidate.is_file():
        return candidate, text, text in CELLPOSE_NAMES
    if text in CELLPOSE_NAMES:
        _try_download(filename, candidate)
        return candidate, text, True
    raise ModelError(f"unknown model {text!r}: not a file, not a cellpose model name "
                     f"({', '.join(CELLPOSE_NAMES)}), and no file {candidate} exists")


def _try_download(filename: str, target: Path) -> None:
    """Fetch an official cellpose file when the network allows; otherwise say exactly where to put it."""
    url = CELLPOSE_URL.format(filename)
    if os.environ.get("TRACKPOSE_OFFLINE"):
        error = "downloads are disabled (TRACKPOSE_OFFLINE is set)"
    else:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            log.info("downloading %s to %s", url, target)
            with urllib.request.urlopen(url, timeout=20) as response, open(tmp, "wb") as out:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
            os.replace(tmp, target)
            return
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            error = f"download failed ({exc})"
    raise ModelError(f"cellpose model file {filename!r} is not in {target.parent} and {error}. "
                     f"Download {url} on a machine with internet access and copy it to {target} "
                     "(or set CELLPOSE_LOCAL_MODELS_PATH to the folder that holds it)")


def read_state_dict(path: Path) -> dict:
    """Load a cellpose v2/v3 weight file safely (``weights_only=True``) and check it is a CPnet."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, pickled objects, not a torch file ...
        raise ModelError(f"cannot read model file {path}: {exc.__class__.__name__}: {exc}. "
                         "It is not a valid cellpose/trackpose weight file (or it is damaged); "
                         "re-download or re-train it") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"model file {path} does not hold a plain state dict of tensors")
    if "output.2.weight" not in state or "downsample.down.res_down_0.conv.conv_0.2.weight" not in state:
        hint = ""
        if any(k.startswith(("encoder.", "image_encoder", "W2", "out.")) for k in state):
            hint = " It looks like a cellpose 4 (cpsam, SAM transformer) file, which is a different architecture."
        raise ModelError(f"model file {path} is not a cellpose v2/v3 CPnet weight file.{hint} "
                         "trackpose loads CPnet models (cyto, cyto2, cyto3, nuclei, *_cp3 and models trained "
                         "from them)")
    return state


def _net_from_state(state: dict, path: Path) -> CPnet:
    nin = state["downsample.down.res_down_0.conv.conv_0.0.weight"].shape[0]
    widths = [nin] + [state[f"downsample.down.res_down_{n}.proj.1.weight"].shape[0] for n in range(4)]
    kernel = state["downsample.down.res_down_0.conv.conv_0.2.weight"].shape[-1]
    nout_file = state["output.2.weight"].shape[0]
    net = CPnet(nbase=widths, nout=3, kernel=kernel)
    own = net.state_dict()
    missing = [k for k in own if k not in state and not k.startswith("diam_")]
    if missing:
        raise ModelError(f"model file {path} lacks {len(missing)} CPnet weights (first: {missing[0]}); "
                         "it is not a complete cellpose v2/v3 model")
    for key, value in state.items():
        if key not in own:
            continue
        if nout_file != 3 and key.startswith("output.2."):
            continue  # a different head: keep everything else, as cellpose does
        if own[key].shape != value.shape:
            raise ModelError(f"model file {path}: weight {key} has shape {tuple(value.shape)}, "
                             f"expected {tuple(own[key].shape)}")
        own[key].copy_(value)
    if nout_file != 3:
        log.warning("model %s has %d outputs instead of 3: its output layer was not loaded", path, nout_file)
    return net


def load_model(name_or_path: Union[str, os.PathLike, "Model"] = DEFAULT_MODEL,
               device: Union[None, str, torch.device] = None, gpu: bool = False) -> Model:
    """Load a cellpose v2/v3 (or trackpose) model by name or path.

    Parameters
    ----------
    name_or_path : str or path
        A file, a cellpose built-in name (``cyto``, ``cyto2``, ``cyto3``, ``nuclei``, ``*_cp3``...) found in
        ``$CELLPOSE_LOCAL_MODELS_PATH`` or ``~/.cellpose/models``, or ``"trackpose_default"``.
    device : str or torch.device, optional
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``. Default: CPU unless ``gpu=True``.
    gpu : bool
        Use CUDA or Apple MPS when available.

    Returns
    -------
    Model
    """
    if isinstance(name_or_path, Model):
        return name_or_path
    path, name, builtin = _resolve(name_or_path)
    state = read_state_dict(path)
    net = _net_from_state(state, path)
    # Old files may lack the diameter entries; a built-in's diam_mean is fixed by its name, as in cellpose.
    file_diam_mean = float(state["diam_mean"].reshape(-1)[0]) if "diam_mean" in state else 30.0
    file_diam_labels = float(state["diam_labels"].reshape(-1)[0]) if "diam_labels" in state else file_diam_mean
    if builtin:
        key = next((k for k, v in CELLPOSE_FILES.items() if v == path.name), path.name)
        diam_mean = CELLPOSE_DIAM_MEAN.get(key, CELLPOSE_DIAM_MEAN.get(name, 30.0))
    else:
        diam_mean = file_diam_mean
    if not np.isfinite(diam_mean) or diam_mean <= 0:
        raise ModelError(f"model file {path} stores an invalid diam_mean ({diam_mean})")
    if not np.isfinite(file_diam_labels) or file_diam_labels <= 0:
        file_diam_labels = diam_mean
    dev = select_device(device, gpu=gpu)
    net = net.to(dev).eval()
    from .size_model import size_model_path
    size_path = size_model_path(path, cellpose_builtin=builtin)
    size_path = size_path if size_path.is_file() else None
    log.info("loaded model %s from %s (diam_mean %.1f, diam_labels %.1f) on %s",
             name, path, diam_mean, file_diam_labels, dev)
    return Model(net=net, diam_mean=diam_mean, diam_labels=file_diam_labels, name=name, path=path,
                 device=dev, builtin=builtin, size_path=size_path)


def save_model(net: CPnet, path: Union[str, os.PathLike], diam_mean: float, diam_labels: float) -> Path:
    """Save ``net`` in cellpose's file format with its diameters (cellpose 3 loads the result)."""
    net.diam_mean.data.fill_(float(diam_mean))
    net.diam_labels.data.fill_(float(diam_labels))
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    torch.save(net.state_dict(), tmp)
    os.replace(tmp, path)
    return path


def list_models() -> list[dict]:
    """Built-in and locally available models: name, path, diam_mean (None when the file is absent)."""
    rows = []
    shipped = _PACKAGE_DATA / DEFAULT_MODEL
    rows.append({"name": DEFAULT_MODEL, "path": str(shipped) if shipped.is_file() else None,
                 "diam_mean": None})
    folder = cellpose_models_dir()
    for name in CELLPOSE_NAMES:
        file = folder / CELLPOSE_FILES.get(name, name)
        rows.append({"name": name, "path": str(file) if file.is_file() else None, "diam_mean": None})
    for row in rows:
        if row["path"]:
            try:
                state = read_state_dict(Path(row["path"]))
                row["diam_mean"] = CELLPOSE_DIAM_MEAN.get(row["name"], None) if row["name"] in CELLPOSE_NAMES \
                    else float(state.get("diam_mean", torch.tensor([30.0])).reshape(-1)[0])
                if row["diam_mean"] is None:
                    row["diam_mean"] = 30.0
            except ModelError as exc:
                row["error"] = str(exc)
    return rows
