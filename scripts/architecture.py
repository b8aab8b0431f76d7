"""Draw docs/img/architecture.png: the stages of crimeclass and the data flowing through them.

The boxes are the packages under ``src/crimeclass``; the grey arrows are their imports, read
from the source with ``ast`` (so the picture cannot drift from the code); the blue arrows and
their labels are what flows from stage to stage. Run: ``python scripts/architecture.py [OUT]``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import matplotlib  # noqa: TID253 (a script, not the package)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402, TID253
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch  # noqa: E402, TID253

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "crimeclass"
OUT = ROOT / "docs" / "img" / "architecture.png"

#: stage -> (column, row, what it owns)
STAGES: dict[str, tuple[float, float, str]] = {
    "data": (0, 0, "schema, sources,\nvalidation, labels, store"),
    "engines": (1, 0, "DuckDB & Spark:\nconnection, settings, dialect"),
    "explore": (2, 1, "statistics, plots,\nreport"),
    "features": (2, -1, "feature catalog,\ncompiled per engine"),
    "models": (3, -1, "families, search,\nrun folder, scoring core"),
    "evaluation": (4, 0, "intervals, slices,\ncalibration, cards"),
    "serve": (4, -2, "HTTP scoring\nservice"),
    "cli": (5, 0, "Typer commands,\nRich rendering"),
}

#: (from, to, what flows)
FLOWS = [
    ("data", "engines", "DuckDB store\n(incidents, quarantine)"),
    ("engines", "explore", "SQL on DuckDB\nor Spark"),
    ("engines", "features", "relations"),
    ("features", "models", "feature frame\n(Arrow)"),
    ("models", "evaluation", "run folder"),
    ("models", "serve", "scoring core"),
]


def stage_imports() -> dict[str, set[str]]:
    """Which stages each stage imports, read from the source files."""
    graph: dict[str, set[str]] = {s: set() for s in STAGES}
    for stage in STAGES:
        files = list((PACKAGE / stage).rglob("*.py")) + [PACKAGE / f"{stage}.py"]
        for path in (p for p in files if p.is_file()):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module
                         else [a.name for a in node.names] if isinstance(node, ast.Import)
                         else [])
                for name in names:
                    parts = name.split(".")
                    if parts[0] == "crimeclass" and len(parts) > 1 and parts[1] in STAGES:
                        graph[stage].add(parts[1])
        graph[stage].discard(stage)
    return graph


def _xy(stage: str) -> tuple[float, float]:
    col, row, _ = STAGES[stage]
    return col * 2.7, row * 1.7


def _draw_boxes(ax: plt.Axes, present: set[str]) -> None:
    for stage, (_, _, owns) in STAGES.items():
        x, y = _xy(stage)
        face = "#eef3fb" if stage in present else "#f4f4f4"
        ax.add_patch(FancyBboxPatch((x - 1.0, y - 0.55), 2.0, 1.1,
                                    boxstyle="round,pad=0.04", fc=face, ec="#33476b", lw=1.4))
        ax.text(x, y + 0.25, f"{stage}/", ha="center", va="center", fontsize=12,
                fontweight="bold", family="monospace", color="#1b2a45")
        ax.text(x, y - 0.18, owns, ha="center", va="center", fontsize=8, color="#33476b")


def _arrow(ax: plt.Axes, a: str, b: str, **style: object) -> FancyArrowPatch:
    (xa, ya), (xb, yb) = _xy(a), _xy(b)
    patch = FancyArrowPatch((xa, ya), (xb, yb), shrinkA=34, shrinkB=34, **style)
    ax.add_patch(patch)
    return patch


def draw(out: Path) -> dict[str, set[str]]:
    """Draw the picture into ``out`` and return the import graph it shows."""
    graph = stage_imports()
    present = {s for s in STAGES if (PACKAGE / s).is_dir() or (PACKAGE / f"{s}.py").is_file()}
    fig, ax = plt.subplots(figsize=(15, 7.2))
    _draw_boxes(ax, present)
    for stage, used in graph.items():
        for other in sorted(used):
            _arrow(ax, stage, other, arrowstyle="-|>", mutation_scale=10, color="#9a9a9a",
                   lw=0.8, linestyle="--", alpha=0.7, connectionstyle="arc3,rad=0.25")
    for a, b, label in FLOWS:
        _arrow(ax, a, b, arrowstyle="-|>", mutation_scale=16, color="#2f6fd0", lw=2.2)
        (xa, ya), (xb, yb) = _xy(a), _xy(b)
        ax.text((xa + xb) / 2, (ya + yb) / 2 + 0.12, label, ha="center", va="bottom",
                fontsize=8, color="#2f6fd0", bbox={"fc": "white", "ec": "none", "pad": 1})
    ax.text(-1.1, 2.55, "CSV / Parquet / portal API / BigQuery  \u2192  Arrow batches  \u2192  "
            "data/", fontsize=9, color="#2f6fd0")
    ax.text(9.6, 2.55, "cli/ and the Python API call every stage", fontsize=9, color="#33476b")
    ax.plot([], [], color="#2f6fd0", lw=2.2, label="what flows")
    ax.plot([], [], color="#9a9a9a", lw=0.8, ls="--", label="imports (read from the code)")
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Patch(fc="#f4f4f4", ec="#33476b", label="not built yet"))
    ax.legend(handles=handles, loc="lower left", frameon=False, fontsize=9)
    ax.set_xlim(-1.3, 14.8)
    ax.set_ylim(-4.1, 2.9)
    ax.axis("off")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return graph


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    for stage, used in draw(target).items():
        print(f"{stage:<11} imports {', '.join(sorted(used)) or '-'}")
    print(f"wrote {target}")
