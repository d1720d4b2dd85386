"""What the IMAP sync needs to know about a mailbox's folders: their names as the server spells
them and as people read them, what each is for, which ones the sync scope covers (R6), and where
a message that left a folder may have gone (R8).

Invariants:
- `Folder.name` is byte for byte what the server sent (modified UTF-7, RFC 3501 §5.1.3), so it
  can go back into SELECT/EXAMINE unchanged; `display_name` is its Unicode reading, used in
  events and for matching the names a user chose;
- a folder's role comes from RFC 6154 SPECIAL-USE attributes when the server announces one,
  then INBOX, then the provider's conventions, then names mail clients commonly use in several
  languages; a name a server sends is never an error, at worst a folder of role "other";
- a LIST line that cannot be read is skipped, never an exception: one odd folder must not stop
  the sync of the others.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from mailsync_contracts import SyncScope
from mailsync_contracts.ingested import FolderRole
from mailsync_ingest.presets import FolderConventions

INBOX = "INBOX"

# RFC 3501 §7.2.2 LIST response: the attributes, the hierarchy delimiter (a quoted character,
# possibly escaped, or NIL) and the name. aioimaplib 2.0 hands it over without "* LIST ";
# "LIST " is accepted too, in case a version keeps it.
_LIST_LINE = re.compile(
    rb'(?:LIST )?\((?P<attributes>[^)]*)\) (?P<delimiter>NIL|"(?:\\.|[^"\\])") (?P<name>.*)',
    re.IGNORECASE | re.DOTALL,
)
# RFC 3501 §4.3: a quoted string escapes only `"` and `\`.
_QUOTED = re.compile(rb'"(?P<text>(?:\\.|[^"\\])*)"')
_QUOTED_ESCAPE = re.compile(rb"\\(.)", re.DOTALL)
# RFC 3501 §4.3: a literal's octet count closes the line; its octets follow it.
_LITERAL = re.compile(rb"\{(?P<size>\d+)\}")
_LITERAL_AT_END = re.compile(rb"\{\d+\}\Z")
# RFC 3501 §9 ASTRING-CHAR, leniently: wildcards and 8-bit octets are let through.
_ATOM = re.compile(rb'[^\x00-\x20\x7f(){"\\]+(?= |\Z)')

# RFC 3501 §5.1.3: "&" starts a run of modified BASE64 (`,` for `/`, no padding) of UTF-16BE,
# "-" ends it; "&-" is a literal "&". Printable US-ASCII otherwise stands for itself.
_MUTF7_SHIFTED = re.compile(r"&([A-Za-z0-9+,]*)-")
_MUTF7_NEEDS_SHIFT = re.compile(r"&|[^\x20-\x7e]+")

# RFC 3501 §7.2.2 \Noselect; RFC 5258 §3 \NonExistent (which implies \Noselect).
_NOT_SELECTABLE = frozenset({"\\noselect", "\\nonexistent"})

# RFC 6154 §2 special-use attributes, most decisive first: a folder marked both \Trash and
# something else is treated as trash, so its mail is never mistaken for kept mail (R8).
# \Inbox, \AllMail and \Spam are Gmail's older XLIST spellings of the same uses; \Flagged
# (RFC 6154) and \Important (RFC 8457) are views of mail kept elsewhere, so they say "other".
_SPECIAL_USE: tuple[tuple[str, FolderRole], ...] = (
    ("\\trash", "trash"),
    ("\\junk", "junk"),
    ("\\spam", "junk"),
    ("\\drafts", "drafts"),
    ("\\sent", "sent"),
    ("\\all", "all"),
    ("\\allmail", "all"),
    ("\\archive", "archive"),
    ("\\inbox", "inbox"),
    ("\\flagged", "other"),
    ("\\important", "other"),
)

# Names mail clients and providers give their special folders, for servers that announce no
# SPECIAL-USE. Compared folded (see `_fold`) against a folder's last hierarchy component, so
# "INBOX.Sent", "[Gmail]/Sent Mail" and "[Google Mail]/Gesendet" are found too. "Todos"
# (Gmail's Spanish All Mail) is left out: it also reads as an English to-do folder.
_COMMON_NAMES: dict[FolderRole, tuple[str, ...]] = {
    "sent": (
        "Sent", "Sent Items", "Sent Mail", "Sent Messages",
        "Gesendet", "Gesendete Elemente", "Gesendete Objekte",
        "Envoyés", "Éléments envoyés", "Messages envoyés",
        "Enviados", "Elementos enviados", "Itens enviados", "E-mails enviados",
        "Inviati", "Posta inviata",
        "Verzonden", "Verzonden items", "Verzonden berichten",
        "Wysłane", "Elementy wysłane",
        "Odeslané", "Odeslaná pošta",
        "Отправленные",
        "Απεσταλμένα",
        "已发送", "已发送邮件", "已發送", "寄件備份",
        "送信済み", "送信済みアイテム", "送信済みメール",
        "보낸편지함",
        "Skickat", "Skickade objekt",
        "Sendt", "Sendt post", "Sendte elementer",
        "Lähetetyt", "Lähetetyt viestit",
        "Elküldött levelek", "Elküldött elemek",
        "Gönderilmiş Öğeler", "Gönderilmiş Postalar",
    ),
    "trash": (
        "Trash", "Deleted", "Deleted Items", "Deleted Messages", "Bin",
        "Papierkorb", "Gelöschte Elemente", "Gelöschte Objekte",
        "Corbeille", "Éléments supprimés",
        "Papelera", "Elementos eliminados", "Lixeira", "Itens excluídos",
        "Cestino", "Posta eliminata",
        "Prullenbak", "Verwijderde items",
        "Kosz", "Elementy usunięte",
        "Koš", "Odstraněná pošta",
        "Корзина", "Удаленные", "Удалённые",
        "Κάδος απορριμμάτων",
        "已删除", "已删除邮件", "已刪除", "刪除的郵件",
        "ゴミ箱", "削除済みアイテム",
        "휴지통", "지운 편지함",
        "Papperskorgen", "Borttagna objekt",
        "Papirkurv", "Slettet post", "Slettede elementer",
        "Roskakori", "Poistetut",
        "Çöp Kutusu", "Silinmiş Öğeler",
    ),
    "drafts": (
        "Drafts", "Draft",
        "Entwürfe", "Brouillons", "Borradores", "Rascunhos", "Bozze", "Concepten",
        "Kopie robocze", "Wersje robocze", "Koncepty", "Черновики", "Πρόχειρα",
        "草稿", "草稿箱", "下書き", "임시보관함",
        "Utkast", "Kladder", "Luonnokset", "Taslaklar",
    ),
    "junk": (
        "Junk", "Spam", "Junk E-mail", "Junk Mail", "Bulk Mail",
        "Courrier indésirable", "Correo no deseado", "Lixo eletrônico",
        "Posta indesiderata", "Ongewenste e-mail", "Wiadomości-śmieci", "Nevyžádaná pošta",
        "Спам", "Нежелательная почта", "Ανεπιθύμητα",
        "垃圾邮件", "垃圾郵件", "迷惑メール", "스팸함", "정크 메일",
        "Skräppost", "Uønsket e-mail", "Søppelpost", "Roskaposti", "Gereksiz E-posta",
    ),
    "archive": (
        "Archive", "Archives", "Archiv", "Archivio", "Archivo", "Arquivo", "Archief",
        "Archiwum", "Архив", "归档", "存档", "アーカイブ", "Arkiv", "Arkisto", "Arşiv",
    ),
    "all": (
        "All Mail", "Alle Nachrichten", "Tous les messages", "Tutti i messaggi",
        "Alle berichten", "Wszystkie", "Вся почта", "所有邮件", "すべてのメール", "전체보관함",
    ),
}  # fmt: skip

# Roles whose mail the user does not keep: never synced by scope "all", never where a message
# that left a folder is looked for (a message moved there was deleted, R8).
_NOT_KEPT: frozenset[FolderRole] = frozenset({"trash", "junk", "drafts"})
_LIKELY_DESTINATIONS: frozenset[FolderRole] = frozenset({"archive", "all"})
_SYNC_FIRST: dict[FolderRole, int] = {"inbox": 0, "sent": 1}

_GMAIL_PREFIXES = ("[Gmail]/", "[Google Mail]/")
_IGNORED_IN_NAMES = re.compile(r"[\s\-_]+")


@dataclass(frozen=True, slots=True)
class Folder:
    """One mailbox folder as LIST announced it."""

    name: str
    display_name: str
    delimiter: str | None
    attributes: frozenset[str]
    role: FolderRole

    @property
    def selectable(self) -> bool:
        """Whether SELECT can open it; a \\Noselect folder only holds other folders."""
        return not self.attributes & _NOT_SELECTABLE


def parse_list_response(
    lines: Sequence[bytes | bytearray], conventions: FolderConventions | None = None
) -> list[Folder]:
    """The folders in aioimaplib's `Response.lines` to `LIST "" "*"`, in the server's order.

    The last element is the tagged completion's text and is ignored. Lines that are not a
    readable LIST response (other untagged data, 8-bit names that are not UTF-8) are skipped.
    aioimaplib 2.0 removes every "* " from an untagged line, not only the leading one, so a name
    containing "* " arrives without it; no reading of the line can bring it back.
    """
    folders: list[Folder] = []
    for line, literal in _list_responses(lines[:-1]):
        folder = _folder_from_line(line, literal, conventions)
        if folder is not None:
            folders.append(folder)
    return folders


def _list_responses(untagged: Sequence[bytes | bytearray]) -> Iterator[tuple[bytes, bytes | None]]:
    """Each response line with the literal it announces, if any. aioimaplib hands a literal's
    octets over as the element after the line ending in `{size}`; they are never a line of
    their own, whatever they say (a folder may well be called `(\\Sent) "/" Sent`)."""
    remaining = iter(untagged)
    for line in remaining:
        literal = next(remaining, None) if _LITERAL_AT_END.search(line) else None
        yield bytes(line), None if literal is None else bytes(literal)


def _folder_from_line(
    line: bytes, literal: bytes | None, conventions: FolderConventions | None
) -> Folder | None:
    match = _LIST_LINE.fullmatch(line)
    if match is None:
        return None
    raw_name = _astring(match["name"], literal)
    if raw_name is None:
        return None
    try:
        name = raw_name.decode("utf-8")
    except UnicodeDecodeError:
        return None
    delimiter = _delimiter(match["delimiter"])
    attributes = frozenset(match["attributes"].decode("ascii", "replace").lower().split())
    display_name = decode_mutf7(name)
    return Folder(
        name=name,
        display_name=display_name,
        delimiter=delimiter,
        attributes=attributes,
        role=folder_role(display_name, attributes, conventions, delimiter=delimiter),
    )


def _astring(text: bytes, literal: bytes | None) -> bytes | None:
    """The mailbox name at the start of `text` (RFC 3501 §9 astring); anything after it, such
    as RFC 5258 extended data, is not needed."""
    if quoted := _QUOTED.match(text):
        return _QUOTED_ESCAPE.sub(rb"\1", quoted["text"])
    if size := _LITERAL.fullmatch(text):
        return literal if literal is not None and len(literal) == int(size["size"]) else None
    atom = _ATOM.match(text)
    return atom[0] if atom is not None else None


def _delimiter(text: bytes) -> str | None:
    if text.upper() == b"NIL":
        return None
    return _QUOTED_ESCAPE.sub(rb"\1", text[1:-1]).decode("ascii", "replace")


def decode_mutf7(name: str) -> str:
    """The Unicode reading of a modified UTF-7 folder name (RFC 3501 §5.1.3).

    A shifted run that is not valid modified BASE64 of UTF-16 is kept as written, and text that
    is already Unicode (RFC 6855 UTF8=ACCEPT servers) passes through: a name is never refused.
    """
    return _MUTF7_SHIFTED.sub(_decode_shifted, name)


def _decode_shifted(shifted: re.Match[str]) -> str:
    encoded = shifted[1]
    if not encoded:
        return "&"
    padded = encoded.replace(",", "/") + "=" * (-len(encoded) % 4)
    try:
        return base64.b64decode(padded, validate=True).decode("utf-16-be")
    except ValueError:  # binascii.Error and UnicodeDecodeError both are ValueErrors
        return shifted[0]


def encode_mutf7(name: str) -> str:
    """A Unicode folder name as an IMAP command must spell it (RFC 3501 §5.1.3)."""
    return _MUTF7_NEEDS_SHIFT.sub(_encode_shifted, name)


def _encode_shifted(run: re.Match[str]) -> str:
    if run[0] == "&":
        return "&-"
    encoded = base64.b64encode(run[0].encode("utf-16-be")).decode("ascii").rstrip("=")
    return f"&{encoded.replace('/', ',')}-"


def folder_role(
    display_name: str,
    attributes: Iterable[str],
    conventions: FolderConventions | None = None,
    *,
    delimiter: str | None = None,
) -> FolderRole:
    """What a folder is for. SPECIAL-USE attributes win (RFC 6154), INBOX is the inbox in any
    case (RFC 3501 §5.1), then the provider's conventions, then common names in several
    languages. `delimiter` lets common names match the last hierarchy component."""
    announced = _announced_role(attributes)
    if announced is not None:
        return announced
    if display_name.upper() == INBOX:
        return "inbox"
    if conventions is not None and (by_convention := _conventional_role(display_name, conventions)):
        return by_convention
    return _ROLE_OF_COMMON_NAME.get(_fold(_leaf(display_name, delimiter)), "other")


def _announced_role(attributes: Iterable[str]) -> FolderRole | None:
    present = {attribute.lower() for attribute in attributes}
    return next((role for attribute, role in _SPECIAL_USE if attribute in present), None)


def _conventional_role(display_name: str, conventions: FolderConventions) -> FolderRole | None:
    named: tuple[tuple[str | None, FolderRole], ...] = (
        (conventions.sent, "sent"),
        (conventions.trash, "trash"),
        (conventions.archive, "archive"),
        (conventions.all_mail, "all"),
    )
    folded = _fold(display_name)
    return next((role for name, role in named if name is not None and _fold(name) == folded), None)


def _leaf(display_name: str, delimiter: str | None) -> str:
    """The last hierarchy component; Gmail's "[Gmail]/" prefix is known without a delimiter."""
    for prefix in _GMAIL_PREFIXES:
        display_name = display_name.removeprefix(prefix)
    return display_name.rsplit(delimiter, 1)[-1] if delimiter else display_name


