"""The 3D Gaussian model as DreamGaussian trains it (MicroDreamer reuses it unchanged).

Parameters (activations): positions, SH degree-0 colour coefficients (rgb = 0.2821·f + 0.5), opacity logits
(sigmoid), log-scales (exp), quaternions (normalised). Initialisation: a uniform ball of radius 0.5 with near-black
colours, opacity 0.1 and scales √(mean squared distance to the 3 nearest neighbours), position lr ×10
(``spatial_lr_scale``). Adam with per-group learning rates, the position lr decayed log-linearly 1e-3 → 2e-5 over 500
steps. Densify (clone small / split large Gaussians whose mean NDC-gradient norm ≥ threshold) and prune (opacity,
world size) every ``densification_interval`` steps while ``step <= density_end_iter``.

DreamGaussian quirk kept on purpose: the densification post-step zeroes ``max_radii2D``, so the screen-size prune test
that follows it never fires (only the opacity and world-size tests act).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gen_common.atomic import atomic_path
from microdreamer.cameras import Cameras
from microdreamer.rasterizer import RenderOutput, quaternion_to_rotation, rasterize_gaussians

__all__ = ["SH_C0", "Adam", "GaussianModel", "GaussianTrainConfig", "expon_lr"]

SH_C0 = 0.28209479177387814


@dataclass(frozen=True)
class GaussianTrainConfig:
    """DreamGaussian's 3DGS settings (configs/image_sai.yaml: identical in every released MicroDreamer config)."""

    position_lr_init: float = 1e-3
    position_lr_final: float = 2e-5
    position_lr_max_steps: int = 500
    feature_lr: float = 0.01
    opacity_lr: float = 0.05
    scaling_lr: float = 0.005
    rotation_lr: float = 5e-4
    percent_dense: float = 0.01
    density_start_iter: int = 0
    density_end_iter: int = 300
    densification_interval: int = 100
    densify_grad_threshold: float = 0.01
    densify_min_opacity: float = (
        0.005  # MicroDreamer's densify_and_prune(min_opacity=0.005, extent=4, max_screen_size=1)
    )
    densify_extent: float = 4.0
    max_screen_size: float = 1.0


def expon_lr(step: int, lr_init: float, lr_final: float, max_steps: int) -> float:
    """3DGS's get_expon_lr_func without delay (DreamGaussian never sets lr_delay_steps)."""
    if lr_init == lr_final:
        return lr_init
    if step < 0:
        return 0.0
    t = min(max(step / max_steps, 0.0), 1.0)
    return math.exp(math.log(lr_init) * (1 - t) + math.log(lr_final) * t)


