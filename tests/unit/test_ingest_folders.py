"""Folders (R6 sync scope, R8 moves are not deletes): reading LIST responses as aioimaplib hands
them over, modified UTF-7 names (RFC 3501 §5.1.3), folder roles (RFC 6154 and common names in
several languages), which folders a scope syncs and in what order, and where a message that
left a folder may have gone."""

from __future__ import annotations

import pytest

from mailsync_contracts import SyncScope
from mailsync_contracts.ingested import FolderRole
from mailsync_ingest.folders import (
    Folder,
    decode_mutf7,
    encode_mutf7,
    folder_role,
    folders_a_message_can_move_to,
    folders_to_sync,
    parse_list_response,
)
from mailsync_ingest.presets import FolderConventions, preset_by_name

# `(await client.list('""', '"*"')).lines` from the devstack's Dovecot 2.3.19 through
# aioimaplib 2.0.3, captured after CREATE-ing the folders below (names encoded with
# `encode_mutf7`). Note what aioimaplib does to them: "* LIST " is gone from every line, a
# literal's octets are the element after its `{n}` line, and every "* " inside a line is removed
# too, so the folder created as "Stars * here" is listed as "Stars here".
DOVECOT_LIST_LINES: list[bytes | bytearray] = [
    b'(\\Noselect \\HasChildren) "/" "(\\\\Sent) \\""',
    b'(\\HasNoChildren) "/" {18}',
    bytearray(b'(\\Sent) "/" "Sent"'),
    b'(\\HasNoChildren) "/" "Sent Items"',
    b'(\\HasNoChildren) "/" "Junk E-mail"',
    b'(\\HasNoChildren) "/" "Deleted Items"',
    b'(\\HasNoChildren) "/" "NIL"',
    b'(\\HasNoChildren) "/" "&ANw-n&AO8-c&APY-d&AOk- &AMQ-mter"',
    b'(\\HasChildren) "/" [Gmail]',
    b'(\\HasNoChildren) "/" "[Gmail]/Sent Mail"',
    b'(\\Noselect \\HasChildren) "/" Deals',
    b'(\\HasNoChildren) "/" Deals/Gr&APYA3w-e',
    b'(\\HasNoChildren) "/" "Stars here"',
    b'(\\HasNoChildren) "/" {11}',
    bytearray(b'q"u"o"t"e"s'),
    b'(\\HasNoChildren) "/" "Back\\\\slash"',
    b'(\\HasNoChildren) "/" "Say \\"Hi\\""',
    b'(\\HasNoChildren) "/" "With Space"',
    b'(\\HasNoChildren) "/" "Kunden &- Partner"',
    b'(\\HasChildren \\Archive) "/" Archive',
    b'(\\HasChildren) "/" Archive/2024',
    b'(\\HasNoChildren) "/" "Archive/2024/Q1 Deals"',
    b'(\\HasNoChildren) "/" &ZeVnLIqe-',
    b'(\\HasNoChildren) "/" &BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-',
    b'(\\HasNoChildren) "/" &XfJT0ZAB-',
    b'(\\HasNoChildren) "/" INBOX/Clients',
    b'(\\HasNoChildren) "/" Envoy&AOk-s',
    b'(\\HasNoChildren) "/" Gesendet',
    b'(\\HasNoChildren \\Sent) "/" Sent',
    b'(\\HasNoChildren \\Trash) "/" Trash',
    b'(\\HasNoChildren \\Drafts) "/" Drafts',
    b'(\\HasNoChildren \\Junk) "/" Junk',
    b'(\\HasChildren) "/" INBOX',
    b"List completed (0.001 + 0.000 secs).",
]

