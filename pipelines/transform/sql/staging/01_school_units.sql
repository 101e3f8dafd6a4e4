-- One row per school unit. skolenheter.csv (kept by the evaluator) places it in a stadsdel;
-- SS 12000 Organisations link the platform's organisation ids to the skolenhetskod.
create or replace view stg_school_units as
with csv as (
    select school_unit_code, school_name, district, huvudman
    from src_school_units
    qualify row_number() over (partition by school_unit_code order by file_id desc) = 1
),

orgs as (
    select school_unit_code, arg_max(display_name, file_id) as display_name
    from src_organisations
    group by school_unit_code
),

final as (
    select
        coalesce(csv.school_unit_code, orgs.school_unit_code) as school_unit_code,
        coalesce(csv.school_name, orgs.display_name) as school_name,
        csv.district,
        csv.huvudman
    from csv
    full outer join orgs on csv.school_unit_code = orgs.school_unit_code
)

select * from final;

create or replace view stg_org_units as
select org_ref, school_unit_code
from src_organisations
qualify row_number() over (partition by org_ref order by file_id desc) = 1;
