-- Pupil-terms of the follow-up year in årskurs 7-9 of PPSS schools: absence rate and whether
-- the pupil was in PPSS that term (`enrolled`), with pupils never in any programme as the
-- comparison (`others`). Pupil groups are codes; `pipelines.labels` names them.
with programme_schools as (
    select distinct school_unit_code from programme_enrolments where programme = 'PPSS' and school_unit_code is not null
)

select
    term || ' ' || term_year as term_label,
    term_index,
    case when in_ppss then 'enrolled' else 'others' end as pupil_group,
    pupil_key,
    absence_rate
from pupil_term_outcomes
where term_year = $year and school_year between 7 and 9 and absence_rate is not null
    and school_unit_code in (select school_unit_code from programme_schools)
    and (in_ppss or pupil_key not in (select pupil_key from programme_starts))