# Gmail's LIST as Gmail is commonly shown to answer it (written here, not captured): labels
# are folders under "/", the special ones under the \Noselect "[Gmail]".
GMAIL_LIST_LINES: list[bytes | bytearray] = [
    b'(\\HasNoChildren) "/" "INBOX"',
    b'(\\HasNoChildren) "/" "Deals 2025"',
    b'(\\HasChildren \\Noselect) "/" "[Gmail]"',
    b'(\\All \\HasNoChildren) "/" "[Gmail]/All Mail"',
    b'(\\Drafts \\HasNoChildren) "/" "[Gmail]/Drafts"',
    b'(\\HasNoChildren \\Important) "/" "[Gmail]/Important"',
    b'(\\HasNoChildren \\Sent) "/" "[Gmail]/Sent Mail"',
    b'(\\HasNoChildren \\Junk) "/" "[Gmail]/Spam"',
    b'(\\Flagged \\HasNoChildren) "/" "[Gmail]/Starred"',
    b'(\\HasNoChildren \\Trash) "/" "[Gmail]/Trash"',
    b"Success",
]

# A server with "." as the hierarchy delimiter and every folder under INBOX (Courier-style).
DOTTED_LIST_LINES: list[bytes | bytearray] = [
    b'(\\HasChildren) "." "INBOX"',
    b'(\\HasNoChildren) "." "INBOX.Sent"',
    b'(\\HasNoChildren) "." "INBOX.Trash"',
    b'(\\HasChildren) "." "INBOX.Archive"',
    b'(\\HasNoChildren) "." "INBOX.Archive.2024"',
    b"LIST completed",
]

DOVECOT = parse_list_response(DOVECOT_LIST_LINES)
GMAIL = parse_list_response(GMAIL_LIST_LINES)
DOTTED = parse_list_response(DOTTED_LIST_LINES)


def by_name(folders: list[Folder], name: str) -> Folder:
    return next(folder for folder in folders if folder.name == name)


def display_names(folders: list[Folder]) -> list[str]:
    return [folder.display_name for folder in folders]


def conventions_of(provider: str) -> FolderConventions:
    preset = preset_by_name(provider)
    assert preset is not None
    return preset.folders


# (server name, display name, role, selectable), in the server's order.
DOVECOT_FOLDERS: list[tuple[str, str, FolderRole, bool]] = [
    ('(\\Sent) "', '(\\Sent) "', "other", False),
    ('(\\Sent) "/" "Sent"', '(\\Sent) "/" "Sent"', "other", True),
    ("Sent Items", "Sent Items", "sent", True),
    ("Junk E-mail", "Junk E-mail", "junk", True),
    ("Deleted Items", "Deleted Items", "trash", True),
    ("NIL", "NIL", "other", True),
    ("&ANw-n&AO8-c&APY-d&AOk- &AMQ-mter", "Ünïcödé Ämter", "other", True),
    ("[Gmail]", "[Gmail]", "other", True),
    ("[Gmail]/Sent Mail", "[Gmail]/Sent Mail", "sent", True),
    ("Deals", "Deals", "other", False),
    ("Deals/Gr&APYA3w-e", "Deals/Größe", "other", True),
    ("Stars here", "Stars here", "other", True),
    ('q"u"o"t"e"s', 'q"u"o"t"e"s', "other", True),
    ("Back\\slash", "Back\\slash", "other", True),
    ('Say "Hi"', 'Say "Hi"', "other", True),
    ("With Space", "With Space", "other", True),
    ("Kunden &- Partner", "Kunden & Partner", "other", True),
    ("Archive", "Archive", "archive", True),
    ("Archive/2024", "Archive/2024", "other", True),
    ("Archive/2024/Q1 Deals", "Archive/2024/Q1 Deals", "other", True),
    ("&ZeVnLIqe-", "日本語", "other", True),
    ("&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-", "Отправленные", "sent", True),
    ("&XfJT0ZAB-", "已发送", "sent", True),
    ("INBOX/Clients", "INBOX/Clients", "other", True),
    ("Envoy&AOk-s", "Envoyés", "sent", True),
    ("Gesendet", "Gesendet", "sent", True),
    ("Sent", "Sent", "sent", True),
    ("Trash", "Trash", "trash", True),
    ("Drafts", "Drafts", "drafts", True),
    ("Junk", "Junk", "junk", True),
    ("INBOX", "INBOX", "inbox", True),
]


