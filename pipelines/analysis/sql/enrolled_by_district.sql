-- PPSS pupils per district and calendar year of first PPSS enrolment (one row per pupil in
-- programme_starts, so each pupil counts once, in the district of that enrolment); only
-- $districts when given.
select district, year(start_date) as year, count(*) as n_pupils, list(pupil_key) as n_pupils__members
from programme_starts
where programme = 'PPSS' and year(start_date) <= $year
        and ($districts::varchar[] is null or list_contains($districts::varchar[], district))
group by all
order by district, year
