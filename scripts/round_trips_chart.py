"""Draws the round-trip table of infra/local/tests/round_trips.rs as a bar chart (SVG).

Each route gets its mean depth now, its depth before issue 22's work (the same routes, one request
each with every store call taking L, measured before commit afb7dd2, the first of that work), and
its target as a mark. Usage: round_trips_chart.py TABLE.md OUT.svg
"""

import sys
from pathlib import Path

# Depth (store round trips in sequence) per route before issue 22's work, as BENCHMARKS.md
# "Round trips and write units per request" recorded it (column "before issue 22").
BEFORE = {
    ("GET /whoami", "warm"): 2,
    ("GET /partners (list)", "warm"): 3,
    ("GET /partners/{id}", "warm"): 3,
    ("GET /clicks (list)", "warm"): 3,
    ("GET /activity (list)", "warm"): 3,
    ("POST /partners (create)", "warm"): 3,
    ("PATCH /partners/{id} (update)", "warm"): 4,
    ("POST /conversions (new txn_id)", "warm"): 7,
    ("POST /conversions (repeated txn_id)", "warm"): 4,
    ("MCP list_partners", "warm"): 3,
    ("MCP get_program_stats", "warm"): 3,
    ("capture (new click)", "warm"): 1,
    ("capture (duplicate click)", "warm"): 2,
    ("DELETE /partners/{id}", "warm"): 4,
    ("GET /whoami", "cold"): 4,
}


def rows(table: Path) -> list[dict[str, str]]:
    lines = [line for line in table.read_text().splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [
        dict(zip(header, (cell.strip() for cell in line.strip("|").split("|"))))
        for line in lines[2:]
    ]


def chart(measured: list[dict[str, str]], path: Path) -> None:
    row, left, width = 30, 300, 420
    height = 70 + row * len(measured) + 30
    top = max(
        [float(r["mean depth"]) for r in measured]
        + [float(r["target"]) for r in measured]
        + list(BEFORE.values())
    )
    scale = width / top
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 120}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        '<text x="10" y="20" font-size="14" font-weight="bold">Store round trips in sequence per '
        "request (DynamoDB model, every call L)</text>",
        '<rect x="10" y="32" width="12" height="10" fill="#b0b0b0"/>'
        '<text x="26" y="41">before issue 22</text>',
        '<rect x="140" y="32" width="12" height="10" fill="#4878a8"/>'
        '<text x="156" y="41">now (mean of 1,000)</text>',
        '<line x1="300" y1="37" x2="312" y2="37" stroke="#c03030" stroke-width="2"/>'
        '<text x="316" y="41">target</text>',
    ]
    for index, r in enumerate(measured):
        y = 56 + index * row
        label = f'{r["request"]}, {r["key"]} key'
        parts.append(f'<text x="{left - 8}" y="{y + 14}" text-anchor="end">{label}</text>')
        before = BEFORE.get((r["request"], r["key"]))
        if before is not None:
            parts.append(
                f'<rect x="{left}" y="{y}" width="{before * scale:.1f}" height="9" fill="#b0b0b0"/>'
            )
        now = float(r["mean depth"])
        parts.append(
            f'<rect x="{left}" y="{y + 10}" width="{now * scale:.1f}" height="11" fill="#4878a8"/>'
        )
        parts.append(f'<text x="{left + now * scale + 4:.1f}" y="{y + 20}">{now:.3g}</text>')
        target = float(r["target"]) * scale + left
        parts.append(
            f'<line x1="{target:.1f}" y1="{y - 2}" x2="{target:.1f}" y2="{y + 23}" '
            'stroke="#c03030" stroke-width="2"/>'
        )
    parts.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n")


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    measured = rows(Path(sys.argv[1]))
    if not measured:
        print(f"no rows in {sys.argv[1]}", file=sys.stderr)
        return 1
    chart(measured, Path(sys.argv[2]))
    print(f"chart: {sys.argv[2]} ({len(measured)} routes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
