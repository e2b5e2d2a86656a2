"""One summary of every benchmark → benchmarks/results/summary.md.

For each benchmark the newest results file (by the date in its name,
``benchmarks/results/<name>-<YYYY-MM-DD>.json``) gives one table row per figure: the measured
value, its goal, whether the goal is met (yes / no / — where there is no numeric goal or the
figure was not measured) and the source file. The gas table is read from ``benchmarks/gas.md``,
which ``benchmarks/gas.py`` writes instead of a JSON file. A benchmark without a results file is
listed as "not run yet"; nothing is ever filled in. Machine and date come from each source,
since they may differ (shared machines, different days).

    python benchmarks/summary.py [--results DIR] [--gas-md FILE] [--out FILE]

`make bench` runs it after every benchmark; alone it regenerates the summary from the results
already there. It runs no benchmark. Exit status 1 when a results file could not be read (the
summary is still written, with the error in that benchmark's section).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCHMARKS_DIR = Path(__file__).resolve().parent
RESULTS = BENCHMARKS_DIR / "results"
GAS_MD = BENCHMARKS_DIR / "gas.md"
NOT_RUN = "not run yet"
NA = "—"

Doc = Mapping[str, Any]


@dataclass(frozen=True)
class Row:
    """One figure: what was measured, against which goal, and whether the goal is met."""

    figure: str
    measured: str
    goal: str = "report"
    met: str = NA


@dataclass
class Section:
    """One benchmark's rows and where they come from."""

    name: str
    title: str
    source: Path | None = None
    date: str = NA
    machine: str = NA
    rows: list[Row] = field(default_factory=list)
    error: str | None = None


def met(ok: bool) -> str:
    return "yes" if ok else "no"


