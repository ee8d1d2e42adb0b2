"""A user model trains, checkpoints and reloads like a zoo model (through probe.models.contract.ModelAdapter)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from probe.models import build_model
from probe.training import load_checkpoint, train

UNET = str(Path(__file__).resolve().parents[2] / "examples" / "unet.py") + ":build"


def test_a_user_model_starts_from_its_weights_and_reloads_without_them(tiny, tmp_path):
    start = tmp_path / "start.safetensors"
    initial = build_model(UNET, width=0.0625).net.state_dict()
    save_file(initial, str(start))
    result = train(tiny(model=UNET, model_options={"weights": str(start)}, max_steps=2, batch_size=2))
    start.unlink()  # the checkpoint alone must rebuild the trained model
    model, run_config = load_checkpoint(result.out, "cpu")
    assert run_config["model"] == UNET and model.model_name == "unet" and not model.training
    x = torch.rand(1, 3, 32, 64)
    trained = result.model.eval()
    assert torch.equal(model(x), trained(x))
    assert not torch.equal(model.net.decoder.heads[0].weight, initial["decoder.heads.0.weight"])  # trained, not the start
