-- Pupils in årskurs 9 in the spring term of the follow-up year, in schools where at least one
-- pupil has been enrolled in the programme: enrolled pupils (enrolled before the term ended)
-- and the other pupils of the same schools.
with programme_schools as (
    select distinct school_unit_code from programme_enrolments where school_unit_code is not null
),

enrolled as (
    select pupil_key, min(start_date) as start_date
    from programme_enrolments
    group by pupil_key
)

select
    case when e.pupil_key is not null then 'Inskrivna i PPSS' else 'Övriga elever i samma skolor' end as pupil_group,
    o.gender,
    o.eligible_vocational,
    o.eligible_hp_es,
    o.eligible_hp_ek_hu_sa,
    o.eligible_hp_na_te,
    o.merit_value_17,
    o.n_passed,
    o.n_graded
from pupil_term_outcomes as o
left join enrolled as e on e.pupil_key = o.pupil_key and e.start_date <= make_date($year, 6, 30)
where o.term = 'VT' and o.term_year = $year and o.school_year = 9
    and o.school_unit_code in (select school_unit_code from programme_schools)
    and o.n_graded is not null
    -- pupils enrolled only after the term are neither group
    and o.pupil_key not in (select pupil_key from enrolled where start_date > make_date($year, 6, 30))
