"""Each package installs and runs alone: `pip install <dist>` with only its declared dependencies.

Builds the wheel (plus the wheels of the workspace packages it depends on), installs it into a fresh virtual
environment with the locked versions of its declared dependencies (torch comes from uv's cache as hardlinks),
imports it and runs its console script's --help. mdm-scaling is also installed as a user would, with plain pip from
our wheels: its `radd` must be ours (`radd-diffusion`), never the unrelated `radd` on the public index.
"""

import shutil

import pytest
from _workspace import members, smoke_test, workspace_closure

MEMBERS = members()
pytestmark = pytest.mark.skipif(shutil.which("uv") is None, reason="needs uv on PATH")


@pytest.mark.parametrize("dist", sorted(MEMBERS))
def test_wheel_installs_and_runs_alone(dist, tmp_path):
    m = MEMBERS[dist]
    res = smoke_test(m.dist, tmp_path)
    assert res["version"] == m.version
    assert set(res["help"]) == set(m.scripts)
    for script, text in res["help"].items():
        assert script in text and "usage" in text.lower()
    installed = res["installed"]
    assert m.dist.lower() in installed
    # Only declared dependencies: a sibling package outside its dependency closure is never pulled in.
    strangers = set(MEMBERS) - set(workspace_closure(dist, MEMBERS))
    assert not (installed & strangers), (
        f"{dist} installed siblings it does not declare: {installed & strangers}"
    )
    if dist == "gen-common":  # the shared core stays light: the heavy stacks sit behind extras
        heavy = {
            "diffusers",
            "transformers",
            "open-clip-torch",
            "accelerate",
            "huggingface-hub",
            "torchmetrics",
            "lpips",
        }
        heavy &= installed
        assert not heavy, f"gen-common pulled in {heavy}; keep them behind extras"
        assert {"torch", "numpy", "safetensors", "tqdm", "matplotlib"} <= installed


def test_mdm_scaling_with_plain_pip_gets_our_radd(tmp_path):
    # `radd` on the public index is an unrelated 2019 package with the same import name; depending on it by that
    # name pulled it in and broke `mdm-scaling --help`. The distribution is `radd-diffusion`.
    res = smoke_test("mdm-scaling", tmp_path, pip=True)
    assert set(res["pip_show"]) == {"gen-common", "radd-diffusion", "mdm-scaling"}
    assert "usage: mdm-scaling" in res["help"]["mdm-scaling"]
    show = res["pip_show"]["radd-diffusion"]
    assert "Name: radd-diffusion" in show and "Reparameterized absorbing discrete diffusion" in show
    assert "radd/likelihood.py" in show  # the module the stranger lacks
    requires = next(
        line for line in res["pip_show"]["mdm-scaling"].splitlines() if line.startswith("Requires:")
    )
    assert {r.strip() for r in requires.split(":", 1)[1].split(",")} >= {"radd-diffusion", "gen-common"}
    assert "radd" not in res["installed"], "nothing named `radd` is installed"
