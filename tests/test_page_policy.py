"""The page never puts the API key in a URL: forms post, and the policy forbids form targets."""

from __future__ import annotations

from html.parser import HTMLParser

from serve_app.web import PAGE_HEADERS, STATIC


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form":
            self.forms.append(dict(attrs))


def test_forms_post_and_the_policy_blocks_every_form_target() -> None:
    parser = _Forms()
    parser.feed((STATIC / "index.html").read_text())
    assert parser.forms, "the page has its key and fixture forms"
    # a submit before app.js binds would otherwise GET the page with the key in the query
    assert all((f.get("method") or "").lower() == "post" for f in parser.forms), parser.forms
    directives = dict(
        d.strip().split(" ", 1) for d in PAGE_HEADERS["Content-Security-Policy"].split(";")
    )
    assert directives["form-action"] == "'none'" and directives["default-src"] == "'self'"
