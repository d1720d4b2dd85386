"""`python -m mailsync_devstack.asyncapi DIR` (`make asyncapi`): one AsyncAPI JSON document
per service, rendered from the services' own apps (built, never started)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from pydantic import SecretStr

from mailsync_ingest.app import create_app as ingest_app
from mailsync_ingest.settings import IngestSettings
from mailsync_linker.app import create_app as linker_app
from mailsync_outbound.app import create_app as outbound_app
from mailsync_platform.asyncapi import render
from mailsync_tracking.app import create_app as tracking_app

VERSION = "0.1.0"


def documents() -> dict[str, dict[str, Any]]:
    # Building an app connects to nothing; the settings only have to be valid.
    ingest_settings = IngestSettings(credentials_key=SecretStr(Fernet.generate_key().decode()))
    apps = {
        "ingest": ingest_app(ingest_settings),
        "linker": linker_app(),
        "outbound": outbound_app(),
        "tracking": tracking_app(),
    }
    return {name: render(app, VERSION) for name, app in apps.items()}


def main() -> None:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/asyncapi")
    target.mkdir(parents=True, exist_ok=True)
    for name, document in documents().items():
        path = target / f"{name}.json"
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
