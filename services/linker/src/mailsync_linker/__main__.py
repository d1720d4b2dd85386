"""`python -m mailsync_linker` / `mailsync-linker`: run the service until SIGTERM."""

from mailsync_linker.app import create_app
from mailsync_linker.settings import LinkerSettings
from mailsync_platform.service import serve


def main() -> None:
    settings = LinkerSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
