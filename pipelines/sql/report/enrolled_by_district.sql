-- Pupils enrolled per district and calendar year (first enrolment in each programme).
with firsts as (
    select pupil_key, programme, min(start_date) as start_date, arg_min(district, start_date) as district
    from programme_enrolments
    group by pupil_key, programme
)

select district, year(start_date) as year, programme, count(*) as n_pupils
from firsts
where year(start_date) <= $year
group by all
order by district, year
