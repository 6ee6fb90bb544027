"""MVDream (text-to-3D) and ImageDream (image+text-to-3D) multi-view denoisers (pip install "microdreamer[zero123]").

Neither model is in diffusers; users hold the diffusers-format ports (``ashawkey/mvdream-sd2.1-diffusers``,
``ashawkey/imagedream-ipmv-diffusers``): ``model_index.json``, ``unet/`` (a ``MultiViewUNetModel`` config and
safetensors weights), ``vae/``, ``text_encoder/`` + ``tokenizer/`` (SD 2.1's OpenCLIP-H text tower, penultimate
layer), ``scheduler/``, and for ImageDream ``image_encoder/`` + ``feature_extractor/`` (CLIP ViT-H/14). The port's
UNet class lives in its ``mv_unet.py`` (which needs xformers), not on the package index; a ``MultiViewUNetModel``
folder is read by this package's own implementation (:mod:`microdreamer.mvunet`, same parameter names, tested against
the port's class). ``unet_class=``, a built ``unet=``, or (opt-in) importing the ``.py`` shipped in the folder
(``trust_remote_code=True``) override that.
Weights are read from ``.safetensors`` only; pickled ``.bin``/``.pt`` files are refused.

Conditioning as guidance/{mvdream,imagedream}_utils.py builds it: views in groups of ``num_frames = 4``; each view's
camera is its OpenGL camera-to-world pose moved to MVDream's Blender world (rows x, −z, y), its translation
normalised to the unit sphere, flattened to 16 numbers (:func:`mvdream_camera`); text context from the CLIP text
encoder (negative prompt in the unconditional half); CFG batches are ``[uncond, cond]`` and the guided ε is
ε_u + w(ε_c − ε_u). ImageDream appends a 5th frame per group: zero latent, zero camera, the same timestep; the model
writes the reference image's VAE latent (``ip_img``) into that slot and cross-attends to the reference's CLIP
tokens (``ip``, penultimate hidden states); the unconditional half gets zeros for both; the 5th frame's output is
dropped. Both released checkpoints predict ε; a ``v_prediction`` scheduler config is converted to ε.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gen_common.checkpoint import load_state_dict
from gen_common.config import read_json
from microdreamer.cameras import Cameras
from microdreamer.ddim import scaled_linear_alphas_cumprod
from microdreamer.denoisers import CallCounter, LatentDenoiser
from microdreamer.mvunet import _timestep_embedding

__all__ = [
    "MultiViewDenoiser",
    "TinyMultiViewUNet",
    "detect_family",
    "import_unet_class",
    "mvdream_camera",
    "tiny_multiview",
]

NUM_FRAMES = 4
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# OpenGL world (y up) → the Blender world MVDream was trained in (z up): rows (x, −z, y)
_GL_TO_BLENDER = torch.tensor(
    [[1.0, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=torch.float64
)


def _require():
    try:
        import diffusers
        import transformers
    except ImportError as exc:
        raise ImportError(
            "the Stable-Zero123, MVDream and ImageDream denoisers need diffusers and transformers: "
            'pip install "microdreamer[zero123]"'
        ) from exc
    return diffusers, transformers


def mvdream_camera(cameras: Cameras) -> torch.Tensor:
    """[V, 16] float32: the camera embedding input of MVDream/ImageDream for this package's orbit cameras.

    The release takes DreamGaussian's OpenGL camera-to-world pose, swaps rows 1 and 2 and negates the new row 1
    (left-multiplying by the GL→Blender axis change), then scales the translation to unit length
    (camera_utils.normalize_camera). For an orbit camera at elevation e (this package's sign: negative looks down)
    and azimuth a this equals MVDream's own ``get_camera`` at elevation −e and azimuth a."""
    m = _GL_TO_BLENDER @ cameras.c2w_opengl()
    t = m[:, :3, 3]
    m[:, :3, 3] = t / (t.norm(dim=-1, keepdim=True) + 1e-8)
    return m.reshape(len(cameras), 16).float()


class _ResBlock(torch.nn.Module):
    def __init__(self, cin: int, cout: int, emb: int):
        super().__init__()
        self.norm1, self.conv1 = torch.nn.GroupNorm(8, cin), torch.nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = torch.nn.Linear(emb, cout)
        self.norm2, self.conv2 = torch.nn.GroupNorm(8, cout), torch.nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = torch.nn.Conv2d(cin, cout, 1) if cin != cout else torch.nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x))) + self.emb(F.silu(emb))[..., None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class TinyMultiViewUNet(torch.nn.Module):
    """A random, seeded multi-view UNet with the port's ``MultiViewUNetModel.forward`` signature, for offline tests.

    ``forward(x, timesteps, context, num_frames, camera, ip, ip_img)``: x is ``[(B·F), C, h, w]`` with the F frames
    of each object consecutive; the camera embedding (an MLP of the 16 numbers) is added to the timestep embedding
    per frame; self-attention runs over all frames' tokens of one object (what makes it multi-view), then
    cross-attention to ``context``. With ``ip_dim > 0`` (ImageDream) ``ip_img`` is written into every F-th frame and
    ``ip`` (CLIP tokens) is resampled to ``ip_dim`` tokens appended to the context, as the port does."""

    def __init__(
        self,
        in_channels: int = 4,
        out_channels: int = 4,
        model_channels: int = 32,
        context_dim: int = 32,
        camera_dim: int = 16,
        ip_dim: int = 0,
        ip_embed_dim: int = 32,
        num_heads: int = 4,
    ):
        super().__init__()
        self.config = {
            "in_channels": in_channels,
            "out_channels": out_channels,
            "model_channels": model_channels,
            "context_dim": context_dim,
            "camera_dim": camera_dim,
            "ip_dim": ip_dim,
            "ip_embed_dim": ip_embed_dim,
            "num_heads": num_heads,
        }
        self.ip_dim = ip_dim
        ch, emb = model_channels, 4 * model_channels
        self.time_embed = torch.nn.Sequential(
            torch.nn.Linear(ch, emb), torch.nn.SiLU(), torch.nn.Linear(emb, emb)
        )
        self.camera_embed = torch.nn.Sequential(
            torch.nn.Linear(camera_dim, emb), torch.nn.SiLU(), torch.nn.Linear(emb, emb)
        )
        if ip_dim > 0:
            self.ip_queries = torch.nn.Parameter(torch.randn(1, ip_dim, context_dim) / context_dim**0.5)
            self.ip_proj = torch.nn.Linear(ip_embed_dim, context_dim)
            self.ip_attn = torch.nn.MultiheadAttention(context_dim, 1, batch_first=True)
        self.conv_in = torch.nn.Conv2d(in_channels, ch, 3, padding=1)
        self.res_in = _ResBlock(ch, ch, emb)
        self.down = torch.nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1)
        self.res_mid = _ResBlock(2 * ch, 2 * ch, emb)
        self.norm_attn = torch.nn.LayerNorm(2 * ch)
        self.self_attn = torch.nn.MultiheadAttention(2 * ch, num_heads, batch_first=True)
        self.norm_cross = torch.nn.LayerNorm(2 * ch)
        self.cross_attn = torch.nn.MultiheadAttention(
            2 * ch, num_heads, kdim=context_dim, vdim=context_dim, batch_first=True
        )
        self.up = torch.nn.ConvTranspose2d(2 * ch, ch, 4, stride=2, padding=1)
        self.res_out = _ResBlock(2 * ch, ch, emb)
        self.conv_out = torch.nn.Sequential(
            torch.nn.GroupNorm(8, ch), torch.nn.SiLU(), torch.nn.Conv2d(ch, out_channels, 3, padding=1)
        )

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TinyMultiViewUNet:
        return cls(**{k: v for k, v in config.items() if not k.startswith("_")})

    def forward(self, x, timesteps=None, context=None, num_frames=1, camera=None, ip=None, ip_img=None, **kw):
        if x.shape[0] % num_frames:
            raise ValueError("the batch must be a multiple of num_frames")
        emb = self.time_embed(_timestep_embedding(timesteps, self.config["model_channels"]).to(x.dtype))
        if camera is not None:
            emb = emb + self.camera_embed(camera.to(x.dtype))
        if self.ip_dim > 0:
            x = x.clone()
            x[num_frames - 1 :: num_frames] = ip_img.to(x.dtype)
            kv = self.ip_proj(ip.to(x.dtype))
            q = self.ip_queries.expand(ip.shape[0], -1, -1)
            context = torch.cat([context, self.ip_attn(q, kv, kv, need_weights=False)[0]], 1)
        h0 = self.res_in(self.conv_in(x), emb)
        h = self.res_mid(self.down(h0), emb)
        n, c, hh, ww = h.shape
        # (B·F, c, h, w) → (B, F·h·w, c): every frame of one object attends to every other frame
        tok = h.flatten(2).transpose(1, 2).reshape(n // num_frames, num_frames * hh * ww, c)
        a = self.norm_attn(tok)
        tok = tok + self.self_attn(a, a, a, need_weights=False)[0]
        tok = tok.reshape(n, hh * ww, c)
        tok = tok + self.cross_attn(self.norm_cross(tok), context, context, need_weights=False)[0]
        h = tok.transpose(1, 2).reshape(n, c, hh, ww)
        h = self.res_out(torch.cat([self.up(h), h0], 1), emb)
        return self.conv_out(h)

    def save_pretrained(self, folder: str | Path) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps({"_class_name": type(self).__name__, **self.config}))
        save_file(
            {k: v.contiguous() for k, v in self.state_dict().items()},
            str(folder / "diffusion_pytorch_model.safetensors"),
        )
        return folder