def test_r6_every_folder_dovecot_lists_is_read_once_in_the_servers_order() -> None:
    # The literal's octets and the completion text are not folders of their own.
    assert [folder.name for folder in DOVECOT] == [row[0] for row in DOVECOT_FOLDERS]


@pytest.mark.parametrize(("name", "display_name", "role", "selectable"), DOVECOT_FOLDERS)
def test_r6_dovecot_folders_have_their_server_name_display_name_and_role(
    name: str, display_name: str, role: FolderRole, selectable: bool
) -> None:
    folder = by_name(DOVECOT, name)
    assert folder.display_name == display_name
    assert folder.role == role
    assert folder.selectable is selectable
    assert folder.delimiter == "/"


def test_r6_attributes_are_kept_lower_cased() -> None:
    assert by_name(DOVECOT, "Deals").attributes == frozenset({"\\noselect", "\\haschildren"})
    assert by_name(DOVECOT, "Archive").attributes == frozenset({"\\haschildren", "\\archive"})


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        pytest.param(
            [b'LIST (\\HasNoChildren) "/" INBOX', b"done"],
            [("INBOX", "/", frozenset({"\\hasnochildren"}))],
            id="with the LIST keyword still in front",
        ),
        pytest.param(
            [b"(\\Noinferiors) NIL INBOX", b"done"],
            [("INBOX", None, frozenset({"\\noinferiors"}))],
            id="NIL delimiter: a flat mailbox",
        ),
        pytest.param(
            [b'() "\\\\" "Projects\\\\Acme"', b"done"],
            [("Projects\\Acme", "\\", frozenset())],
            id="backslash as the delimiter",
        ),
        pytest.param(
            [b'(\\HasNoChildren) "/" "Deals" ("CHILDINFO" ("SUBSCRIBED"))', b"done"],
            [("Deals", "/", frozenset({"\\hasnochildren"}))],
            id="RFC 5258 extended data after the name",
        ),
        pytest.param(
            [b'(\\HasNoChildren) "/" {5}', bytearray(b"Deals"), b"done"],
            [("Deals", "/", frozenset({"\\hasnochildren"}))],
            id="a literal name in the last response",
        ),
        pytest.param(
            [
                b'() "/" "Gesendete Elemente"',
                b'() "/" "\xe5\xb7\xb2\xe5\x8f\x91\xe9\x80\x81"',
                b"ok",
            ],
            [("Gesendete Elemente", "/", frozenset()), ("已发送", "/", frozenset())],
            id="RFC 6855 UTF-8 names",
        ),
    ],
)
def test_r6_list_lines_in_every_form_rfc_3501_allows_are_read(
    lines: list[bytes | bytearray], expected: list[tuple[str, str | None, frozenset[str]]]
) -> None:
    folders = parse_list_response(lines)
    assert [(f.name, f.delimiter, f.attributes) for f in folders] == expected


@pytest.mark.parametrize(
    "unreadable",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"STATUS INBOX (MESSAGES 3)", id="other untagged data"),
        pytest.param(b'(\\HasNoChildren) "/"', id="no name"),
        pytest.param(b'(\\HasNoChildren "/" INBOX', id="unclosed attributes"),
        pytest.param(b'(\\HasNoChildren) "/" "unterminated', id="unterminated quote"),
        pytest.param(b'(\\HasNoChildren) "//" INBOX', id="two-character delimiter"),
        pytest.param(b'(\\HasNoChildren) "/" "\xff\xfe"', id="8-bit name that is not UTF-8"),
        pytest.param(b'(\\HasNoChildren) "/" Half"quoted', id="quote inside an atom"),
    ],
)
def test_r6_an_unreadable_line_is_skipped_and_the_others_still_count(unreadable: bytes) -> None:
    lines: list[bytes | bytearray] = [unreadable, b'(\\HasNoChildren) "/" Sent', b"done"]
    assert [folder.name for folder in parse_list_response(lines)] == ["Sent"]


