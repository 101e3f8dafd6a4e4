-- Grain: one row per pupil and term with grades from a known school: the school that set most
-- of the pupil's grades that term (pupil_term_outcomes' school for a term without a grundskola
-- enrolment). A tie goes to the school that graded last, then to the lower school code, so
-- that every build picks the same school (mode() leaves a tie to the order rows arrive in).
create or replace table grade_schools as
with counts as (
    select pupil_key, term, term_year, school_unit_code, count(*) as n_grades, max(decision_date) as last_graded
    from stg_grades
    where school_unit_code is not null
    group by all
)

select pupil_key, term, term_year, school_unit_code
from counts
qualify row_number() over (
    partition by pupil_key, term, term_year
    order by n_grades desc, last_graded desc nulls last, school_unit_code
) = 1;
