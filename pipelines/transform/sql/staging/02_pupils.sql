-- Platform person ids (as keyed hashes) -> pupil_key, and one row per pupil.
-- The newest persons file wins where a person's identity number was corrected.
create or replace view stg_person_links as
select person_ref, pupil_key
from valid_persons
qualify row_number() over (partition by person_ref order by file_id desc) = 1;

create or replace view stg_pupils as
select
    pupil_key,
    arg_max(gender, file_id) as gender,
    arg_max(birth_year, file_id) as birth_year,
    bool_or(is_protected) as is_protected
from valid_persons
group by pupil_key;
