"""SPECs: zoo names, module:factory, file.py:factory and entry points resolve; bad SPECs are one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch.nn as nn

from probe.errors import ProbeError
from probe.models import build_model
from probe.models.contract import ModelAdapter
from probe.models.spec import display_name, entry_point_models, file_safe_name, resolve_spec

HERE = Path(__file__).resolve().parent
USER = HERE / "user_models.py"
ROOT = HERE.parents[1]


def write_plugin(folder: Path, module: str, names: dict[str, str], dist: str = "tiny-probe-plugin") -> None:
    """An installed distribution as pip leaves it: a module and a ``*.dist-info`` with ``entry_points.txt``."""
    (folder / f"{module}.py").write_text(
        "import torch.nn as nn\n"
        "class Net(nn.Module):\n"
        "    output_space, min_depth, max_depth = 'metric', 0.1, 10.0\n"
        "    def __init__(self, width=1.0):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 1, 3, padding=1)\n"
        "    def forward(self, x):\n"
        "        return self.conv(x).exp()\n"
        "def build(width=1.0):\n"
        "    return Net(width)\n")
    info = folder / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {value}\n" for name, value in names.items())
    (info / "entry_points.txt").write_text(f"[probe.models]\n{lines}")


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A temporary folder on sys.path holding one installed plugin distribution."""
    module = f"tiny_plugin_{tmp_path.name.replace('-', '_')}"
    write_plugin(tmp_path, module, {"tiny_net": f"{module}:build", "packnet_b": f"{module}:build"})
    monkeypatch.syspath_prepend(str(tmp_path))
    yield module
    sys.modules.pop(module, None)


def test_zoo_names_resolve_to_the_zoo():
    assert resolve_spec("packnet_b").kind == "zoo"
    assert not isinstance(build_model("packnet_slim_b", width=0.0625), ModelAdapter)


def test_file_spec_imports_without_leaving_its_folder_on_sys_path():
    before = list(sys.path)
    model = build_model(f"{USER}:plain")
    assert isinstance(model, ModelAdapter) and model.model_name == "user_models.plain"
    assert sys.path == before
    module = type(model.net).__module__
    assert module.startswith("probe_user_model_") and module in sys.modules


def test_the_same_file_is_imported_once_per_process():
    assert type(build_model(f"{USER}:plain").net) is type(build_model(f"{USER}:plain").net)


def test_a_file_may_import_its_neighbours(tmp_path):
    (tmp_path / "blocks.py").write_text("import torch.nn as nn\ndef head():\n    return nn.Conv2d(3, 1, 1)\n")
    (tmp_path / "net.py").write_text(
        "import torch.nn as nn\nimport blocks\n"
        "class Net(nn.Module):\n"
        "    output_space, min_depth, max_depth = 'log_depth', 0.1, 10.0\n"
        "    def __init__(self):\n        super().__init__()\n        self.head = blocks.head()\n"
        "    def forward(self, x):\n        return self.head(x)\n"
        "def build():\n    return Net()\n")
    assert build_model(f"{tmp_path / 'net.py'}:build").model_name == "net"
    sys.modules.pop("blocks", None)


def test_module_spec_with_dotted_attribute(tmp_path, monkeypatch):
    (tmp_path / "userpkg_nets.py").write_text(
        "import torch.nn as nn\n"
        "class Zoo:\n"
        "    class Net(nn.Module):\n"
        "        output_space, min_depth, max_depth = 'metric', 0.1, 10.0\n"
        "        def __init__(self):\n            super().__init__()\n            self.c = nn.Conv2d(3, 1, 1)\n"
        "        def forward(self, x):\n            return self.c(x)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    resolved = resolve_spec("userpkg_nets:Zoo.Net")
    assert resolved.kind == "module" and resolved.name == "userpkg_nets.Zoo.Net"
    assert isinstance(build_model("userpkg_nets:Zoo.Net").net, nn.Module)
    sys.modules.pop("userpkg_nets", None)


def test_entry_point_models_are_found_with_their_source(plugin):
    listed = {e.name: e for e in entry_point_models()}
    assert listed["tiny_net"].value == f"{plugin}:build"
    assert listed["tiny_net"].distribution == "tiny-probe-plugin 0.1"
    assert listed["tiny_net"].source == f"entry point {plugin}:build from tiny-probe-plugin 0.1"
    assert listed["packnet_b"].shadowed and not listed["tiny_net"].shadowed
    resolved = resolve_spec("tiny_net")
    assert resolved.kind == "entry_point" and "tiny-probe-plugin" in resolved.source
    model = build_model("tiny_net")
    assert isinstance(model, ModelAdapter) and model.model_name == "tiny_net" and model.output_space == "metric"


def test_a_zoo_name_wins_over_an_entry_point_of_the_same_name(plugin):
    assert resolve_spec("packnet_b").kind == "zoo"


def test_probe_models_lists_entry_points_with_their_source(plugin, run_cli):
    res = run_cli("models", "--width", "0.0625")
    assert res.code == 0, res
    line = next(line for line in res.out.splitlines() if "tiny_net" in line)
    assert f"{plugin}:build" in line and "tiny-probe-plugin 0.1" in line
    assert "shadowed" in next(line for line in res.out.splitlines() if "packnet_b" in line and "entry point" in line)


def test_an_entry_point_name_registered_twice_is_ambiguous(tmp_path, monkeypatch):
    write_plugin(tmp_path, "twice_a", {"twice": "twice_a:build"}, dist="twice-a")
    write_plugin(tmp_path, "twice_b", {"twice": "twice_b:build"}, dist="twice-b")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ProbeError, match="several installed packages"):
        resolve_spec("twice")


