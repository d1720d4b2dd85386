"""The conversation view's HTML (mailsync_linker.sanitize): scripts, handlers and remote
content neutralised, our own open pixels removed (R24: the sender viewing their own mail is
never an open), ordinary mail formatting kept.

Every output here is also checked by `assert_inert`, which reads it with a second parser
(the stdlib's) and holds it to the module's invariants; a seeded fuzz test feeds it soups of
hostile fragments.
"""

from __future__ import annotations

import random
import re
from html.parser import HTMLParser

import pytest

from mailsync_linker.sanitize import sanitize_html

TRACKING = "https://track.mailsync.test"
PIXEL = f"{TRACKING}/o/eyJtIjoiMTIzIn0.c2lnbmF0dXJl"
LINK = 'target="_blank" rel="noopener noreferrer nofollow"'
INLINE_ROUTE = "/v1/messages/7f0c/attachments/{index}"
CONTENT_IDS = {"logo@northwind.test": 0, "chart@northwind.test": 1}


def inline_image_url(content_id: str) -> str | None:
    index = CONTENT_IDS.get(content_id)
    return None if index is None else INLINE_ROUTE.format(index=index)


def sanitized(markup: str, *, tracking_base_url: str | None = TRACKING) -> str:
    clean = sanitize_html(
        markup, tracking_base_url=tracking_base_url, inline_image_url=inline_image_url
    )
    assert_inert(clean)
    return clean


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


_FORBIDDEN_TAGS = {"script", "style", "iframe", "object", "embed", "form", "input", "meta"}
_FORBIDDEN_TAGS |= {"base", "link", "svg", "math", "frame", "frameset", "applet", "button"}
_INLINE_SOURCE = re.compile(r"/v1/messages/7f0c/attachments/\d+|data:image/(png|gif|jpeg);")


def assert_inert(markup: str) -> None:
    """Nothing in `markup` runs, fetches, or reaches our pixel when a browser shows it."""
    parser = _Tags()
    parser.feed(markup)
    parser.close()
    for tag, attributes in parser.tags:
        assert tag not in _FORBIDDEN_TAGS, tag
        for name, value in attributes.items():
            flat = re.sub(r"[\x00-\x20]", "", value).lower()
            assert not name.startswith("on"), (tag, name)
            if name == "src" or name.startswith("data-remote-"):
                assert "track.mailsync.test/o/" not in flat, "our open pixel survived"
            assert name not in {"id", "class", "srcset", "background", "formaction", "action"}
            assert not flat.startswith(("javascript:", "vbscript:", "livescript:")), value
            if name == "src":
                assert tag == "img"
                assert _INLINE_SOURCE.match(value), value
            if name == "href":
                assert flat.startswith(("http:", "https:", "mailto:")), value
            if name == "style":
                for spelling in ("url(", "expression", "\\", "position:", "z-index"):
                    assert spelling not in flat, value
                assert "(" not in re.sub(r"(rgba?|hsla?)\(", "", flat), value
            if name.startswith("data-remote-"):
                assert flat.startswith(("http://", "https://", "//")), value
        if tag == "a":
            assert attributes.get("target") == "_blank"
            assert attributes.get("rel") == "noopener noreferrer nofollow"


