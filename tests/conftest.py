"""Shared fixtures: model files in cellpose's format made by the tests themselves (nothing is downloaded).
Helper functions live in tests/helpers.py."""
import pytest
import torch

from helpers import random_cpnet


@pytest.fixture(scope="session")
def model_file(tmp_path_factory):
    """Path of a random CPnet saved exactly as cellpose saves models (state dict, no extension)."""
    path = tmp_path_factory.mktemp("models") / "random_cp"
    net = random_cpnet()
    # Stronger flows and a positive cell-probability bias make the random field form basins (objects), so
    # that end-to-end comparisons have masks to compare.
    net.output[2].weight.data[:2] *= 20
    net.output[2].bias.data[2] = 0.5
    net.diam_labels.data.fill_(24.0)
    torch.save(net.state_dict(), path)
    return path
