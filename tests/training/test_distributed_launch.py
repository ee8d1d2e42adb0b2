"""The torchrun command line `probe train` builds: one node standalone, several nodes through a rendezvous.

The commands are parsed by torchrun's own argument parser and turned into its launch
configuration, which is what a real multi-node launch would use; nothing is launched.
"""

from __future__ import annotations

import sys

import pytest
import torch.distributed.run as torchrun

from probe.errors import ProbeError
from probe.training.distributed import Nodes, torchrun_command
from tests.training.conftest import TINY_FLAGS


def _torchrun_view(command: list[str], monkeypatch) -> tuple:
    """(parsed args, LaunchConfig) as torchrun itself reads ``command``."""
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # torchrun would set it in os.environ otherwise
    args = torchrun.get_args_parser().parse_args(command[3:])
    config, entry, entry_args = torchrun.config_from_args(args)
    return args, config, entry_args


def test_one_node_is_a_standalone_rendezvous(monkeypatch):
    command = torchrun_command(4, ["--config", "run/launch.json"])
    args, config, entry_args = _torchrun_view(command, monkeypatch)
    assert args.standalone and args.training_script == "probe.training.launch" and args.module
    assert config.nproc_per_node == 4 and (config.min_nodes, config.max_nodes) == (1, 1)
    assert entry_args[-2:] == ["--config", "run/launch.json"]


def test_several_nodes_meet_at_the_c10d_endpoint(monkeypatch):
    nodes = Nodes(nnodes=3, node_rank=2, rdzv_endpoint="node001:29500", rdzv_backend="c10d", rdzv_id="job42")
    command = torchrun_command(8, ["--config", "run/launch.json"], nodes)
    assert "--standalone" not in command
    args, config, _ = _torchrun_view(command, monkeypatch)
    assert (config.min_nodes, config.max_nodes, config.nproc_per_node) == (3, 3, 8)
    assert (config.rdzv_backend, config.rdzv_endpoint, config.run_id) == ("c10d", "node001:29500", "job42")
    assert args.node_rank == 2


def test_static_rendezvous_passes_this_nodes_rank(monkeypatch):
    nodes = Nodes(nnodes=2, node_rank=1, rdzv_endpoint="10.0.0.7:29400", rdzv_backend="static")
    _, config, _ = _torchrun_view(torchrun_command(2, [], nodes), monkeypatch)
    assert config.rdzv_backend == "static" and config.rdzv_configs["rank"] == 1
    assert config.rdzv_endpoint == "10.0.0.7:29400"


@pytest.mark.parametrize("nodes, message", [
    (Nodes(nnodes=0), "--nnodes: expected a positive integer"),
    (Nodes(nnodes=2), "--nnodes 2: needs --rdzv-endpoint HOST:PORT"),
    (Nodes(nnodes=2, rdzv_endpoint="node001"), "--rdzv-endpoint: expected HOST:PORT"),
    (Nodes(nnodes=2, rdzv_endpoint="node001:70000"), "--rdzv-endpoint: expected HOST:PORT"),
    (Nodes(nnodes=2, rdzv_endpoint="node001:29500", node_rank=2), "--node-rank: expected 0..1"),
    (Nodes(nnodes=2, rdzv_endpoint="node001:29500", rdzv_backend="etcd"), "--rdzv-backend: expected one of c10d, static"),
    (Nodes(nnodes=2, rdzv_endpoint="node001:29500", rdzv_backend="static"), "--rdzv-backend static: needs --node-rank"),
    (Nodes(nnodes=2, rdzv_endpoint="node001:29500", rdzv_id="a b"), "--rdzv-id"),
])
def test_inconsistent_node_flags_are_one_line_errors(nodes, message):
    with pytest.raises(ProbeError, match=message):
        torchrun_command(2, [], nodes)


def test_cli_passes_the_node_flags_to_torchrun(run_cli, tmp_path, monkeypatch):
    launched = []
    monkeypatch.setattr("probe.training.distributed.run_torchrun", lambda *args: launched.append(args))
    res = run_cli("train", *TINY_FLAGS, "--nnodes", "2", "--node-rank", "1", "--rdzv-endpoint", "node001:29500",
                  "--rdzv-id", "job42", "--out", tmp_path / "run")
    assert res.code == 0, res
    (nproc, launch_args, nodes), = launched
    assert nproc == 1 and launch_args == ["--config", str(tmp_path / "run" / "launch.json")]
    assert nodes == Nodes(nnodes=2, node_rank=1, rdzv_endpoint="node001:29500", rdzv_backend="c10d", rdzv_id="job42")
    assert (tmp_path / "run" / "launch.json").is_file()
