"""Sphinx hooks of the desivoids book (a local extension, named in _config.yml).

Thebe (live code cells from a Binder) is off in this book, but Jupyter Book 1 loads
sphinx-thebe regardless, and its configuration script is added twice to every page: the second
``const THEBE_JS_URL`` throws in the browser, and the script names a CDN (unpkg) the book never
needs. Every page is rendered without sphinx-thebe's scripts and stylesheet.

The theme's colour mode: pydata-sphinx-theme reads it from the reader's localStorage, else from
the page context's ``default_mode``; left empty, a first visit logs "Got invalid theme mode" to
the browser console. The book follows the reader's system setting ("auto").
"""
from __future__ import annotations


def _is_thebe(asset) -> bool:
    name = str(getattr(asset, "filename", asset) or "")
    body = str(getattr(asset, "attributes", {}).get("body", "") or "")
    return "thebe" in name or "THEBE_JS_URL" in body


def page_context(app, pagename, templatename, context, doctree):
    context["default_mode"] = context.get("default_mode") or "auto"
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [a for a in context[key] if not _is_thebe(a)]


def setup(app):
    app.connect("html-page-context", page_context, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
