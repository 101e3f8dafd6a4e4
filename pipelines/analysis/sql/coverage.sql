-- How many PPSS pupils (first enrolled up to the end of the follow-up year; of $districts only,
-- by the district of the first PPSS enrolment, when given) each source covers.
with pupils as (
    select pupil_key from programme_starts where programme = 'PPSS' and year(start_date) <= $year
        and ($districts::varchar[] is null or list_contains($districts::varchar[], district))
),

found as (
    select
        pupil_key,
        bool_or(school_year is not null) as has_enrolment,
        bool_or(n_graded is not null) as has_grades,
        bool_or(offered_minutes is not null) as has_attendance
    from pupil_term_outcomes
    where pupil_key in (select pupil_key from pupils)
    group by pupil_key
),

total as (select count(*) as n, list(pupil_key) as members from pupils)

select
    'enrolment' as source, count(*) filter (where has_enrolment) as k,
    list(pupil_key) filter (where has_enrolment) as k__members,
    any_value(total.n) as n, any_value(total.members) as n__members
from found, total
union all
select
    'grades', count(*) filter (where has_grades), list(pupil_key) filter (where has_grades),
    any_value(total.n), any_value(total.members)
from found, total
union all
select
    'attendance', count(*) filter (where has_attendance), list(pupil_key) filter (where has_attendance),
    any_value(total.n), any_value(total.members)
from found, total
