import pytest
import torch
from genprobe.data import write_image_folder
from genprobe.toy import ToyConfig, toy_pair


@pytest.fixture(scope="session")
def toy_folders(tmp_path_factory):
    """The toy's hf pair (16 px, grayscale) written as two PNG folders of 120 images."""
    root = tmp_path_factory.mktemp("toy")
    paths = {}
    for src in toy_pair("hf", 120, ToyConfig(size=16, channels=1), seed=3):
        write_image_folder(src.get(torch.arange(len(src))), root / src.name)
        paths[src.name] = root / src.name
    return paths
