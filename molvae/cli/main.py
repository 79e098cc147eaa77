"""Entry point of the ``molvae`` command; each sub-app lives in its own module."""

import signal
import threading
from types import FrameType

import typer

from molvae.cli import data as data_cli
from molvae.cli import images as images_cli
from molvae.cli import library as library_cli
from molvae.cli.anomaly import anomaly_command
from molvae.cli.evaluate import evaluate_command
from molvae.cli.generate import generate_command
from molvae.cli.ingest import ingest_command
from molvae.cli.interpolate import interpolate_command
from molvae.cli.pipelines import images_run_command, run_command, serve_command, ui_command
from molvae.cli.reconstruct import reconstruct_command
from molvae.cli.train import train_command

app = typer.Typer(
    name="molvae",
    help="Variational autoencoders for molecules and images.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@app.callback()
def _main() -> None:
    # Python's default SIGTERM ends the process at once, which orphans the worker processes
    # of ingest and property computation; as an exception it unwinds through their pools,
    # which cancel pending work and shut the workers down. A handler someone else installed
    # is left alone.
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)


app.add_typer(data_cli.app, name="data")
images_cli.app.command("run")(images_run_command)
app.add_typer(images_cli.app, name="images")
app.command("ingest")(ingest_command)
app.command("train")(train_command)
app.command("reconstruct")(reconstruct_command)
app.command("generate")(generate_command)
app.command("anomaly")(anomaly_command)
app.command("interpolate")(interpolate_command)
app.command("evaluate")(evaluate_command)
app.add_typer(library_cli.app, name="library")
app.command("run")(run_command)
app.command("serve")(serve_command)
app.command("ui")(ui_command)

if __name__ == "__main__":
    app()