ATTACKS: dict[str, tuple[str, str]] = {
    "img onerror": ("<img src=x onerror=alert(1)>hello", "hello"),
    "svg onload": ('<svg onload=alert(1)><circle r="1"/></svg>after', "after"),
    "event handlers on ordinary tags": (
        '<p onclick="alert(1)" onmouseover="alert(2)" style="color: red">hi</p>',
        '<p style="color: red">hi</p>',
    ),
    "javascript href in odd casing": (
        '<a href="jAvAsCrIpT:alert(1)">click</a>',
        f"<a {LINK}>click</a>",
    ),
    "entity-encoded javascript href": (
        '<a href="&#106;&#x61;vascript&colon;alert(1)">click</a>',
        f"<a {LINK}>click</a>",
    ),
    "javascript href split by a tab and led by spaces": (
        '<a href="  java&#x09;script:alert(1)">click</a>',
        f"<a {LINK}>click</a>",
    ),
    "vbscript href": ('<a href="vbscript:msgbox(1)">click</a>', f"<a {LINK}>click</a>"),
    "data:text/html href": (
        '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">click</a>',
        f"<a {LINK}>click</a>",
    ),
    "javascript in a plain attribute": (
        '<p title="javascript:alert(1)">t</p>',
        "<p>t</p>",
    ),
    "style element with expression and url": (
        "<style>p { width: expression(alert(1)) } body { background: url(https://evil.test/x) }"
        "</style><p>text</p>",
        "<p>text</p>",
    ),
    "inline style expression": (
        '<p style="width: expression(alert(1)); color: red">x</p>',
        '<p style="color: red">x</p>',
    ),
    "inline style expression hidden by a comment": (
        '<p style="width: exp/**/ression(alert(1)); font-weight: bold">x</p>',
        '<p style="font-weight: bold">x</p>',
    ),
    "inline style url spelled with a css escape": (
        '<p style="background: \\75rl(https://evil.test/x); color: navy">x</p>',
        '<p style="color: navy">x</p>',
    ),
    "inline style image-set without url": (
        "<p style=\"background-image: image-set('https://evil.test/x.png' 1x)\">x</p>",
        "<p>x</p>",
    ),
    "inline style that overlays the page": (
        '<div style="position: fixed; top: 0; left: 0; z-index: 99999">log in again</div>',
        "<div>log in again</div>",
    ),
    "meta refresh": (
        '<meta http-equiv="refresh" content="0;url=https://evil.test"><p>x</p>',
        "<p>x</p>",
    ),
    "base href": (
        '<base href="https://evil.test/"><a href="https://ok.test/">x</a>',
        f'<a href="https://ok.test/" {LINK}>x</a>',
    ),
    "nested scr<script>ipt": (
        "<scr<script>ipt>alert(1)</script>",
        "ipt&gt;alert(1)",
    ),
    "iframe, object, embed and form": (
        '<iframe src="https://evil.test"></iframe><object data="x.swf">fallback</object>'
        '<embed src="x.swf"><form action="https://evil.test"><input name="pw">'
        "<button>Send</button></form>",
        "Send",
    ),
    "noscript title breakout": (
        '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
        '"&gt;',
    ),
    "mathml style mutation": (
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        "",
    ),
    "ids and classes that would reach the page": (
        '<p class="btn-danger" id="app">x</p>',
        "<p>x</p>",
    ),
}


@pytest.mark.parametrize(("markup", "expected"), ATTACKS.values(), ids=ATTACKS.keys())
def test_scripts_handlers_and_dangerous_urls_never_survive(markup: str, expected: str) -> None:
    assert sanitized(markup) == expected


REMOTE: dict[str, tuple[str, str]] = {
    "remote image": (
        '<img src="https://img.northwind.test/chart.png" alt="Chart" width="600">',
        '<img data-remote-src="https://img.northwind.test/chart.png" alt="Chart" width="600">',
    ),
    "protocol-relative image": (
        '<img src="//img.northwind.test/chart.png">',
        '<img data-remote-src="//img.northwind.test/chart.png">',
    ),
    "backslashed image (browsers read it as //)": (
        '<img src="\\\\img.northwind.test\\chart.png">',
        '<img data-remote-src="//img.northwind.test/chart.png">',
    ),
    "srcset is dropped, src kept aside": (
        '<img srcset="https://img.northwind.test/c2.png 2x" src="http://img.northwind.test/c.png">',
        '<img data-remote-src="http://img.northwind.test/c.png">',
    ),
    "table background": (
        '<table background="https://img.northwind.test/bg.png" bgcolor="#ffffff">'
        "<tr><td>x</td></tr></table>",
        '<table data-remote-background="https://img.northwind.test/bg.png" bgcolor="#ffffff">'
        "<tbody><tr><td>x</td></tr></tbody></table>",
    ),
    "style background url": (
        '<div style="background-image: url(https://img.northwind.test/bg.png); color: #333">'
        "x</div>",
        '<div style="color: #333">x</div>',
    ),
    "third-party open pixel is kept aside like any remote image": (
        '<img src="https://pixel.vendor.test/open.gif?id=1&amp;u=2" width="1" height="1">',
        '<img data-remote-src="https://pixel.vendor.test/open.gif?id=1&amp;u=2" width="1" '
        'height="1">',
    ),
    "a raster data image stays": (
        '<img src="data:image/png;base64,iVBORw0KGgo=" alt="dot">',
        '<img src="data:image/png;base64,iVBORw0KGgo=" alt="dot">',
    ),
    "an svg data image is dropped": ('<img src="data:image/svg+xml;base64,PHN2Zz4=">', ""),
    "a relative image would hit the CRM itself and is dropped": (
        '<img src="/api/v1/users/me/delete">',
        "",
    ),
}


