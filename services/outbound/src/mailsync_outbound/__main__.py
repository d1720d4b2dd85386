"""`python -m mailsync_outbound` / `mailsync-outbound`: run the service until SIGTERM."""

from mailsync_outbound.app import create_app
from mailsync_outbound.settings import OutboundSettings
from mailsync_platform.service import serve


def main() -> None:
    settings = OutboundSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
