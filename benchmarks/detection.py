"""Worst-case cost of detecting one response: ``python -m benchmarks.detection``.

Three sets of pages go through :func:`scrapy_ucaptcha.detection.detect`, each page on its own
fresh response (so nothing parsed is reused), timed in CPU time (best of ``--repeat``):

* the hostile pages of :mod:`scrapy_ucaptcha.testing.hostile` at the size detection reads at most
  (:data:`MAX_BODY_BYTES`), and a body four times that size;
* the real-page corpus (``tests/fixtures/real``);
* ``--mutations`` pages made from the corpus and the fixture pages by seeded random mutations
  (control characters, unclosed openings, nesting, huge attributes, cuts, repeats).

It prints a Markdown table and exits 1 if any page made detection raise.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from scrapy.http import HtmlResponse

from scrapy_ucaptcha._detectors._core import MAX_BODY_BYTES, BaseDetector, Page
from scrapy_ucaptcha.detection import DEFAULT_DETECTORS
from scrapy_ucaptcha.testing.hostile import hostile_pages

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "tests" / "fixtures" / "real"
PAGES = ROOT / "tests" / "fixtures" / "pages"
NOISE = [
    b"\x00",
    b"\x01\x0b\x1f",
    b"<!--",
    b"<script>",
    b"<div>" * 500,
    b'<p title="' + b"x" * 100_000,
    b"grecaptcha.render(",
    b"window.gokuProps = {",
    b"dd={",
    b"rqdata: '",
    b"\xff\xfe",
    b"captcha",
]


def examine(body: bytes, status: int = 200) -> tuple[float, dict[str, int], bool]:
    """CPU seconds one detection took, its work counters, and whether a detector raised."""
    response = HtmlResponse(url="https://site.example/p", body=body, status=status)
    page = Page(response)
    start = time.process_time()
    raised = False
    for detector in DEFAULT_DETECTORS:
        try:
            if isinstance(detector, BaseDetector) and detector.detect_page(page) is not None:
                break
        except Exception:
            raised = True
    return time.process_time() - start, page.work, raised


def best_of(repeat: int, body: bytes) -> tuple[float, dict[str, int], bool]:
    runs = [examine(body) for _ in range(repeat)]
    return min(r[0] for r in runs), runs[0][1], any(r[2] for r in runs)


def mutate(rng: random.Random, body: bytes) -> bytes:
    ops: list[Callable[[bytes], bytes]] = [
        lambda b: b[: rng.randrange(len(b) + 1)],
        lambda b: b + b[rng.randrange(len(b) + 1) :] * rng.randint(1, 3),
    ]
    for _ in range(rng.randint(1, 12)):
        if rng.random() < 0.15:
            body = rng.choice(ops)(body)
        else:
            at = rng.randrange(len(body) + 1)
            body = body[:at] + rng.choice(NOISE) * rng.randint(1, 50) + body[at:]
    return body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.detection", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mutations", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=None, help="JSON file for every figure")
    args = parser.parse_args(argv)

    rows: list[tuple[str, str, int, float, dict[str, int]]] = []
    failures: list[str] = []
    for size, label in ((MAX_BODY_BYTES, "cap"), (4 * MAX_BODY_BYTES, "4x cap")):
        for name, body in hostile_pages(size).items():
            seconds, work, raised = best_of(args.repeat, body)
            rows.append(("hostile " + label, name, len(body), seconds, work))
            if raised:
                failures.append(f"hostile {name}")
    corpus = [p.read_bytes() for p in sorted(REAL.rglob("*.html"))]
    corpus_times = []
    for body in corpus:
        seconds, work, raised = best_of(args.repeat, body)
        corpus_times.append(seconds)
        rows.append(("corpus", "", len(body), seconds, work))
    rng = random.Random(args.seed)
    seeds = corpus + [p.read_bytes() for p in sorted(PAGES.glob("*.html"))]
    mutation_times = []
    for i in range(args.mutations):
        body = mutate(rng, rng.choice(seeds))
        seconds, work, raised = examine(body, status=rng.choice((200, 403)))
        mutation_times.append(seconds)
        rows.append(("mutated", f"#{i}", len(body), seconds, work))
        if raised:
            failures.append(f"mutation #{i}")

    worst = max(rows, key=lambda r: r[3])
    print("| set | pages | median ms | max ms | slowest page | its bytes | parsed chars |")
    print("|---|---|---|---|---|---|---|")
    for group in ("hostile cap", "hostile 4x cap", "corpus", "mutated"):
        mine = [r for r in rows if r[0] == group]
        if not mine:
            continue
        slow = max(mine, key=lambda r: r[3])
        print(
            f"| {group} | {len(mine)} | {statistics.median(r[3] for r in mine) * 1000:.2f} "
            f"| {slow[3] * 1000:.1f} | {slow[1] or '-'} | {slow[2]:,} "
            f"| {slow[4]['parsed_chars']:,} |"
        )
    print(
        f"\nWorst case: {worst[3] * 1000:.0f} ms CPU ({worst[0]} {worst[1]}, {worst[2]:,} bytes);"
        f" every page parsed at most {max(r[4]['parsed_chars'] for r in rows):,} characters"
        f" and made at most {max(r[4]['queries'] for r in rows)} XPath queries."
        f" Detectors raised on {len(failures)} pages."
    )
    if args.output is not None:
        args.output.write_text(
            json.dumps(
                [{"set": r[0], "page": r[1], "bytes": r[2], "seconds": r[3], **r[4]} for r in rows],
                indent=1,
            )
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
