"""Reports as files: HTML (right to left, Persian digits, Jalali dates), PDF (WeasyPrint, fonts
that shape Persian) and CSV (Latin digits, for spreadsheets). The presentation edge: numbers
become Persian text here and nowhere earlier."""
from __future__ import annotations

import base64
import csv
import io
import logging
import tomllib
from collections.abc import Callable
from pathlib import Path

import jdatetime
import jinja2

from clock import TEHRAN
from presentation import fa_digits, jalali
from reports.months import JALALI_NAMES

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
CATALOG = tomllib.loads((HERE.parent / "accountability" / "catalog.fa.toml").read_text(encoding="utf-8"))
DASH = "—"


# ---- numbers as Persian text ----------------------------------------------------------------
def num(value, digits: int = 0) -> str:
    """1234.5 -> '۱٬۲۳۴٫۵'; None -> a dash."""
    if value is None:
        return DASH
    text = f"{value:,.{digits}f}".replace(",", "\u066c").replace(".", "\u066b")
    return fa_digits(text)


def pct(value, digits: int = 0) -> str:
    return DASH if value is None else num(value, digits) + "٪"


def share_or_count(value, n: int) -> str:
    """A percentage, or how few there were when too few to make one."""
    if value is not None:
        return pct(value)
    return DASH if not n else f"فقط {num(n)} مورد"


def duration(minutes) -> str:
    """Office minutes as h:mm (Persian digits)."""
    if minutes is None:
        return DASH
    m = round(minutes)
    return fa_digits(f"{m // 60}:{m % 60:02d}")


def signed(value, unit: str = "٪") -> str:
    """A change: ▲ 12٪, ▼ 3٪, or a dash."""
    if value is None:
        return DASH
    if abs(value) < 0.05:
        return "بدون تغییر"
    return ("▲ " if value > 0 else "▼ ") + num(abs(value), 1 if abs(value) < 10 else 0) + unit


def jdate(value) -> str:
    """A date or an aware datetime as a Jalali date in Persian ('۱ مهر ۱۴۰۴')."""
    if hasattr(value, "astimezone"):
        value = value.astimezone(TEHRAN).date()
    j = jdatetime.date.fromgregorian(date=value)
    return fa_digits(f"{j.day} {JALALI_NAMES[j.month - 1]} {j.year}")


DAYS_FA = ("شنبه", "یکشنبه", "دوشنبه", "سه‌شنبه", "چهارشنبه", "پنجشنبه", "جمعه")


def hours_fa(spec: str) -> str:
    """'sat-wed 07:00-14:00' as Persian: 'شنبه تا چهارشنبه، ۷:۰۰ تا ۱۴:۰۰'."""
    from clock import hours as wh

    parsed = wh.parse(spec)
    if parsed.always:
        return "همهٔ ساعت‌های شبانه‌روز"
    by_span: dict[tuple[int, int], list[int]] = {}
    for weekday, start, end in parsed.windows:
        by_span.setdefault((start, end), []).append((weekday - 5) % 7)  # Saturday first
    parts = []
    for (start, end), days in sorted(by_span.items(), key=lambda kv: min(kv[1])):
        days = sorted(days)
        names = (f"{DAYS_FA[days[0]]} تا {DAYS_FA[days[-1]]}" if days == list(range(days[0], days[-1] + 1))
                 and len(days) > 2 else "، ".join(DAYS_FA[d] for d in days))
        parts.append(f"{names}، {start // 60}:{start % 60:02d} تا {end // 60}:{end % 60:02d}")
    return fa_digits("؛ ".join(parts))


def env() -> jinja2.Environment:
    e = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                           undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    e.filters.update(fa=fa_digits, num=num, pct=pct, duration=duration, signed=signed, jdate=jdate,
                     jalali=lambda v: jalali(v, persian_digits=True), share_or_count=share_or_count, hours_fa=hours_fa)
    e.globals.update(OUTCOME_FA=CATALOG["outcome"], DASH=DASH)
    return e