class Adam:
    """Adam (Kingma & Ba 2015, Alg. 1; torch.optim.Adam's update, one tensor per named group).

    Plain tensor code on purpose: torch.optim's first ``add_param_group`` imports torch._dynamo, which costs tens of
    seconds on a machine without cached bytecode, for no benefit here. Densification swaps tensors in
    ``param_groups`` and ``state`` directly, as 3DGS does with torch's optimiser.
    """

    def __init__(self, groups: list[dict], betas=(0.9, 0.999), eps: float = 1e-15):
        self.param_groups = groups
        self.betas, self.eps = betas, eps
        self.state: dict[torch.Tensor, dict] = {}

    @torch.no_grad()
    def step(self) -> None:
        b1, b2 = self.betas
        for group in self.param_groups:
            p = group["params"][0]
            if p.grad is None:
                continue
            st = self.state.get(p)
            if st is None:
                st = self.state[p] = {
                    "step": 0,
                    "exp_avg": torch.zeros_like(p),
                    "exp_avg_sq": torch.zeros_like(p),
                }
            st["step"] += 1
            st["exp_avg"].lerp_(p.grad, 1 - b1)
            st["exp_avg_sq"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            bc1, bc2 = 1 - b1 ** st["step"], 1 - b2 ** st["step"]
            denom = (st["exp_avg_sq"].sqrt() / math.sqrt(bc2)).add_(self.eps)
            p.addcdiv_(st["exp_avg"], denom, value=-group["lr"] / bc1)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            group["params"][0].grad = None


def _knn_mean_sq_dist(points: torch.Tensor, k: int = 3, chunk: int = 2048) -> torch.Tensor:
    """Mean squared distance to the k nearest other points (simple-knn's distCUDA2)."""
    out = []
    for s in range(0, points.shape[0], chunk):
        d = torch.cdist(points[s : s + chunk], points).pow(2)
        d[torch.arange(d.shape[0]), torch.arange(s, s + d.shape[0])] = float("inf")
        out.append(d.topk(min(k, points.shape[0] - 1), largest=False).values.mean(-1))
    return torch.cat(out)


class GaussianModel:
    """Trainable Gaussians; ``render(cameras)`` is differentiable w.r.t. every parameter."""

    names = ("xyz", "f_dc", "opacity", "scaling", "rotation")

    def __init__(
        self,
        xyz: torch.Tensor,
        f_dc: torch.Tensor,
        opacity_logit: torch.Tensor,
        log_scaling: torch.Tensor,
        rotation: torch.Tensor,
        spatial_lr_scale: float = 1.0,
    ):
        self.params: dict[str, torch.Tensor] = {
            "xyz": xyz.detach().clone().requires_grad_(True),
            "f_dc": f_dc.detach().clone().requires_grad_(True),
            "opacity": opacity_logit.detach().reshape(-1, 1).clone().requires_grad_(True),
            "scaling": log_scaling.detach().clone().requires_grad_(True),
            "rotation": rotation.detach().clone().requires_grad_(True),
        }
        self.spatial_lr_scale = spatial_lr_scale
        self.optimizer: Adam | None = None
        self.config = GaussianTrainConfig()
        self._reset_stats()

    # ---- construction -------------------------------------------------------------------------------------------
    @classmethod
    def blob(
        cls, num_pts: int = 5000, radius: float = 0.5, *, generator: torch.Generator | None = None
    ) -> GaussianModel:
        """DreamGaussian's random initialisation (Renderer.initialize with no input)."""
        g = generator
        phi = torch.rand(num_pts, generator=g, dtype=torch.float64) * 2 * math.pi
        cos_t = torch.rand(num_pts, generator=g, dtype=torch.float64) * 2 - 1
        sin_t = torch.sqrt(1 - cos_t**2)
        r = radius * torch.rand(num_pts, generator=g, dtype=torch.float64).pow(1 / 3)
        xyz = torch.stack([r * sin_t * phi.cos(), r * sin_t * phi.sin(), r * cos_t], -1).float()
        shs = (
            torch.rand(num_pts, 3, generator=g) / 255.0
        )  # the release's colours: SH2RGB(shs) then RGB2SH again
        dist2 = _knn_mean_sq_dist(xyz).clamp_min(1e-7)
        scales = torch.log(torch.sqrt(dist2))[:, None].repeat(1, 3)
        rots = torch.zeros(num_pts, 4)
        rots[:, 0] = 1
        opac = torch.logit(torch.full((num_pts,), 0.1))
        return cls(xyz, shs, opac, scales, rots, spatial_lr_scale=10.0)

    @classmethod
    def from_activated(
        cls,
        means: torch.Tensor,
        scales: torch.Tensor,
        colors: torch.Tensor,
        opacities: torch.Tensor,
        quats: torch.Tensor | None = None,
    ) -> GaussianModel:
        """Build from world-space means, scales, RGB colours in [0, 1] and opacities in (0, 1)."""
        n = means.shape[0]
        q = quats if quats is not None else torch.tensor([1.0, 0, 0, 0]).repeat(n, 1)
        op = opacities.clamp(1e-6, 1 - 1e-6)
        return cls(means, (colors - 0.5) / SH_C0, torch.logit(op), scales.log(), q)

    # ---- activations --------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.params["xyz"].shape[0])

    @property
    def xyz(self) -> torch.Tensor:
        return self.params["xyz"]

    @property
    def colors(self) -> torch.Tensor:
        return torch.clamp_min(SH_C0 * self.params["f_dc"] + 0.5, 0.0)

    @property
    def opacities(self) -> torch.Tensor:
        return torch.sigmoid(self.params["opacity"]).squeeze(-1)

    @property
    def scales(self) -> torch.Tensor:
        return torch.exp(self.params["scaling"])

    @property
    def quats(self) -> torch.Tensor:
        return torch.nn.functional.normalize(self.params["rotation"], dim=-1)

    def to(self, device: torch.device | str) -> GaussianModel:
        for k, v in self.params.items():
            self.params[k] = v.detach().to(device).requires_grad_(True)
        self._reset_stats()
        return self

    def render(
        self,
        cameras: Cameras,
        background=(1.0, 1.0, 1.0),
        *,
        track_means2d: bool = False,
        rasterizer=None,
    ) -> RenderOutput:
        fn = rasterizer or rasterize_gaussians
        return fn(
            self.xyz,
            self.scales,
            self.quats,
            self.opacities,
            self.colors,
            cameras,
            background=background,
            track_means2d=track_means2d,
        )

    # ---- optimisation (DreamGaussian's training_setup / update_learning_rate) ------------------------------------
    def training_setup(self, config: GaussianTrainConfig | None = None) -> Adam:
        self.config = config or self.config
        c = self.config
        groups = [
            {"params": [self.params["xyz"]], "lr": c.position_lr_init * self.spatial_lr_scale, "name": "xyz"},
            {"params": [self.params["f_dc"]], "lr": c.feature_lr, "name": "f_dc"},
            {"params": [self.params["opacity"]], "lr": c.opacity_lr, "name": "opacity"},
            {"params": [self.params["scaling"]], "lr": c.scaling_lr, "name": "scaling"},
            {"params": [self.params["rotation"]], "lr": c.rotation_lr, "name": "rotation"},
        ]
        self.optimizer = Adam(groups, eps=1e-15)
        self._reset_stats()
        return self.optimizer

    def update_learning_rate(self, step: int) -> float:
        c = self.config
        lr = expon_lr(
            step,
            c.position_lr_init * self.spatial_lr_scale,
            c.position_lr_final * self.spatial_lr_scale,
            c.position_lr_max_steps,
        )
        assert self.optimizer is not None
        for group in self.optimizer.param_groups:
            if group["name"] == "xyz":
                group["lr"] = lr
        return lr

    # ---- densification ------------------------------------------------------------------------------------------
    def _reset_stats(self) -> None:
        n, dev = len(self), self.params["xyz"].device
        self.xyz_gradient_accum = torch.zeros(n, device=dev)
        self.denom = torch.zeros(n, device=dev)
        self.max_radii2D = torch.zeros(n, device=dev)

    @torch.no_grad()
    def add_densification_stats(self, out: RenderOutput, views: list[int] | None = None) -> None:
        """Accumulate ‖∂L/∂(NDC mean)‖ and the max screen radius over the given views (all by default; the release
        uses only the last rendered view)."""
        grad = out.means2d.grad
        if grad is None:
            return
        grad = grad * torch.tensor(out.grad_scale, dtype=grad.dtype, device=grad.device)
        idx = range(grad.shape[0]) if views is None else views
        for v in idx:
            vis = out.radii[v] > 0
            self.max_radii2D[vis] = torch.maximum(self.max_radii2D[vis], out.radii[v][vis].float())
            self.xyz_gradient_accum[vis] += grad[v, vis].norm(dim=-1)
            self.denom[vis] += 1

    def _apply(self, new: dict[str, torch.Tensor], keep: torch.Tensor | None) -> None:
        """Replace parameters (keep a subset and/or append rows), carrying Adam's moments along (zeros for new)."""
        opt = self.optimizer
        for name in self.names:
            old = self.params[name]
            state = opt.state.pop(old, None) if opt is not None else None
            base = old.detach() if keep is None else old.detach()[keep]
            extra = new.get(name)
            val = base if extra is None else torch.cat([base, extra.detach()], 0)
            p = val.clone().requires_grad_(True)
            if state is not None:
                for k in ("exp_avg", "exp_avg_sq"):
                    s = state[k] if keep is None else state[k][keep]
                    if extra is not None:
                        s = torch.cat([s, torch.zeros_like(extra)], 0)
                    state[k] = s
                opt.state[p] = state
            if opt is not None:
                for group in opt.param_groups:
                    if group["name"] == name:
                        group["params"][0] = p
            self.params[name] = p

    def _postfix(self, new: dict[str, torch.Tensor]) -> None:
        self._apply(new, None)
        self._reset_stats()  # DreamGaussian's densification_postfix zeroes the stats and max_radii2D

    @torch.no_grad()
    def densify_and_prune(
        self,
        max_grad: float,
        min_opacity: float,
        extent: float,
        max_screen_size: float | None,
        *,
        generator=None,
    ) -> dict[str, int]:
        grads = self.xyz_gradient_accum / self.denom
        grads[grads.isnan()] = 0.0
        pd = self.config.percent_dense * extent
        # clone: small Gaussians with large gradients
        sel = (grads >= max_grad) & (self.scales.max(dim=1).values <= pd)
        n_clone = int(sel.sum())
        self._postfix({k: self.params[k].detach()[sel] for k in self.names})
        # split: large Gaussians with large gradients (grads padded with zeros for the clones)
        grads = torch.cat([grads, torch.zeros(n_clone, device=grads.device)])
        sel = (grads >= max_grad) & (self.scales.max(dim=1).values > pd)
        n_split, Nsplit = int(sel.sum()), 2
        if n_split:
            stds = self.scales[sel].repeat(Nsplit, 1)
            samples = torch.randn(stds.shape, generator=generator).to(stds) * stds
            rots = quaternion_to_rotation(self.params["rotation"].detach()[sel]).repeat(Nsplit, 1, 1)
            new = {
                "xyz": (rots @ samples[..., None]).squeeze(-1) + self.xyz.detach()[sel].repeat(Nsplit, 1),
                "scaling": torch.log(self.scales[sel].repeat(Nsplit, 1) / (0.8 * Nsplit)),
                "rotation": self.params["rotation"].detach()[sel].repeat(Nsplit, 1),
                "f_dc": self.params["f_dc"].detach()[sel].repeat(Nsplit, 1),
                "opacity": self.params["opacity"].detach()[sel].repeat(Nsplit, 1),
            }
            self._postfix(new)
            keep = torch.cat([~sel, torch.ones(Nsplit * n_split, dtype=torch.bool, device=sel.device)])
            self._prune_mask(~keep)
        n_pruned = self.prune(min_opacity, extent, max_screen_size)
        return {"cloned": n_clone, "split": n_split, "pruned": n_pruned}

    def _prune_mask(self, mask: torch.Tensor) -> None:
        keep = ~mask
        stats = (self.xyz_gradient_accum[keep], self.denom[keep], self.max_radii2D[keep])
        self._apply({}, keep)
        self.xyz_gradient_accum, self.denom, self.max_radii2D = stats

    @torch.no_grad()
    def prune(
        self,
        min_opacity: float,
        extent: float,
        max_screen_size: float | None,
        *,
        world_size: bool | None = None,
    ) -> int:
        """Prune by opacity and, as 3DGS does when ``max_screen_size`` is set, by screen radius and world size
        (``world_size`` forces the world-size test on or off independently)."""
        mask = self.opacities < min_opacity
        if max_screen_size:
            mask |= self.max_radii2D > max_screen_size
        if world_size if world_size is not None else bool(max_screen_size):
            mask |= self.scales.max(dim=1).values > 0.1 * extent
        n = int(mask.sum())
        if n:
            self._prune_mask(mask)
        return n

    # ---- I/O: the 3DGS .ply layout (readable by 3DGS viewers) ---------------------------------------------------
    def save_ply(self, path: str | Path) -> Path:
        path = Path(path)
        xyz = self.xyz.detach().cpu().float().numpy()
        cols = [
            xyz,
            np.zeros_like(xyz),
            self.params["f_dc"].detach().cpu().float().numpy(),
            self.params["opacity"].detach().cpu().float().numpy(),
            self.params["scaling"].detach().cpu().float().numpy(),
            self.params["rotation"].detach().cpu().float().numpy(),
        ]
        data = np.ascontiguousarray(np.concatenate(cols, 1).astype("<f4"))
        names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity"]
        names += [f"scale_{i}" for i in range(3)] + [f"rot_{i}" for i in range(4)]
        header = f"ply\nformat binary_little_endian 1.0\nelement vertex {len(data)}\n"
        header += "".join(f"property float {n}\n" for n in names) + "end_header\n"
        with atomic_path(path) as tmp:
            tmp.write_bytes(header.encode("ascii") + data.tobytes())
        return path

    @classmethod
    def load_ply(cls, path: str | Path) -> GaussianModel:
        """Read a 3DGS-layout binary .ply (SH degree 0 fields are used; higher-order ones are ignored)."""
        raw = Path(path).read_bytes()
        end = raw.find(b"end_header\n")
        if not raw.startswith(b"ply") or end < 0:
            raise ValueError(f"{path}: not a .ply file")
        lines = raw[:end].decode("ascii", "replace").splitlines()
        if "format binary_little_endian 1.0" not in lines:
            raise ValueError(f"{path}: only binary little-endian Gaussian .ply files are supported")
        n = next(int(line.split()[2]) for line in lines if line.startswith("element vertex"))
        props = [line.split() for line in lines if line.startswith("property")]
        if any(p[1] != "float" for p in props):
            raise ValueError(f"{path}: expected float properties only (a 3DGS Gaussian .ply)")
        names = [p[2] for p in props]
        need = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2"]
        need += ["rot_0", "rot_1", "rot_2", "rot_3"]
        missing = [k for k in need if k not in names]
        if missing:
            raise ValueError(f"{path}: not a Gaussian .ply (missing {', '.join(missing)})")
        body = raw[end + len(b"end_header\n") :]
        if len(body) < n * 4 * len(names):
            raise ValueError(f"{path}: truncated file")
        arr = np.frombuffer(body[: n * 4 * len(names)], dtype="<f4").reshape(n, len(names))
        col = {k: torch.from_numpy(arr[:, names.index(k)].copy()) for k in need}
        st = lambda *ks: torch.stack([col[k] for k in ks], -1)  # noqa: E731
        return cls(
            st("x", "y", "z"),
            st("f_dc_0", "f_dc_1", "f_dc_2"),
            col["opacity"],
            st("scale_0", "scale_1", "scale_2"),
            st("rot_0", "rot_1", "rot_2", "rot_3"),
        )