def test_r6_a_literal_of_the_wrong_size_is_skipped_with_its_octets() -> None:
    lines: list[bytes | bytearray] = [
        b'(\\HasNoChildren) "/" {7}',
        bytearray(b'() "/" Sent'),
        b'(\\HasNoChildren) "/" INBOX',
        b"done",
    ]
    assert [folder.name for folder in parse_list_response(lines)] == ["INBOX"]


def test_r6_a_literal_that_never_came_is_skipped() -> None:
    lines: list[bytes | bytearray] = [b'(\\HasNoChildren) "/" Sent', b'() "/" {9}', b"done"]
    assert [folder.name for folder in parse_list_response(lines)] == ["Sent"]


def test_r6_the_tagged_completion_text_is_never_a_folder() -> None:
    assert parse_list_response([b'(\\HasNoChildren) "/" Sent']) == []
    assert parse_list_response([]) == []


@pytest.mark.parametrize(
    ("display_name", "modified_utf7"),
    [
        ("日本語", "&ZeVnLIqe-"),
        ("é", "&AOk-"),
        ("&", "&-"),
        ("Kunden & Partner", "Kunden &- Partner"),
        ("Envoyés", "Envoy&AOk-s"),
        ("Deals/Größe", "Deals/Gr&APYA3w-e"),
        ("Ünïcödé Ämter", "&ANw-n&AO8-c&APY-d&AOk- &AMQ-mter"),
        ("Отправленные", "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"),
        ("已发送", "&XfJT0ZAB-"),
        # RFC 3501 §5.1.3's own example.
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("Deals 📧", "Deals &2D3c5w-"),
        ("Tab\there", "Tab&AAk-here"),
        ("Plain ASCII [Gmail]/Sent Mail", "Plain ASCII [Gmail]/Sent Mail"),
        ("", ""),
    ],
)
def test_r6_modified_utf7_names_round_trip(display_name: str, modified_utf7: str) -> None:
    assert encode_mutf7(display_name) == modified_utf7
    assert decode_mutf7(modified_utf7) == display_name


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("&AOk", id="no closing dash"),
        pytest.param("&A-", id="not whole base64"),
        pytest.param("&AO-", id="odd number of bytes"),
        pytest.param("&2D0-", id="lone surrogate"),
        pytest.param("Gesendete Elemente", id="plain ASCII"),
        pytest.param("已发送", id="already Unicode"),
    ],
)
def test_r6_a_name_that_is_not_valid_modified_utf7_is_kept_as_written(name: str) -> None:
    assert decode_mutf7(name) == name


