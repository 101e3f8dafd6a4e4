-- One row per pupil in the data up to the follow-up year: the first programme enrolment known
-- by 31 December of that year (a later enrolment is not yet known, so the pupil counts as not
-- enrolled), its district, school, selection reasons and interventions, and the pupil's
-- gender. Pupil-level: used for estimation, never shown.
with firsts as (
    select
        pupil_key,
        min(start_date) as start_date,
        arg_min(district, start_date) as district,
        arg_min(school_unit_code, start_date) as enrolment_school,
        arg_min(selection_reasons, start_date) as selection_reasons,
        arg_min(interventions, start_date) as interventions
    from programme_enrolments
    where start_date <= make_date($year, 12, 31)
    group by pupil_key
),

pupils as (
    select pupil_key, any_value(gender) as gender
    from pupil_term_outcomes
    where term_year <= $year
    group by pupil_key
)

select
    coalesce(p.pupil_key, f.pupil_key) as pupil_key,
    p.gender,
    f.start_date,
    (year(f.start_date) * 12 + month(f.start_date) - 1)::integer as enrolment_month,
    (year(f.start_date) * 2 + case when month(f.start_date) >= 7 then 1 else 0 end)::integer as enrolment_term,
    f.district,
    f.enrolment_school,
    f.selection_reasons,
    f.interventions
from pupils as p
full join firsts as f using (pupil_key)
