"""``trackpose job DIR`` and ``trackpose serve``: the bridge's two commands (protocol: docs/bridge-protocol.md)."""
from __future__ import annotations


def add_parsers(sub) -> None:
    p = sub.add_parser("job", help="run one bridge job folder (used by the Fiji/TrackMate detector)",
                       description="Segment the frames in DIR/input.tif with the settings in DIR/job.json and write "
                                   "DIR/labels.tif and DIR/shapes.json; events as JSON lines on stdout. See "
                                   "docs/bridge-protocol.md.")
    p.add_argument("folder", help="the job folder")
    p.add_argument("--workers", type=int, default=None, help="parallel processes over frames (default: job.json)")
    p.set_defaults(func=_run_job)
    p = sub.add_parser("serve", help="persistent worker: keeps models loaded between jobs (JSON lines on stdin)",
                       description="Read one JSON request per stdin line ({\"cmd\": \"run\", \"job\": DIR}, "
                                   "{\"cmd\": \"ping\"}, {\"cmd\": \"quit\"}) and answer with JSON-line events on "
                                   "stdout; models and the last network output stay loaded between requests. Exits "
                                   "when stdin closes or the parent process dies.")
    p.set_defaults(func=_run_serve)


def _run_job(args) -> int:
    from ..bridge import job_main
    return job_main(args.folder, workers=args.workers)


def _run_serve(args) -> int:
    from ..bridge import serve_main
    return serve_main()