def _fold(name: str) -> str:
    """A name as people mean it: case, accents, width, spaces, hyphens and underscores do not
    matter ("Junk E-mail" is "Junk-E-Mail", "Удалённые" is "Удаленные", "보낸 편지함" is
    "보낸편지함")."""
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _IGNORED_IN_NAMES.sub("", bare).casefold()


_ROLE_OF_COMMON_NAME: dict[str, FolderRole] = {
    _fold(name): role for role, names in _COMMON_NAMES.items() for name in names
}


def folders_to_sync(folders: Sequence[Folder], scope: SyncScope) -> list[Folder]:
    """The folders R6's sync scope covers, inbox first, then sent, then by display name, so an
    initial sync makes the inbox useful first.

    Scope "all" is every selectable folder whose mail is kept (not trash, junk or drafts; Gmail's
    All Mail included, archived mail lives only there). Scope "folders" is exactly the chosen
    ones, whatever their role: the user named them.
    """
    if scope.mode == "all":
        chosen = [folder for folder in folders if folder.role not in _NOT_KEPT]
    else:
        chosen = [folder for folder in folders if _chosen_by_name(folder, scope.folders)]
    return sorted((f for f in chosen if f.selectable), key=_sync_order)


def _chosen_by_name(folder: Folder, wanted_names: Iterable[str]) -> bool:
    return any(_is_named(folder, wanted) for wanted in wanted_names)


