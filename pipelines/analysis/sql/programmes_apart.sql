-- Pupils first enrolled, up to the end of the follow-up year, in each programme other than
-- PPSS (the register may hold SkolFam), and how many of them were also in PPSS by then. The
-- report counts PPSS only and shows these apart. With $districts: pupils whose first enrolment in
-- that programme, and in PPSS, was in those districts.
with ppss as (
    select pupil_key from programme_starts where programme = 'PPSS' and year(start_date) <= $year
        and ($districts::varchar[] is null or list_contains($districts::varchar[], district))
)

select
    programme,
    count(*) as n_pupils,
    list(pupil_key) as n_pupils__members,
    count(*) filter (where pupil_key in (select pupil_key from ppss)) as n_also_ppss,
    list(pupil_key) filter (where pupil_key in (select pupil_key from ppss)) as n_also_ppss__members
from programme_starts
where programme <> 'PPSS' and year(start_date) <= $year
        and ($districts::varchar[] is null or list_contains($districts::varchar[], district))
group by programme
order by programme