def _load_state(folder: Path) -> dict[str, torch.Tensor]:
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(
            f"{folder}: no .safetensors weights (pickled .bin/.pt files are not loaded; convert them with "
            "safetensors first)"
        )
    plain = [f for f in files if ".fp16." not in f.name]  # diffusers' variant naming: prefer the plain file
    state: dict[str, torch.Tensor] = {}
    for f in plain or files:
        state.update(load_state_dict(f))  # a truncated or corrupt file is a one-line CheckpointError
    return state


def _import_remote_unet(root: Path, index: dict[str, Any]):
    """The UNet class from the ``.py`` file shipped in the folder (only with ``trust_remote_code=True``)."""
    module, name = (index.get("unet") or [None, None])[:2]
    for path in (root / "unet" / f"{module}.py", root / f"{module}.py"):
        if module and path.is_file():
            spec = importlib.util.spec_from_file_location(f"_microdreamer_remote_{module}", path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            return getattr(mod, name)
    raise FileNotFoundError(f"{root}: no {module}.py beside the weights to import {name} from")


def import_unet_class(spec: str):
    """``"module:Class"`` → the class (the module must be importable, e.g. the port's mv_unet.py on PYTHONPATH)."""
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"--unet-class wants module:Class (e.g. mv_unet:MultiViewUNetModel), got {spec!r}")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import {spec} ({exc}); put the port's mv_unet.py on PYTHONPATH") from exc


