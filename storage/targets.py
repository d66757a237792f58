"""One zip per robot target, with the files named and laid out as that target expects and a HOW-TO.txt
that names every file in it: `/model download target:` and `fieldlens model export --target`.

    limelight  {model, labels} (+ the Edge TPU model when edgetpu_compiler is here)
    ftc        sdcard/FIRST/tflitemodels/{model, labels}, TeamCode/.../FieldLensProcessor.java
    pi         fieldlens/{model, labels, fieldlens-edge.service}
    frc        fieldlens/{model, labels, fieldlens-edge.service}, FieldLensVision.java

The HOW-TO is the model's figures and thresholds, the list of files, then the target's text from
storage/target_texts.py (the README carries the same texts).
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from storage.errors import UserError
from storage.model_folder import EDGE_TPU_MODEL, INT8, LABELS, Manifest, ModelFolder
from storage.target_texts import EDGE_TPU_MISSING, FRC_VISION, FTC_PROCESSOR, HOW_TO, SYSTEMD_UNIT

log = logging.getLogger(__name__)

HOW_TO_FILE = "HOW-TO.txt"
EDGE_TPU_COMPILER = "edgetpu_compiler"
COMPILE_SECONDS = 300
FTC_MODELS = "sdcard/FIRST/tflitemodels/"
FTC_CODE = "TeamCode/src/main/java/org/firstinspires/ftc/teamcode/"


class UnknownTarget(UserError):
    """No such robot target."""


@dataclass(frozen=True)
class Target:
    name: str
    title: str
    model: str  # where the int8 model goes in the zip
    labels: str


TARGETS = {
    "limelight": Target("limelight", "Limelight 3A / 3G / 4", INT8, LABELS),
    "ftc": Target("ftc", "FTC (SDK 10+)", FTC_MODELS + INT8, FTC_MODELS + LABELS),
    "pi": Target("pi", "Raspberry Pi (fieldlens-edge)", "fieldlens/" + INT8, "fieldlens/" + LABELS),
    "frc": Target("frc", "FRC co-processor (NetworkTables)", "fieldlens/" + INT8, "fieldlens/" + LABELS),
}


def zip_name(model_id: int, target: str) -> str:
    return f"fieldlens-model-{model_id}-{target}.zip"


def target_of_zip(name: str) -> str | None:
    """The target a download name like `limelight.zip` asks for, or None."""
    stem = name.removesuffix(".zip")
    return stem if name.endswith(".zip") and stem in TARGETS else None


def target_zip(
    folder: ModelFolder,
    target: str,
    model_id: int,
    name: str,
    compiler: Callable[[Path], tuple[bytes | None, str]] | None = None,
) -> bytes:
    """The zip for `target`: the model's files laid out for it, extra code, and HOW-TO.txt."""
    if target not in TARGETS:
        raise UnknownTarget(f"There is no target {target!r}. Choose one of: {', '.join(TARGETS)}.")
    spec = TARGETS[target]
    manifest = folder.manifest()
    files: dict[str, tuple[bytes, str]] = {
        spec.model: (folder.int8_model.read_bytes(), f"the 8-bit model ({_input(manifest)})"),
        spec.labels: (folder.labels.read_bytes(), "its labels, one per line, in class order"),
    }
    notes = ""
    if target == "limelight":
        edgetpu, notes = (compiler or compile_edgetpu)(folder.int8_model)
        if edgetpu is not None:
            files[EDGE_TPU_MODEL] = (edgetpu, "the same model compiled for a Google Coral (Edge TPU)")
    elif target == "ftc":
        code = _ftc_processor(manifest, model_id)
        files[FTC_CODE + "FieldLensProcessor.java"] = (code, "a VisionProcessor running the model (Java)")
    elif target in ("pi", "frc"):
        extra = " --nt TEAM" if target == "frc" else ""
        unit = SYSTEMD_UNIT.format(extra=extra).encode()
        files["fieldlens/fieldlens-edge.service"] = (unit, "a systemd unit starting it at boot")
        if target == "frc":
            files["FieldLensVision.java"] = (FRC_VISION.encode(), "robot-side code reading the detections")
    howto = how_to(manifest, target, model_id, name, {k: v[1] for k, v in files.items()}, notes)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(HOW_TO_FILE, howto)
        for path, (data, _) in files.items():
            zf.writestr(path, data)
    return out.getvalue()


