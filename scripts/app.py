#!/usr/bin/env python
"""A local web page for edit.py: drop a video or a photo, choose an emotion (or a reference clip), the intensity,
whether the mouth is kept or edited and which face, then see original | edited side by side and download the edit.

    python scripts/app.py                        # http://127.0.0.1:7860, this machine only
    python scripts/app.py --port 8080 --host 0.0.0.0   # reachable from the local network (no login: take care)

The same reconstruction, manipulator and renderer as edit.py (ned_outlier.edit_session); an input's reconstruction
is kept, so another emotion or intensity re-renders without reconstructing again. Offline: no share link, no
analytics or update check, nothing fetched from the web by the server or the page.
"""

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ned_outlier.cli import add_reconstruction_arguments, reconstruction_overrides, run_cli  # noqa: E402
from ned_outlier.errors import UserError  # noqa: E402
from ned_outlier.labels import EMOTIONS  # noqa: E402

DEFAULT_CONFIG = REPO / "configs" / "edit" / "default.yaml"
DEFAULT_RECONSTRUCT_CONFIG = REPO / "configs" / "reconstruct" / "default.yaml"
TARGETS = ("emotion", "reference clip")
FACE_CHOICES = ("largest", "all")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default %(default)s: this machine only; 0.0.0.0: every "
                             "network interface, with no login)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default %(default)s)")
    parser.add_argument("--work-dir", type=Path,
                        help="where reconstructions' edits are written (default: a new temporary folder)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="edit YAML (default: %(default)s)")
    parser.add_argument("--reconstruct-config", type=Path, default=DEFAULT_RECONSTRUCT_CONFIG,
                        help="reconstruction YAML (default: %(default)s)")
    add_reconstruction_arguments(parser)
    return parser.parse_args(argv)


def face_value(choice: str) -> str | int:
    """The face dropdown's text -> edit_session's face: 'largest', 'all' or a track id ('face 2 ...' -> 2)."""
    if choice in FACE_CHOICES:
        return choice
    return int(choice.split()[1])


def error_line(error: UserError) -> str:
    """The CLI's one-line message, as the page's status line shows it."""
    return f"**error:** {error}"


def build_page(session):
    """The gradio Blocks of the page, every event handled through `session` (an EditSession)."""
    import gradio as gr

    from ned_outlier.io.image import is_image

    def analyse(upload, progress=gr.Progress(track_tqdm=True)):
        """A new input: reconstruct it (or find it cached) and list its faces, largest first."""
        if upload is None:
            return gr.update(value=[]), gr.update(choices=list(FACE_CHOICES), value="largest"), ""
        try:
            faces = session.faces(Path(upload))
        except UserError as error:
            return gr.update(value=[]), gr.update(choices=list(FACE_CHOICES), value="largest"), error_line(error)
        gallery = [(face.thumbnail, face.caption) for face in faces]
        choices = list(FACE_CHOICES) + [face.caption for face in faces]
        found = (f"{len(faces)} face{'s' if len(faces) > 1 else ''} found: "
                 + ", ".join(face.describe() for face in faces))
        if len(faces) > 1:
            found += "; click one to edit it, or choose 'all'"
        return gr.update(value=gallery), gr.update(choices=choices, value="largest"), found

    def pick_face(evt: gr.SelectData):
        """A thumbnail clicked: that face in the dropdown (its caption)."""
        return gr.update(value=evt.value["caption"])

    def run_edit(upload, target, emotion, reference, intensity, mouth, face,
                 progress=gr.Progress(track_tqdm=True)):
        """The edit: (side-by-side video, side-by-side photo, the edit to download, status line)."""
        none = gr.update(visible=False, value=None)
        if upload is None:
            return none, none, None, "**error:** drop a video or a photo first"
        try:
            if target == TARGETS[1] and reference is None:
                raise UserError("choose a reference clip, or 'emotion' as the target")
            done = session.edit(Path(upload), emotion=emotion if target == TARGETS[0] else None,
                                reference=Path(reference) if target == TARGETS[1] else None,
                                intensity=float(intensity), mouth=mouth, face=face_value(face))
        except UserError as error:
            return none, none, None, error_line(error)
        report = done.report
        status = (f"{report.describe()}; reconstruction {'reused' if done.reused else 'computed'}; "
                  f"wrote {report.output.name} (intensity {float(intensity):g})")
        photo = is_image(report.output)
        side_by_side = str(report.preview)
        return (gr.update(visible=not photo, value=None if photo else side_by_side),
                gr.update(visible=photo, value=side_by_side if photo else None), str(report.output), status)

    # Uploads and results that gradio copies to its cache are deleted a day after they were made, checked hourly.
    with gr.Blocks(title="NED outlier: expression editing", analytics_enabled=False,
                   delete_cache=(3600, 24 * 3600)) as page:
        gr.Markdown("## Facial expression editing\nDrop a video or a photo, choose the target, then **Edit**. "
                    "Speech, identity, head pose, background, frame rate and audio are kept.")
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="Video or photo", file_types=["video", "image"], type="filepath",
                                 elem_id="upload")
                faces = gr.Gallery(label="Faces (click one to edit it)", columns=6, height=150, object_fit="contain",
                                   fit_columns=False, allow_preview=False, buttons=[], elem_id="faces")
                face = gr.Dropdown(choices=list(FACE_CHOICES), value="largest", label="Face", elem_id="face")
                target = gr.Radio(list(TARGETS), value=TARGETS[0], label="Target", elem_id="target")
                emotion = gr.Dropdown(list(EMOTIONS), value="happy", label="Emotion", elem_id="emotion")
                reference = gr.File(label="Reference clip (its expression style)", file_types=["video"],
                                    type="filepath", visible=False, elem_id="reference")
                intensity = gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="Intensity", elem_id="intensity")
                mouth = gr.Radio(["keep", "edit"], value="keep", label="Mouth",
                                 info="keep: the lips follow the source (speech); edit: they take the target too",
                                 elem_id="mouth")
                button = gr.Button("Edit", variant="primary", elem_id="edit")
            with gr.Column(scale=2):
                # No 'share' buttons: they post to Hugging Face.
                video_out = gr.Video(label="Original | edited", interactive=False, buttons=["download"],
                                     elem_id="side-by-side")
                photo_out = gr.Image(label="Original | edited", interactive=False, visible=False,
                                     buttons=["download", "fullscreen"], elem_id="side-by-side-photo")
                download = gr.File(label="Download the edit", interactive=False, elem_id="download")
                status = gr.Markdown(elem_id="status")
        upload.change(analyse, inputs=upload, outputs=[faces, face, status])
        faces.select(pick_face, outputs=face)
        target.change(lambda chosen: (gr.update(visible=chosen == TARGETS[0]), gr.update(visible=chosen == TARGETS[1])),
                      inputs=target, outputs=[emotion, reference])
        edit_inputs = [upload, target, emotion, reference, intensity, mouth, face]
        edit_outputs = [video_out, photo_out, download, status]
        button.click(run_edit, inputs=edit_inputs, outputs=edit_outputs)
        intensity.release(run_edit, inputs=edit_inputs, outputs=edit_outputs)
    return page


