"""`python -m mailsync_ingest` / `mailsync-ingest`: run the service until SIGTERM."""

from mailsync_ingest.app import create_app
from mailsync_ingest.settings import IngestSettings
from mailsync_platform.service import serve


def main() -> None:
    settings = IngestSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