# (display name, role): what servers without SPECIAL-USE call their folders.
COMMON_NAMES: list[tuple[str, FolderRole]] = [
    ("Sent", "sent"),
    ("Sent Items", "sent"),
    ("Sent Mail", "sent"),
    ("Sent Messages", "sent"),
    ("Gesendet", "sent"),
    ("Gesendete Elemente", "sent"),
    ("Gesendete Objekte", "sent"),
    ("Envoyés", "sent"),
    ("Éléments envoyés", "sent"),
    ("Enviados", "sent"),
    ("Inviati", "sent"),
    ("Posta inviata", "sent"),
    ("Verzonden", "sent"),
    ("Verzonden items", "sent"),
    ("Wysłane", "sent"),
    ("Отправленные", "sent"),
    ("已发送", "sent"),
    ("已發送", "sent"),
    ("寄件備份", "sent"),
    ("送信済み", "sent"),
    ("送信済みアイテム", "sent"),
    ("보낸편지함", "sent"),
    ("Skickat", "sent"),
    ("Sendt", "sent"),
    ("Lähetetyt", "sent"),
    ("Gönderilmiş Öğeler", "sent"),
    ("Trash", "trash"),
    ("Deleted", "trash"),
    ("Deleted Items", "trash"),
    ("Deleted Messages", "trash"),
    ("Bin", "trash"),
    ("Papierkorb", "trash"),
    ("Gelöschte Elemente", "trash"),
    ("Corbeille", "trash"),
    ("Éléments supprimés", "trash"),
    ("Papelera", "trash"),
    ("Cestino", "trash"),
    ("Prullenbak", "trash"),
    ("Kosz", "trash"),
    ("Корзина", "trash"),
    ("Удаленные", "trash"),
    ("已删除", "trash"),
    ("已刪除", "trash"),
    ("ゴミ箱", "trash"),
    ("휴지통", "trash"),
    ("Papperskorgen", "trash"),
    ("Drafts", "drafts"),
    ("Entwürfe", "drafts"),
    ("Brouillons", "drafts"),
    ("Borradores", "drafts"),
    ("Bozze", "drafts"),
    ("Concepten", "drafts"),
    ("Kopie robocze", "drafts"),
    ("Черновики", "drafts"),
    ("草稿", "drafts"),
    ("草稿箱", "drafts"),
    ("下書き", "drafts"),
    ("임시보관함", "drafts"),
    ("Junk", "junk"),
    ("Spam", "junk"),
    ("Junk E-mail", "junk"),
    ("Bulk Mail", "junk"),
    ("Junk-E-Mail", "junk"),
    ("Courrier indésirable", "junk"),
    ("Correo no deseado", "junk"),
    ("Posta indesiderata", "junk"),
    ("Спам", "junk"),
    ("垃圾邮件", "junk"),
    ("垃圾郵件", "junk"),
    ("迷惑メール", "junk"),
    ("Archive", "archive"),
    ("Archives", "archive"),
    ("Archiv", "archive"),
    ("Archivio", "archive"),
    ("Archivo", "archive"),
    ("Archief", "archive"),
    ("Архив", "archive"),
    ("归档", "archive"),
    ("存档", "archive"),
    ("All Mail", "all"),
    ("Alle Nachrichten", "all"),
    ("Tous les messages", "all"),
    # Case, accents, width and spacing do not matter.
    ("SENT ITEMS", "sent"),
    ("envoyes", "sent"),
    ("ELEMENTS ENVOYES", "sent"),
    ("Удалённые", "trash"),
    ("보낸 편지함", "sent"),
    ("ＳＰＡＭ", "junk"),
    ("junk e mail", "junk"),
    # Not special: left to the user.
    ("Clients", "other"),
    ("Sent to lawyer", "other"),
    ("Todos", "other"),
    ("", "other"),
]


@pytest.mark.parametrize(("display_name", "role"), COMMON_NAMES)
def test_r6_common_folder_names_in_many_languages_give_the_role(
    display_name: str, role: FolderRole
) -> None:
    assert folder_role(display_name, ()) == role


@pytest.mark.parametrize(
    ("display_name", "delimiter", "role"),
    [
        ("INBOX.Sent", ".", "sent"),
        ("INBOX/Papierkorb", "/", "trash"),
        ("[Gmail]/Sent Mail", None, "sent"),
        ("[Google Mail]/Gesendet", None, "sent"),
        ("[Google Mail]/Alle Nachrichten", "/", "all"),
        ("[Gmail]/Old/Trash", "/", "trash"),
        ("Clients/Archive", "/", "archive"),
        ("Archive/2024", "/", "other"),
        ("Clients.Sent", "/", "other"),
        ("INBOX/Clients", "/", "other"),
    ],
)
def test_r6_common_names_match_the_last_hierarchy_component(
    display_name: str, delimiter: str | None, role: FolderRole
) -> None:
    assert folder_role(display_name, (), delimiter=delimiter) == role


@pytest.mark.parametrize(
    ("display_name", "attributes", "role"),
    [
        ("Gesendet", ["\\HasNoChildren", "\\Sent"], "sent"),
        ("Trash", ["\\Sent"], "sent"),
        ("Stuff", ["\\SENT"], "sent"),
        ("Papierkorb", ["\\Trash"], "trash"),
        ("Entwürfe", ["\\Drafts"], "drafts"),
        ("Spam", ["\\Junk"], "junk"),
        ("Old Mail", ["\\Archive"], "archive"),
        ("[Gmail]/All Mail", ["\\All"], "all"),
        ("[Gmail]/Starred", ["\\Flagged"], "other"),
        ("Sent", ["\\Flagged"], "other"),
        ("[Gmail]/Important", ["\\Important"], "other"),
        ("Both", ["\\Archive", "\\Trash"], "trash"),
        # Gmail's older XLIST spellings.
        ("[Gmail]/Spam", ["\\Spam"], "junk"),
        ("[Gmail]/All Mail", ["\\AllMail"], "all"),
        ("Posteingang", ["\\Inbox"], "inbox"),
        # RFC 3501 §5.1: INBOX in any case.
        ("INBOX", [], "inbox"),
        ("Inbox", [], "inbox"),
        ("inbox", ["\\HasChildren"], "inbox"),
    ],
)
def test_r6_special_use_attributes_win_then_inbox(
    display_name: str, attributes: list[str], role: FolderRole
) -> None:
    assert folder_role(display_name, attributes) == role


