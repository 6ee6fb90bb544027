"""Classifier architectures (weights=None), the frozen linear probe, save/load with the filter."""

import pytest
import torch
from genprobe.models import ClassifierConfig, DistributionClassifier, LinearProbe, SmallCNN, feature_extractor
from torch import nn

from gen_common.checkpoint import save_state_dict
from gen_common.testing import assert_close


@pytest.mark.parametrize(
    ("arch", "size", "channels", "extra"),
    [
        ("small_cnn", 16, 1, {}),
        ("resnet18", 32, 1, {}),
        ("resnet50", 32, 3, {}),
        ("convnext_tiny", 32, 1, {}),
        ("vit_small", 32, 3, {"patch_size": 8}),
    ],
)
def test_architectures_build_offline_and_classify(arch, size, channels, extra):
    cfg = ClassifierConfig(arch=arch, num_classes=3, in_channels=channels, image_size=(size, size), **extra)
    model = DistributionClassifier(cfg).eval()
    with torch.no_grad():
        out = model(torch.rand(2, channels, size, size))
    assert out.shape == (2, 3)
    assert torch.isfinite(out).all()


def test_vit_small_has_the_deit_s_shape():
    vit = DistributionClassifier(ClassifierConfig(arch="vit_small", image_size=(32, 32), patch_size=16)).net
    n = sum(p.numel() for p in vit.parameters())
    assert 21e6 < n < 22.5e6  # ViT-S/16: ~21.7M parameters
    assert len(vit.encoder.layers) == 12
    assert vit.hidden_dim == 384
    with pytest.raises(ValueError, match="multiple of the patch size"):
        DistributionClassifier(ClassifierConfig(arch="vit_small", image_size=(24, 24)))


def test_config_errors():
    with pytest.raises(ValueError, match="unknown arch"):
        ClassifierConfig(arch="alexnet")
    with pytest.raises(ValueError, match="backbone"):
        ClassifierConfig(arch="linear_probe")


def test_edge_filter_feeds_one_channel_and_survives_save_load(tmp_path):
    cfg = ClassifierConfig(
        arch="small_cnn",
        in_channels=3,
        image_size=(16, 16),
        filter="sobel",
        class_names=("real", "fake"),
        width=8,
    )
    model = DistributionClassifier(cfg)
    assert model.net.features[0][0].in_channels == 1
    model.norm.set(torch.tensor([0.3]), torch.tensor([0.2]))
    x = torch.rand(4, 3, 16, 16)
    model.eval()
    ref = model(x)
    model.save_pretrained(tmp_path / "clf")
    with pytest.raises(FileExistsError):
        model.save_pretrained(tmp_path / "clf")
    back = DistributionClassifier.from_pretrained(tmp_path / "clf")
    assert back.config == cfg
    assert back.class_names == ["real", "fake"]
    assert_close(back(x), ref, atol=1e-6)
    assert_close(back.norm.std, torch.tensor([0.2]))


def test_linear_probe_trains_only_its_head():
    backbone = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    probe = LinearProbe(backbone, 2, in_channels=1)
    assert probe.head.in_features == 4
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    probe.train()
    assert not backbone.training  # BatchNorm statistics stay frozen
    opt = torch.optim.SGD([p for p in probe.parameters() if p.requires_grad], lr=0.5)
    for _ in range(3):
        loss = nn.functional.cross_entropy(probe(torch.rand(8, 1, 8, 8)), torch.randint(0, 2, (8,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    for k, v in backbone.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in backbone.parameters())


def test_linear_probe_on_a_torchvision_trunk_round_trips(tmp_path):
    trunk, dim = feature_extractor("resnet18")
    assert dim == 512
    save_state_dict(trunk.state_dict(), tmp_path / "trunk.safetensors")
    cfg = ClassifierConfig(
        arch="linear_probe", backbone="resnet18", image_size=(32, 32), normalization="imagenet"
    )
    model = DistributionClassifier(cfg).eval()
    x = torch.rand(2, 3, 32, 32)
    ref = model(x)
    model.save_pretrained(tmp_path / "probe")
    assert_close(DistributionClassifier.from_pretrained(tmp_path / "probe")(x), ref, atol=1e-5)
    custom = ClassifierConfig(arch="linear_probe", backbone="custom", image_size=(32, 32))
    with pytest.raises(ValueError, match="custom feature extractor"):
        DistributionClassifier(custom)


def test_small_cnn_sees_the_highest_frequencies():
    # A checkerboard (the Nyquist frequency) must change the output even though the first conv has stride 2.
    net = SmallCNN(1, 2, 8).eval()
    flat = torch.zeros(1, 1, 16, 16)
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]).remainder(2).float()[None, None]
    assert (net(flat) - net(checker)).abs().max() > 1e-4