BAD_SPECS = [
    ("nope", "unknown model 'nope'"),
    (f"{ROOT}/missing.py:build", "missing.py not found"),
    (f"{USER}:nope", "has no attribute 'nope'"),
    (f"{USER}:NOT_CALLABLE", "NOT_CALLABLE is a int, not a callable"),
    (f"{USER}:not_a_module", "returned a str, not an nn.Module"),
    (f"{USER}:raises", "the factory raised RuntimeError: the factory is broken"),
    ("no_such_module_xyz:build", "no module named 'no_such_module_xyz'"),
    ("os.path:", "expected module:factory"),
    ("not a module:build", "neither an importable module name"),
    (f"{HERE / 'test_spec.py'}x:build", "expected a .py file"),
    ("examples/unet.py", "name the factory after a colon, e.g. examples/unet.py:build"),
]


@pytest.mark.parametrize("spec, expected", BAD_SPECS, ids=[e for _, e in BAD_SPECS])
def test_a_bad_spec_is_one_line_naming_it(spec, expected):
    with pytest.raises(ProbeError) as info:
        build_model(spec)
    message = str(info.value)
    assert expected in message and "\n" not in message
    assert spec.split(":")[0].split("/")[-1] in message


def test_a_file_that_fails_to_import_is_one_line_and_not_left_in_sys_modules(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nraise ValueError('no GPU driver here')\n")
    with pytest.raises(ProbeError, match=r"importing .*bad.py failed: ValueError: no GPU driver here"):
        build_model(f"{bad}:build")
    assert not [m for m in sys.modules if m.startswith("probe_user_model_") and m.endswith("_bad")]


@pytest.mark.parametrize("name", ["packnet_b", "densedepth", "my-net_2.v1"])
def test_file_safe_name_keeps_names_that_are_already_safe(name):
    assert file_safe_name(name) == name


def test_file_safe_name_is_one_safe_path_part_and_distinct_for_distinct_specs():
    specs = ["examples/unet.py:build", "examples/unet.py:Build", "./examples/unet.py:build",
             "examples_unet.py_build", "mypkg.nets:build", "mypkg/nets:build", "a" * 200, "..", ":", "x/" * 50 + "y:z"]
    names = [file_safe_name(s) for s in specs]
    assert len(set(names)) == len(specs)
    for name in names:
        assert name and len(name) <= 64 and not name.startswith(".")
        assert all(c.isalnum() or c in "_.-" for c in name), name
    assert file_safe_name("examples/unet.py:build").startswith("examples_unet.py_build-")


def test_display_name_is_readable_without_importing():
    assert display_name("examples/missing_anyway.py:build") == "missing_anyway"
    assert display_name("mypkg.nets:make_unet") == "nets.make_unet"
    assert display_name("packnet_b") == "packnet_b"
    assert display_name("examples/unet.py:build", {"name": "my_unet"}) == "my_unet"


def test_a_spec_with_line_breaks_is_refused_in_one_line():
    """Found by tests/test_attacks_runs.py: a config.json model of several lines made a several-line error."""
    with pytest.raises(ProbeError, match=r"SPEC is one line") as info:
        resolve_spec("line one\n# heading\n- item")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name,option", [("densedepth", "variant"), ("packnet_b", "activation"),
                                         ("packnet_b", "target"), ("packnet_b", "output_scale"),
                                         ("packnet_b", "depth_conv"), ("posenet", "inputs")])
@pytest.mark.parametrize("value", [{"x": 1}, ["a"]])
def test_a_choice_option_given_an_unhashable_value_is_a_one_line_error_not_a_type_error(name, option, value):
    """A config.json or --model-option can hold a mapping or a list where a name is expected (found by the
    run-folder attack test: `variant not in VARIANTS` raised TypeError: unhashable type: 'dict')."""
    from probe.models import build_model

    with pytest.raises(ProbeError, match=option):
        build_model(name, width=0.0625, **{option: value})
