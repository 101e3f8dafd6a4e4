-- Grades as they stand now (data contract 1.3): each <elev> in an export carries the pupil's
-- complete list, so a pupil's grades come from the newest export holding the pupil (exports
-- ordered by `tom`, then file name). A grade absent there was removed; a changed one corrected.
-- Within one export, two grades for the same subject (and language) and term: the later datum wins.
-- A table, not a view: several marts read it, and computed once it saves a quarter of a city build.
create or replace table stg_grades as
with exports as (
    select file_id, row_number() over (order by export_tom nulls first, file_name, file_id) as export_rank
    from src_grade_exports
),

latest_export as (
    select pupils.person_ref, arg_max(pupils.file_id, exports.export_rank) as file_id
    from src_grade_export_pupils as pupils
    inner join exports using (file_id)
    group by pupils.person_ref
),

current_grades as (
    select grades.*
    from valid_grades as grades
    inner join latest_export using (person_ref, file_id)
),

final as (
    select
        links.pupil_key,
        g.subject,
        g.language,
        g.grade,
        g.term,
        g.term_year,
        g.decision_date,
        g.is_retest,
        g.is_final,
        units.school_unit_code
    from current_grades as g
    inner join stg_person_links as links using (person_ref)
    left join stg_org_units as units on units.org_ref = g.school_ref
    -- the same pupil on two platforms (Stockholm changed platform in 2024): one grade per subject and term
    qualify row_number() over (
        partition by links.pupil_key, g.subject, coalesce(g.language, ''), g.term, g.term_year
        order by g.decision_date desc nulls last, g.file_id desc, g.seq desc
    ) = 1
)

select * from final;
