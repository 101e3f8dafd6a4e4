-- Pupil-terms of the follow-up year in årskurs 7-9 of PPSS schools: absence rate and whether
-- the pupil was in PPSS that term (`enrolled`), with pupils never in any programme as the
-- comparison (`others`). Pupil groups are codes; `pipelines.labels` names them. With $districts:
-- the PPSS pupils whose first PPSS enrolment was in those districts, and as comparison the
-- pupils never in any programme of the schools where enrolments in those districts were made.
with programme_schools as (
    select distinct school_unit_code from programme_enrolments where programme = 'PPSS' and school_unit_code is not null
),

subset_schools as (
    select distinct school_unit_code from programme_enrolments
    where programme = 'PPSS' and school_unit_code is not null
        and ($districts::varchar[] is null or list_contains($districts::varchar[], district))
),

subset as (
    select pupil_key from programme_starts
    where programme = 'PPSS'
        and ($districts::varchar[] is null or list_contains($districts::varchar[], district))
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
    and (
        (in_ppss and pupil_key in (select pupil_key from subset))
        or (
            pupil_key not in (select pupil_key from programme_starts)
            and school_unit_code in (select school_unit_code from subset_schools)
        )
    )