ENV = env()


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def html(template: str, **context) -> str:
    return ENV.get_template(template).render(**context)


def load_weasyprint():
    """WeasyPrint, imported when a PDF is first wanted (it takes 0.6 s)."""
    import weasyprint

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    return weasyprint


FIGURE = "figure:"  # src="figure:NAME": an image given to pdf(), not a file or a data URI


def pdf(html_text: str, figures: Callable[[str], bytes] | None = None) -> bytes:
    """The HTML as PDF; WeasyPrint shapes Persian with HarfBuzz through the fonts installed.
    ``figures``: name -> PNG bytes, for the page's ``src="figure:NAME"``, asked for when WeasyPrint
    reaches the image, so that the PDF can be begun while they are still being drawn."""
    weasyprint = load_weasyprint()
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class Fetcher(URLFetcher):
        def fetch(self, url, headers=None):
            if figures is not None and url.startswith(FIGURE):
                return URLFetcherResponse(url, figures(url.removeprefix(FIGURE)), {"Content-Type": "image/png"})
            return super().fetch(url, headers)

    return weasyprint.HTML(string=html_text, base_url=str(TEMPLATES), url_fetcher=Fetcher()).write_pdf()


# ---- CSV ------------------------------------------------------------------------------------
def csv_rows(report) -> list[dict]:
    """One row for all, one per agency, one per province: the figures as plain numbers."""
    rows = []
    for scope, items in (("all", [report.total]), ("agency", report.agencies), ("province", report.provinces)):
        for r in items:
            row = {"month": report.month.key, "scope": scope, "code": r.key, "name_fa": r.name_fa,
                   "live": int(r.live), "calls": r.calls, "out_of_scope": r.out_of_scope,
                   "out_of_scope_pct": r.out_of_scope_share, "refused_over_limit": r.refused,
                   "complaints": r.complaints,
                   "per_100k": r.per_100k, "population": r.population}
            row |= {f"indicator_{k}": v for k, v in r.by_indicator.items()}
            row |= {"acknowledged": r.acknowledged, "ack_median_min": r.ack_median, "ack_p90_min": r.ack_p90,
                    "ack_within_target": r.ack_met, "ack_decided": r.ack_decided, "ack_within_target_pct": r.ack_share,
                    "resolved": r.resolved, "resolve_median_min": r.res_median, "resolve_p90_min": r.res_p90,
                    "sla_met": r.sla_met, "sla_decided": r.sla_decided, "sla_pending": r.sla_pending,
                    "sla_met_pct": r.sla_share}
            row |= {f"outcome_{k}": v for k, v in r.outcomes.items()}
            row |= {"ratings": r.ratings, "rating_mean": r.rating_mean, "prev_complaints": r.prev_complaints,
                    "complaints_change_pct": r.complaints_change, "prev_sla_met_pct": r.prev_sla_share,
                    "sla_change_points": r.sla_change, "rank": r.rank}
            row |= _by_language(report, scope, r.key)
            rows.append(row)
    return rows


def _by_language(report, scope: str, key: str) -> dict:
    """calls_<language> and complaints_<language> (a language not recorded: "unknown"): the total
    and provinces only, since a call has no agency."""
    langs = sorted({lang for _, _, lang, _, _ in report.languages})
    out: dict = {}
    for lang in langs:
        picked = [(c, f) for area, _, la, c, f in report.languages
                  if la == lang and (scope == "all" or (scope == "province" and area == key))]
        name = lang or "unknown"
        out[f"calls_{name}"] = sum(c for c, _ in picked) if scope != "agency" else None
        out[f"complaints_{name}"] = sum(f for _, f in picked) if scope != "agency" else None
    return out


def to_csv(report) -> bytes:
    """UTF-8 with a byte order mark, so that spreadsheet programs read the Persian names."""
    rows = csv_rows(report)
    out = io.StringIO()
    w = csv.DictWriter(out, list(rows[0]), lineterminator="\r\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()})
    return out.getvalue().encode("utf-8-sig")
