-- Monthly absence of every pupil up to the end of the follow-up year, with months counted as
-- year * 12 + month - 1 (pupil-level: used for estimation, never shown).
select
    pupil_key,
    (year(month_start) * 12 + month(month_start) - 1)::integer as month_index,
    absence_rate
from pupil_month_attendance
where absence_rate is not null and month_start <= make_date($year, 12, 31)