def num(value: Any) -> float:
    """A JSON number as float; anything else is a schema error (caught per section)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


# --------------------------------------------------------------------------- sources


def newest_result(results: Path, name: str) -> Path | None:
    """``<name>-<YYYY-MM-DD>.json`` with the latest date in its name, or None."""
    pattern = re.compile(rf"^{re.escape(name)}-(\d{{4}}-\d{{2}}-\d{{2}})\.json$")
    dated = [
        (match.group(1), path)
        for path in results.glob(f"{name}-*.json")
        if (match := pattern.match(path.name))
    ]
    return max(dated)[1] if dated else None


def name_date(path: Path) -> str:
    match = re.search(r"(\d{4}-\d{2}-\d{2})", path.name)
    return match.group(1) if match else NA


def describe_machine(m: Mapping[str, Any]) -> str:
    """The machine block of any benchmark (the scripts spell some keys differently)."""
    parts: list[str] = []
    if m.get("cpu"):
        parts.append(str(m["cpu"]))
    cores = m.get("cores", m.get("cpus"))
    if cores is not None:
        parts.append(f"{cores} cores")
    if "memory_gib" in m or "memoryGiB" in m:
        parts.append(f"{m.get('memory_gib', m.get('memoryGiB'))} GiB")
    elif "memory_mb" in m:
        parts.append(f"{num(m['memory_mb']) / 1024:.1f} GiB")
    if m.get("python"):
        parts.append(f"Python {m['python']}")
    if m.get("torch"):
        threads = f" ({m['torch_threads']} threads)" if m.get("torch_threads") else ""
        parts.append(f"torch {m['torch']}{threads}")
    load = m.get("load_average", m.get("loadAverage"))
    if isinstance(load, Sequence) and not isinstance(load, str):
        parts.append("load " + " / ".join(f"{num(x):.2f}" for x in load))
    if m.get("platform"):
        parts.append(str(m["platform"]))
    return ", ".join(parts) or NA


def document_date(doc: Doc, path: Path) -> str:
    machine = doc.get("machine")
    date = doc.get("date") or (machine.get("date") if isinstance(machine, Mapping) else None)
    return str(date) if date else name_date(path)


# --------------------------------------------------------------------------- storage

STORAGE_PHASES = {
    "add": ("verified add (IpfsClient.add_file + CID check)", "plain_add"),
    "get": ("verified get (IpfsClient.get_file, CID-verified)", "plain_cat"),
    "publish_enc": ("encrypted publish (sha256 + encrypt + add)", "plain_add"),
    "fetch_enc": ("encrypted fetch (verify + decrypt + sha256)", "plain_cat"),
}


def storage_rows(doc: Doc) -> list[Row]:
    size_gb = num(doc["file_bytes"]) / 1e9
    peak = num(doc["peak_rss_mb_oml"])
    full_size = size_gb >= 2.0
    rows = [
        Row(
            f"peak RSS streaming a {size_gb:.2f} GB file (verified/encrypted phases)"
            + ("" if full_size else "; smaller than the goal's 2 GB"),
            f"{peak:.0f} MB",
            "< 300 MB for 2 GB",
            met(peak < 300) if full_size else NA,
        )
    ]
    phases: Mapping[str, Any] = doc["phases"]
    for phase, (label, plain) in STORAGE_PHASES.items():
        if phase not in phases:
            continue
        ours = num(phases[phase]["mb_per_s"])
        if plain in phases:
            base = num(phases[plain]["mb_per_s"])
            what = plain.removeprefix("plain_")
            vs = f" ({ours / base:.2f}× plain ipfshttpclient {what}: {base:.1f} MB/s)"
        else:
            vs = ""
        rows.append(Row(f"{label} throughput", f"{ours:.1f} MB/s{vs}", "report vs plain"))
    return rows


# --------------------------------------------------------------------------- host


def host_rows(doc: Doc) -> list[Row]:
    costs: Mapping[str, Any] = doc["receipt_cost"]
    per_call = num(costs["sign_and_commit_fsync_ms"])
    rows = [
        Row(
            "receipt signing + commit (fsync) overhead per call",
            f"{per_call:.3f} ms",
            "< 2 ms",
            met(per_call < 2),
        )
    ]
    labels = {
        "sign_ms": "receipt signing alone per call",
        "sign_and_commit_fsync_grouped8_ms_per_call": "signing + commit, fsync grouped by 8",
        "sign_and_commit_no_fsync_ms": "signing + commit without fsync",
    }
    for key, label in labels.items():
        if key in costs:
            rows.append(Row(label, f"{num(costs[key]):.3f} ms"))
    medians: Mapping[str, Any] = doc["median_of_rounds"]
    on, off = medians["on"], medians["off"]
    rows.append(
        Row(
            "requests/s with receipts + metering (vs without)",
            f"{num(on['requests_per_s']):.1f} vs {num(off['requests_per_s']):.1f}",
        )
    )
    rows.append(
        Row(
            "p50 / p99 latency with receipts + metering (vs without)",
            f"{num(on['p50_ms']):.0f} / {num(on['p99_ms']):.0f} ms vs "
            f"{num(off['p50_ms']):.0f} / {num(off['p99_ms']):.0f} ms",
        )
    )
    cost = num(doc["throughput_cost_pct"])
    rows.append(
        Row("throughput cost of receipts + metering", f"{cost:+.1f}%", "< 5%", met(cost < 5))
    )
    return rows


# --------------------------------------------------------------------------- oracle

ORACLE_MODELS = {"tiny": "tiny model", "smollm2": "SmolLM2-135M"}
ORACLE_STEPS = ("fetch", "fingerprint", "verify", "encrypt", "upload", "deliver")


def oracle_rows(doc: Doc) -> list[Row]:
    runs = {str(run["model"]): run for run in doc["runs"]}
    rows: list[Row] = []
    for model in [*ORACLE_MODELS, *(m for m in runs if m not in ORACLE_MODELS)]:
        label = ORACLE_MODELS.get(model, model)
        run = runs.get(model)
        if run is None:
            rows.append(Row(f"AccessRequested→CopyDelivered, {label}", NOT_RUN))
            continue
        rows.append(
            Row(
                f"AccessRequested→CopyDelivered, {label} ({run['model_mb']} MB, "
                f"{run['fingerprints']} fingerprints, recall {run.get('recall')})",
                f"{num(run['latency_s']):.1f} s",
            )
        )
        steps: Mapping[str, Any] = run["steps_s"]
        for step in [*ORACLE_STEPS, *(s for s in steps if s not in ORACLE_STEPS)]:
            value = steps.get(step)
            rows.append(
                Row(
                    f"{label}: step {step}",
                    NA + " (not recorded)" if value is None else f"{num(value):.2f} s",
                )
            )
    return rows


# --------------------------------------------------------------------------- prover


def prover_rows(doc: Doc) -> list[Row]:
    rows = [
        Row(
            f"probes/s against a local host (tiny model, max_tokens {p['maxTokens']}, "
            f"{p['probes']} probes)",
            f"{num(p['probesPerSecond']):.1f} probes/s (p50 {p['latencyP50ms']} ms, "
            f"p99 {p['latencyP99ms']} ms)",
        )
        for p in doc["probes"]
    ]
    leak = doc.get("leak")
    if not leak:
        rows.append(Row("time from leak to slash on Anvil (DEV windows)", NOT_RUN + " (skipped)"))
        rows.append(Row("false-positive probability of each accusation", NOT_RUN, "≤ 1e-9"))
        return rows
    windows: Mapping[str, Any] = leak["windows"]
    seconds = leak["leakToSlashSeconds"]
    rows.append(
        Row(
            f"time from leak to slash on Anvil (DEV windows: liveness {windows['liveness']} s; "
            f"a block every {leak['blockTimeSeconds']} s)",
            "no slash within the run" if seconds is None else f"{num(seconds):.1f} s",
            "report",
            "no" if seconds is None else NA,
        )
    )
    for a in leak["accusations"]:
        fpp = num(a["falsePositiveProbability"])
        rows.append(
            Row(
                f"false-positive probability, accusation of copy {a['copyId']} "
                f"({a['matched']}/{a['queried']} keys matched)",
                f"{fpp:.2e} (family-wise over {a['copiesTested']} copies: "
                f"{num(a['familyFalsePositiveBound']):.2e})",
                "≤ 1e-9",
                met(fpp <= 1e-9),
            )
        )
    if not leak["accusations"]:
        rows.append(Row("false-positive probability of each accusation", "no accusation made"))
    control = leak.get("control")
    if control:
        accused = sum(bool(d.get("accused")) for d in control["decisions"])
        rows.append(
            Row(
                "control: unfingerprinted base model, keys matched by chance",
                f"{control['keysMatched']}/{control['keysAsked']} keys, {accused} accusations",
                "0 accusations",
                met(accused == 0),
            )
        )
    return rows


# --------------------------------------------------------------------------- fingerprint

BASELINE = "naive-full-ft"


def _side(ours: Any, baseline: Any, fmt: Callable[[Any], str]) -> str:
    text = fmt(ours)
    return text if baseline is None else f"{text} (naive: {fmt(baseline)})"


def _retention(run: Mapping[str, Any]) -> list[float]:
    robust: Mapping[str, Any] = run.get("robustness") or {}
    plain = num(robust.get("plain", run["recall"]))
    wrapped = [num(v) for k, v in robust.items() if k.startswith("wrapper:")]
    return [w / plain if plain else 0.0 for w in wrapped]


def fingerprint_rows(doc: Doc) -> list[Row]:
    by_n: dict[int, dict[str, Mapping[str, Any]]] = {}
    for run in doc["runs"]:
        by_n.setdefault(int(run["num"]), {})[str(run["method"])] = run
    cores = doc["machine"].get("cores", doc["machine"].get("cpus"))
    passing = [n for n, r in by_n.items() if "ours" in r and num(r["ours"]["recall"]) >= 0.99]
    largest = max(by_n) if by_n else 0
    rows = [
        Row(
            "fingerprints embedded at ≥ 99% recall (ours, largest N)",
            str(max(passing)) if passing else f"none (largest N run: {largest})",
            "≥ 1024",
            met(bool(passing) and max(passing) >= 1024),
        )
    ]
    for n in sorted(by_n):
        ours, base = by_n[n].get("ours"), by_n[n].get(BASELINE)
        if ours is None:
            rows.append(Row(f"ours, N={n}", NOT_RUN + " (only the naive baseline)"))
            continue
        b = base or {}
        recall = num(ours["recall"])
        rows.append(
            Row(
                f"recall, N={n}",
                _side(recall, b.get("recall"), lambda x: f"{num(x):.3f}"),
                "≥ 0.99",
                met(recall >= 0.99),
            )
        )
        change = num(ours["perplexity_change"])
        rows.append(
            Row(
                f"perplexity increase, N={n}",
                _side(change, b.get("perplexity_change"), lambda x: f"{100 * num(x):+.1f}%"),
                "≤ 3%",
                met(change <= 0.03),
            )
        )
        spf = num(ours["seconds_per_fingerprint"])
        # fewer cores: a pass is a pass; more cores: a miss is a miss; else not comparable
        comparable = isinstance(cores, int) and (
            cores == 2 or (cores < 2 and spf <= 0.5) or (cores > 2 and spf > 0.5)
        )
        rows.append(
            Row(
                f"seconds per fingerprint, N={n}, on {cores} cores",
                _side(spf, b.get("seconds_per_fingerprint"), lambda x: f"{num(x):.3f} s"),
                "≤ 0.5 s on 2 cores",
                met(spf <= 0.5) if comparable else NA,
            )
        )
        if "base_model_matches" in ours:
            matches = ours["base_model_matches"]
            rows.append(
                Row(
                    f"base model (unfingerprinted) matching the keys, N={n}",
                    f"{matches['matched']}/{matches['queried']}",
                )
            )
        retention = _retention(ours)
        if retention:
            mean = statistics.fmean(retention)
            naive = _retention(b) if b.get("robustness") else []
            rows.append(
                Row(
                    f"retention under {len(retention)} system prompts (mean of recall "
                    f"with / without), N={n}",
                    _side(mean, statistics.fmean(naive) if naive else None, "{:.0%}".format),
                    "≥ 94%",
                    met(mean >= 0.94),
                )
            )
            rows.append(Row(f"worst single system prompt, N={n}", f"{min(retention):.0%}"))
        robust: Mapping[str, Any] = ours.get("robustness") or {}
        base_robust: Mapping[str, Any] = b.get("robustness") or {}
        for condition, value in robust.items():
            if condition.startswith("wrapper:") or condition == "plain":
                continue
            rows.append(
                Row(
                    f"recall under {condition}, N={n}",
                    _side(value, base_robust.get(condition), lambda x: f"{num(x):.2f}"),
                )
            )
    return rows


# --------------------------------------------------------------------------- gas

GAS_ROW = re.compile(r"^\|\s*(?P<name>[^|]+?)\s*\|\s*(?P<gas>[\d,]+)\s*\|")
GAS_HEADER = re.compile(r"on (?P<date>\d{4}-\d{2}-\d{2}) \((?P<machine>[^)]*)\)")


def gas_table(text: str) -> dict[str, int]:
    return {
        m.group("name"): int(m.group("gas").replace(",", ""))
        for line in text.splitlines()
        if (m := GAS_ROW.match(line.strip()))
    }


def gas_rows(table: Mapping[str, int]) -> list[Row]:
    d0 = table["reportUsage (depth 0, steady state)"]
    d8 = table["reportUsage (depth 8, steady state)"]
    diff = (d8 - d0) / d0 * 100
    rows = [
        Row("reportUsage gas, depth 0 (steady state)", f"{d0:,}", "< 80,000", met(d0 < 80_000)),
        Row(
            "reportUsage gas, depth 8 / 32 ancestors (steady state)",
            f"{d8:,}",
            "< 80,000",
            met(d8 < 80_000),
        ),
        Row(
            "reportUsage depth 8 vs depth 0",
            f"{diff:+.2f}%",
            "constant in depth (within 5%)",
            met(abs(diff) <= 5),
        ),
    ]
    claim = next((g for name, g in table.items() if name.startswith("claim (recipient alr")), None)
    if claim is not None:
        rows.append(
            Row(
                "claim gas (recipient already holds the token)",
                f"{claim:,}",
                "< 60,000",
                met(claim < 60_000),
            )
        )
    return rows


def gas_section(gas_md: Path) -> Section:
    section = Section("gas", "Gas (benchmarks/gas.py)")
    if not gas_md.is_file():
        section.rows = [Row("reportUsage gas at lineage depth 0 and 8", NOT_RUN)]
        return section
    section.source = gas_md
    text = gas_md.read_text()
    header = GAS_HEADER.search(text)
    if header:
        section.date, section.machine = header.group("date"), header.group("machine")
    try:
        section.rows = gas_rows(gas_table(text))
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        section.error = f"{type(exc).__name__}: {exc}"
        section.rows = [Row("reportUsage gas at lineage depth 0 and 8", "unreadable")]
    return section


# --------------------------------------------------------------------------- assembly


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    rows: Callable[[Doc], list[Row]]
    pending: tuple[tuple[str, str], ...]  # (figure, goal) listed while not run yet


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        "storage",
        "Storage (benchmarks/storage.py)",
        storage_rows,
        (
            ("peak RSS streaming a 2 GB file", "< 300 MB"),
            ("verified add/get throughput vs plain ipfshttpclient", "report"),
        ),
    ),
    Benchmark(
        "host",
        "Host (benchmarks/host.py)",
        host_rows,
        (
            ("receipt signing + commit overhead per call", "< 2 ms"),
            ("requests/s with receipts + metering vs without (cost %)", "report"),
        ),
    ),
    Benchmark(
        "oracle",
        "Oracle (benchmarks/oracle.py)",
        oracle_rows,
        (("AccessRequested→CopyDelivered per step, tiny and SmolLM2", "report"),),
    ),
    Benchmark(
        "prover",
        "Prover (benchmarks/prover.py)",
        prover_rows,
        (
            ("probes/s against a local host", "report"),
            ("time from leak to slash on Anvil (DEV windows)", "report"),
            ("false-positive probability of each accusation", "≤ 1e-9"),
        ),
    ),
    Benchmark(
        "fingerprint",
        "Fingerprinting, SmolLM2-135M (benchmarks/fingerprint.py)",
        fingerprint_rows,
        (
            ("fingerprints embedded at ≥ 99% recall", "≥ 1024"),
            ("perplexity increase", "≤ 3%"),
            ("seconds per fingerprint", "≤ 0.5 s on 2 cores"),
            ("retention under system prompts", "≥ 94%"),
            ("naive baseline side by side", "report"),
        ),
    ),
)


def json_section(bench: Benchmark, results: Path) -> Section:
    section = Section(bench.name, bench.title)
    path = newest_result(results, bench.name)
    if path is None:
        section.rows = [Row(figure, NOT_RUN, goal) for figure, goal in bench.pending]
        return section
    section.source, section.date = path, name_date(path)
    try:
        doc = json.loads(path.read_text())
        if not isinstance(doc, Mapping):
            raise TypeError("the results file is not a JSON object")
        section.date = document_date(doc, path)
        machine = doc.get("machine")
        section.machine = describe_machine(machine) if isinstance(machine, Mapping) else NA
        for key in ("load_average_during_run", "load_average_at_end"):
            if key in doc:  # storage records the load beside the machine block
                load = doc[key]
                if isinstance(load, list):
                    load = " / ".join(f"{num(x):.2f}" for x in load)
                section.machine += f"; {key.replace('_', ' ')} {load}"
        section.rows = bench.rows(doc)
    except (KeyError, TypeError, ValueError, AttributeError, ZeroDivisionError) as exc:
        section.error = f"{type(exc).__name__}: {exc}"
        section.rows = [Row(figure, "unreadable", goal) for figure, goal in bench.pending]
    return section


def collect(results: Path, gas_md: Path) -> list[Section]:
    return [*(json_section(bench, results) for bench in BENCHMARKS), gas_section(gas_md)]


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def link(path: Path | None, out: Path) -> str:
    if path is None:
        return NA
    rel = os.path.relpath(path, out.parent)
    return f"[{path.name}]({rel})"


def render(sections: Sequence[Section], out: Path, today: str) -> str:
    rows = [r for s in sections for r in s.rows]
    yes = sum(r.met == "yes" for r in rows)
    no = sum(r.met == "no" for r in rows)
    pending = sum(r.measured.startswith(NOT_RUN) and r.goal != "report" for r in rows)
    not_run = [s.name for s in sections if s.source is None]
    broken = [s.name for s in sections if s.error]
    lines = [
        "# Benchmark summary",
        "",
        f"Generated by `benchmarks/summary.py` on {today} from the newest results file of each "
        "benchmark (date in the file name); gas from `benchmarks/gas.md`. Machine and date are "
        "each source's own: the machines are shared and runs may be days apart, so compare "
        "figures with care. Do not edit by hand: `python benchmarks/summary.py` regenerates it.",
        "",
        f"Goals: **{yes} met, {no} not met**, {pending} not measured yet"
        + (f"; not run yet: {', '.join(not_run)}" if not_run else "")
        + (f"; unreadable results: {', '.join(broken)}" if broken else "")
        + ".",
        "",
        "## Sources",
        "",
        "| benchmark | source | date | machine |",
        "|---|---|---|---|",
    ]
    for s in sections:
        source = link(s.source, out) if s.source else NOT_RUN
        lines.append(f"| {s.name} | {source} | {cell(s.date)} | {cell(s.machine)} |")
    for s in sections:
        lines += ["", f"## {s.title}", ""]
        if s.error:
            lines += [f"**Results file could not be read**: `{cell(s.error)}`.", ""]
        lines += ["| figure | measured | goal | met? | source |", "|---|---|---|---|---|"]
        source = link(s.source, out)
        for r in s.rows:
            lines.append(
                f"| {cell(r.figure)} | {cell(r.measured)} | {cell(r.goal)} | {r.met} | {source} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--gas-md", type=Path, default=GAS_MD)
    parser.add_argument("--out", type=Path, default=None, help="default: RESULTS/summary.md")
    args = parser.parse_args(argv)
    out: Path = args.out or args.results / "summary.md"
    sections = collect(args.results, args.gas_md)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(sections, out, dt.date.today().isoformat()))
    print(f"wrote {out}")
    for s in sections:
        if s.error:
            print(f"summary: {s.name}: {s.source}: {s.error}", file=sys.stderr)
    return 1 if any(s.error for s in sections) else 0


if __name__ == "__main__":
    raise SystemExit(main())
