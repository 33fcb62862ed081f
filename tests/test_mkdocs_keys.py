"""The key role in a real MkDocs build (Material): ``{modelvis:key}`NAME:KEY``` on a page the nav reads before
the figure's page, links to the module's line there, and a key that matches nothing warns with its page and line
(``mkdocs build --strict`` fails on it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_mkdocs import build_site, copy_site

SITE = Path(__file__).resolve().parent / "mkdocs_sites" / "keys"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> object:
    return build_site(copy_site(SITE, tmp_path_factory.mktemp("keys") / "project"))


def test_roles_link_to_the_lines_of_a_figure_on_a_later_page(built: object) -> None:
    prose = built.page("prose/index.html")  # type: ignore[attr-defined]
    links = {link.get_text(): link for link in prose.select("a.mv-key")}
    query = links["encoder.layer.2.attention.self.query"]
    assert query["href"] == "../#bert-vis:encoder.layer.{0-3}.attention.self.{query,key,value}"
    assert query["data-mv-key"] == "bert-vis:encoder.layer.2.attention.self.query"
    assert links["layer.{0-3}.attention"]["href"] == "../#bert-vis:encoder.layer.{0-3}.attention"
    # The figure's page has every anchor the links go to, and its own link stays on the page.
    index = built.page("index.html")  # type: ignore[attr-defined]
    anchors = {element["id"] for element in index.select("[id]")}
    assert {link["href"].split("#")[1] for link in links.values()} <= anchors
    assert index.select_one("a.mv-key")["href"] == "#bert-vis:pooler"
    assert index.select_one("a.mv-key").get_text() == "the pooler"
    # Inside a code block the role is text.
    assert "{modelvis:key}`bert-vis:nothing.here`" in prose.select_one("pre").get_text()


def test_a_key_that_matches_nothing_warns_with_page_and_line(built: object) -> None:
    warnings = [message for message in built.warnings if "modelvis:" in message]  # type: ignore[attr-defined]
    assert warnings == [
        "modelvis: prose.md:10: bert-vis:encoder.layer.0.output.dnese matches no module of the figure; "
        # The layers' dense count once (the one written closest), then other keys.
        "closest: encoder.layer.0.output.dense, encoder.layer.0.output, encoder.layer.0.attention.output.dense"
    ]
    prose = built.page("prose/index.html")  # type: ignore[attr-defined]
    typo = [code for code in prose.select("code") if "dnese" in code.get_text()]
    assert typo and typo[0].parent.name != "a"


def test_strict_fails_on_a_stale_key(tmp_path: Path) -> None:
    from mkdocs.exceptions import Abort

    project = copy_site(SITE, tmp_path / "project")
    with pytest.raises(Abort):
        build_site(project, strict=True)
