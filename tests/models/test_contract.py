"""The model adapter: user networks under probe's internal contract (probe.models.contract)."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from probe.depth_space import disparity_to_inverse
from probe.errors import ProbeError, ShapeError
from probe.models import build_model
from probe.models.contract import ADAPTER_OPTIONS, OutputKey, spell_key

USER = Path(__file__).resolve().parent / "user_models.py"
X = torch.rand(2, 3, 16, 24)


def plain(**options):
    return build_model(f"{USER}:plain", **options)


def test_the_adapter_carries_every_zoo_attribute():
    model = plain()
    zoo = build_model("packnet_slim_b", width=0.0625)
    for attribute in ("output_space", "min_depth", "output_scale", "input_multiple", "family", "model_name"):
        assert hasattr(zoo, attribute) and getattr(model, attribute) is not None, attribute
    assert (model.output_space, model.min_depth, model.max_depth, model.family) == ("metric", 0.1, 10.0, "user")


@pytest.mark.parametrize("shape, options", [("tensor", {}), ("squeezed", {}), ("list", {}),
                                            ("string_dict", {"output_key": "depth"}),
                                            ("tuple_dict", {"output_key": "depth,0"}),
                                            ("tuple_dict", {"output_key": ("depth", 0)})])
def test_eval_mode_gives_one_depth_map_whatever_the_network_returns(shape, options):
    model = plain(shape=shape, **options).eval()
    reference = plain().eval()
    reference.load_state_dict(model.state_dict())
    assert torch.equal(model(X), reference(X)) and model(X).shape == (2, 1, 16, 24)


@pytest.mark.parametrize("shape, options, sizes", [
    ("tensor", {}, [(16, 24)]),
    ("list", {}, [(16, 24), (8, 12)]),
    ("tuple_dict", {"output_key": "depth,0"}, [(16, 24)]),
    ("tuple_dict", {"output_key": "depth,*"}, [(16, 24), (8, 12)]),
])
def test_train_mode_gives_scales_finest_first(shape, options, sizes):
    outs = plain(shape=shape, **options).train()(X)
    assert isinstance(outs, list) and [tuple(o.shape[-2:]) for o in outs] == sizes


@pytest.mark.parametrize("shape, options, message", [
    ("string_dict", {}, "returns a dict (keys depth, aux); name the depth entry with --model-option output_key"),
    ("tuple_dict", {"output_key": "depth,7"}, "output_key=depth,7 matches no key"),
    ("tensor", {"output_key": "depth"}, "output_key=depth is set but the model returns a Tensor"),
    ("coarse_first", {}, "scales must be finest first, got heights 8, 16"),
    ("two_channels", {}, "expected a float [B,1,h,w]"),
])
def test_an_output_off_the_contract_is_one_line_naming_the_spec_and_clause(shape, options, message):
    with pytest.raises(ShapeError) as info:
        plain(shape=shape, **options).eval()(X)
    assert message in str(info.value) and f"{USER}:plain: eval output: " in str(info.value)


def test_output_key_spelling_reads_tuples_and_integers():
    assert OutputKey("disp,0").candidates() == ["disp,0", ("disp", 0)]
    assert OutputKey(0).candidates() == [0, "0"]
    assert spell_key(("disp", 0)) == "disp,0" and spell_key("depth") == "depth"
    assert OutputKey("disp, *").all_scales


def test_disparity_outputs_reach_probe_as_inverse_depth_in_the_declared_range():
    model = plain(output_space="disparity", min_depth=0.5, max_depth=20.0).eval()
    raw = model.net(X)
    assert model.output_space == "inverse" and model.declared_space == "disparity"
    assert torch.allclose(model(X), disparity_to_inverse(raw, 0.5, 20.0))


def test_options_override_declared_attributes_and_reach_a_factory_that_names_them():
    model = plain(min_depth=1.0, max_depth=80.0, output_space="log_depth", name="mine")
    assert (model.min_depth, model.max_depth, model.output_space, model.model_name) == (1.0, 80.0, "log_depth", "mine")
    assert (model.net.min_depth, model.net.max_depth) == (1.0, 80.0)  # the factory got them too


def test_a_factory_with_kwargs_gets_every_option_but_the_adapters():
    model = build_model(f"{USER}:flexible", depth_head="big", width=0.5, max_depth=20.0, weights=None)
    factory = sys.modules[type(model.net).__module__].flexible
    assert factory.seen == {"depth_head": "big", "width": 0.5}
    assert model.max_depth == 20.0


def test_unknown_options_name_the_factory_and_adapter_options():
    with pytest.raises(ProbeError, match=r"unknown option\(s\) depth_head; the factory takes .*min_depth.*"
                                         r"probe's adapter takes output_space"):
        plain(depth_head="big")


def test_width_other_than_one_needs_a_factory_that_takes_it():
    assert build_model(f"{USER}:no_width", width=1.0).model_name == "user_models.no_width"
    with pytest.raises(ProbeError, match="--width: the factory of .* takes no width argument"):
        build_model(f"{USER}:no_width", width=0.5)


@pytest.mark.parametrize("options, message", [
    ({"output_space": None}, "declares no output_space"),
    ({"output_space": "furlongs"}, "output_space='furlongs' is not one of inverse"),
    ({"min_depth": None}, "declares no min_depth"),
    ({"max_depth": -1}, "max_depth=-1: expected a positive number"),
    ({"min_depth": 5.0, "max_depth": 1.0}, "min_depth=5.0 must be below max_depth=1.0"),
    ({"input_multiple": 0}, "input_multiple=0: expected an integer >= 1"),
    ({"name": ""}, "--model-option name"),
])
def test_a_bad_declaration_is_one_line_naming_the_spec_and_clause(options, message):
    with pytest.raises(ProbeError) as info:
        plain(**options)
    assert message in str(info.value) and str(USER) in str(info.value)
    assert "declaration" in str(info.value) or "name" in options


def test_input_multiple_pads_and_crops_back_to_any_size():
    model = plain(input_multiple=8).eval()
    x = torch.rand(1, 3, 13, 21)
    out = model(x)
    assert out.shape == (1, 1, 13, 21)
    padded = torch.nn.functional.pad(x, (0, 3, 0, 3), mode="replicate")
    assert torch.equal(out, model.net(padded)[..., :13, :21])


def test_output_scale_is_measured_without_touching_modes_or_the_random_stream():
    model = plain(input_multiple=4).train()
    model.net.body.eval()
    state = torch.random.get_rng_state()
    assert model.output_scale == 1.0
    assert torch.equal(torch.random.get_rng_state(), state)
    assert model.training and model.net.training and not model.net.body.training


def test_a_forward_error_of_the_network_is_one_line_naming_the_spec():
    with pytest.raises(ProbeError, match=r"the network's forward failed on input \[2, 3, 16, 24\] \(eval mode\): "
                                         r"RuntimeError") as info:
        build_model(f"{USER}:plain").eval()(torch.rand(2, 3, 16, 24, dtype=torch.float64))
    assert isinstance(info.value.__cause__, RuntimeError)


def test_adapter_options_are_documented():
    assert set(ADAPTER_OPTIONS) == {"output_space", "min_depth", "max_depth", "output_key", "input_multiple",
                                    "weights", "name", "checkpoint_stages"}


# -- activation checkpointing ----------------------------------------------------------------------


def _step_gradients(model, x):
    model.zero_grad(set_to_none=True)
    torch.stack([s.mean() for s in model.train()(x)]).sum().backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("options", [{"shape": "list", "checkpoint_stages": "body,coarse"},
                                     {"shape": "list", "checkpoint_stages": ("body", "coarse")}])
def test_checkpoint_stages_reach_the_adapter_and_recompute_with_the_plain_gradients(options):
    from probe.models.recompute import enable_activation_checkpointing, is_checkpointed

    torch.manual_seed(0)
    plain_model = plain(shape="list")
    model = plain(**options)
    model.load_state_dict(plain_model.state_dict())
    assert enable_activation_checkpointing(model) == ["net.body", "net.coarse"]
    assert is_checkpointed(model.net.body) and not is_checkpointed(model.net.head)
    expected, got = _step_gradients(plain_model, X), _step_gradients(model, X)
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)


def test_the_example_unet_declares_its_checkpoint_stages():
    from probe.models.recompute import enable_activation_checkpointing

    root = Path(__file__).resolve().parents[2]
    model = build_model(f"{root}/examples/unet.py:build", width=0.0625)
    assert enable_activation_checkpointing(model)[0] == "net.encoder.stem"


def test_a_checkpoint_stage_that_is_no_submodule_is_one_line_naming_the_spec():
    with pytest.raises(ProbeError, match=r"user_models.py:plain: checkpoint_stages names 'nope', which is not a "
                                         r"submodule of the network"):
        plain(checkpoint_stages="body,nope")


def test_a_user_model_without_stages_is_told_how_to_declare_them():
    from probe.models.recompute import enable_activation_checkpointing

    with pytest.raises(ProbeError, match=r"--model-option checkpoint_stages=PATH,PATH"):
        enable_activation_checkpointing(plain())


# -- weights -------------------------------------------------------------------------------------


def test_weights_load_a_safetensors_or_torch_state_dict_of_the_network(tmp_path):
    source = plain()
    save_file(source.net.state_dict(), str(tmp_path / "w.safetensors"))
    torch.save({"state_dict": source.net.state_dict()}, tmp_path / "w.pth")
    for name in ("w.safetensors", "w.pth"):
        loaded = plain(weights=str(tmp_path / name))
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), source.state_dict().values()))


def test_weights_accept_probes_own_checkpoint_of_the_adapted_model(tmp_path):
    from safetensors.torch import save_model

    source = plain()
    save_model(source, str(tmp_path / "last.safetensors"))  # keys net.*, as probe train writes them
    loaded = plain(weights=str(tmp_path / "last.safetensors"))
    assert torch.equal(loaded.net.head.weight, source.net.head.weight)


def test_weights_that_do_not_fit_are_one_line_listing_the_keys(tmp_path):
    state = plain().net.state_dict()
    state.pop("head.bias")
    state["extra"] = torch.zeros(1)
    save_file(state, str(tmp_path / "w.safetensors"))
    with pytest.raises(ProbeError, match=r"weights=.*does not fit the model: 1 missing keys \[head.bias\]; 1 unexpected keys \[extra\]"):
        plain(weights=str(tmp_path / "w.safetensors"))


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/probe_payload_ran"),))


def test_weights_never_run_code_from_the_file(tmp_path):
    marker = Path("/tmp/probe_payload_ran")
    marker.unlink(missing_ok=True)
    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"head.weight": _Payload()}, protocol=2))
    with pytest.raises(ProbeError, match=r"weights=.*evil.pth: refused to load: the pickle calls builtins.getattr"):
        plain(weights=str(tmp_path / "evil.pth"))
    assert not marker.exists()


def test_missing_weights_file_is_one_line(tmp_path):
    with pytest.raises(ProbeError, match=r"--model-option weights=.*nope.pt: file not found"):
        plain(weights=str(tmp_path / "nope.pt"))
