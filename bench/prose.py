"""The words of docs/performance.md around the figures of one run."""

from __future__ import annotations

from bench import report


def page_text(results: dict, chart_link: str) -> str:
    return (
        "\n\n".join(
            [
                "# Performance",
                f"![chart]({chart_link})",
                report.markdown_table(results),
                report.goals_markdown(results),
            ]
        )
        + "\n"
    )