@pytest.mark.parametrize(("markup", "expected"), REMOTE.values(), ids=REMOTE.keys())
def test_remote_content_is_kept_aside_never_fetched(markup: str, expected: str) -> None:
    assert sanitized(markup) == expected


PIXELS: dict[str, str] = {
    "as outbound writes it": f'<img src="{PIXEL}" width="1" height="1" alt="">',
    "with &amp; in its query": f'<img src="{PIXEL}?v=2&amp;r=1">',
    "uppercase scheme and host": f'<img src="{PIXEL.replace("https://track.mailsync.test", "HTTPS://TRACK.MailSync.TEST")}">',
    "entity-encoded slashes": f'<img src="{PIXEL.replace("/o/", "&#x2F;o&#47;")}">',
    "percent-encoded route": f'<img src="{PIXEL.replace("/o/", "/%6F/")}">',
    "dot segments": f'<img src="{PIXEL.replace("/o/", "/x/../o/")}">',
    "default port and trailing dot": f'<img src="{PIXEL.replace(".test/", ".test.:443/")}">',
    "protocol-relative": f'<img src="{PIXEL.removeprefix("https:")}">',
    "plain http": f'<img src="{PIXEL.replace("https:", "http:")}">',
    "also written as data-remote-src": f'<img data-remote-src="{PIXEL}" src="{PIXEL}">',
    "as a table background": f'<table background="{PIXEL}"><tr><td>x</td></tr></table>',
}


@pytest.mark.parametrize("markup", PIXELS.values(), ids=PIXELS.keys())
def test_r24_our_open_pixel_is_removed_entirely(markup: str) -> None:
    clean = sanitized(f"<div>Hi Sarah,{markup}talk soon</div>")
    assert "track.mailsync.test" not in clean.lower()
    assert "data-remote" not in clean
    assert "<img" not in clean
    assert clean.startswith("<div>Hi Sarah,")
    assert clean.endswith("talk soon</div>")


def test_r24_a_tracking_base_with_a_path_removes_only_its_own_pixels() -> None:
    base = "https://mail.northwind-crm.test/t/"
    ours = '<img src="https://mail.northwind-crm.test/t/o/abc">'
    other = '<img src="https://mail.northwind-crm.test/o/abc">'
    assert sanitize_html(ours + other, tracking_base_url=base) == (
        '<img data-remote-src="https://mail.northwind-crm.test/o/abc">'
    )


def test_r24_our_click_links_stay_links_they_are_only_followed_by_a_click() -> None:
    markup = f'<a href="{TRACKING}/c/eyJsIjoxfQ.sig">the proposal</a>'
    assert sanitized(markup) == f'<a href="{TRACKING}/c/eyJsIjoxfQ.sig" {LINK}>the proposal</a>'


def test_without_a_tracking_base_our_pixel_is_only_a_remote_image() -> None:
    clean = sanitize_html(f'<img src="{PIXEL}">', tracking_base_url=None)
    assert clean == f'<img data-remote-src="{PIXEL}">'


