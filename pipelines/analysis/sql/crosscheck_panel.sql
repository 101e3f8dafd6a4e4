-- The term panel for the Callaway-Sant'Anna cross-check (pupil-level, never shown): absence
-- per pupil and term up to the follow-up year, the term of first PPSS enrolment known by the
-- year's end (0: not enrolled by then), and the pupil's first school (the cluster). With
-- $districts, pupils first enrolled by then in another district are left out (neither enrolled nor control).
with firsts as (
    select
        pupil_key,
        start_term as first_term,
        ($districts::varchar[] is null or list_contains($districts::varchar[], district)) as in_subset
    from programme_starts
    where programme = 'PPSS' and start_date <= make_date($year, 12, 31)
),

panel as (
    select pupil_key, term_index, absence_rate, school_unit_code
    from pupil_term_outcomes
    where term_index <= $year * 2 + 1 and absence_rate is not null
)

select
    p.pupil_key,
    p.term_index,
    p.absence_rate,
    coalesce(f.first_term, 0) as first_term,
    first(p.school_unit_code) over (partition by p.pupil_key order by p.term_index) as school
from panel as p
left join firsts as f using (pupil_key)
where coalesce(f.in_subset, true)