def _is_named(folder: Folder, wanted: str) -> bool:
    """Whether a name the user chose means this folder: INBOX in any case (RFC 3501 §5.1),
    otherwise exactly its display or server name, with `/` or `.` as the hierarchy separator
    whatever the server uses."""
    if wanted.upper() == INBOX:
        return folder.name.upper() == INBOX
    if wanted in (folder.display_name, folder.name):
        return True
    if folder.delimiter is None:
        return False
    components = folder.display_name.split(folder.delimiter)
    return any(wanted.split(separator) == components for separator in "/.")


def _sync_order(folder: Folder) -> tuple[int, str, str]:
    rank = _SYNC_FIRST.get(folder.role, len(_SYNC_FIRST))
    return rank, folder.display_name.casefold(), folder.display_name


def folders_a_message_can_move_to(folders: Sequence[Folder], left: Folder) -> list[Folder]:
    """Where to look for a message that left `left` before calling it deleted (R8: a move to a
    folder whose mail is kept is not a delete). Trash, junk and drafts are not such places.
    Archive and All Mail come first: that is where mail that leaves a folder usually goes."""
    candidates = (
        folder
        for folder in folders
        if folder.selectable and folder.name != left.name and folder.role not in _NOT_KEPT
    )
    return sorted(candidates, key=_move_destination_order)


def _move_destination_order(folder: Folder) -> tuple[bool, str, str]:
    likely = folder.role in _LIKELY_DESTINATIONS
    return not likely, folder.display_name.casefold(), folder.display_name