def _read_json(path: Path) -> dict[str, Any]:
    return read_json(path, error=ValueError)


def detect_family(root: str | Path) -> str:
    """Which denoiser family a local diffusers folder holds: "mvdream", "imagedream" or "zero123"."""
    root = Path(root)
    if (root / "clip_camera_projection").is_dir():
        return "zero123"
    if not (root / "model_index.json").is_file() or not (root / "unet" / "config.json").is_file():
        raise FileNotFoundError(
            f"{root} is neither a Stable-Zero123 nor an MVDream/ImageDream diffusers folder "
            "(no clip_camera_projection/, no model_index.json + unet/config.json)"
        )
    cfg = _read_json(root / "unet" / "config.json")
    if cfg.get("camera_dim") is None:
        raise ValueError(f"{root}: the UNet has no camera_dim; not a multi-view (MVDream/ImageDream) model")
    return "imagedream" if int(cfg.get("ip_dim") or 0) > 0 else "mvdream"


class MultiViewDenoiser(LatentDenoiser):
    """The denoiser protocol for MVDream (family ``mvdream``) and ImageDream (family ``imagedream``).

    Call :meth:`set_prompt` (both) and :meth:`set_reference` (ImageDream) before sampling. ``eps`` takes the V views
    of one SIR iteration (V a multiple of 4; the presets use 4) and counts one network call per batch, doubled
    when the CFG batch runs, exactly as the Stable-Zero123 adapter does (ImageDream's 5th frame is part of the same
    forward pass and is not counted separately)."""

    def __init__(
        self,
        unet,
        vae,
        *,
        family: str,
        text_encoder=None,
        tokenizer=None,
        image_encoder=None,
        alphas_cumprod: torch.Tensor | None = None,
        prediction_type: str = "epsilon",
        image_size: int = 256,
        clip_size: int = 224,
        clip_mean=CLIP_MEAN,
        clip_std=CLIP_STD,
        num_frames: int = NUM_FRAMES,
        counter: CallCounter | None = None,
    ):
        if family not in {"mvdream", "imagedream"}:
            raise ValueError(f"family must be 'mvdream' or 'imagedream', got {family!r}")
        if prediction_type not in {"epsilon", "v_prediction"}:
            raise ValueError(f"prediction_type must be 'epsilon' or 'v_prediction', got {prediction_type!r}")
        if family == "imagedream" and image_encoder is None:
            raise ValueError("ImageDream needs a CLIP image encoder (image_encoder/)")
        self.family = family
        self.unet, self.vae = unet, vae
        self.text_encoder, self.tokenizer, self.image_encoder = text_encoder, tokenizer, image_encoder
        self.alphas_cumprod = alphas_cumprod if alphas_cumprod is not None else scaled_linear_alphas_cumprod()
        self.prediction_type = prediction_type
        self.image_size, self.clip_size, self.num_frames = image_size, clip_size, num_frames
        self.clip_mean, self.clip_std = tuple(clip_mean), tuple(clip_std)
        self.counter = counter or CallCounter()
        self._init_generator()
        # (negative, positive) text context, each [1, L, D]; ImageDream's (CLIP tokens [1, T, E], latent [1, 4, h, w])
        self.text: tuple[torch.Tensor, torch.Tensor] | None = None
        self.image: tuple[torch.Tensor, torch.Tensor] | None = None

    # ---- loading -----------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        unet=None,
        unet_class=None,
        trust_remote_code: bool = False,
        text_encoder=None,
        tokenizer=None,
        device="cpu",
        dtype: torch.dtype | None = None,
    ) -> MultiViewDenoiser:
        """Load the port's folder (local, or a hub id when the network is allowed).

        The UNet: ``unet`` (a built model) as given; else ``unet_class``, or with ``trust_remote_code`` the ``.py``
        in the folder, or the class named in ``unet/config.json`` (``MultiViewUNetModel`` → this package's
        :class:`~microdreamer.mvunet.MultiViewUNet`, or the tiny stand-in), built from that config and filled from
        ``unet/*.safetensors``. ``text_encoder``/``tokenizer`` replace the
        folder's CLIP text tower (it must produce the context width the UNet was trained with)."""
        diffusers, transformers = _require()
        from gen_common.checkpoint import resolve_pretrained

        root = Path(resolve_pretrained(str(name_or_path)))
        family = detect_family(root)
        if family == "zero123":
            raise ValueError(f"{root} holds a Stable-Zero123 model; load it with microdreamer.zero123")
        index = _read_json(root / "model_index.json")
        if unet is None:
            cfg = _read_json(root / "unet" / "config.json")
            name = cfg.get("_class_name", "")
            if unet_class is not None:
                klass = unet_class
            elif trust_remote_code:
                klass = _import_remote_unet(root, index)
            elif name == TinyMultiViewUNet.__name__:
                klass = TinyMultiViewUNet
            elif name == "MultiViewUNetModel":  # the ports' class: this package's own implementation reads it
                from microdreamer.mvunet import MultiViewUNet as klass
            else:
                raise ValueError(
                    f"{root}/unet holds a {name or 'custom'} model whose class is not on the package index: give "
                    "the port's class (unet_class=; CLI --unet-class mv_unet:MultiViewUNetModel), a built unet=, or "
                    "trust_remote_code=True (CLI --unet-class folder) to import the .py shipped in the folder"
                )
            state = _load_state(root / "unet")
            # built without memory (a random init of ~0.9 B parameters takes seconds and 3.5 GB), then the file's
            # tensors are adopted (strict: every name and shape must match) and cast to float32 as the release runs
            with torch.device("meta"):
                unet = klass.from_config(cfg) if hasattr(klass, "from_config") else klass(**_init_kwargs(cfg))
            unet.load_state_dict(state, assign=True)
            if any(t.is_meta for t in unet.state_dict().values()):
                raise ValueError(f"{root}/unet: the model has tensors the weights file does not fill")
            unet = unet.float()
        kw = {"use_safetensors": True}
        vae = diffusers.AutoencoderKL.from_pretrained(root / "vae", **kw)
        if text_encoder is None:
            text_encoder = transformers.CLIPTextModel.from_pretrained(root / "text_encoder", **kw)
        if tokenizer is None:
            tokenizer = transformers.CLIPTokenizer.from_pretrained(root / "tokenizer")
        image_encoder = None
        clip_mean, clip_std, clip_size = CLIP_MEAN, CLIP_STD, 224
        if family == "imagedream":
            if not (root / "image_encoder").is_dir():
                raise FileNotFoundError(
                    f"{root}: ImageDream needs image_encoder/ (CLIP ViT-H/14 vision tower)"
                )
            image_encoder = transformers.CLIPVisionModel.from_pretrained(root / "image_encoder", **kw)
            clip_size = int(image_encoder.config.image_size)
            fe = root / "feature_extractor" / "preprocessor_config.json"
            if fe.is_file():
                fcfg = _read_json(fe)
                clip_mean, clip_std = fcfg.get("image_mean", clip_mean), fcfg.get("image_std", clip_std)
        alphas, pred = None, "epsilon"
        sched = root / "scheduler" / "scheduler_config.json"
        if sched.is_file():
            scfg = _read_json(sched)
            if scfg.get("beta_schedule", "scaled_linear") != "scaled_linear":
                raise ValueError(f"{sched}: only the scaled-linear schedule of SD 2.1 is supported")
            pred = scfg.get("prediction_type", "epsilon")
            alphas = scaled_linear_alphas_cumprod(
                scfg.get("beta_start", 0.00085),
                scfg.get("beta_end", 0.012),
                scfg.get("num_train_timesteps", 1000),
            )
        extra = _read_json(root / "microdreamer.json") if (root / "microdreamer.json").is_file() else {}
        den = cls(
            unet,
            vae,
            family=family,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            image_encoder=image_encoder,
            alphas_cumprod=alphas,
            prediction_type=pred,
            image_size=int(extra.get("image_size", 256)),
            clip_size=clip_size,
            clip_mean=clip_mean,
            clip_std=clip_std,
        )
        return den.to(device, dtype)

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write the port's layout (used by the tests to build a local folder from the tiny stand-in)."""
        folder = Path(folder)
        if not hasattr(self.unet, "save_pretrained"):
            raise ValueError("the UNet has no save_pretrained; save it with its own library")
        self.unet.save_pretrained(folder / "unet")
        self.vae.save_pretrained(folder / "vae")
        self.text_encoder.save_pretrained(folder / "text_encoder")
        self.tokenizer.save_pretrained(folder / "tokenizer")
        if self.image_encoder is not None:
            self.image_encoder.save_pretrained(folder / "image_encoder")
            (folder / "feature_extractor").mkdir(parents=True, exist_ok=True)
            (folder / "feature_extractor" / "preprocessor_config.json").write_text(
                json.dumps({"image_mean": list(self.clip_mean), "image_std": list(self.clip_std)})
            )
        (folder / "scheduler").mkdir(parents=True, exist_ok=True)
        (folder / "scheduler" / "scheduler_config.json").write_text(
            json.dumps(
                {
                    "_class_name": "DDIMScheduler",
                    "beta_start": 0.00085,
                    "beta_end": 0.012,
                    "beta_schedule": "scaled_linear",
                    "num_train_timesteps": 1000,
                    "prediction_type": self.prediction_type,
                }
            )
        )
        (folder / "microdreamer.json").write_text(json.dumps({"image_size": self.image_size}))
        unet_cls = type(self.unet)
        none = [None, None]
        enc = ["transformers", "CLIPVisionModel"] if self.image_encoder is not None else none
        (folder / "model_index.json").write_text(
            json.dumps(
                {
                    "_class_name": "MVDreamPipeline",
                    "unet": [unet_cls.__module__, unet_cls.__name__],
                    "vae": ["diffusers", "AutoencoderKL"],
                    "text_encoder": ["transformers", "CLIPTextModel"],
                    "tokenizer": ["transformers", "CLIPTokenizer"],
                    "scheduler": ["diffusers", "DDIMScheduler"],
                    "image_encoder": enc,
                    "feature_extractor": ["transformers", "CLIPImageProcessor"]
                    if self.image_encoder
                    else none,
                }
            )
        )
        return folder

    def to(self, device, dtype: torch.dtype | None = None) -> MultiViewDenoiser:
        for m in (self.unet, self.vae, self.text_encoder, self.image_encoder):
            if m is None:
                continue
            m.to(device=device, dtype=dtype) if dtype is not None else m.to(device)
            m.eval().requires_grad_(False)
        return self

    # ---- conditioning ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_text(self, prompt: str) -> torch.Tensor:
        """[1, 77, D]: the text tower's last hidden state (the port's text encoder already ends at OpenCLIP's
        penultimate layer, which is what the original FrozenOpenCLIPEmbedder returns)."""
        if self.text_encoder is None or self.tokenizer is None:
            raise ValueError(
                "no text encoder: give text_encoder= and tokenizer=, or call set_text_embeddings"
            )
        ids = self.tokenizer(
            [prompt],
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids.to(self.device)
        return self.text_encoder(ids)[0].to(self.dtype)

    def set_prompt(self, prompt: str, negative_prompt: str = "") -> None:
        """The release's get_text_embeds: the prompt conditions the CFG's conditional half, the negative prompt
        its unconditional half (and the unconditional ε of the DDIM inversion). ImageDream accepts an empty
        prompt (the port's default); MVDream needs one."""
        if self.family == "mvdream" and not prompt.strip():
            raise ValueError("MVDream is text-to-3D: give a text prompt (--prompt)")
        self.set_text_embeddings(self.encode_text(prompt), self.encode_text(negative_prompt))

    def set_text_embeddings(self, positive: torch.Tensor, negative: torch.Tensor) -> None:
        """Precomputed context ``[1, L, D]`` (e.g. from your own CLIP text encoder)."""
        if positive.shape != negative.shape or positive.ndim != 3 or positive.shape[0] != 1:
            raise ValueError("text embeddings must both be [1, L, D]")
        self.text = (negative.to(self.device, self.dtype), positive.to(self.device, self.dtype))

    @torch.no_grad()
    def set_reference(self, image: torch.Tensor, elevation: float = 0.0) -> None:
        """ImageDream's input view (RGB on white, [1, 3, H, W] in [0, 1]): CLIP tokens (the vision tower's
        penultimate hidden states, [1, 257, 1280] for ViT-H/14) and the VAE latent of the 256-px image
        (get_image_text_embeds). ``elevation`` is unused: ImageDream is not told the input view's elevation."""
        if self.family != "imagedream" or self.image_encoder is None:
            raise ValueError("only ImageDream is conditioned on an image; MVDream takes a prompt alone")
        if image.ndim != 4 or image.shape[:2] != (1, 3) or not torch.isfinite(image).all():
            raise ValueError("the reference image must be a finite [1, 3, H, W] tensor in [0, 1]")
        x = F.interpolate(image, (self.image_size, self.image_size), mode="bilinear", align_corners=False)
        x = x.to(self.device)
        # antialiased, as the port's CLIPImageProcessor (PIL bicubic) shrinks the 256-px image
        xc = F.interpolate(
            x, (self.clip_size, self.clip_size), mode="bicubic", align_corners=False, antialias=True
        )
        mean = torch.tensor(self.clip_mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.clip_std, device=x.device).view(1, 3, 1, 1)
        enc = self.image_encoder(((xc - mean) / std).to(self.dtype), output_hidden_states=True)
        self.image = (enc.hidden_states[-2].to(self.dtype), self.encode(x).to(self.dtype))

    # ---- the protocol ------------------------------------------------------------------------------------------
    def unet_inputs(self, latents: torch.Tensor, t: int, cameras: Cameras, *, halves: str) -> dict[str, Any]:
        """The keyword arguments of one ``MultiViewUNetModel`` call. ``halves``: "both" ([uncond, cond], the CFG
        batch) or "uncond" (the unconditional half alone)."""
        if self.text is None:
            raise ValueError(f"call set_prompt(prompt) before sampling: {self.family} is conditioned on text")
        if self.family == "imagedream" and self.image is None:
            raise ValueError(
                "call set_reference(image) before sampling: ImageDream is conditioned on the input view"
            )
        V, F_ = latents.shape[0], self.num_frames
        if V % F_ or len(cameras) != V:
            raise ValueError(
                f"{self.family} denoises views in groups of {F_} (num_frames) with one camera each; got {V} latents "
                f"and {len(cameras)} cameras (use a preset with views = {F_}·n)"
            )
        n = V // F_
        cam = mvdream_camera(cameras).to(self.device, self.dtype)
        x = latents.to(self.device, self.dtype)
        frames = F_
        if self.family == "imagedream":  # the extra reference frame: zero latent, zero camera
            frames = F_ + 1
            x = torch.cat([x.view(n, F_, *x.shape[1:]), x.new_zeros(n, 1, *x.shape[1:])], 1).flatten(0, 1)
            cam = torch.cat([cam.view(n, F_, 16), cam.new_zeros(n, 1, 16)], 1).flatten(0, 1)
        neg, pos = self.text
        parts = ["uncond"] if halves == "uncond" else ["uncond", "cond"]
        B = n * frames
        ctx = torch.cat([(neg if p == "uncond" else pos).expand(B, *neg.shape[1:]) for p in parts])
        out: dict[str, Any] = {
            "x": torch.cat([x] * len(parts)),
            "timesteps": torch.full((B * len(parts),), int(t), device=self.device, dtype=torch.long),
            "context": ctx,
            "num_frames": frames,
            "camera": torch.cat([cam] * len(parts)),
        }
        if self.family == "imagedream":
            tok, lat = self.image
            out["ip"] = torch.cat(
                [(torch.zeros_like(tok) if p == "uncond" else tok).expand(B, *tok.shape[1:]) for p in parts]
            )
            out["ip_img"] = torch.cat(
                [(torch.zeros_like(lat) if p == "uncond" else lat).expand(n, *lat.shape[1:]) for p in parts]
            )
        return out

    def _to_eps(self, out: torch.Tensor, x: torch.Tensor, t: int) -> torch.Tensor:
        if self.prediction_type == "epsilon":
            return out
        a = float(self.alphas_cumprod[t])  # v = √ᾱ ε − √(1−ᾱ) x₀  ⇒  ε = √ᾱ v + √(1−ᾱ) x_t
        return a**0.5 * out + (1 - a) ** 0.5 * x

    @torch.no_grad()
    def eps(self, latents, t, cameras, *, guidance_scale, uncond_only=False, doubled=True, phase="sample"):
        run_both = doubled or not uncond_only
        inputs = self.unet_inputs(latents, t, cameras, halves="both" if run_both else "uncond")
        x_in = inputs["x"].clone()  # the port writes ip_img into x in place
        self.counter.record(phase, run_both)
        out = self.unet(**inputs)
        out = getattr(out, "sample", out)
        out = self._to_eps(out.float(), x_in.float(), t)
        V, frames = latents.shape[0], inputs["num_frames"]
        if frames != self.num_frames:  # drop ImageDream's reference frame
            out = out.view(-1, frames, *out.shape[1:])[:, : self.num_frames].flatten(0, 1)
        if not run_both:
            return out
        e_u, e_c = out[:V], out[V:]
        if uncond_only:
            return e_u
        return e_u + guidance_scale * (e_c - e_u)


def _init_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


def tiny_multiview(
    family: str = "mvdream", seed: int = 0, *, image_size: int = 32, tokenizer=None
) -> MultiViewDenoiser:
    """A random MVDream- or ImageDream-shaped denoiser for tests: :class:`TinyMultiViewUNet` (32/64 channels,
    ImageDream with 4 ip tokens), a 2-level VAE, gen_common's tiny CLIP text tower and tokenizer (CLIP's real BPE
    vocabulary; pass ``tokenizer`` to reuse one, building it takes seconds), and for ImageDream a tiny CLIP vision
    tower (16 px, 4-px patches)."""
    _, transformers = _require()
    from gen_common.testing.diffusers_tiny import clip_tokenizer, tiny_clip_text_model
    from microdreamer.zero123 import tiny_vae

    ip_dim = 4 if family == "imagedream" else 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = TinyMultiViewUNet(ip_dim=ip_dim, ip_embed_dim=32)
        vae = tiny_vae(image_size)
        image_encoder = None
        if family == "imagedream":
            cfg = transformers.CLIPVisionConfig(
                hidden_size=32,
                intermediate_size=37,
                num_hidden_layers=2,
                num_attention_heads=4,
                image_size=16,
                patch_size=4,
            )
            image_encoder = transformers.CLIPVisionModel(cfg)
    text = tiny_clip_text_model(hidden_size=32, seed=seed)
    den = MultiViewDenoiser(
        unet,
        vae,
        family=family,
        text_encoder=text,
        tokenizer=tokenizer if tokenizer is not None else clip_tokenizer(),
        image_encoder=image_encoder,
        image_size=image_size,
        clip_size=16,
    )
    return den.to("cpu")
