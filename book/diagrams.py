#!/usr/bin/env python3
"""Draws the book's two diagrams as plain SVG (no tool beyond Python):
src/img/turn.svg, one turn of the loop, and src/img/lifecycle.svg, a
connection's lifecycle. Run it after changing either:

    python3 book/diagrams.py
"""

import pathlib

IMG = pathlib.Path(__file__).resolve().parent / "src" / "img"
HEAD = (
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
    'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#444"/>'
    "</marker></defs>\n"
    '<rect width="100%" height="100%" fill="white"/>'
)


def svg(width, height, title, body):
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">',
            f"<title>{title}</title>",
            HEAD,
            *body,
            "</svg>",
        ]
    ) + "\n"


def text(x, y, s, anchor="middle", size=11, extra=""):
    return f'<text x="{x}" y="{y}" text-anchor="{anchor}" font-size="{size}"{extra}>{s}</text>'


def arrow(points, dashed=False):
    d = "M" + " L".join(f"{x},{y}" for x, y in points)
    dash = ' stroke-dasharray="5,4"' if dashed else ""
    return f'<path d="{d}" fill="none" stroke="#444"{dash} marker-end="url(#arrow)"/>'


def turn():
    """Nine phases left to right, the way back underneath, and one
    message's path marked on the phases it crosses."""
    phases = ["timeout", "poll", "look up", "accept", "read", "handle", "flush", "timers", "free"]
    notes = [
        ["how long may", "the poll wait?"],
        ["the socket is", "reported readable"],
        ["its token leads", "to the connection"],
        ["on_connect:", "the greeting"],
        ["bytes read;", "the codec cuts", "a message"],
        ["on_message", "queues the answer"],
        ["written in the", "same turn"],
        ["on_timer for", "those due"],
        ["slots of closed", "connections freed"],
    ]
    message_path = {1, 2, 4, 5, 6}
    box_w, box_h, gap, left, top = 92, 46, 16, 20, 40
    width = left * 2 + len(phases) * box_w + (len(phases) - 1) * gap
    height = 250
    body = [text(left, 24, "One turn of the loop (Reactor::run_once)", "start", 14, ' font-weight="bold"')]
    for i, name in enumerate(phases):
        x = left + i * (box_w + gap)
        on_path = i in message_path
        fill = "#dbeafe" if on_path else "#f3f4f6"
        body.append(f'<rect x="{x}" y="{top}" width="{box_w}" height="{box_h}" rx="6" fill="{fill}" stroke="#444"/>')
        body.append(text(x + box_w / 2, top + 19, i + 1, size=13, extra=' font-weight="bold"'))
        body.append(text(x + box_w / 2, top + 36, name, size=13))
        if i + 1 < len(phases):
            body.append(arrow([(x + box_w, top + box_h / 2), (x + box_w + gap, top + box_h / 2)]))
        color = "#1e40af" if on_path else "#555"
        for j, line in enumerate(notes[i]):
            body.append(text(x + box_w / 2, top + box_h + 22 + j * 15, line, extra=f' fill="{color}"'))
    last_x = left + (len(phases) - 1) * (box_w + gap) + box_w / 2
    first_x = left + box_w / 2
    y = top + box_h + 90
    body.append(arrow([(last_x, top + box_h + 62), (last_x, y), (first_x, y), (first_x, top + box_h + 48)], dashed=True))
    body.append(text((first_x + last_x) / 2, y + 18, "next turn: zero timeout if work is left over, else until the nearest deadline", size=12))
    body.append(f'<rect x="{left}" y="{height - 34}" width="14" height="14" fill="#dbeafe" stroke="#444"/>')
    body.append(text(left + 20, height - 22, "the phases one echoed message crosses: readable, found, read and cut, handled, written back, all in one turn", "start", 12))
    title = "One turn of the reactor: nine phases, and one message's path through them"
    return svg(width, height, title, body)


def lifecycle():
    """The states of src/state.rs's Lifecycle and what moves between them."""
    states = {
        "Connecting": (190, 60),
        "Open": (190, 210),
        "Closing": (460, 210),
        "Lingering": (600, 130),
        "Closed": (650, 290),
        "slot freed": (650, 370),
    }
    w, h = 120, 40
    body = [text(20, 24, "A connection's lifecycle (src/state.rs)", "start", 14, ' font-weight="bold"')]
    body.append('<circle cx="40" cy="150" r="9" fill="#444"/>')
    for name, (x, y) in states.items():
        fill = "#f3f4f6" if name == "slot freed" else "#dbeafe"
        body.append(f'<rect x="{x - w / 2}" y="{y - h / 2}" width="{w}" height="{h}" rx="8" fill="{fill}" stroke="#444"/>')
        body.append(text(x, y + 5, name, size=13, extra=' font-weight="bold"'))
    body += [
        arrow([(47, 143), (130, 70)]), text(72, 95, "connect()"),
        arrow([(47, 157), (130, 200)]), text(72, 195, "accepted"),
        arrow([(190, 80), (190, 190)]), text(198, 140, "connected", "start"),
        arrow([(250, 60), (770, 60), (770, 290), (710, 290)]),
        text(500, 52, "the connect fails or times out, or close_now()"),
        arrow([(250, 210), (400, 210)]),
        text(325, 200, "close(), end of input,"), text(325, 228, "bytes refused, shutdown"),
        arrow([(520, 198), (552, 150)]),
        text(455, 160, "output written, the peer"), text(455, 174, "may still send: FIN, drain"),
        arrow([(520, 222), (590, 280)]), text(548, 266, "output written", "end"),
        arrow([(620, 150), (620, 270)]),
        text(628, 196, "peer closed, linger", "start"), text(628, 210, "time over, or 1 MiB", "start"),
        arrow([(190, 230), (190, 300), (590, 300)]),
        text(390, 318, "error, reset, output limit, timeout, close_now()"),
        arrow([(650, 310), (650, 350)]), text(658, 334, "at the end of the turn", "start"),
        text(20, 426, "on_close runs once, on the way into Closed; the slot is reused only after the turn, "
             "so no event of this turn reaches a newer connection.", "start", 12),
    ]
    title = "A connection's lifecycle: connecting, open, closing, lingering, closed"
    return svg(860, 440, title, body)


if __name__ == "__main__":
    IMG.mkdir(exist_ok=True)
    (IMG / "turn.svg").write_text(turn(), encoding="utf-8")
    (IMG / "lifecycle.svg").write_text(lifecycle(), encoding="utf-8")
