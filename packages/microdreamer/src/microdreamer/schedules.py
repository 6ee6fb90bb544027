"""The released timestep rules of SIR (main.py get_denoise_schedule and guidance/*_utils.py train_step).

t2 (where the DDIM sampler starts, the paper's annealed t₂): ``timesteps[int(k/K·(end − start) + start)]`` with
start = N(1 − t_start), end = N(1 − t_end), K = total_steps − 1 and k the SIR iteration (the initial iteration from
pure noise and the first SIR iteration both use k = 0). Python float arithmetic is kept as is: 20·(1 − 0.9) =
1.9999999999999996 truncates to index 1 (t2 = 901, not 951), and k never reaches K, so t_end's index is never used.

t1 (where the hybrid forward process stops adding Gaussian noise and starts DDIM inversion):
``inverse_timesteps[int(t2/1000 · N · 0.6)]`` computed in float32 (t2 is a torch tensor in the release).
"""

from __future__ import annotations

import torch

from microdreamer.ddim import DDIMGrid

__all__ = ["iteration_k", "t1_for", "t2_for", "t2_schedule"]


def iteration_k(iteration: int) -> int:
    """Iteration 0 is the initial sample from noise; it and SIR iteration 1 share k = 0."""
    return max(iteration - 1, 0)


def t2_for(k: int, grid: DDIMGrid, total_steps: int, t_start: float, t_end: float) -> int:
    K = total_steps - 1
    if K < 1:
        raise ValueError(f"total_steps must be at least 2, got {total_steps}")
    start = grid.num_steps * (1 - t_start)
    end = grid.num_steps * (1 - t_end)
    idx = int((k / K) * (end - start) + start)
    return grid.timesteps[min(max(idx, 0), grid.num_steps - 1)]


def t2_schedule(grid: DDIMGrid, total_steps: int, t_start: float, t_end: float) -> list[int]:
    """t2 for every outer iteration 0..total_steps−1 (iteration 0 starts from pure noise whatever its t2)."""
    return [t2_for(iteration_k(i), grid, total_steps, t_start, t_end) for i in range(total_steps)]


def t1_for(t2: int, grid: DDIMGrid, inverse_ratio: float = 0.6) -> int:
    idx = int((torch.tensor(t2, dtype=torch.long) / 1000 * grid.num_steps * inverse_ratio).to(torch.long))
    return grid.inverse_timesteps[idx]
