"""Every registered model, dataset and loss honours the contract in docs/CONTRACTS.md (iterating the registries)."""

from __future__ import annotations

import pytest
import torch

from probe.data import dataset_info, get_dataset, list_datasets
from probe.depth_space import OUTPUT_SPACES
from probe.laws import single_thread
from probe.losses import build_loss, list_losses
from probe.metrics import PROTOCOLS
from probe.models import MODELS, build_model, list_models

SIZE = (33, 47)  # not a multiple of any network's stride: padded and cropped back


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with single_thread():
        yield


@pytest.mark.parametrize("name", list_models())
def test_every_model_maps_any_image_size_to_its_documented_output(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, width=0.0625)
    assert model.model_name == name and model.family == MODELS.entry(name).meta["family"]
    assert model.output_space in OUTPUT_SPACES and isinstance(model.input_multiple, int)
    expected = tuple(round(s * model.output_scale) for s in SIZE)
    images = torch.rand(2, 3, *SIZE)
    with torch.no_grad():
        out = model.eval()(images)
        scales = model.train()(images)
    assert out.shape == (2, 1, *expected) and torch.isfinite(out).all()
    assert isinstance(scales, list) and scales[0].shape == out.shape
    assert all(a.shape[-1] >= b.shape[-1] for a, b in zip(scales, scales[1:]))  # finest first


@pytest.mark.parametrize("name", list_datasets())
def test_every_dataset_states_a_usable_protocol(name: str) -> None:
    info = dataset_info(name)
    assert info.name == name and info.eval_protocol in PROTOCOLS
    assert 0 < info.min_depth < info.max_depth and 0 < info.depth_scale <= 1
    assert min(info.input_size) > 0 and info.source
    assert info.needs_root == bool(info.expected)


@pytest.mark.parametrize("name", [n for n in list_datasets() if not dataset_info(n).needs_root])
def test_every_built_in_dataset_yields_items_of_the_documented_shape(name: str) -> None:
    dataset = get_dataset(name, split="test", input_size=(32, 48), length=2)
    item = dataset[0]
    h, w = dataset.info.depth_size((32, 48))
    assert item["image"].shape == (3, 32, 48) and item["image"].dtype == torch.float32
    assert 0 <= float(item["image"].min()) and float(item["image"].max()) <= 1
    assert item["depth"].shape == item["valid"].shape == (1, h, w) and item["valid"].dtype == torch.bool
    assert float(item["depth"][item["valid"]].max()) <= dataset.info.max_depth
    assert isinstance(item["name"], str) and item["name"]


@pytest.mark.parametrize("name", list_losses())
@pytest.mark.parametrize("space", list(OUTPUT_SPACES))
def test_every_loss_is_a_finite_scalar_with_a_gradient_in_every_output_space(name: str, space: str) -> None:
    depth = 1.0 + 4.0 * torch.rand(2, 1, 8, 12, generator=torch.Generator().manual_seed(0))
    valid = torch.ones_like(depth, dtype=torch.bool)
    out = torch.rand(2, 1, 8, 12, requires_grad=True)
    loss = build_loss(name)([out + 0.1], depth, valid, output_space=space, max_depth=10.0)
    assert loss.total.dim() == 0 and torch.isfinite(loss.total)
    loss.total.backward()
    assert out.grad is not None and torch.isfinite(out.grad).all()
