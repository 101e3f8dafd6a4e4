-- The store's public tables (data contract 4): names and columns are a contract with the
-- notebooks and with users. Extra columns are additions, never renames.

-- Grain: one row per school unit.
create or replace table school_units as
select * from stg_school_units;

-- Grain: one row per programme enrolment.
create or replace table programme_enrolments as
select * from stg_programme_enrolments;

-- Grain: one row per pupil and term in which the pupil had a grundskola enrolment, grades or
-- attendance. The school and årskurs are those of the pupil's latest enrolment active in the
-- term (pupils change schools); without an enrolment, the school that set most of the grades
-- (grade_schools).
create or replace table pupil_term_outcomes as
with enrolment_terms as (
    select e.pupil_key, t.term, t.term_year, e.school_year, e.school_unit_code, e.school_type
    from stg_enrolments as e
    inner join terms as t
        on e.start_date <= t.term_end and coalesce(e.end_date, date '9999-12-31') >= t.term_start
    where e.school_type in ('GR', 'GRS')
    -- the latest start; a tie (two enrolments from the same day) decided the same way in every build
    qualify row_number() over (
        partition by e.pupil_key, t.term, t.term_year
        order by e.start_date desc, e.end_date desc nulls first, e.school_unit_code, e.school_year, e.school_type
    ) = 1
),

grid as (
    select pupil_key, term, term_year from enrolment_terms
    union
    select pupil_key, term, term_year from term_grades
    union
    select pupil_key, term, term_year from term_absence
),

first_enrolments as (
    -- each pupil's first PPSS enrolment (programme_starts) and the term it falls in
    select p.pupil_key, t.term_index as enrolment_term_index
    from programme_starts as p
    inner join terms as t on p.start_date between t.term_start and t.term_end
    where p.programme = 'PPSS'
),

programme_terms as (
    -- terms with an active enrolment in any programme, and whether one of them was PPSS
    select p.pupil_key, t.term, t.term_year, bool_or(p.programme = 'PPSS') as in_ppss
    from stg_programme_enrolments as p
    inner join terms as t
        on p.start_date <= t.term_end and coalesce(p.end_date, date '9999-12-31') >= t.term_start
    group by all
),

final as (
    select
        grid.pupil_key,
        grid.term,
        grid.term_year,
        grid_terms.term_index,
        e.school_year,
        coalesce(e.school_unit_code, gs.school_unit_code) as school_unit_code,
        pupils.gender,
        g.n_graded,
        g.n_passed,
        g.share_passed,
        g.merit_value_16,
        g.merit_value_17,
        g.eligible_vocational,
        g.eligible_hp_ek_hu_sa,
        g.eligible_hp_na_te,
        g.eligible_hp_es,
        a.offered_minutes,
        a.absence_rate,
        a.invalid_absence_rate,
        pt.pupil_key is not null as in_programme,
        -- terms from the term of first PPSS enrolment (0), negative before; null if never in PPSS
        grid_terms.term_index - fe.enrolment_term_index as terms_since_enrolment,
        -- the baseline: the last full term before the term of first PPSS enrolment
        coalesce(grid_terms.term_index = fe.enrolment_term_index - 1, false) as is_baseline_term,
        g.n_failed,
        g.n_no_basis,
        a.absence_rate >= 0.10 as is_absent_10,
        a.absence_rate >= 0.15 as is_absent_15,
        a.absence_rate >= 0.20 as is_absent_20,
        e.school_type,
        coalesce(pupils.is_protected, false) as is_protected,
        -- an active PPSS enrolment on at least one day of the term (in_programme: any programme)
        coalesce(pt.in_ppss, false) as in_ppss
    from grid
    inner join terms as grid_terms using (term, term_year)
    left join enrolment_terms as e using (pupil_key, term, term_year)
    left join grade_schools as gs using (pupil_key, term, term_year)
    left join term_grades as g using (pupil_key, term, term_year)
    left join term_absence as a using (pupil_key, term, term_year)
    left join programme_terms as pt using (pupil_key, term, term_year)
    left join first_enrolments as fe using (pupil_key)
    left join stg_pupils as pupils using (pupil_key)
)

select * from final order by pupil_key, term_index;
