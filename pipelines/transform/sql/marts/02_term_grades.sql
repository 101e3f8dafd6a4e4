-- Grain: one row per pupil and term with grades. The rules, with their sources, are stated
-- in pipelines/rules/indicators.py, which computes the same values in Python; the tests compare
-- the two on generated data. In short: SV and SVA count once (the better grade); each
-- M1/M2/ML language is a subject; block grades NO and SO stand for their subjects;
-- merit_value_16 = the 16 best (M2 may be one), merit_value_17 = the best M2 set aside,
-- the 16 best of the rest, plus that M2; eligibility = SV/SVA, EN and MA passed plus 5
-- (yrkesprogram) or 9 (högskoleförberedande: with GE, HI, RE, SH for EK, HU, SA and with
-- BI, FY, KE for NA, TE) other passed subjects (gymnasieförordningen 7 kap. 4-5 §§).
create or replace table term_grades as
with grades as (
    select
        pupil_key, term, term_year, grade,
        case when subject in ('SV', 'SVA') then 'SV' else subject end as subject,
        coalesce(language, '') as language
    from stg_grades
),

-- a block grade stands for its subjects; one pass (a union of two branches would hold
-- `grades` in memory to read it twice)
expanded as (
    select
        pupil_key, term, term_year, grade, part.subject,
        case when grades.subject in ('NO', 'SO') then '' else grades.language end as language
    from grades
    cross join unnest(
        case grades.subject
            when 'NO' then ['BI', 'FY', 'KE']
            when 'SO' then ['GE', 'HI', 'RE', 'SH']
            else [grades.subject]
        end
    ) as part(subject)
),

subjects as (
    select
        pupil_key, term, term_year, subject, language,
        max(grade_points(grade)) as points,
        bool_or(grade in ('A', 'B', 'C', 'D', 'E')) as is_passed,
        -- keep F and '-' apart: a subject graded both ways reads as F
        arg_max(grade, grade_points(grade) * 10 + case grade when 'F' then 1 else 0 end) as grade
    from expanded
    group by all
),

-- One ranking serves both meritvärden. The M2 set aside for merit_value_17 is the pupil's best
-- M2, which is the first M2 in the rank_16 order (points desc, then language). If it ranks
-- within the 16 best, the 16 best of the rest are the 16 best without it plus the 17th;
-- otherwise they are the 16 best. Points are multiples of 2.5, so the sums are exact.
ranked as (
    select
        *,
        row_number() over (partition by pupil_key, term, term_year order by points desc, subject, language) as rank_16
    from subjects
),

final as (
    select
        pupil_key,
        term,
        term_year,
        count(*) as n_graded,
        count(*) filter (where is_passed) as n_passed,
        count(*) filter (where grade = 'F') as n_failed,
        count(*) filter (where grade = '-') as n_no_basis,
        count(*) filter (where is_passed) / count(*) as share_passed,
        sum(points) filter (where rank_16 <= 16) as merit_value_16,
        coalesce(min(rank_16) filter (where subject = 'M2') <= 16, false) as m2_in_16,
        coalesce(max(points) filter (where subject = 'M2'), 0) as m2_aside_points,
        coalesce(sum(points) filter (where rank_16 = 17), 0) as points_17th,
        bool_or(subject = 'SV' and is_passed) and bool_or(subject = 'EN' and is_passed)
            and bool_or(subject = 'MA' and is_passed) as core_passed,
        -- each subject passed (a distinct count would cost a hash table of its own)
        bool_or(subject = 'GE' and is_passed) and bool_or(subject = 'HI' and is_passed)
            and bool_or(subject = 'RE' and is_passed) and bool_or(subject = 'SH' and is_passed) as ekhusa_passed,
        bool_or(subject = 'BI' and is_passed) and bool_or(subject = 'FY' and is_passed)
            and bool_or(subject = 'KE' and is_passed) as nate_passed
    from ranked
    group by pupil_key, term, term_year
)

select
    pupil_key, term, term_year, n_graded, n_passed, n_failed, n_no_basis, share_passed,
    merit_value_16,
    merit_value_16 + case when m2_in_16 then points_17th - m2_aside_points else 0 end + m2_aside_points
        as merit_value_17,
    core_passed and n_passed >= 8 as eligible_vocational,
    core_passed and n_passed >= 12 and ekhusa_passed as eligible_hp_ek_hu_sa,
    core_passed and n_passed >= 12 and nate_passed as eligible_hp_na_te,
    core_passed and n_passed >= 12 as eligible_hp_es
from final;