@pytest.mark.parametrize(
    ("display_name", "attributes", "conventions", "role"),
    [
        ("Outbox Copies", [], FolderConventions(sent="Outbox Copies"), "sent"),
        ("Bin Bag", [], FolderConventions(trash="Bin Bag"), "trash"),
        ("Kept", [], FolderConventions(archive="Kept"), "archive"),
        ("Everything", [], FolderConventions(all_mail="Everything"), "all"),
        # The provider's word beats the common names, attributes beat the provider.
        ("All Mail", [], FolderConventions(archive="All Mail"), "archive"),
        ("Kept", ["\\Trash"], FolderConventions(archive="Kept"), "trash"),
        ("INBOX", [], FolderConventions(archive="INBOX"), "inbox"),
        ("Отправленные", [], conventions_of("mail.ru"), "sent"),
        ("Sent Items", [], conventions_of("outlook"), "sent"),
        ("Deleted Items", [], conventions_of("outlook"), "trash"),
        ("[Gmail]/All Mail", [], conventions_of("gmail"), "all"),
    ],
)
def test_r6_provider_conventions_name_folders_the_server_does_not_mark(
    display_name: str, attributes: list[str], conventions: FolderConventions, role: FolderRole
) -> None:
    assert folder_role(display_name, attributes, conventions) == role


def test_r6_list_parsing_uses_the_provider_conventions() -> None:
    lines: list[bytes | bytearray] = [b'(\\HasNoChildren) "/" "Kept"', b"done"]
    (folder,) = parse_list_response(lines, FolderConventions(archive="Kept"))
    assert folder.role == "archive"


def test_r6_scope_all_syncs_every_kept_folder_inbox_first_then_sent_then_by_name() -> None:
    chosen = folders_to_sync(DOVECOT, SyncScope(mode="all"))
    assert display_names(chosen) == [
        "INBOX",
        "[Gmail]/Sent Mail",
        "Envoyés",
        "Gesendet",
        "Sent",
        "Sent Items",
        "Отправленные",
        "已发送",
        '(\\Sent) "/" "Sent"',
        "[Gmail]",
        "Archive",
        "Archive/2024",
        "Archive/2024/Q1 Deals",
        "Back\\slash",
        "Deals/Größe",
        "INBOX/Clients",
        "Kunden & Partner",
        "NIL",
        'q"u"o"t"e"s',
        'Say "Hi"',
        "Stars here",
        "With Space",
        "Ünïcödé Ämter",
        "日本語",
    ]


def test_r6_scope_all_on_gmail_syncs_all_mail_and_labels_but_not_trash_spam_or_drafts() -> None:
    chosen = folders_to_sync(GMAIL, SyncScope(mode="all"))
    assert display_names(chosen) == [
        "INBOX",
        "[Gmail]/Sent Mail",
        "[Gmail]/All Mail",
        "[Gmail]/Important",
        "[Gmail]/Starred",
        "Deals 2025",
    ]


