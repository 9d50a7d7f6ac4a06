"""Sphinx hooks of the desivoids book (a local extension, named in _config.yml).

Thebe (live code cells from a Binder) is off in this book, but Jupyter Book 1 loads
sphinx-thebe regardless, and its configuration script is added twice to every page: the second
``const THEBE_JS_URL`` throws in the browser, and the script names a CDN (unpkg) the book never
needs. Every page is rendered without sphinx-thebe's scripts and stylesheet.

The theme's colour mode: pydata-sphinx-theme reads it from the reader's localStorage, else from
the page context's ``default_mode``; left empty, a first visit logs "Got invalid theme mode" to
the browser console. The book follows the reader's system setting ("auto").

Glossary links: the first use of every term of the glossary page (``desivoids_glossary``, a
MyST ``{glossary}`` block) on every other page becomes a link to its entry, so that no chapter
(hand-written or an executed notebook) needs a ``{term}`` role by hand. Headings, code, math,
links and raw HTML are left alone; a literal such as ``GALZONE`` is linked when it is the term
itself. The links are ordinary ``term`` cross-references: with ``-n -W`` a term that does not
resolve fails the build.
"""
from __future__ import annotations

import re
from pathlib import Path

from docutils import nodes
from sphinx import addnodes


def _is_thebe(asset) -> bool:
    name = str(getattr(asset, "filename", asset) or "")
    body = str(getattr(asset, "attributes", {}).get("body", "") or "")
    return "thebe" in name or "THEBE_JS_URL" in body


def page_context(app, pagename, templatename, context, doctree):
    context["default_mode"] = context.get("default_mode") or "auto"
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [a for a in context[key] if not _is_thebe(a)]


def glossary_terms(source: Path) -> list[str]:
    """The terms of the ``{glossary}`` block of a MyST page: its unindented lines."""
    text = source.read_text(encoding="utf-8")
    block = re.search(r"^(`{3,}|:{3,})\{glossary\}[^\n]*\n(.*?)^\1\s*$", text, re.M | re.S)
    if block is None:
        return []
    return [line.strip() for line in block.group(2).splitlines()
            if line.strip() and not line[0].isspace() and not line.startswith(":")]


def _pattern(terms: list[str]) -> re.Pattern:
    """One regex for every term, longest first, as a word (plural -s/-es allowed); a term that
    starts lower-case also matches capitalised, at the start of a sentence."""
    alts = []
    for t in sorted(terms, key=len, reverse=True):
        body = re.escape(t[1:]).replace("'", "['\u2019]")  # smartquotes made ' a \u2019
        body = (f"[{t[0]}{t[0].upper()}]" if t[0].islower() else re.escape(t[0])) + body
        alts.append(f"(?P<t{len(alts)}>{body})")
    return re.compile(r"(?<![\w/.@-])(?:" + "|".join(alts) + r")(?:e?s)?(?![\w-])")


#: nodes whose text is never linked
_SKIP = (nodes.title, nodes.subtitle, nodes.reference, addnodes.pending_xref, nodes.FixedTextElement,
         nodes.math, nodes.math_block, nodes.raw, nodes.comment, nodes.citation, nodes.label,
         nodes.term, nodes.caption, addnodes.toctree, nodes.image, nodes.target)


def _skipped(node) -> bool:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, _SKIP) or (isinstance(parent, nodes.literal) and parent is not node):
            return True
        parent = parent.parent
    return False


def _xref(term: str, content, docname: str):
    ref = addnodes.pending_xref("", refdomain="std", reftype="term", reftarget=term.lower(),
                                refdoc=docname, refexplicit=True, refwarn=True)
    ref += content
    return ref


def link_terms(app, doctree) -> None:
    env = app.env
    config = app.config.desivoids_glossary
    if not config:
        return
    source = Path(app.srcdir) / config
    glossary_doc = env.path2doc(str(source))
    if env.docname == glossary_doc or not source.exists():
        return
    terms = glossary_terms(source)
    if not terms:
        return
    pending = set(range(len(terms)))
    order = sorted(terms, key=len, reverse=True)
    pattern = _pattern(terms)
    literal_of = {t: k for k, t in enumerate(order)}
    for node in list(doctree.findall(lambda n: isinstance(n, (nodes.Text, nodes.literal)))):
        if not pending:
            break
        if _skipped(node):
            continue
        if isinstance(node, nodes.literal):
            k = literal_of.get(node.astext())
            if k in pending:
                pending.discard(k)
                node.parent.replace(node, _xref(order[k], node.deepcopy(), env.docname))
            continue
        text, parts, last = str(node), [], 0
        for m in pattern.finditer(text):
            k = int(m.lastgroup[1:])
            if k not in pending:
                continue
            pending.discard(k)
            parts += [nodes.Text(text[last:m.start()]),
                      _xref(order[k], nodes.inline(m.group(0), m.group(0),
                                                   classes=["xref", "std", "std-term"]),
                            env.docname)]
            last = m.end()
        if parts:
            parts.append(nodes.Text(text[last:]))
            node.parent.replace(node, [p for p in parts if not (isinstance(p, nodes.Text)
                                                                 and not str(p))])


def setup(app):
    app.add_config_value("desivoids_glossary", "", "env")
    app.connect("html-page-context", page_context, priority=900)
    app.connect("doctree-read", link_terms)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
