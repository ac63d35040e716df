"""Fixture prose on the page: escaped first, then only **bold**, `code` and paragraphs become markup."""

from messaging_lab.exercises.templatetags.guide_text import guide_inline, guide_text


def test_paragraphs_bold_and_code_and_nothing_else():
    """Ensure wrapped lines join, blank lines split paragraphs, and markup in the text stays text."""
    html = guide_text("A **log** keeps\n`offsets`.\n\n<script>alert(1)</script> **x")
    assert html == ("<p>A <strong>log</strong> keeps <code>offsets</code>.</p>"
                    "<p>&lt;script&gt;alert(1)&lt;/script&gt; **x</p>")
    assert guide_inline("set `acks=all`") == "set <code>acks=all</code>"
