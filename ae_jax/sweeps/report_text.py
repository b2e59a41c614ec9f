"""report.md's prose beside its table (`report.write_report`): which evaluation its numbers are,
the runs' own notes on what their VAE bounds are, and what software computed them."""

from absl import logging

from ae_jax import runtime


def evaluation_lines(rows: list[dict], shown: list[str]) -> list[str]:
    """report.md's lines saying which evaluation its numbers are (each run's own eval.json:
    `ae-jax evaluate --which=best` and the like write elsewhere) and repeating the runs'
    eval.json notes on what their VAE bounds are (`finished.BOUND_NOTES`)."""
    if not any(r.get("evaluated", True) for r in rows):
        return []
    lines = [
        "",
        "The evaluation numbers are each run's own eval.json: its parameters at its last "
        "epoch (a diverged run's, from before its non-finite step), on its validation rows; "
        "the evaluations `ae-jax evaluate` wrote since (`--which=best`, `--data`) are in each "
        "run's evaluations/ folder, not here.",
    ]
    if not any(m.startswith("vae/") for m in shown):
        return lines
    said: dict[tuple[str, str], int] = {}
    for r in rows:
        for key, text in r.get("notes", {}).items():
            said[key, text] = said.get((key, text), 0) + 1
    if said:
        lines += ["", "What the VAE bounds are, as the runs' eval.json says:", ""]
        lines += [f"- {key} ({n} of {len(rows)} runs): {text}" for (key, text), n in said.items()]
    return lines


def software_lines(rows: list[dict]) -> list[str]:
    """report.md's lines naming what computed the runs' numbers (their summary.json's and
    eval.json's `software`); runs computed by different software are named, with a warning."""
    counts: dict[str, int] = {}
    for r in rows:
        for said in dict.fromkeys(software_text(s) for s in r["software"]):  # once per run
            counts[said] = counts.get(said, 0) + 1
    if len(counts) <= 1:
        return [f"Computed by {s}." for s in counts]
    listed = "; ".join(f"{n} run(s) by {s}" for s, n in counts.items())
    logging.warning("the report's runs were computed by different software: %s", listed)
    return [
        "The runs were computed by different software, so their numbers may differ by more "
        "than their seeds make them:",
        "",
        *[f"- {n} run(s): {s}" for s, n in counts.items()],
    ]


def software_text(software) -> str:
    if not isinstance(software, dict):
        return "software not recorded (written by an ae_jax before runs recorded it)"
    flags = software.get("xla_flags")
    return runtime.describe(software) + (f", XLA_FLAGS={flags!r}" if flags else "")


def failed_lines(failed: list[tuple[str, str]], shown: int = 10) -> list[str]:
    """report.md's list of the runs that failed, each with its error's first line (they were
    counted, "8 failed", but never named: a setting whose every seed failed vanished)."""
    if not failed:
        return []
    more = [f"- and {len(failed) - shown} more (their failed.json)"] if len(failed) > shown else []
    return [
        "Runs that failed (in no row; `ae-jax sweep` retries them):",
        "",
        *[f"- {name}: {why}" for name, why in failed[:shown]],
        *more,
        "",
    ]