def main(argv=None) -> None:
    args = parse_args(argv)
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be between 1 and 65535, got {args.port}")
    # Offline: before gradio is imported, so that its analytics and version check never start.
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request of gradio's own start-up checks
    from ned_outlier.config import load_config, replace_fields
    from ned_outlier.edit_session import EditSession
    from ned_outlier.pipeline import load_edit_config
    from ned_outlier.reconstruction.reconstructor import ReconstructionConfig

    config = load_edit_config(args.config, list(EMOTIONS))
    reconstruction = replace_fields(load_config(args.reconstruct_config, ReconstructionConfig),
                                    reconstruction_overrides(args))
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="ned-app-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    page = build_page(EditSession(work_dir, config, reconstruction))
    print(f"edits are written to {work_dir}", flush=True)
    try:
        page.queue().launch(server_name=args.host, server_port=args.port, share=False, ssr_mode=False,
                            allowed_paths=[str(work_dir)], show_error=True, footer_links=[], pwa=False,
                            mcp_server=False, quiet=True, prevent_thread_lock=True)
    except OSError as error:  # the port is taken; gradio's advice (an environment variable) is not this script's
        reason = str(error).split(". ")[0]
        raise UserError(f"cannot listen on {args.host}:{args.port} ({reason}): choose another --port") from None
    print(f"serving http://{args.host}:{args.port} (Ctrl+C stops it)", flush=True)
    page.block_thread()


if __name__ == "__main__":
    sys.exit(run_cli(main))