@pytest.mark.parametrize(
    ("folders", "chosen_names", "synced"),
    [
        pytest.param(DOVECOT, ("inbox",), ["INBOX"], id="INBOX in any case"),
        pytest.param(DOVECOT, ("Inbox", "Sent"), ["INBOX", "Sent"], id="inbox then sent"),
        pytest.param(
            DOVECOT, ("Gesendet", "Archive", "INBOX"), ["INBOX", "Gesendet", "Archive"], id="order"
        ),
        pytest.param(DOVECOT, ("日本語",), ["日本語"], id="by display name"),
        pytest.param(DOVECOT, ("&ZeVnLIqe-",), ["日本語"], id="by server name"),
        pytest.param(DOVECOT, ("Archive/2024",), ["Archive/2024"], id="hierarchy with /"),
        pytest.param(DOVECOT, ("Archive.2024",), ["Archive/2024"], id="hierarchy with ."),
        pytest.param(DOVECOT, ("Trash",), ["Trash"], id="trash when the user asks for it"),
        pytest.param(DOVECOT, ("Deals",), [], id="a folder that cannot be selected"),
        pytest.param(DOVECOT, ("archive", "sent items"), [], id="other names are exact"),
        pytest.param(DOVECOT, ("Nowhere",), [], id="a folder that is not there"),
        pytest.param(DOTTED, ("INBOX/Archive/2024",), ["INBOX.Archive.2024"], id="/ on a . server"),
        pytest.param(DOTTED, ("INBOX.Archive.2024",), ["INBOX.Archive.2024"], id=". on a . server"),
        pytest.param(GMAIL, ("Deals 2025", "[Gmail]/All Mail"), ["[Gmail]/All Mail", "Deals 2025"]),
    ],
)
def test_r6_scope_folders_syncs_exactly_the_chosen_folders(
    folders: list[Folder], chosen_names: tuple[str, ...], synced: list[str]
) -> None:
    chosen = folders_to_sync(folders, SyncScope(mode="folders", folders=chosen_names))
    assert display_names(chosen) == synced


def test_r6_dotted_servers_find_sent_and_trash_under_inbox() -> None:
    roles = {folder.name: folder.role for folder in DOTTED}
    assert roles == {
        "INBOX": "inbox",
        "INBOX.Sent": "sent",
        "INBOX.Trash": "trash",
        "INBOX.Archive": "archive",
        "INBOX.Archive.2024": "other",
    }


@pytest.mark.parametrize(
    ("folders", "left", "destinations"),
    [
        pytest.param(
            GMAIL,
            "INBOX",
            ["[Gmail]/All Mail", "[Gmail]/Important", "[Gmail]/Sent Mail", "[Gmail]/Starred",
             "Deals 2025"],
            id="gmail archive leaves the message in All Mail",
        ),
        pytest.param(
            DOTTED,
            "INBOX",
            ["INBOX.Archive", "INBOX.Archive.2024", "INBOX.Sent"],
            id="archive folder first",
        ),
        pytest.param(
            DOTTED,
            "INBOX.Archive",
            ["INBOX", "INBOX.Archive.2024", "INBOX.Sent"],
            id="back to the inbox",
        ),
        pytest.param(
            GMAIL,
            "[Gmail]/Trash",
            ["[Gmail]/All Mail", "[Gmail]/Important", "[Gmail]/Sent Mail", "[Gmail]/Starred",
             "Deals 2025", "INBOX"],
            id="restored from trash",
        ),
    ],
)  # fmt: skip
def test_r8_a_message_that_left_a_folder_is_looked_for_where_kept_mail_lives(
    folders: list[Folder], left: str, destinations: list[str]
) -> None:
    candidates = folders_a_message_can_move_to(folders, by_name(folders, left))
    assert [folder.name for folder in candidates] == destinations


def test_r8_trash_junk_drafts_and_unselectable_folders_are_never_move_destinations() -> None:
    candidates = folders_a_message_can_move_to(DOVECOT, by_name(DOVECOT, "INBOX"))
    names = {folder.name for folder in candidates}
    assert names.isdisjoint(
        {"INBOX", "Trash", "Deleted Items", "Junk", "Junk E-mail", "Drafts", "Deals"}
    )
    assert '(\\Sent) "' not in names
    assert candidates[0].name == "Archive"
    assert len(candidates) == len(folders_to_sync(DOVECOT, SyncScope(mode="all"))) - 1