CIDS: dict[str, tuple[str, str]] = {
    "known content id": (
        '<img src="cid:logo@northwind.test" alt="Northwind">',
        '<img src="/v1/messages/7f0c/attachments/0" alt="Northwind">',
    ),
    "percent-encoded content id (RFC 2392)": (
        '<img src="CID:chart%40northwind.test">',
        '<img src="/v1/messages/7f0c/attachments/1">',
    ),
    "unknown content id is dropped": ('<img src="cid:gone@northwind.test" alt="x">', ""),
}


@pytest.mark.parametrize(("markup", "expected"), CIDS.values(), ids=CIDS.keys())
def test_inline_images_are_served_from_the_attachment_route(markup: str, expected: str) -> None:
    assert sanitized(markup) == expected


def test_an_absolute_attachment_route_is_not_mistaken_for_a_remote_image() -> None:
    route = "https://crm.northwind.test/v1/messages/7f0c/attachments/0?sig=a&exp=1"
    clean = sanitize_html(
        '<img src="cid:logo@northwind.test">',
        tracking_base_url=TRACKING,
        inline_image_url=lambda content_id: route,
    )
    assert (
        clean
        == '<img src="https://crm.northwind.test/v1/messages/7f0c/attachments/0?sig=a&amp;exp=1">'
    )


def test_without_an_inline_route_cid_images_are_dropped() -> None:
    clean = sanitize_html(
        '<p>logo:<img src="cid:logo@northwind.test"></p>', tracking_base_url=TRACKING
    )
    assert clean == "<p>logo:</p>"


LINKS: dict[str, tuple[str, str]] = {
    "https with an escaped query": (
        '<a href="https://northwind.test/p?a=1&amp;b=2">offer</a>',
        f'<a href="https://northwind.test/p?a=1&amp;b=2" {LINK}>offer</a>',
    ),
    "mailto": (
        '<a href="mailto:sarah@northwind.test">mail</a>',
        f'<a href="mailto:sarah@northwind.test" {LINK}>mail</a>',
    ),
    "the sender's target and rel are replaced": (
        '<a href="http://northwind.test" target="_self" rel="opener">x</a>',
        f'<a href="http://northwind.test" {LINK}>x</a>',
    ),
    "a relative link would point into the CRM": (
        '<a href="/admin/users/1/delete">x</a>',
        f"<a {LINK}>x</a>",
    ),
    "other schemes": ('<a href="ftp://northwind.test/f">x</a>', f"<a {LINK}>x</a>"),
}


@pytest.mark.parametrize(("markup", "expected"), LINKS.values(), ids=LINKS.keys())
def test_links_keep_web_and_mail_targets_and_open_apart(markup: str, expected: str) -> None:
    assert sanitized(markup) == expected


NEWSLETTER = f"""<!DOCTYPE html>
<html><head><title>Freight Weekly</title>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<style>.btn {{ background: url(https://cdn.freightweekly.test/btn.png) }}</style></head>
<body style="margin:0">
<table width="600" cellpadding="0" cellspacing="0" border="0" align="center" bgcolor="#f4f4f4">
  <tr><td style="padding: 20px; font-family: Arial, sans-serif; color: #1a1a1a">
    <img src="https://cdn.freightweekly.test/logo.png" alt="Freight Weekly" width="120">
    <h1 style="font-size: 22px; color: rgb(0, 51, 102)">Quarterly update</h1>
    <p><font color="#cc0000" face="Georgia">Port congestion eases</font> in Rotterdam.</p>
    <ul><li>ICS2 release 3</li><li>Real-time tracking desk</li></ul>
    <blockquote type="cite" style="border-left: 2px solid #ccc; padding-left: 8px">
      On Monday Sarah wrote: the pallets ship Friday.</blockquote>
    <p dir="rtl" lang="he">שלום</p>
    <a href="https://freightweekly.test/issues/212?utm_source=nl&amp;utm_medium=email"
       class="btn" style="color: #ffffff; background-color: #0066cc">Read online</a>
  </td></tr>
</table>
<img src="{PIXEL}" width="1" height="1">
<!--[if mso]><v:rect fill="true"><v:fill src="https://cdn.freightweekly.test/bg.png"/></v:rect><![endif]-->
</body></html>"""


