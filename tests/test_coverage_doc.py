from pathlib import Path

from zeronode.coverage import render


def test_coverage_doc_is_current() -> None:
    committed = (Path(__file__).parent.parent / "docs" / "coverage.md").read_text()
    assert committed == render(), "docs/coverage.md is stale: python -m zeronode.coverage > docs/coverage.md"
