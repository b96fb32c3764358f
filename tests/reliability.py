"""Write ``tests/RELIABILITY.md``: run ``python tests/reliability.py`` from the repository root.

It trains the two tiny models the test suite uses, then runs the same scenarios as
``tests/test_reliability_*.py`` and the kill-and-resume test of ``tests/test_pipeline_training.py``,
through the same functions, and writes what they found. About two to three minutes on two CPU cores.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # makes ``pipeline`` and ``dashboard`` importable
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import broken_artifacts  # noqa: E402  (needs the path above)
import repo_scan  # noqa: E402
from drivers import CHROMIUM  # noqa: E402
from served_users import MODELS, RSS_RATIO_LIMIT, ServedRun, serve_users  # noqa: E402
from synthetic import TINY_SIZES, make_image_folder, train_tiny_models  # noqa: E402
from training_runs import RESUME_EPOCHS, RESUME_FINE_TUNE_EPOCHS, ResumeRun, kill_and_resume  # noqa: E402
from upload_corpus import ACCEPTED, Outcome, Upload, outcome_table, run_corpus  # noqa: E402

log = logging.getLogger("reliability")

REPORT = Path(__file__).resolve().parent / "RELIABILITY.md"
COMMAND = "python tests/reliability.py"
MIB = 1024 * 1024
SHOWN_PATHS = 5


def _yes(value: bool) -> str:
    return "yes" if value else "**no**"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _outcome(outcome: Outcome) -> str:
    if outcome.kind == ACCEPTED:
        return f"prediction ({outcome.detail}) and both maps"
    return f"{outcome.kind}: {outcome.problem()}"


def uploads_section(results: list[tuple[Upload, Outcome, Outcome]]) -> list[str]:
    lines = ["## 1. Uploads", "",
             f"{len(results)} files, each fed through the functions the explain page calls (decode, model "
             "input, outputs, Grad-CAM and Grad-CAM++ of the top class, checked finite, in 0-1 and of the model's "
             "input size) and uploaded into the page itself (AppTest, one session for all files). A refused file "
             "gets one error naming the problem and the accepted formats; an accepted one, the outputs and "
             "both maps.", "", outcome_table(results), "",
             "| file | bytes | through the functions | on the explain page |", "|---|---:|---|---|"]
    lines += [f"| `{upload.name}` | {len(upload.data)} | {_cell(_outcome(direct))} | {_cell(_outcome(page))} |"
              for upload, direct, page in results]
    return [*lines, ""]


def artifacts_section(checked: broken_artifacts.ArtifactsCheck, work: Path) -> list[str]:
    lines = ["## 2. Broken model folders", "",
             f"One models folder holding {', '.join(broken_artifacts.GOOD)} and a spoiled copy of "
             f"{broken_artifacts.TEMPLATE} per case (`<tmp>` is the temporary folder of the run). `CLI` is the exit "
             "code of `python -m pipeline evaluate --model <folder> --data-dir <images>`; `same warning` says whether "
             "the compare or explain page shows a warning naming the folder and the file, with the CLI's message "
             "(details in parentheses aside).", "",
             "| folder | what is broken | CLI | message | same warning | still compared | still explains |",
             "|---|---|---:|---|---|---|---|"]
    view = checked.view
    for result in checked.cases:
        case = result.case
        same = result.named(result.app_warning) and broken_artifacts.headline(result.cli_message) in result.app_warning
        lines.append(f"| `{case.folder}` | {case.what} | {result.exit_code} | "
                     f"{_cell(result.cli_message.replace(str(work), '<tmp>'))} | {_yes(same)} | "
                     f"{'yes' if case.folder in view.compared else 'no'} | "
                     f"{'yes' if case.folder in view.explained else 'no'} |")
    good = ", ".join(f"{name} (CLI {code})" for name, code in checked.good_exit_codes.items())
    lines += ["", f"Good models beside them: {good}; compared: {', '.join(view.compared)}; explained in the "
              f"\"All models\" view: {', '.join(view.explained)}. Exceptions on the pages: {len(view.exceptions)}; "
              f"errors: {len(view.errors)}.", ""]
    return lines


def resume_section(run: ResumeRun) -> list[str]:
    return ["## 3. Interrupted training", "",
            f"SmallCNN, {RESUME_EPOCHS} epochs then {RESUME_FINE_TUNE_EPOCHS} fine-tune epoch, killed with SIGKILL "
            "once its first epoch was checkpointed, then the "
            "same command run again, while a thread listed the output folder every 10 ms.", "",
            f"- Epochs done before the kill: {run.killed_after} of {RESUME_EPOCHS}",
            f"- Epochs the second run trained: {run.epochs_after} (exit code {run.second.returncode})",
            f"- Epochs in the final `history.csv`: {run.history_epochs}; `epochs_run` in `config.json`: "
            f"{run.epochs_run}",
            f"- Model folder present right after the kill: {'yes' if run.folder_after_kill else 'no'}",
            f"- Half-written model folders seen: {len(run.half_written)}", ""]


def served_section(served: ServedRun) -> list[str]:
    lines = ["## 4. Concurrent users", "",
             "`streamlit run dashboard/streamlit_app.py` on 127.0.0.1 with the tiny models; one headless Chromium, "
             "one browser context per user. One user first, alone; then five at once, each uploading a different "
             "X-ray (the four shipped samples and a generated one) and picking a model in turn. Each page's "
             "outputs (the text on the bars) are compared with the outputs computed in the test process for the "
             "same image and model, and its \"Original\" panel with every uploaded image.", "",
             "| user | model | outputs shown | computed here | nearest image (mean abs. difference) | correct |",
             "|---|---|---|---|---|---|"]
    for label, result in [("alone", served.first), *((f"{i} of 5", r) for i, r in enumerate(served.together, 1))]:
        shown = ", ".join(f"{name} {value}" for name, value in sorted(result.shown.outputs.items()))
        expected = ", ".join(f"{name} {value}" for name, value in sorted(result.expected.items()))
        own = "its own" if result.nearest == result.upload.name else f"`{result.nearest}`"
        lines.append(f"| {label} | {result.upload.model} | {shown or _cell(' '.join(result.shown.errors))} | "
                     f"{expected} | {own} ({result.distance:.2f}) | {_yes(result.correct)} |")
    distinct = {model: len({str(r.expected) for r in served.together if r.upload.model == model})
                == sum(r.upload.model == model for r in served.together) for model in MODELS}
    lines += ["", "- Outputs alone tell the users of a model apart: " + ", ".join(
        f"{model} {'yes' if apart else 'no (the same outputs for every image; the Original panel tells them apart)'}"
        for model, apart in distinct.items()),
              f"- Sessions served correctly: {sum(r.correct for r in (served.first, *served.together))} of "
              f"{1 + len(served.together)}; server still up and healthy: {_yes(served.alive)}",
              f"- Server memory (VmRSS, with children): {served.rss_one / MIB:.0f} MiB after one user, "
              f"{served.rss_all / MIB:.0f} MiB after five at once: ratio {served.rss_ratio:.3f} "
              f"(the tests require at most {RSS_RATIO_LIMIT})", ""]
    return lines


def privacy_section(served: ServedRun | None, scanned: int, secrets: list[str], code: list[Path], unsafe: list[str],
                    loads: list[tuple[str, int, bool]]) -> list[str]:
    lines = ["## 5. Privacy and secrets", ""]
    if served is not None:
        traces = served.traces
        roots = " and ".join(f"`{root}`" for root in traces.roots)
        changed, hidden = traces.new_or_changed, len(traces.new_or_changed) - SHOWN_PATHS
        names = ", ".join(f"`{Path(path).name}`" for path in changed[:SHOWN_PATHS]) + (
            f" and {hidden} more" if hidden > 0 else "")
        lines += [f"- Files under {roots} before the first upload: {traces.files_before}; new or changed by the "
                  f"end: {len(changed)} ({names}); of those, holding an upload's name, a "
                  f"slice of its bytes or a row of its pixels: {len(traces.holding_upload)}",
                  "- Names, byte slices or pixel rows of the six uploads in the server log: "
                  f"{len(traces.in_server_log)}",
                  "- The browser's own temporary profile (the client side, gone when it closes) is not counted."]
    lines += [f"- Credentials in the {scanned} files `git add -A` would commit: {len(secrets)} found",
              f"- Lines of `pipeline/` and `dashboard/` ({len(code)} files) that could unpickle a file "
              f"(pickle, `allow_pickle=True`, `safe_mode=False`, `np.load(`, `joblib.load`, ...): {len(unsafe)}",
              f"- `load_model` calls: {len(loads)}, with `safe_mode=True`: {sum(safe for _, _, safe in loads)}", ""]
    return lines


def header(seconds: float) -> list[str]:
    import keras
    import streamlit
    import tensorflow

    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return ["# Reliability report", "",
            f"Generated by `{COMMAND}` from the repository root; do not edit by hand. {when}, "
            f"{seconds / 60:.1f} minutes on {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
            f"TensorFlow {tensorflow.__version__}, Keras {keras.__version__}, Streamlit {streamlit.__version__}.", "",
            "The figures come from the same functions that `tests/test_reliability_*.py` and "
            "`tests/test_pipeline_training.py` check. The models are tiny "
            f"({', '.join(f'{name} {size} px' for name, size in TINY_SIZES.items())}, trained for one epoch per phase "
            "on generated images), so their outputs show the plumbing, not any skill. Research and teaching use "
            "only: not for diagnosis.", ""]


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="reliability-") as folder:
        work = Path(folder)
        log.info("training the tiny models")
        images = make_image_folder(work / "data")
        models = train_tiny_models(work / "models", images, work / "checkpoints")
        log.info("uploads")
        uploads = run_corpus(models, work / "uploads")
        log.info("broken model folders")
        checked = broken_artifacts.check(models, images, work / "broken")
        log.info("kill and resume")
        resumed = kill_and_resume(images, work / "resume")
        served = None
        if CHROMIUM.exists():
            log.info("concurrent users")
            served = serve_users(models, work / "served")
        scanned, secrets = repo_scan.repository_secrets()
        code = repo_scan.code_files()
        unsafe = [finding for path in code for finding in repo_scan.unsafe_loading_in(path)]
        loads = [(str(path), line, safe) for path in code for line, safe in repo_scan.model_loads(path)]
        sections = [*uploads_section(uploads), *artifacts_section(checked, work), *resume_section(resumed),
                    *(served_section(served) if served else ["## 4. Concurrent users", "",
                                                             f"Not run: {CHROMIUM} is not installed.", ""]),
                    *privacy_section(served, scanned, secrets, code, unsafe, loads)]
    REPORT.write_text("\n".join([*header(time.monotonic() - start), *sections]).rstrip() + "\n", encoding="utf-8")
    log.info("wrote %s", REPORT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
