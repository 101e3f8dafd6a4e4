"""4. Attendance before and after enrolment, and pupils above the absence thresholds."""

from __future__ import annotations

from pipelines.analysis import followup as fu
from pipelines.analysis.figures import scoped
from pipelines.report import charts
from pipelines.report.sections.base import Context, chart, markdown

TITLE = "Närvaro före och efter inskrivning"
INTRO = (
    "Frånvaro är giltig plus ogiltig frånvaro delad med erbjuden undervisningstid, per månad. Månad 0 är "
    "inskrivningsmånaden. Månader utan rapporterad närvaro räknas som saknade uppgifter, inte som noll frånvaro."
)


def register(pub, ctx: Context) -> None:
    _, KD = scoped(ctx.year, ctx.districts)
    event = fu.attendance_event_time(ctx.con, ctx.year, ctx.districts)
    pub.table(
        "attendance_event_time",
        event,
        counts={"n": KD("event_month_pupils", "pupil_group", "event_month")},
        labels=["event_month"],
    )
    thresholds = fu.absence_thresholds(ctx.con, ctx.year, ctx.absence_threshold, ctx.districts)
    pub.table(
        "absence_thresholds",
        thresholds,
        counts={
            "n": KD("term_pupils", "term_label", "pupil_group"),
            "k": KD("high_absence", "term_label", "pupil_group", "threshold"),
        },
        labels=["term_index", "threshold"],
    )


def show(prot, ctx: Context) -> None:
    event = prot["attendance_event_time"]
    chart(charts.attendance_event_time(event, ctx.min_cell), ctx, {"attendance_event_time": event})
    markdown(fu.text_attendance(event))
    high = prot["absence_thresholds"]
    chart(charts.absence_thresholds(high, ctx.absence_threshold, ctx.min_cell), ctx, {"absence_thresholds": high})