def test_an_ordinary_newsletter_keeps_its_tables_formatting_and_text() -> None:
    clean = sanitized(NEWSLETTER)
    parser = _Tags()
    parser.feed(clean)
    tags = [tag for tag, _ in parser.tags]
    attributes = dict(parser.tags)
    assert {"table", "tbody", "tr", "td", "h1", "p", "font", "ul", "li", "blockquote", "a"} <= set(
        tags
    )
    assert attributes["table"] == {
        "width": "600",
        "cellpadding": "0",
        "cellspacing": "0",
        "border": "0",
        "align": "center",
        "bgcolor": "#f4f4f4",
    }
    assert (
        attributes["td"]["style"] == "padding: 20px; font-family: Arial, sans-serif; color: #1a1a1a"
    )
    assert attributes["h1"]["style"] == "font-size: 22px; color: rgb(0, 51, 102)"
    assert attributes["font"] == {"color": "#cc0000", "face": "Georgia"}
    assert attributes["blockquote"]["type"] == "cite"
    assert attributes["a"]["href"] == (
        "https://freightweekly.test/issues/212?utm_source=nl&utm_medium=email"
    )
    assert attributes["a"]["style"] == "color: #ffffff; background-color: #0066cc"
    assert attributes["img"] == {
        "data-remote-src": "https://cdn.freightweekly.test/logo.png",
        "alt": "Freight Weekly",
        "width": "120",
    }
    assert tags.count("img") == 1  # the logo; our pixel is gone
    assert '<p dir="rtl" lang="he">שלום</p>' in clean
    for text in (
        "Quarterly update",
        "Port congestion eases</font> in Rotterdam.",
        "<li>ICS2 release 3</li>",
        "On Monday Sarah wrote: the pallets ship Friday.",
        ">Read online</a>",
    ):
        assert text in clean
    assert "Freight Weekly</title>" not in clean
    assert "btn.png" not in clean
    assert "bg.png" not in clean


_FRAGMENTS = [
    "<img src=x onerror=alert(1)>",
    '<img src="https://evil.test/a.png">',
    f'<img src="{PIXEL}">',
    f"<img src='{PIXEL.replace(TRACKING, TRACKING.upper())}'>",
    '<img src="cid:logo@northwind.test">',
    "<svg><script>alert(1)</script></svg>",
    '<a href="javascript:alert(1)">',
    '<a href="https://ok.test/?a=1&amp;b=2">',
    "</a>",
    '<div style="background:url(https://evil.test/x)">',
    '<p style="color:red;width:expression(alert(1))">',
    "</div>",
    "</p>",
    "<table><tr><td background=https://evil.test/bg.png>",
    "</td></tr></table>",
    "<style>*{}</style>",
    "<!--",
    "-->",
    '<p title="',
    '">',
    "<noscript>",
    "</noscript>",
    "<textarea>",
    "</textarea>",
    "<math><mtext>",
    "<iframe srcdoc='<script>alert(1)</script>'>",
    "<meta http-equiv=refresh content=0>",
    "&lt;script&gt;",
    "&#x6a;avascript:",
    "<",
    ">",
    "'",
    '"',
    "text",
    "\u202e",
    "\x00",
]


def soups(seed: int, count: int) -> list[str]:
    """`count` concatenations of up to 30 hostile fragments, the same for the same seed. (A
    seeded generator rather than hypothesis, which writes a cache into the working tree.)"""
    rng = random.Random(seed)
    return ["".join(rng.choices(_FRAGMENTS, k=rng.randrange(31))) for _ in range(count)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_soup_of_hostile_fragments_comes_out_inert(seed: int) -> None:
    for markup in soups(seed, 200):
        sanitized(markup)
