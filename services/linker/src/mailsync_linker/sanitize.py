"""Mail HTML made safe for the conversation view: scripts, event handlers and remote content
neutralised, our own tracking pixels removed (R24: a sender reading their own mail in the CRM
must never count as an open).

Invariants of `sanitize_html`'s output, whatever the input:
- only the elements and attributes listed here survive: no script, style, iframe, object,
  embed, form, meta, base or link element, no `on*` handler, no `id` or `class` (mail must
  not reach the page's own scripts and styles);
- every link is an absolute http, https or mailto URL, opened in a new browsing context with
  `rel="noopener noreferrer nofollow"`; no attribute value is a javascript:/vbscript: URL, in
  any casing or encoding (values are compared after the HTML parser resolved entities and
  after the URL parser's tab/newline stripping);
- nothing is fetched when it is shown: an `<img>` keeps a `src` only when it is an inline
  image (`cid:` rewritten through `inline_image_url`) or a `data:` raster image; a remote
  image's URL moves to `data-remote-src`, a remote table background's to
  `data-remote-background`, so a view can offer "show remote images"; `srcset` is dropped;
  inline styles keep only formatting declarations without any function but colours (no
  `url()`, `image-set()`, `expression()`), and no escapes or comments that could spell one;
- an image that would request `tracking_base_url` + `/o/...` (scheme and host compared
  case-insensitively, entities and percent-escapes resolved) is removed with its element,
  and appears nowhere, not even as `data-remote-src`.

How: nh3 (ammonia, the html5ever parser) is the sanitizer. Its attribute filter cannot rename
an attribute, so the renaming happens between two nh3 passes, on the first pass's output,
which html5ever serializes canonically (every attribute double-quoted, `"`, `<` and `>`
escaped, no comments, no raw-text element), so a tag is exactly a match of `_START_TAG`. The
second pass is the gate: it re-applies every rule above and lets an `<img src>` through only
if it is one of the inline URLs or a `data:` image, so a renaming that went wrong could cost
an image, never leak a request.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from html import unescape
from urllib.parse import unquote, urlsplit

import nh3

_TAGS = (nh3.ALLOWED_TAGS - {"area", "map"}) | {
    "address",
    "big",
    "font",
    "main",
    "section",
    "tfoot",
}
# Removed with everything inside them: their content is code, a document title, or fallback
# markup that was never meant to be shown next to the body.
_CLEAN_CONTENT_TAGS = {
    "applet",
    "iframe",
    "math",
    "noembed",
    "noframes",
    "noscript",
    "object",
    "script",
    "select",
    "style",
    "svg",
    "template",
    "textarea",
    "title",
    "xmp",
}
_CELL = {"width", "height", "valign", "bgcolor", "background", "colspan", "rowspan", "nowrap"}
_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"style", "dir", "lang", "title", "align"},
    "a": {"href", "hreflang"},
    "img": {"src", "alt", "width", "height", "border", "hspace", "vspace"},
    "font": {"color", "face", "size"},
    "table": {"width", "height", "border", "cellpadding", "cellspacing", "bgcolor", "background"},
    "tr": {"valign", "bgcolor", "background", "height"},
    "td": _CELL | {"headers"},
    "th": _CELL | {"headers", "scope"},
    "thead": {"valign"},
    "tbody": {"valign"},
    "tfoot": {"valign"},
    "col": {"span", "width", "valign"},
    "colgroup": {"span", "width", "valign"},
    "ol": {"start", "type", "reversed"},
    "ul": {"type"},
    "li": {"value", "type"},
    "hr": {"width", "size", "noshade", "color"},
    "blockquote": {"type"},  # Thunderbird and Apple Mail mark quoted replies type="cite"
    "bdo": {"dir"},
    "time": {"datetime"},
    "del": {"datetime"},
    "ins": {"datetime"},
    "data": {"value"},
}
_REMOTE_ATTRIBUTES = {"src": "data-remote-src", "background": "data-remote-background"}
_GATE_ATTRIBUTES: dict[str, set[str]] = {
    tag: names | {_REMOTE_ATTRIBUTES[name] for name in names if name in _REMOTE_ATTRIBUTES}
    for tag, names in _ATTRIBUTES.items()
}
# The URL schemes nh3 lets reach the attribute filter, which then decides per attribute;
# relative URLs reach it too (nh3 passes them through) and are refused there.
_URL_SCHEMES = {"http", "https", "mailto", "cid", "data"}
_LINK_SCHEMES = ("http:", "https:", "mailto:")
_LINK_REL = "noopener noreferrer nofollow"
_OPEN_IN_NEW_CONTEXT = {"a": {"target": "_blank"}}

# WHATWG URL parsing removes ASCII tab and newline anywhere and C0 controls and spaces at
# either end: "java\tscript:" is javascript:.
_URL_NOISE = re.compile(r"[\t\n\r]")
_URL_EDGES = "".join(map(chr, range(0x21)))
_SCRIPT_SCHEME = re.compile(r"(?:java|vb|live)script:|data:text/html", re.IGNORECASE)
_RASTER_DATA_URL = re.compile(
    r"data:image/(?:png|gif|jpe?g|pjpeg|webp|avif|bmp|x-icon|vnd\.microsoft\.icon)[;,]",
    re.IGNORECASE,
)

# Inline style: formatting properties only. A value may use colour functions and nothing
# else: no url(), image-set(), expression(); no backslash (CSS escapes spell `\75rl(`) and no
# comment (`exp/**/ression(` in old IE).
_STYLE_PROPERTY_PREFIXES = ("font", "text-", "border", "margin", "padding", "background")
_STYLE_PROPERTIES = frozenset(
    {
        "color",
        "width",
        "height",
        "max-width",
        "min-width",
        "max-height",
        "min-height",
        "line-height",
        "letter-spacing",
        "word-spacing",
        "white-space",
        "vertical-align",
        "display",
        "float",
        "clear",
        "direction",
        "unicode-bidi",
        "table-layout",
        "border-collapse",
        "border-spacing",
        "caption-side",
        "empty-cells",
        "list-style",
        "list-style-type",
        "list-style-position",
        "overflow-wrap",
        "word-wrap",
        "word-break",
        "opacity",
    }
)
_STYLE_PROPERTY_NAME = re.compile(r"-?[a-z][a-z-]*")
_STYLE_COLOUR_FUNCTION = re.compile(r"\b(?:rgba?|hsla?)\(", re.IGNORECASE)
_STYLE_VALUE = re.compile(r"[\w\s#%.,!'\"/+\-]*")

# A start tag as html5ever serializes it (see the module docstring).
_START_TAG = re.compile(r'<([a-z][a-z0-9]*)((?: [a-z][a-z0-9-]*="[^"]*")*)>')
_ATTRIBUTE = re.compile(r' ([a-z][a-z0-9-]*)="([^"]*)"')


def sanitize_html(
    html: str,
    *,
    tracking_base_url: str | None,
    inline_image_url: Callable[[str], str | None] | None = None,
) -> str:
    """`html` (a mail's text/html body) as markup a browser may show inside the CRM: see the
    module docstring for what it guarantees. `tracking_base_url` is the tracking service's
    public base URL, whose open pixels are removed; `inline_image_url` maps a `cid:` image's
    Content-ID to the URL that serves that attachment (None, or no function: the image is
    dropped)."""
    policy = _Policy(tracking_base_url, inline_image_url)
    first = nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags=_CLEAN_CONTENT_TAGS,
        attributes=_ATTRIBUTES,
        attribute_filter=policy.first_pass,
        strip_comments=True,
        link_rel=_LINK_REL,
        set_tag_attribute_values=_OPEN_IN_NEW_CONTEXT,
        url_schemes=_URL_SCHEMES,
    )
    return nh3.clean(
        _START_TAG.sub(policy.neutralise_tag, first),
        tags=_TAGS,
        clean_content_tags=_CLEAN_CONTENT_TAGS,
        attributes=_GATE_ATTRIBUTES,
        attribute_filter=policy.gate,
        strip_comments=True,
        link_rel=_LINK_REL,
        set_tag_attribute_values=_OPEN_IN_NEW_CONTEXT,
        url_schemes=_URL_SCHEMES,
    )


class _Policy:
    """The attribute rules of one `sanitize_html` call; it remembers the inline image URLs it
    handed out so that the gate can tell them from remote ones."""

    def __init__(
        self, tracking_base_url: str | None, inline_image_url: Callable[[str], str | None] | None
    ) -> None:
        self._pixel_prefix = _pixel_prefix(tracking_base_url) if tracking_base_url else None
        self._inline_image_url = inline_image_url
        self._inline_urls: set[str] = set()

    def first_pass(self, tag: str, name: str, value: str) -> str | None:
        if name == "src":
            return self._first_pass_source(value) if tag == "img" else None
        if name == "background":
            url = _remote_url(value)
            return url if url is not None and not self._is_pixel(url) else None
        return self._common(tag, name, value)

    def gate(self, tag: str, name: str, value: str) -> str | None:
        if name == "src":
            if tag == "img" and (value in self._inline_urls or _RASTER_DATA_URL.match(value)):
                return value
            return None
        if name in _REMOTE_ATTRIBUTES.values():
            url = _remote_url(value)
            return url if url is not None and not self._is_pixel(url) else None
        if name in _REMOTE_ATTRIBUTES:
            return None  # still a fetching attribute after the renaming: never let it through
        return self._common(tag, name, value)

    def neutralise_tag(self, match: re.Match[str]) -> str:
        """One start tag of the first pass's output with its remote URLs moved out of the
        attributes that fetch them; an image left with nothing to show (an unknown cid, a
        tracking pixel, an unsafe source) is removed."""
        tag, attributes = match.group(1), match.group(2)
        renamed: list[str] = []
        showable = False
        for name, escaped in _ATTRIBUTE.findall(attributes):
            value = unescape(escaped)
            if (
                name in _REMOTE_ATTRIBUTES
                and value not in self._inline_urls
                and _remote_url(value) is not None
            ):
                name = _REMOTE_ATTRIBUTES[name]
            showable = showable or name in ("src", "data-remote-src")
            renamed.append(f' {name}="{escaped}"')
        if tag == "img" and not showable:
            return ""
        return f"<{tag}{''.join(renamed)}>"

    def _first_pass_source(self, value: str) -> str | None:
        url = _remote_url(value)
        if url is not None:
            return None if self._is_pixel(url) else url
        text = _url_text(value)
        if text[:4].lower() == "cid:":
            # RFC 2392: a cid URL is the Content-ID without its angle brackets, %-encoded.
            content_id = unquote(text[4:]).strip().strip("<>")
            found = self._inline_image_url(content_id) if self._inline_image_url else None
            if found is None or _SCRIPT_SCHEME.match(_url_text(found)):
                return None
            self._inline_urls.add(found)
            return found
        return text if _RASTER_DATA_URL.match(text) else None

    def _common(self, tag: str, name: str, value: str) -> str | None:
        if name == "href":
            text = _url_text(value)
            return text if text.lower().startswith(_LINK_SCHEMES) else None
        if name == "style":
            return _safe_style(value)
        if _SCRIPT_SCHEME.match(_url_text(value)):
            return None
        return value

    def _is_pixel(self, url: str) -> bool:
        if self._pixel_prefix is None:
            return False
        location = _location(url)
        return location is not None and location.startswith(self._pixel_prefix)


def _url_text(value: str) -> str:
    return _URL_NOISE.sub("", value).strip(_URL_EDGES)


def _remote_url(value: str) -> str | None:
    """The URL a browser would fetch from another host, or None: http(s) and scheme-relative
    URLs (WHATWG reads `\\\\host` as `//host` for special schemes)."""
    text = _url_text(value).replace("\\", "/")
    lowered = text[:8].lower()
    if lowered.startswith(("http://", "https://")) or text.startswith("//"):
        return text
    return None


def _location(url: str) -> str | None:
    """`host[:port]/path` of an http(s) or scheme-relative URL, in the form a server routes
    it: host lowercased without a trailing dot or default port, path %-decoded and without
    dot segments."""
    try:
        parts = urlsplit(url if not url.startswith("//") else "https:" + url)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").rstrip(".")
    if not host or parts.scheme not in ("http", "https"):
        return None
    if port is not None and port not in (80, 443):
        host = f"{host}:{port}"
    # Dot segments, also %-encoded ones, are resolved before the request is sent (WHATWG).
    path = posixpath.normpath(unquote(parts.path)) if parts.path else "/"
    return host + path


def _pixel_prefix(tracking_base_url: str) -> str | None:
    """What every open-pixel URL of the tracking service starts with, as `_location` gives
    it: the route `GET /o/{token}` under the base URL."""
    base = _location(tracking_base_url.rstrip("/"))
    return None if base is None else base.rstrip("/") + "/o/"


def _safe_style(value: str) -> str | None:
    kept: list[str] = []
    for declaration in value.split(";"):
        name, colon, declared = declaration.partition(":")
        name = name.strip().lower()
        declared = declared.strip()
        if not colon or not declared or not _STYLE_PROPERTY_NAME.fullmatch(name):
            continue
        if name not in _STYLE_PROPERTIES and not name.startswith(_STYLE_PROPERTY_PREFIXES):
            continue
        without_colours = _STYLE_COLOUR_FUNCTION.sub(" ", declared).replace(")", " ")
        if "(" in without_colours or not _STYLE_VALUE.fullmatch(without_colours):
            continue
        kept.append(f"{name}: {declared}")
    return "; ".join(kept) or None
