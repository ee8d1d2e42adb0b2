"""Issue 16's attack scenarios, measured: random SIGKILLs, concurrent writers, corrupt dataset files.

    python3 bench/reliability.py kills --kills 20 --out kills.json      # SIGKILL `probe train` 20 times
    python3 bench/reliability.py writers --trials 10 --out writers.json # two `probe train` on one --out
    python3 bench/reliability.py inputs --out inputs.json               # each corrupt file -> its message

``kills``: `probe train --checkpoint-every 1` (tiny model) is started, killed with SIGKILL at a
seeded random moment, resumed with plain ``--resume`` and killed again, ``--kills`` times; half
the kills come at any moment from the start of the process (imports included), half shortly
after it committed a checkpoint.  After each kill the newest complete checkpoint is looked up
as ``--resume`` does; at the end a last ``--resume`` finishes the run.  Reported: resumable
kills, warnings about torn checkpoints, temporary files left after the final resume.

``writers``: two `probe train` processes start together on the same ``--out``; reported: how
often exactly one ran and the other was refused, and whether the winner's log has one line per step.

``inputs``: every corrupt input of ``tests/data/attack_inputs.py`` through ``probe data check``.

    python3 bench/reliability.py flags --out flags.json           # absurd flags on every analysis
    python3 bench/reliability.py steps --out steps.json           # do analyses run the steps they record?
    python3 bench/reliability.py runfiles --out runfiles.json     # malformed run-folder files, every reader
    python3 bench/reliability.py report --out report.json         # 150 schema mutations of each result file

``flags``: each absurd value (``2**70`` steps, a million workers, a 100000x100000 input, a FIFO
as ``--image``) is given to its command in a subprocess with a time limit; the outcome is
``refused`` (exit 2, one line naming the flag, nothing written), ``internal error``, ``ran``
(exit 0) or ``timeout`` (still running at the limit: it did not refuse up front).

``steps``: ``gradients``, ``noise`` and ``collapse`` with more steps than one epoch holds (batch
1000 of the synthetic split's 2000 images: 2 steps an epoch); reported: steps asked, steps
recorded in the result JSON.

``report``: random schema mutations (``tests/report/mutations.py``) of about half of a full run's
JSON files per report, until each file had ``--per-file`` of them; every report (HTML and Markdown)
is checked against the contract: one line per malformed file naming it and its key, no section
failing, every read section shown, no raw HTML in the Markdown.

``runfiles``: a tiny trained run whose ``config.json`` (train section), checkpoint manifest or
``last`` pointer is replaced by a malformed value, read by ``eval``, ``predict``, ``train
--resume`` and the analyses' ``--checkpoint`` (in this process, through ``cli.main``); each
outcome is ``named`` (exit 2, one line naming the file), ``ran`` (exit 0) or ``internal error``.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from probe.io import write_json  # noqa: E402
from tests.training.conftest import TINY_FLAGS, probe_command, subprocess_env  # noqa: E402
from tests.training.crash import finish, kill_rounds, temporaries  # noqa: E402


def measure_kills(kills: int, seed: int, work: Path, anytime_share: float) -> dict:
    steps = 8 * kills + 40
    flags = [*TINY_FLAGS, "--dataset-length", "8", "--epochs", str(steps // 2), "--checkpoint-every", "1"]
    run = work / "victim"
    start = time.perf_counter()
    records = kill_rounds(run, flags, kills, random.Random(seed), anytime_share=anytime_share)
    done = finish(run, flags)
    metrics = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    table = Table(title=f"{kills} SIGKILLs of probe train --checkpoint-every 1, each resumed with --resume")
    for column in ("kill", "after (s)", "killed", "resume from step", "resumable", "left mid-write", "warning / error"):
        table.add_column(column)
    for r in records:
        table.add_row(
            str(r.round + 1),
            f"{r.delay_s:.3f}",
            str(r.killed),
            str(r.resume_step),
            str(r.resumable),
            ", ".join(r.temporaries_left)[:60],
            (r.warnings or r.error)[:80],
        )
    Console().print(table)
    summary = {
        "kills": kills,
        "seed": seed,
        "resumable": sum(r.resumable for r in records),
        "warnings": sum(bool(r.warnings) for r in records),
        "final_resume_exit": done.returncode,
        "interrupted_a_write": sum(bool(r.temporaries_left) for r in records),
        "anytime_share": anytime_share,
        "final_steps_logged": metrics == list(range(1, steps + 1)),
        "steps": steps,
        "temporaries_after_final_resume": [str(p) for p in temporaries(run)],
        "seconds": time.perf_counter() - start,
        "rounds": [vars(r) for r in records],
    }
    print(
        f"resumable: {summary['resumable']}/{kills} ({summary['interrupted_a_write']} kills interrupted a "
        f"write); final --resume exit {done.returncode}; log 1..{steps}: "
        f"{summary['final_steps_logged']}; temporary files left: {len(summary['temporaries_after_final_resume'])}"
    )
    return summary


def measure_writers(trials: int, work: Path) -> dict:
    flags = [*TINY_FLAGS, "--dataset-length", "8", "--epochs", "6"]
    rows = []
    for trial in range(trials):
        out = work / f"shared{trial}"
        procs = [
            subprocess.Popen(
                probe_command("train", *flags, "--seed", str(seed), "--out", str(out)),
                cwd=ROOT,
                env=subprocess_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for seed in (1, 2)
        ]
        results = [(p.wait(timeout=600), p.stderr.read().strip()) for p in procs]
        refused = [err for code, err in results if code == 2 and "another probe command is writing" in err]
        ran = [code for code, _ in results if code == 0]
        steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines() if line]
        rows.append(
            {
                "trial": trial + 1,
                "ran": len(ran),
                "refused": len(refused),
                "refusal": refused[:1],
                "log_one_line_per_step": steps == list(range(1, len(steps) + 1)),
            }
        )
    table = Table(title=f"two probe train processes on one --out, {trials} trials")
    for column in ("trial", "ran", "refused", "log 1..N", "refusal message"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r["trial"]),
            str(r["ran"]),
            str(r["refused"]),
            str(r["log_one_line_per_step"]),
            (r["refusal"][0] if r["refusal"] else "")[:110],
        )
    Console(width=200).print(table)
    exact = sum(r["ran"] == 1 and r["refused"] == 1 and r["log_one_line_per_step"] for r in rows)
    print(f"second writer refused in {exact}/{trials} trials")
    return {"trials": trials, "second_writer_refused": exact, "rows": rows}


def measure_inputs(work: Path) -> dict:
    from tests.data.attack_inputs import ATTACKS

    rows = []
    for index, (name, attack) in enumerate(ATTACKS.items()):
        root = attack.build(work / f"attack{index}")
        options = [x for k, v in attack.options.items() for x in ("--option", f"{k}={v}")]
        res = subprocess.run(
            probe_command("data", "check", attack.dataset, "--data-root", str(root), "--split", attack.split, *options),
            cwd=ROOT,
            env=subprocess_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        bad = [line.strip()[len("bad: ") :] for line in res.stdout.splitlines() if line.strip().startswith("bad: ")]
        error = [line for line in res.stderr.strip().splitlines() if line]
        message = bad[0] if bad else (error[0] if error else "")
        rows.append(
            {
                "input": name,
                "exit": res.returncode,
                "stderr_lines": len(error),
                "message": message.replace(str(work), "<tmp>"),
            }
        )
    table = Table(title="each corrupt input through `probe data check`")
    for column in ("input", "exit", "message"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["input"], str(r["exit"]), r["message"])
    Console(width=240).print(table)
    named = sum(r["exit"] == 2 and r["stderr_lines"] == 1 and bool(r["message"]) for r in rows)
    print(f"{named}/{len(rows)} corrupt inputs: exit 2, one error line, a message naming the file")
    return {"inputs": len(rows), "named": named, "rows": rows}


# -- flags: absurd values on every analysis ---------------------------------------------------------

BIG = str(2**70)
TINY_MODEL = ["--width", "0.0625", "--input-size", "32x32"]
FLAG_ATTACKS: list[tuple[tuple[str, ...], str]] = [
    (("gradients", "--model", "packnet_slim_b", *TINY_MODEL, "--steps", BIG), "--steps"),
    (("gradients", "--model", "packnet_slim_b", *TINY_MODEL, "--steps", str(10**12)), "--steps"),
    (("gradients", "--model", "packnet_slim_b", *TINY_MODEL, "--batch-size", BIG), "--batch-size"),
    (("gradients", "--model", "packnet_slim_b", "--width", "1e6"), "--width"),
    (("gradients", "--model", "packnet_slim_b", "--input-size", "100000x100000"), "--input-size"),
    (("gradients", "--model", "packnet_b", "--input-size", "16000x16000"), "--input-size"),
    (("noise", "--model", "packnet_slim_b", *TINY_MODEL, "--steps", BIG), "--steps"),
    (("noise", "--model", "packnet_slim_b", *TINY_MODEL, "--big-batch", BIG), "--big-batch"),
    (("noise", "--model", "packnet_slim_b", *TINY_MODEL, "--every", BIG), "--every"),
    (("collapse", "--model", "packnet_slim_b", *TINY_MODEL, "--steps", BIG), "--steps"),
    (("collapse", "--model", "packnet_slim_b", *TINY_MODEL, "--images", BIG), "--images"),
    (("collapse", "--model", "packnet_slim_b", *TINY_MODEL, "--every", BIG), "--every"),
    (("complexity", "--model", "packnet_slim_b", *TINY_MODEL, "--repeats", BIG), "--repeats"),
    (("complexity", "--model", "packnet_slim_b", *TINY_MODEL, "--warmup", BIG), "--warmup"),
    (("complexity", "--model", "packnet_slim_b", *TINY_MODEL, "--batch-size", BIG), "--batch-size"),
    (("complexity", "--model", "packnet_slim_b", "--width", "1e6"), "--width"),
    (("complexity", "--model", "packnet_slim_b", "--input-size", "100000x100000"), "--input-size"),
    (("complexity", "--model", "packnet_b", "--input-size", "16000x16000", "--batch-size", "64"), "--batch-size"),
    (("autoencoder", "--arch", "maxpool", "--levels", "1", "--steps", BIG), "--steps"),
    (("autoencoder", "--arch", "maxpool", "--levels", "1", "--batch-size", BIG), "--batch-size"),
    (("autoencoder", "--arch", "maxpool", "--levels", "1", "--train-images", BIG), "--train-images"),
    (("autoencoder", "--arch", "maxpool", "--levels", "1", "--eval-images", BIG), "--eval-images"),
    (("autoencoder", "--arch", "maxpool", "--levels", "1", "--width", "1e6"), "--width"),
    (("autoencoder", "--arch", "maxpool", "--levels", "1", "--input-size", "100000x100000"), "--input-size"),
    (("autoencoder", "--arch", "maxpool", "--levels", "1", "--lr", "inf"), "--lr"),
    (("attribution", "--model", "packnet_slim_b", *TINY_MODEL, "--steps", BIG), "--steps"),
    (("attribution", "--model", "packnet_slim_b", *TINY_MODEL, "--images", BIG), "--images"),
    (("attribution", "--model", "packnet_slim_b", "--width", "1e6"), "--width"),
    (("attribution", "--model", "packnet_slim_b", "--input-size", "100000x100000"), "--input-size"),
    (("attribution", "--model", "packnet_slim_b", *TINY_MODEL, "--image", "{fifo}"), "--image"),
    (("attribution", "--model", "packnet_slim_b", *TINY_MODEL, "--image", "/dev/zero"), "--image"),
    (("properties", "--examples", BIG), "--examples"),
    (("experiment", "seed-study", "--quick", "--workers", "1000000"), "--workers"),
    (("experiment", "seed-study", "--quick", "--max-steps", BIG), "--max-steps"),
    (("experiment", "seed-study", "--quick", "--batch-size", BIG), "--batch-size"),
    (("experiment", "seed-study", "--width", "1e6"), "--width"),
    (("experiment", "seed-study", "--input-size", "100000x100000"), "--input-size"),
    (("eval", "--checkpoint", "{run}", "--batch-size", BIG), "--batch-size"),
    (("eval", "--checkpoint", "{run}", "--workers", "1000000"), "--workers"),
    (("eval", "--checkpoint", "{run}", "--dataset-length", BIG), "--dataset-length"),
    (("eval", "--checkpoint", "{run}", "--input-size", "100000x100000"), "--input-size"),
    (("predict", "{fifo}", "--checkpoint", "{run}", "--input-size", "100000x100000"), "--input-size"),
    (("train", "--workers", "1000000"), "--workers"),
    (("data", "preview", "synthetic", "--count", BIG), "--count"),
]


def tiny_run(folder: Path) -> Path:
    """A one-step tiny `probe train` run (config.json + checkpoints/step_1), made in this process."""
    from probe.training import TrainConfig, train

    train(
        TrainConfig(
            model="packnet_slim_b",
            width=0.0625,
            input_size=(32, 32),
            dataset_length=2,
            batch_size=2,
            max_steps=1,
            device="cpu",
            workers=0,
            out=folder,
        )
    )
    return folder


def _outcome(code: int | None, err: str, flag: str, wrote: bool) -> str:
    lines = [line for line in err.strip().splitlines() if line]
    if code is None:
        return "timeout"
    if "internal error" in err or "Traceback" in err:
        return "internal error"
    if code == 0:
        return "ran"
    if code == 2 and len(lines) == 1 and flag in lines[0] and not wrote:
        return "refused"
    return f"exit {code}, {len(lines)} lines" + (", wrote files" if wrote else "")


def measure_flags(work: Path, timeout: float) -> dict:
    import os

    fifo = work / "pipe.png"
    os.mkfifo(fifo)
    run = tiny_run(work / "run")
    rows = []
    for index, (args, flag) in enumerate(FLAG_ATTACKS):
        out = work / f"out{index}"
        out.mkdir()
        target = ["--out", str(out / "p.png")] if args[:2] == ("data", "preview") else ["--out", str(out)]
        argv = [a.format(fifo=fifo, run=run) for a in args] + target
        start = time.perf_counter()
        proc = subprocess.Popen(
            probe_command(*argv),
            cwd=ROOT,
            env=subprocess_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            _, err = proc.communicate(timeout=timeout)
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            _, err = proc.communicate()
            code = None
        seconds = time.perf_counter() - start
        wrote = any(out.iterdir())
        line = next((x for x in err.strip().splitlines()[::-1] if x), "")
        rows.append(
            {
                "command": " ".join(args).replace(str(work), "<tmp>"),
                "flag": flag,
                "outcome": _outcome(code, err, flag, wrote),
                "seconds": round(seconds, 1),
                "message": line.replace(str(work), "<tmp>")[:200],
            }
        )
        print(f"{rows[-1]['outcome']:>16}  {seconds:5.1f}s  {rows[-1]['command'][:90]}  {rows[-1]['message'][:120]}")
    refused = sum(r["outcome"] == "refused" for r in rows)
    print(f"{refused}/{len(rows)} absurd flags refused up front with one line naming the flag")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    return {"attacks": len(rows), "refused": refused, "outcomes": counts, "timeout_s": timeout, "rows": rows}


# -- steps: analyses that train across epochs ------------------------------------------------------


def measure_steps(work: Path) -> dict:
    """Steps asked of gradients / noise / collapse beyond one epoch, and the steps their JSON records."""
    import json as json_

    rows = []
    base = ["--model", "packnet_slim_b", "--width", "0.0625", "--input-size", "16x16", "--device", "cpu"]
    cases = [
        ("gradients", ["--batch-size", "1000", "--steps", "3"], lambda d: len(d["models"][0]["steps"])),
        (
            "collapse",
            ["--batch-size", "1000", "--steps", "3", "--every", "1", "--images", "2"],
            lambda d: d["models"][0]["history"][-1]["step"],
        ),
        (
            "noise",
            ["--batch-size", "1000", "--steps", "3", "--small-batch", "1", "--big-batch", "2"],
            lambda d: len(d["models"][0]["per_step_loss"]["step"]),
        ),
    ]
    for command, flags, ran in cases:
        out = work / command
        res = subprocess.run(
            probe_command(command, *base, *flags, "--out", str(out)),
            cwd=ROOT,
            env=subprocess_env(),
            capture_output=True,
            text=True,
            timeout=1800,
        )
        recorded = None
        if res.returncode == 0:
            doc = json_.loads((out / f"{command}.json").read_text())
            recorded = {"steps": doc["config"].get("steps"), "ran": ran(doc)}
        err = next((x for x in res.stderr.strip().splitlines()[::-1] if x), "")
        rows.append(
            {
                "command": f"{command} {' '.join(flags)}",
                "exit": res.returncode,
                "asked": 3,
                "recorded": recorded,
                "message": err[:200],
            }
        )
        print(rows[-1])
    exact = sum(r["recorded"] is not None and r["recorded"]["ran"] == 3 for r in rows)
    print(f"{exact}/{len(rows)} analyses ran the 3 steps asked (2 steps per epoch)")
    return {"exact": exact, "rows": rows}


# -- runfiles: malformed files inside a run folder -------------------------------------------------


def _set(key: str, value: object):
    def mutate(config: dict) -> dict:
        config["train"]["config"][key] = value
        return config

    return mutate


def _whole(value: str):
    return lambda config: value


def config_mutations(work: Path) -> dict[str, object]:
    """name -> a function of the good config.json's dict (the new contents) or a string (the new text)."""
    folder = work / "a_folder"
    folder.mkdir(exist_ok=True)
    return {
        "file []": _whole("[]"),
        "file null": _whole("null"),
        "file string": _whole('"x"'),
        "file {}": _whole("{}"),
        "file not JSON": _whole("{garbage"),
        "file nested 100k deep": _whole("[" * 100_000 + "]" * 100_000),
        "train []": lambda c: {**c, "train": []},
        "train.config []": lambda c: {**c, "train": {**c["train"], "config": []}},
        "train.config null": lambda c: {**c, "train": {**c["train"], "config": None}},
        "width 5001 digits": _whole('{"train": {"config": {"model": "packnet_slim_b", "width": 1' + "0" * 5000 + "}}}"),
        "model 5": _set("model", 5),
        "model null": _set("model", None),
        "model []": _set("model", []),
        "model nope": _set("model", "nope"),
        "model posenet": _set("model", "posenet"),
        "width string": _set("width", "big"),
        "width null": _set("width", None),
        "width -1": _set("width", -1),
        "width 1e6": _set("width", 1e6),
        "width true": _set("width", True),
        "width {}": _set("width", {}),
        "model_options []": _set("model_options", []),
        "model_options string": _set("model_options", "x"),
        "model_options null": _set("model_options", None),
        "model_options skips=maybe": _set("model_options", {"skips": "maybe"}),
        "model_options activation=5": _set("model_options", {"activation": 5}),
        "model_options min_depth=abc": _set("model_options", {"min_depth": "abc"}),
        "model_options min_depth=[]": _set("model_options", {"min_depth": []}),
        "model_options bogus=1": _set("model_options", {"bogus": 1}),
        "model_options weights=<folder>": _set("model_options", {"weights": str(folder)}),
        "model_options weights=5": _set("model_options", {"weights": 5}),
        "model_options depth_conv=[]": _set("model_options", {"depth_conv": []}),
        "input_size string": _set("input_size", "x"),
        "input_size [0,0]": _set("input_size", [0, 0]),
        "input_size [1,2,3]": _set("input_size", [1, 2, 3]),
        "input_size 100000^2": _set("input_size", [100000, 100000]),
        "input_size strings": _set("input_size", ["a", "b"]),
        "dataset 5": _set("dataset", 5),
        "dataset nope": _set("dataset", "nope"),
        "dataset null": _set("dataset", None),
        "dataset_options []": _set("dataset_options", []),
        "dataset_length string": _set("dataset_length", "x"),
        "dataset_length -5": _set("dataset_length", -5),
        "batch_size string": _set("batch_size", "x"),
        "loss 5": _set("loss", 5),
        "epochs string": _set("epochs", "x"),
        "seed string": _set("seed", "x"),
        "out 5": _set("out", 5),
        "unknown key": _set("bogus", 1),
    }


