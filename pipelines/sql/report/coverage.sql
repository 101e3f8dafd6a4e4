-- How many programme pupils (enrolled up to the end of the follow-up year) each source covers.
with pupils as (
    select distinct pupil_key from programme_enrolments where year(start_date) <= $year
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

total as (select count(*) as n from pupils)

select 'Skolinskrivning (SS 12000)' as source, count(*) filter (where has_enrolment) as k, any_value(total.n) as n
from found, total
union all
select 'Betyg (Skolplattformen)', count(*) filter (where has_grades), any_value(total.n) from found, total
union all
select 'Närvaro (SS 12000)', count(*) filter (where has_attendance), any_value(total.n) from found, total
