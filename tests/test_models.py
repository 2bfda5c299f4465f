"""Model names, files and loading: cellpose's names and folders, safe loading, clear errors."""
import pickle

import numpy as np
import pytest
import torch

import trackpose
from trackpose.errors import ModelError
from trackpose.models import save_model
from helpers import random_cpnet


def test_loads_custom_file_with_its_diameters(model_file):
    m = trackpose.load_model(model_file)
    assert m.diam_mean == 30.0 and m.diam_labels == 24.0
    assert m.net.nbase == (2, 32, 64, 128, 256)
    assert str(m.device) == "cpu"


def test_builtin_names_resolve_in_cellpose_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLPOSE_LOCAL_MODELS_PATH", str(tmp_path))
    net = random_cpnet()
    net.diam_mean.data.fill_(99.0)  # built-ins use cellpose's fixed diam_mean, not the file's
    torch.save(net.state_dict(), tmp_path / "nucleitorch_0")
    torch.save(net.state_dict(), tmp_path / "cyto2torch_0")
    torch.save(net.state_dict(), tmp_path / "cyto3")
    assert trackpose.load_model("nuclei").diam_mean == 17.0
    assert trackpose.load_model("cyto2").diam_mean == 30.0
    assert trackpose.load_model("cyto3").path == tmp_path / "cyto3"


def test_missing_builtin_says_which_file_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLPOSE_LOCAL_MODELS_PATH", str(tmp_path))
    monkeypatch.setenv("TRACKPOSE_OFFLINE", "1")
    with pytest.raises(ModelError) as err:
        trackpose.load_model("cyto2")
    assert "cyto2torch_0" in str(err.value) and str(tmp_path) in str(err.value)
    assert "https://www.cellpose.org/models/cyto2torch_0" in str(err.value)


def test_old_files_without_diameters_and_other_head(tmp_path):
    net = random_cpnet()
    sd = {k: v for k, v in net.state_dict().items() if not k.startswith("diam")}
    sd["output.2.weight"] = torch.randn(4, 32, 1, 1)  # a 4-output head: everything else still loads
    sd["output.2.bias"] = torch.randn(4)
    torch.save(sd, tmp_path / "old")
    m = trackpose.load_model(tmp_path / "old")
    assert m.diam_mean == 30.0 and m.diam_labels == 30.0
    assert torch.equal(m.net.state_dict()["upsample.up.res_up_1.proj.1.weight"],
                       sd["upsample.up.res_up_1.proj.1.weight"])


def test_refuses_pickled_objects_and_other_architectures(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    torch.save({"x": Evil()}, tmp_path / "evil")
    with pytest.raises(ModelError, match="cannot read model file"):
        trackpose.load_model(tmp_path / "evil")
    torch.save({"encoder.patch_embed.proj.weight": torch.zeros(3)}, tmp_path / "cpsam")
    with pytest.raises(ModelError, match="cellpose 4"):
        trackpose.load_model(tmp_path / "cpsam")
    (tmp_path / "truncated").write_bytes(open(tmp_path / "evil", "rb").read()[:50])
    with pytest.raises(ModelError):
        trackpose.load_model(tmp_path / "truncated")
    with pytest.raises(ModelError, match="does not exist"):
        trackpose.load_model(tmp_path / "nope" / "model.pth")
    with pytest.raises(ModelError, match="unknown model"):
        trackpose.load_model("not_a_model_name")


def test_save_model_round_trip_and_cellpose_loads_it(tmp_path):
    net = random_cpnet(seed=5)
    path = save_model(net, tmp_path / "mine", diam_mean=17.0, diam_labels=14.5)
    m = trackpose.load_model(path)
    assert (m.diam_mean, m.diam_labels) == (17.0, 14.5)
    models = pytest.importorskip("cellpose.models")
    cp = models.CellposeModel(pretrained_model=str(path))
    assert cp.diam_mean == pytest.approx(17.0) and cp.diam_labels == pytest.approx(14.5)


def test_cuda_request_without_cuda_is_clear():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ModelError, match="CUDA is not available"):
        trackpose.models.select_device("cuda")
