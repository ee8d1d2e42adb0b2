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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=["kills", "writers", "inputs"])
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
        }[args.scenario]()
    if args.out is not None:
        write_json(args.out, {"scenario": args.scenario, **result})


if __name__ == "__main__":
    main()
