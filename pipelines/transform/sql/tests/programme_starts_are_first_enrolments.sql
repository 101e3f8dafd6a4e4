-- programme_starts: each pupil's earliest enrolment in each programme of programme_enrolments,
-- no pair missing and none extra.
with firsts as (
    select pupil_key, programme, min(start_date) as start_date
    from programme_enrolments
    group by all
)

select coalesce(f.pupil_key, s.pupil_key) as pupil_key, f.start_date as expected, s.start_date as found
from firsts as f
full join programme_starts as s using (pupil_key, programme)
where f.start_date is distinct from s.start_date
