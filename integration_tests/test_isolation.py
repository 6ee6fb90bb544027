"""Each package installs and runs alone: `pip install <dist>` with only its declared dependencies.

Builds the wheel (plus the wheels of the workspace packages it depends on), installs it into a fresh virtual
environment with the locked versions of its declared dependencies (torch comes from uv's cache as hardlinks),
imports it and runs its console script's --help.
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
