-- One row per pupil in the data up to the follow-up year: the first PPSS enrolment known
-- by 31 December of that year (a later enrolment is not yet known, so the pupil counts as not
-- enrolled), its district, school, selection reasons and interventions, and the pupil's
-- gender. Pupil-level: used for estimation, never shown. With $districts only enrolments whose
-- district is one of them count (the other pupils' rows carry no enrolment).
with firsts as (
    select
        pupil_key,
        start_date,
        start_month,
        start_term,
        district,
        school_unit_code as enrolment_school,
        selection_reasons,
        interventions
    from programme_starts
    where programme = 'PPSS' and start_date <= make_date($year, 12, 31)
        and ($districts::varchar[] is null or list_contains($districts::varchar[], district))
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
    f.start_month as enrolment_month,
    f.start_term as enrolment_term,
    f.district,
    f.enrolment_school,
    f.selection_reasons,
    f.interventions
from pupils as p
full join firsts as f using (pupil_key)
