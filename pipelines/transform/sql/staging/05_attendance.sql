-- Aggregated attendance per pupil, activity and period; the same record in two files counts once.
-- A table, not a view: several marts read it, and computed once it saves a quarter of a city build.
create or replace table stg_attendance as
select
    links.pupil_key,
    a.activity_ref,
    a.start_date,
    a.end_date,
    a.attendance,
    a.valid_absence,
    a.invalid_absence,
    a.reported,
    a.offered
from valid_attendance as a
inner join stg_person_links as links using (person_ref)
qualify row_number() over (
    partition by links.pupil_key, a.activity_ref, a.start_date, a.end_date order by a.file_id desc
) = 1;
