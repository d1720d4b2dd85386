"""`python -m mailsync_tracking` / `mailsync-tracking`: run the service until SIGTERM."""

from mailsync_platform.service import serve
from mailsync_tracking.app import create_app
from mailsync_tracking.settings import TrackingSettings


def main() -> None:
    settings = TrackingSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
