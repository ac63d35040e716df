"""``{{ text|guide_text }}``: a fixture's prose as HTML — paragraphs, **bold** and `code`, nothing else.

The text is escaped first, so a fixture can never inject markup; only the two
inline forms above are turned into tags afterwards. Lines inside a paragraph
are joined (TOML multi-line strings wrap for the editor, not for the page).
"""

from __future__ import annotations

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`]+)`")


def _inline(text: str) -> str:
    text = _CODE.sub(r"<code>\1</code>", escape(text))
    return _BOLD.sub(r"<strong>\1</strong>", text)


@register.filter
def guide_text(value: str) -> SafeString:
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", str(value or "").strip()) if p.strip()]
    return mark_safe("".join(f"<p>{_inline(p)}</p>" for p in paragraphs))


@register.filter
def guide_inline(value: str) -> SafeString:
    return mark_safe(_inline(" ".join(str(value or "").split())))
