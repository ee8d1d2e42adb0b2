"""Run folders with result files shaped like the analyses write them, built from parameters."""

from __future__ import annotations

import json
from pathlib import Path


def write(path: Path, doc: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def gradients_doc(packnet_vanishing: int, ratio: float) -> dict:
    def model(name, vanishing, r):
        layers = [{"name": f"l{i}", "depth": i, "params": 10, "grad_norm": {"median": 10.0 ** -i, "mean": 1.0,
                   "min": 0.1, "max": 2.0, "per_step": [1.0]}, "weight_norm": 1.0, "update_ratio": 1e-4}
                  for i in range(4)]
        return {"name": name, "layers": layers, "first_last_ratio": r,
                "verdict": {"rule": "stated", "vanishing": [f"l{i}" for i in range(vanishing)], "exploding": []}}
    return {"analysis": "gradients", "models": [model("packnet_b", packnet_vanishing, ratio), model("densedepth", 0, 1.0)]}


def collapse_doc(shares: dict[str, float]) -> dict:
    return {"analysis": "collapse", "models": [
        {"name": n, "history": [{"step": 0, "collapsed_share": 1.0, "median_std_ratio": 0.01},
                                {"step": 10, "collapsed_share": s, "median_std_ratio": 0.05 if s >= 0.5 else 0.6}]}
        for n, s in shares.items()]}


def autoencoder_doc(pack_psnr: list[float], pool_psnr: list[float]) -> dict:
    rows = []
    for level, (p, q) in enumerate(zip(pack_psnr, pool_psnr), start=1):
        rows.append({"arch": "pack3d", "levels": level, "psnr": p, "mse": 0.01, "ssim": 0.9, "params": 1, "macs": 1})
        rows.append({"arch": "maxpool", "levels": level, "psnr": q, "mse": 0.02, "ssim": 0.8, "params": 1, "macs": 1})
    return {"analysis": "autoencoder", "results": rows}


def noise_doc(packnet_cv: float, densedepth_cv: float) -> dict:
    return {"analysis": "noise", "models": [
        {"name": "packnet_b", "b_simple": 12.0, "loss": {"cv": packnet_cv, "std": 0.1, "mean": 0.5}},
        {"name": "densedepth", "b_simple": 3.0, "loss": {"cv": densedepth_cv, "std": 0.05, "mean": 0.4}}]}


def complexity_doc() -> dict:
    return {"analysis": "complexity", "models": [
        {"name": "packnet_b", "input_size": [192, 640], "params": 124164580, "macs": 2.0e11,
         "latency": {"forward_ms": 10.0, "forward_backward_ms": 30.0}},
        {"name": "densedepth", "input_size": [192, 640], "params": 42657689, "macs": 5.0e10,
         "latency": {"forward_ms": 5.0, "forward_backward_ms": 12.0}}]}


def experiments_doc() -> dict:
    return {"analysis": "experiments", "experiments": [
        {"id": "baseline", "title": "DenseDepth", "model": "densedepth", "params": 100, "mean_epoch_loss": [0.40],
         "batch_loss_std": 0.05, "loss_curve": [0.9, 0.6, 0.5, 0.4]},
        {"id": "exp1", "title": "PackNet B", "model": "packnet_slim_b", "params": 300, "mean_epoch_loss": [0.61],
         "batch_loss_std": 0.15, "loss_curve": [0.9, 0.7, 0.65, 0.6]}]}


def full_run(root: Path) -> Path:
    write(root / "gradients.json", gradients_doc(2, 1e-4))
    write(root / "collapse.json", collapse_doc({"packnet_b": 0.75, "densedepth": 0.0}))
    write(root / "autoencoder.json", autoencoder_doc([30.0, 25.0], [24.0, 20.0]))
    write(root / "noise.json", noise_doc(0.4, 0.1))
    write(root / "complexity.json", complexity_doc())
    write(root / "experiments.json", experiments_doc())
    write(root / "properties.json", {"analysis": "properties", "laws": [
        {"name": "unpack_inverts_pack", "statement": "unpack(pack(x)) == x", "examples": 200, "passed": True}]})
    write(root / "config.json", {"study": {"config": {}, "provenance": {"git_commit": "abc", "torch": "2.13"}}})
    return root
