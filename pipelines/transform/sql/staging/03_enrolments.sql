-- School enrolments from the newest persons file holding each person; cancelled ones dropped.
create or replace view stg_enrolments as
with latest as (
    select person_ref, max(file_id) as file_id
    from valid_persons
    group by person_ref
),

enrolments as (
    select e.*
    from valid_enrolments as e
    inner join latest using (person_ref, file_id)
    where not coalesce(e.cancelled, false)
),

final as (
    select
        links.pupil_key,
        units.school_unit_code,
        enrolments.school_year,
        enrolments.school_type,
        enrolments.start_date,
        enrolments.end_date
    from enrolments
    inner join stg_person_links as links using (person_ref)
    left join stg_org_units as units on units.org_ref = enrolments.school_ref
)

select * from final;