def checkpoint_mutations() -> dict[str, tuple[str, str | None]]:
    """name -> (file inside checkpoints/, new text or None to delete it)."""
    return {
        "manifest []": ("step_1/manifest.json", "[]"),
        "manifest step string": ("step_1/manifest.json", '{"format": 1, "step": "x", "files": {}}'),
        "manifest files []": ("step_1/manifest.json", '{"format": 1, "step": 1, "files": []}'),
        "manifest nested": ("step_1/manifest.json", "[" * 100_000 + "]" * 100_000),
        "manifest deleted": ("step_1/manifest.json", None),
        "last ../../etc": ("last", "../../etc\n"),
        "last step_999": ("last", "step_999\n"),
    }


def runfile_commands(run: Path, out: Path, image: Path) -> dict[str, list[str]]:
    tiny = [
        "--model",
        "packnet_slim_b",
        "--width",
        "0.0625",
        "--input-size",
        "32x32",
        "--dataset-length",
        "2",
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "--workers",
        "0",
    ]
    return {
        "eval": ["eval", "--checkpoint", str(run), "--dataset-length", "2", "--batch-size", "2", "--out", str(out)],
        "predict": ["predict", str(image), "--checkpoint", str(run), "--out", str(out)],
        "train --resume": ["train", "--resume", *tiny, "--max-steps", "2", "--out", str(run)],
        "gradients --checkpoint": ["gradients", "--checkpoint", str(run), "--steps", "1", "--out", str(out)],
        "collapse --checkpoint": ["collapse", "--checkpoint", str(run), "--images", "1", "--out", str(out)],
        "attribution --checkpoint": [
            "attribution",
            "--checkpoint",
            str(run),
            "--images",
            "1",
            "--steps",
            "1",
            "--input-size",
            "32x32",
            "--out",
            str(out),
        ],
    }


