"""A nerfstudio NeRF (NeRFField with torch encodings, uniform ray samples, nerfstudio's renderers) behind the same
interface as microdreamer's representations, so `run_sir`/`run_sds` drive it unchanged."""

from __future__ import annotations

import math

import torch
from microdreamer.cameras import Cameras
from microdreamer.gaussians import Adam
from microdreamer.nerf import FieldHooks, camera_rays
from microdreamer.rasterizer import RenderOutput
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.field_components.encodings import NeRFEncoding
from nerfstudio.field_components.field_heads import FieldHeadNames
from nerfstudio.fields.vanilla_nerf_field import NeRFField
from nerfstudio.model_components.ray_samplers import UniformSampler
from nerfstudio.model_components.renderers import AccumulationRenderer, RGBRenderer

__all__ = ["NerfstudioNeRF"]


class NerfstudioNeRF(FieldHooks):
    def __init__(
        self,
        *,
        width: int = 64,
        layers: int = 4,
        samples: int = 32,
        bound: float = 0.8,
        lr: float = 5e-3,
        generator=None,
    ):
        if generator is not None:
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        self.field = NeRFField(
            position_encoding=NeRFEncoding(3, 6, 0.0, 5.0, include_input=True, implementation="torch"),
            direction_encoding=NeRFEncoding(3, 2, 0.0, 1.0, include_input=True, implementation="torch"),
            base_mlp_num_layers=layers,
            base_mlp_layer_width=width,
            head_mlp_num_layers=1,
            head_mlp_layer_width=width // 2,
            skip_connections=(layers // 2,),
        )
        self.sampler = UniformSampler(num_samples=samples, train_stratified=False)
        self.rgb_renderer, self.acc_renderer = RGBRenderer(), AccumulationRenderer()
        self.bound, self.lr = bound, lr
        self.optimizer = None

    @property
    def params(self) -> dict[str, torch.Tensor]:
        return dict(self.field.named_parameters())

    @property
    def xyz(self) -> torch.Tensor:
        return next(self.field.parameters())

    def __len__(self) -> int:
        return sum(p.numel() for p in self.field.parameters())

    def to(self, device):
        self.field.to(device)
        return self

    def training_setup(self, config=None) -> Adam:
        self.optimizer = Adam(
            [{"params": [p], "lr": self.lr, "name": n} for n, p in self.field.named_parameters()]
        )
        return self.optimizer

    def render(
        self, cameras: Cameras, background=(1.0, 1.0, 1.0), *, track_means2d=False, rasterizer=None
    ) -> RenderOutput:
        dev = self.xyz.device
        V, H, W = len(cameras), cameras.height, cameras.width
        origin, d = camera_rays(cameras, dev)
        dist = origin.norm(dim=-1)
        near = (dist - self.bound * math.sqrt(3)).clamp(min=0.05)
        far = dist + self.bound * math.sqrt(3)
        o = origin[:, None, None].expand(V, H, W, 3).reshape(-1, 3)
        rays = RayBundle(
            origins=o,
            directions=d.reshape(-1, 3),
            pixel_area=torch.full((o.shape[0], 1), 1.0 / (cameras.fx**2), device=dev),
            nears=near[:, None, None, None].expand(V, H, W, 1).reshape(-1, 1),
            fars=far[:, None, None, None].expand(V, H, W, 1).reshape(-1, 1),
        )
        samples = self.sampler(rays)
        out = self.field(samples)
        inside = (samples.frustums.get_positions().abs() <= self.bound).all(-1, keepdim=True)
        weights = samples.get_weights(out[FieldHeadNames.DENSITY] * inside)
        bg = torch.as_tensor(background, dtype=torch.float32, device=dev)
        rgb = self.rgb_renderer(rgb=out[FieldHeadNames.RGB], weights=weights, background_color=bg)
        acc = self.acc_renderer(weights)
        img = rgb.reshape(V, H, W, 3).permute(0, 3, 1, 2)
        return RenderOutput(
            img,
            acc.reshape(V, 1, H, W),
            acc.reshape(V, 1, H, W) * 0,
            torch.zeros(V, 0, 2, device=dev),
            torch.zeros(V, 0, dtype=torch.int32),
            0,
        )
