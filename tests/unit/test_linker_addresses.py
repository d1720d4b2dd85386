"""R12: CRM addresses and mail participants compare in one normalized form."""

from __future__ import annotations

import pytest

from mailsync_linker.domain import match_keys


@pytest.mark.parametrize(
    ("crm_address", "key"),
    [
        ("Katrin.Vogel@Kessler-Präzision.test", "katrin.vogel@xn--kessler-przision-4nb.test"),
        ("ANNA@Customer.TEST.", "anna@customer.test"),
        ("not an address", None),
    ],
)
def test_r12_crm_addresses_are_keyed_the_way_mail_participants_arrive(
    crm_address: str, key: str | None
) -> None:
    assert match_keys([crm_address]) == ([key] if key else [])
