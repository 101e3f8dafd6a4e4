-- Pupil-terms of the follow-up year in årskurs 7-9 of programme schools: absence rate and
-- whether the pupil was in the programme that term; never-enrolled pupils as the comparison.
with programme_schools as (
    select distinct school_unit_code from programme_enrolments where school_unit_code is not null
)

select
    term || ' ' || term_year as term_label,
    term_index,
    case when in_programme then 'Inskrivna i PPSS' else 'Övriga elever i samma skolor' end as pupil_group,
    absence_rate
from pupil_term_outcomes
where term_year = $year and school_year between 7 and 9 and absence_rate is not null
    and school_unit_code in (select school_unit_code from programme_schools)
    and (in_programme or pupil_key not in (select pupil_key from programme_enrolments))
