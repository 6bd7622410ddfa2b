"""rnnscope launcher: no arguments opens the desktop app; a subcommand runs the engine headless
(see ``cli/main.py`` and ``python main.py --help``)."""

from __future__ import annotations

import sys


def _run_gui() -> int:
    try:
        from app.main_window import run_app
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("app"):
            print("error: the desktop app is not available in this build (app/main_window.py "
                  "is missing); use a subcommand, see `python main.py --help`", file=sys.stderr)
            return 1
        raise
    return int(run_app() or 0)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        return _run_gui()
    from cli.main import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
