-- Candidates for matching, at the baseline term (the last full term before enrolment):
-- every pupil first enrolled up to the end of the follow-up year, and every never-enrolled
-- pupil in the same term, school and årskurs. Pupil-level: used for estimation, never shown.
with firsts as (
    select pupil_key, min(start_date) as start_date, arg_min(district, start_date) as district
    from programme_enrolments
    group by pupil_key
),

treated as (
    select
        o.pupil_key, 1 as treated, o.term_index, o.school_unit_code, o.school_year, o.gender,
        o.absence_rate, o.share_passed, date_trunc('month', f.start_date) as enrolment_month, f.district
    from pupil_term_outcomes as o
    inner join firsts as f using (pupil_key)
    where o.is_baseline_term and year(f.start_date) <= $year
),

controls as (
    select
        o.pupil_key, 0 as treated, o.term_index, o.school_unit_code, o.school_year, o.gender,
        o.absence_rate, o.share_passed, null::date as enrolment_month, null as district
    from pupil_term_outcomes as o
    where o.pupil_key not in (select pupil_key from firsts)
        and (o.term_index, o.school_unit_code, o.school_year) in (
            select (term_index, school_unit_code, school_year) from treated
        )
)

select * from treated
union all
select * from controls
