-- Pupils in årskurs 9 in the spring term of the follow-up year, in schools where at least one
-- pupil has been enrolled in PPSS: PPSS pupils first enrolled before the term ended
-- (`enrolled`) and the pupils of the same schools never in any programme (`others`).
-- Pupil groups are codes; `pipelines.labels` names them. With $districts: PPSS pupils whose first
-- PPSS enrolment was in those districts, and as comparison the others of the schools where
-- enrolments in those districts were made.
with programme_schools as (
    select distinct school_unit_code
    from programme_enrolments
    where programme = 'PPSS' and school_unit_code is not null
),

subset_schools as (
    select distinct school_unit_code
    from programme_enrolments
    where programme = 'PPSS' and school_unit_code is not null
        and ($districts::varchar[] is null or list_contains($districts::varchar[], district))
),

enrolled as (
    select pupil_key from programme_starts
    where programme = 'PPSS' and start_date <= make_date($year, 6, 30)
        and ($districts::varchar[] is null or list_contains($districts::varchar[], district))
)

select
    case when o.pupil_key in (select pupil_key from enrolled) then 'enrolled' else 'others' end as pupil_group,
    o.pupil_key,
    o.gender,
    o.eligible_vocational,
    o.eligible_hp_es,
    o.eligible_hp_ek_hu_sa,
    o.eligible_hp_na_te,
    o.merit_value_17,
    o.n_passed,
    o.n_graded
from pupil_term_outcomes as o
where o.term = 'VT' and o.term_year = $year and o.school_year = 9
    and o.school_unit_code in (select school_unit_code from programme_schools)
    and o.n_graded is not null
    -- pupils enrolled in PPSS only after the term, or only in another programme, are neither group
    and (
        o.pupil_key in (select pupil_key from enrolled)
        or (
            o.pupil_key not in (select pupil_key from programme_starts)
            and o.school_unit_code in (select school_unit_code from subset_schools)
        )
    )
