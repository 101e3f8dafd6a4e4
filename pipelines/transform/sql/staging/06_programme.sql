-- Programme enrolments from the register; a row repeated across files counts once (newest wins).
-- An empty Stadsdel is taken from the school unit's stadsdel in skolenheter.csv.
create or replace view stg_programme_enrolments as
with register as (
    select *
    from valid_register
    qualify row_number() over (
        partition by pupil_key, programme, start_date order by file_id desc, row_no desc
    ) = 1
),

final as (
    select
        register.pupil_key,
        register.programme,
        coalesce(register.district, units.district) as district,
        register.school_unit_code,
        register.start_date,
        register.end_date,
        register.selection_reasons,
        register.interventions
    from register
    left join stg_school_units as units using (school_unit_code)
)

select * from final;
