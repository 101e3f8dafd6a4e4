-- The city's autumn 2015 follow-up, reproduced: pupils first enrolled in PPSS by the end of VT 2014 and
-- their outcomes in the three terms VT 2014 (term 1), HT 2014 (term 2) and VT 2015 (term 3). With
-- $districts: only pupils whose first PPSS enrolment was in those districts.
with cohort as (
    select pupil_key from programme_starts where programme = 'PPSS' and start_date <= date '2014-06-30'
        and ($districts::varchar[] is null or list_contains($districts::varchar[], district))
)

select
    o.pupil_key,
    o.gender,
    case o.term || o.term_year when 'VT2014' then 1 when 'HT2014' then 2 when 'VT2015' then 3 end as term_no,
    o.share_passed,
    o.eligible_hp_es
from pupil_term_outcomes as o
inner join cohort using (pupil_key)
where o.term || o.term_year in ('VT2014', 'HT2014', 'VT2015') and o.share_passed is not null