def run_inprocess(argv: list[str]) -> tuple[int, str]:
    """``probe ARGV`` through ``cli.main`` in this process: (exit code, stderr)."""
    import contextlib
    import io

    import cli

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            cli.main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, err.getvalue()


def measure_runfiles(work: Path) -> dict:
    import json as json_
    import shutil

    import numpy as np

    good = tiny_run(work / "good")
    image = work / "room.png"
    from PIL import Image

    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(image)
    good_config = json_.loads((good / "config.json").read_text())
    cases: list[tuple[str, object]] = [(name, m) for name, m in config_mutations(work).items()]
    cases += [(name, m) for name, m in checkpoint_mutations().items()]
    rows = []
    for index, (name, mutation) in enumerate(cases):
        for command in runfile_commands(good, work, image):
            run = work / f"case{index}-{command.split()[0]}"
            shutil.copytree(good, run)
            if isinstance(mutation, tuple):
                target = run / "checkpoints" / mutation[0]
                if mutation[1] is None:
                    target.unlink()
                else:
                    target.write_text(mutation[1])
                edited = "checkpoints/" + mutation[0]
            else:
                new = mutation(json_.loads(json_.dumps(good_config)))  # type: ignore[operator]
                (run / "config.json").write_text(new if isinstance(new, str) else json_.dumps(new))
                edited = "config.json"
            out = work / f"out{index}-{command.split()[0]}"
            argv = runfile_commands(run, out, image)[command]
            code, err = run_inprocess(argv)
            lines = [line for line in err.strip().splitlines() if line and not line.startswith("warning")]
            if "internal error" in err or "Traceback" in err:
                outcome = "internal error"
            elif code == 0:
                outcome = "ran"
            elif code == 2 and len(lines) == 1 and (edited.split("/")[-1] in lines[0] or str(run) in lines[0]):
                outcome = "named"
            else:
                outcome = f"exit {code}, {len(lines)} lines"
            rows.append(
                {
                    "file": edited,
                    "mutation": name,
                    "command": command,
                    "outcome": outcome,
                    "message": (lines[-1] if lines else "").replace(str(work), "<tmp>")[:220],
                }
            )
            if outcome not in ("named", "ran"):
                print(f"{outcome:>16}  {name:32s} {command:26s} {rows[-1]['message'][:150]}")
            shutil.rmtree(run, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    print(f"{len(rows)} (mutation, command) pairs: {counts}")
    return {"pairs": len(rows), "outcomes": counts, "rows": rows}


# -- report: random schema mutations of every result file ---------------------------------------


def measure_report(work: Path, per_file: int, seed: int) -> dict:
    """Mutate about half of a full run's JSON files per round until each file had ``per_file`` mutations."""
    import random
    import shutil

    import tests.conftest  # noqa: F401  (Hypothesis profile, thread limits)
    from tests.report import fixtures as fx
    from tests.report import mutations as mx

    template = fx.full_run(work / "template")
    names = sorted(str(p.relative_to(template)) for p in template.rglob("*.json"))
    counts = {name: 0 for name in names}
    problems: dict[str, list[str]] = {name: [] for name in names}
    other: list[str] = []
    crashes = 0
    rng = random.Random(seed)
    rounds = 0
    start = time.perf_counter()
    while min(counts.values()) < per_file:
        run = work / f"round{rounds}"
        shutil.copytree(template, run)
        chosen = mx.random_mutations(sorted(run.rglob("*.json")), rng)
        for mutation in chosen:
            mx.apply(mutation)
            counts[str(mutation.file.relative_to(run))] += 1
        try:
            found = mx.report_of(run, chosen, work / f"figs{rounds}").problems
        except Exception as exc:  # the whole report failed (what probe's CLI prints as "internal error")
            crashes += 1
            found = [f"the report crashed: {type(exc).__name__}: {str(exc)[:150]}"]
        for problem in found:
            owners = [str(m.file.relative_to(run)) for m in chosen if m.describe() in problem]
            owners = owners or [str(m.file.relative_to(run)) for m in chosen if str(m.file) in problem]
            line = problem.replace(str(work), "<tmp>")[:300]
            (problems[owners[0]] if len(owners) == 1 else other).append(line)
        shutil.rmtree(run)
        shutil.rmtree(work / f"figs{rounds}", ignore_errors=True)
        rounds += 1
        if rounds % 25 == 0:
            print(
                f"{rounds} reports, fewest mutations of one file {min(counts.values())}, problems "
                f"{sum(map(len, problems.values())) + len(other)}"
            )
    table = Table(title=f"random schema mutations: {rounds} reports, about half the files mutated in each")
    for column in ("file", "mutations", "problems", "first problem"):
        table.add_column(column)
    for name in names:
        table.add_row(name, str(counts[name]), str(len(problems[name])), (problems[name] or [""])[0][:120])
    Console(width=220).print(table)
    total = sum(map(len, problems.values())) + len(other)
    print(
        f"{total} problems in {rounds} reports ({sum(counts.values())} mutations, {crashes} reports crashed); "
        f"not attributed to one file: {other[:3]}"
    )
    return {
        "rounds": rounds,
        "mutations": counts,
        "problems": problems,
        "other": other,
        "total_problems": total,
        "crashed_reports": crashes,
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=["kills", "writers", "inputs", "flags", "steps", "runfiles", "report"])
    parser.add_argument("--per-file", type=int, default=150, help="report: mutations of each result file")
    parser.add_argument("--timeout", type=float, default=30.0, help="flags: seconds before a command counts as running")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument(
        "--anytime-share",
        type=float,
        default=0.5,
        help="share of kills at any moment from process start (the rest: just after a checkpoint)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the measurements as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="probe-reliability-") as tmp:
        work = Path(tmp)
        result = {
            "kills": lambda: measure_kills(args.kills, args.seed, work, args.anytime_share),
            "writers": lambda: measure_writers(args.trials, work),
            "inputs": lambda: measure_inputs(work),
            "flags": lambda: measure_flags(work, args.timeout),
            "steps": lambda: measure_steps(work),
            "runfiles": lambda: measure_runfiles(work),
            "report": lambda: measure_report(work, args.per_file, args.seed),
        }[args.scenario]()
    if args.out is not None:
        write_json(args.out, {"scenario": args.scenario, **result})


if __name__ == "__main__":
    main()
