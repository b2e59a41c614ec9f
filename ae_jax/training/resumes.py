"""What a run resumed from its saved state (a checkpoint, or a position inside an epoch) is
told changed since it was saved: the software, the device layout, the size of the group it
trains in. Each can move its numbers from an uninterrupted run's, in the last bits at first,
which training can amplify; none is refused (a run resumed after a kill may be in another
group, on another machine)."""

import re

from absl import logging


def warn_software_change(saved: list, now: dict, what: str = "the checkpoint") -> None:
    """Says that a run resumes under other software than its saved state (a checkpoint, or a
    position inside an epoch) was trained with (`saved`: each one's `software`, None where an
    older version recorded none): other versions of Python or the packages, another backend or
    device kind; `what`: the saved state, for the message. (XLA_FLAGS are recorded, not
    compared: the device count a layout change sets is among them, and `warn_layout_change`
    says that.)"""
    keys = [k for k in now if k != "xla_flags"]
    changes = sorted(
        {
            f"{k} {was.get(k)} -> {now.get(k)}"
            for was in saved
            if isinstance(was, dict)
            for k in keys
            if k in was and was[k] != now.get(k)  # a key older runs lack: unsaid
        }
    )
    if changes:
        logging.warning(
            "resuming with other software than %s was trained with (%s): from "
            "here the numbers may differ from an uninterrupted run's; summary.json records "
            "the software that finished the run",
            what,
            ", ".join(changes),
        )


def warn_layout_change(saved: set[str], now: str, what: str = "the checkpoint") -> None:
    """Says that a run resumes under another device layout than its saved state (`what`) was
    trained with (`saved`: the layouts recorded, '' where an older version recorded none)."""
    was = {s for s in saved if s and _computes(s) != _computes(now)}
    if was:
        logging.warning(
            "resuming under another device layout than %s was trained with "
            "(%s, now %s): from here the numbers differ from an uninterrupted run's in "
            "the last bits, as between layouts (README: GPU, TPU, several devices)",
            what,
            ", ".join(sorted(was)),
            now,
        )


def _computes(layout: str) -> str:
    """What computes under a layout: "one device of 4 device(s) (cpu, ...)" computes as "one
    device of 1 device(s)" does, bit for bit (a resume between them was told otherwise); and
    but for data parallel, where sums cross the devices, the number of processes the devices
    belong to changes nothing (models split over 4 devices of 1 process or of 2: a probe found
    them bit for bit, and the resume told otherwise)."""
    layout = re.sub(r"^one device of \d+ device\(s\)", "one device", layout)
    if layout.startswith("data parallel"):
        return layout
    return re.sub(r", \d+ process\(es\)\)$", ")", layout)


def warn_group_change(saved: set, now: int, what: str = "the checkpoint") -> None:
    """Says that a run resumes in a group of another size (K models trained by one program)
    than its saved state (`what`) was trained in (`saved`: the sizes recorded, None where an
    older version recorded none): train.num_models or --max_models changed, or a resume after a
    kill found fewer runs to group."""
    was = {k for k in saved if isinstance(k, int)} - {now}
    if was:
        logging.warning(
            "resuming in a group of %d model(s) trained together, where %s was trained in one "
            "of %s: from here the numbers differ from an uninterrupted run's in the last bits, "
            "as between group sizes (README: many models at once)",
            now,
            what,
            ", ".join(map(str, sorted(was))),
        )
