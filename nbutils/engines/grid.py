"""The grid: time every engine at every (batch, seq), and turn its rows into results-database rows."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nbutils.core.errors import NbUtilsError
from nbutils.engines.runtimes import Engine, TorchEngine


@dataclass
class GridResult:
    """What a grid produced: timed rows, engines skipped because this machine lacks something, and failures.

    A *skip* (no GPU, no TensorRT) is a fact about the machine and is reported; a *failure* (an engine the user
    asked for that could not be built or run here) is an error of the run: :meth:`raise_failures` fails it.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)

    def __iter__(self) -> Any:  # ``rows, skipped = run_grid(...)`` keeps working
        return iter((self.rows, self.skipped))

    def raise_failures(self) -> None:
        """Raise one :class:`NbUtilsError` naming every failed engine with its full reason (nothing is cut)."""
        if self.failed:
            lines = "\n".join(f"  {f['engine']}: {f['reason']}" for f in self.failed)
            raise NbUtilsError(f"{len(self.failed)} requested engine(s) failed:\n{lines}",
                               "fix the cause above, or leave the engine out of the grid (engines=[...] / --engines)")
        if not self.rows:
            raise NbUtilsError("nothing was timed: every requested engine was skipped on this machine "
                               f"({'; '.join(s['engine'] + ': ' + s['reason'] for s in self.skipped)})",
                               "choose engines this machine can run (see python -m nbutils bench --help)")


def run_grid(engines: Sequence[Engine], batch_sizes: Sequence[int], seq_lengths: Sequence[int], *, warmup: int,
             iterations: int, progress: bool = True) -> GridResult:
    """Time every available engine at every (batch, seq).

    Unavailable engines are skipped with the reason; an engine that fails to build or run is recorded as a
    failure with its full message and the grid goes on (what was measured is kept).
    """
    from nbutils.core.progress import bar as tqdm

    out = GridResult()
    runnable = []
    for e in engines:
        reason = e.unavailable()
        (out.skipped.append({"engine": e.spec.name, "reason": reason}) if reason else runnable.append(e))
    from nbutils.engines.memory import MemoryMeter

    bar = tqdm(total=len(runnable) * len(batch_sizes) * len(seq_lengths), desc="benchmark", disable=not progress)
    for e in runnable:
        meter = MemoryMeter(e.device, torch_allocator=isinstance(e, TorchEngine)).start()
        try:
            e.setup()
        except Exception as exc:  # noqa: BLE001 - reported as a failure of the run, the grid goes on
            meter.stop()
            out.failed.append({"engine": e.spec.name, "reason": f"setup failed: {type(exc).__name__}: {exc}"})
            bar.update(len(batch_sizes) * len(seq_lengths))
            continue
        for seq in seq_lengths:
            for b in batch_sizes:
                bar.set_postfix_str(f"{e.spec.name} b{b} s{seq}")
                e.cell_extra = {}
                try:
                    stats = e.time(b, seq, warmup=warmup, iterations=iterations)
                except Exception as exc:  # noqa: BLE001
                    out.failed.append({"engine": f"{e.spec.name} b{b} s{seq}",
                                       "reason": f"run failed: {type(exc).__name__}: {exc}"})
                else:
                    out.rows.append({"engine_name": e.spec.name, "engine": e.spec.name, "precision": e.spec.precision,
                                     "recipe": e.recipe, "seq": seq, **stats.as_dict(), "peak_memory_mb": meter.peak_mb(),
                                     "extra": {**e.extra, **e.cell_extra, "memory_method": meter.method}})
                bar.update(1)
        meter.stop()
        e.release()  # its threads must not compete with the next engine's
    bar.close()
    return out


def short(name: str) -> str:
    """A compact label for charts."""
    return re.sub(r"^torch-", "", name)


def measurements(rows: Sequence[dict[str, Any]], *, untrained: bool) -> list[Any]:
    """Grid rows -> results-database rows (five latency/throughput figures per row, provenance in ``extra``)."""
    from nbutils.store import figures

    out = []
    for r in rows:
        extra = {**r["extra"], "iterations": r["iterations"], "untrained": untrained,
                 "timing": "CUDA events per call, inputs on device (copies excluded)" if r["extra"].get("device") == "cuda"
                 else "wall clock per call"}
        out += figures.latency(r, recipe=r["recipe"], engine=r["engine"], precision=r["precision"], batch=r["batch"],
                               seq=r["seq"], extra=extra)
    return out


def format_rows(rows: Sequence[dict[str, Any]]) -> str:
    """Plain-text table of grid rows (no pandas needed: the GPU machine prints this)."""
    head = (f"{'engine':34} {'batch':>5} {'seq':>4} {'mean':>9} {'p50':>9} {'p95':>9} {'p99':>9} {'seq/s':>10} "
            f"{'peak MB':>9}")
    lines = [head, "-" * len(head)]
    for r in sorted(rows, key=lambda r: (r["seq"], r["batch"], r["p50_ms"])):
        lines.append(f"{r['engine_name']:34} {r['batch']:>5} {r['seq']:>4} {r['mean_ms']:>9.3f} {r['p50_ms']:>9.3f} "
                     f"{r['p95_ms']:>9.3f} {r['p99_ms']:>9.3f} {r['throughput_seq_s']:>10.1f} "
                     f"{r.get('peak_memory_mb', float('nan')):>9.1f}")
    return "\n".join(lines)