def how_to(
    manifest: Manifest, target: str, model_id: int, name: str, files: dict[str, str], notes: str = ""
) -> str:
    """HOW-TO.txt: what the model is, its thresholds, the files in the zip, then the target's steps."""
    spec = TARGETS[target]
    lines = [
        f"FieldLens model {model_id} for {spec.title}: {name}",
        f"Trained {manifest.created_at[:10]}; labels ({LABELS}, in order): {', '.join(manifest.labels)}",
        f"Input: {_input(manifest)}, the camera frame squeezed to it.",
        f"mAP@0.5 of the 8-bit model: {manifest.metrics.map50_int8:.3f} ({manifest.evaluated_on} images).",
    ]
    if not manifest.int8_ok:
        lines.append(
            "WARNING: this model failed the int8 check; its 8-bit model is much worse than the float one."
        )
    lines += ["", *_thresholds(manifest), "", "Files in this zip:"]
    width = max(len(p) for p in [*files, HOW_TO_FILE])
    lines += [f"  {p.ljust(width)}  {what}" for p, what in {**files, HOW_TO_FILE: "this file"}.items()]
    lines += ["", HOW_TO[target]]
    if target == "limelight":
        lines += ["", notes]
    return "\n".join(lines) + "\n"


def _input(manifest: Manifest) -> str:
    return f"{manifest.input_size}x{manifest.input_size} RGB, uint8 (0-255)"


def _thresholds(manifest: Manifest) -> list[str]:
    t = manifest.thresholds
    if t is None:
        return [
            "Score thresholds: this model was delivered before FieldLens chose thresholds; start at 0.50.",
        ]
    lines = [
        f"Score thresholds (each where F1 was highest on the {t.chosen_on} images):",
        f"  {t.robot_sentence()}  <- one threshold for every label (a Limelight's confidence threshold)",
    ]
    lines += [f"  {line}" for line in t.label_lines()]
    return lines


def _ftc_processor(manifest: Manifest, model_id: int) -> bytes:
    t = manifest.thresholds
    labels = ", ".join(f'"{label}"' for label in manifest.labels)
    per_label = "".join(
        f'        THRESHOLDS.put("{label}", {point.score:.2f});\n'
        for label, point in (t.labels if t else {}).items()
    )
    overall = t.overall.score if t else 0.5
    return FTC_PROCESSOR.format(
        model_id=model_id,
        model_path="/" + TARGETS["ftc"].model,
        input_size=manifest.input_size,
        labels=labels,
        overall=f"{overall:.2f}",
        label_thresholds=per_label,
    ).encode()


def compile_edgetpu(model: Path) -> tuple[bytes | None, str]:
    """The Edge TPU model when `edgetpu_compiler` is on the PATH, and a sentence for the HOW-TO."""
    compiler = shutil.which(EDGE_TPU_COMPILER)
    if compiler is None:
        return None, EDGE_TPU_MISSING
    with tempfile.TemporaryDirectory() as tmp:
        try:
            run = subprocess.run(  # noqa: S603 - the compiler found on PATH, with our own file
                [compiler, "-s", "-o", tmp, str(model)],
                capture_output=True,
                text=True,
                timeout=COMPILE_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            log.warning("edgetpu_compiler failed: %s", e)
            return None, f"No Edge TPU model in this zip: edgetpu_compiler failed ({e})."
        out = Path(tmp) / EDGE_TPU_MODEL
        if run.returncode != 0 or not out.is_file():
            last = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
            log.warning("edgetpu_compiler exited %s: %s", run.returncode, run.stderr)
            return None, f"No Edge TPU model in this zip: edgetpu_compiler failed ({last[0]})."
        return out.read_bytes(), f"{EDGE_TPU_MODEL} was compiled by edgetpu_compiler for a Google Coral."
