-- Grain: one row per pupil and programme (`PPSS`, `SkolFam`): the pupil's first enrolment in
-- that programme, with the district, school, selection reasons and interventions of that
-- enrolment. Every report query reads "first enrolment" from here, never from its own
-- copy; a pupil in both programmes has two rows, and the follow-up reads `programme = 'PPSS'`.
create or replace table programme_starts as
with firsts as (
    select
        pupil_key,
        programme,
        min(start_date) as start_date,
        arg_min(district, start_date) as district,
        arg_min(school_unit_code, start_date) as school_unit_code,
        arg_min(selection_reasons, start_date) as selection_reasons,
        arg_min(interventions, start_date) as interventions
    from stg_programme_enrolments
    group by pupil_key, programme
),

final as (
    select
        pupil_key,
        programme,
        start_date,
        district,
        school_unit_code,
        selection_reasons,
        interventions,
        -- months as year * 12 + month - 1, terms as the store's term_index (estimands.py)
        (year(start_date) * 12 + month(start_date) - 1)::integer as start_month,
        (year(start_date) * 2 + case when month(start_date) >= 7 then 1 else 0 end)::integer as start_term
    from firsts
)

select * from final order by pupil_key, programme;
