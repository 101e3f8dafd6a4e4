-- Attendance minutes per pupil and month, and per pupil and term. A record crossing a month
-- boundary is split in proportion to school days (macro school_days); a record whose days
-- are all weekend days is split by calendar days. Terms are whole months, so a term is the
-- sum of its months: the same split as splitting the record at the term boundary directly.
-- Periods with no record are missing data: they add nothing to offered minutes, so they
-- never read as zero absence.
create or replace table pupil_month_attendance as
with records as (
    select *, school_days(start_date, end_date) as record_days, datediff('day', start_date, end_date) + 1 as record_span
    from stg_attendance
),

months as (
    select unnest(generate_series(date_trunc('month', min(start_date)), max(end_date), interval 1 month))::date as month_start
    from stg_attendance
),

parts as (
    select
        r.*, m.month_start,
        greatest(r.start_date, m.month_start) as part_start,
        least(r.end_date, (m.month_start + interval 1 month - interval 1 day)::date) as part_end
    from records as r
    inner join months as m
        on r.start_date < m.month_start + interval 1 month and r.end_date >= m.month_start
),

weighted as (
    select
        *,
        case
            when record_days > 0 then school_days(part_start, part_end) / record_days
            else (datediff('day', part_start, part_end) + 1) / record_span
        end as weight
    from parts
),

final as (
    select
        pupil_key, month_start,
        sum(weight * offered) as offered_minutes,
        sum(weight * valid_absence) as valid_absence_minutes,
        sum(weight * invalid_absence) as invalid_absence_minutes
    from weighted
    group by all
)

select
    *,
    (valid_absence_minutes + invalid_absence_minutes) / nullif(offered_minutes, 0) as absence_rate
from final;

create or replace table term_absence as
with final as (
    select
        m.pupil_key, t.term, t.term_year,
        sum(m.offered_minutes) as offered_minutes,
        sum(m.valid_absence_minutes) as valid_absence_minutes,
        sum(m.invalid_absence_minutes) as invalid_absence_minutes
    from pupil_month_attendance as m
    inner join terms as t on m.month_start between t.term_start and t.term_end
    group by all
)

select
    *,
    (valid_absence_minutes + invalid_absence_minutes) / nullif(offered_minutes, 0) as absence_rate,
    invalid_absence_minutes / nullif(offered_minutes, 0) as invalid_absence_rate
from final;
