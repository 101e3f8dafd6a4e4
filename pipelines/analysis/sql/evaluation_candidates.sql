-- Candidates for the matched comparisons (pupil-level, never shown). For every month in which
-- some pupil was first enrolled in PPSS (a cohort): the pupils enrolled that month, and every pupil
-- not yet enrolled then in the same term (estimands.py). For each: årskurs, school and gender
-- in the cohort month's term; the baseline path of monthly absence (the reported months among
-- the eight before the cohort month, latest first); share passed and meritvärde in
-- the baseline term (the term before the cohort's) and the term before that; share passed
-- three terms back (the grades' placebo). Outcomes, none
-- after the follow-up year: mean absence in months +3..+12, for a pupil enrolled later only
-- up to three months before its own enrolment (anticipation: pupils are often enrolled after
-- an absence peak); share passed in the term after the cohort's, for a pupil not enrolled by
-- its end; eligibility for yrkesprogram at the end of årskurs 9, likewise. Pupils of another
-- programme (SkolFam) are never comparisons. With $districts: the cohorts and enrolled pupils are
-- those whose first PPSS enrolment was in those districts; pupils enrolled elsewhere in the same month are
-- left out, and other pupils are comparisons as in the full report.
with firsts as (
    select
        pupil_key,
        start_month as own_month,
        start_term as own_term,
        district as own_district,
        ($districts::varchar[] is null or list_contains($districts::varchar[], district)) as in_subset
    from programme_starts
    where programme = 'PPSS' and start_date <= make_date($year, 12, 31)
),

cohorts as (
    select distinct
        own_month as cohort_month,
        ((own_month // 12) * 2 + case when own_month % 12 >= 6 then 1 else 0 end)::integer as cohort_term
    from firsts
    where in_subset
),

-- each pupil's reported months up to the year's end, in month order, as absence relative to
-- the pupil's school that month (evaluation_months.sql): the baseline path and the outcome
-- window are read off this short list per candidate (a join of candidates with their months,
-- ranked in a window, would be candidates x months rows: tens of millions in a city)
months as (
    select
        pupil_key,
        list({'mi': month_index, 'a': absence_rate, 'raw': raw_absence_rate} order by month_index) as path
    from ({include:evaluation_months})
    where absence_rate is not null
    group by pupil_key
),

candidates as (
    select
        c.cohort_month,
        o.pupil_key,
        o.gender,
        o.school_year,
        o.school_unit_code,
        c.cohort_term,
        f.own_month,
        f.own_term,
        coalesce(f.own_month = c.cohort_month, false) as treated,
        -- an enrolled pupil's district of enrolment: the comparisons are weighted per district
        -- and month, so a district's estimate never depends on another district's pupils
        case when f.own_month = c.cohort_month then f.own_district end as district
    from cohorts as c
    inner join pupil_term_outcomes as o on o.term_index = c.cohort_term
    left join firsts as f using (pupil_key)
    where
        (f.own_month is null or f.own_month >= c.cohort_month) and o.gender is not null
        -- enrolled this month in another district: neither enrolled here nor a comparison
        and (f.own_month is distinct from c.cohort_month or f.in_subset)
        -- a pupil of another programme (SkolFam) has had a similar intervention: never a comparison
        and (
            coalesce(f.own_month = c.cohort_month, false)
            or o.pupil_key not in (
                select pupil_key from programme_starts
                where programme <> 'PPSS' and start_date <= make_date($year, 12, 31)
            )
        )
),

windows as (
    select
        k.*,
        -- the reported months among the {pre_months} before the cohort month, latest first
        list_reverse(list_transform(
            list_filter(m.path, lambda x: x.mi between k.cohort_month - {pre_months} and k.cohort_month - 1),
            lambda x: x.a
        )) as pre,
        -- the same months as recorded (to describe pupils in words, never to compare)
        list_avg(list_transform(
            list_filter(m.path, lambda x: x.mi between k.cohort_month - {pre_months} and k.cohort_month - 1),
            lambda x: x.raw
        )) as raw_pre_mean,
        list_transform(
            list_filter(
                m.path,
                lambda x: x.mi between k.cohort_month + {outcome_first}
                and least(k.cohort_month + {outcome_last}, $year * 12 + 11)
                and (k.treated or k.own_month is null or x.mi < k.own_month - {anticipation})
            ),
            lambda x: x.a
        ) as post
    from candidates as k
    left join months as m on m.pupil_key = k.pupil_key
),

terms as (
    select * from pupil_term_outcomes where term_index <= $year * 2 + 1
),

-- the slutbetyg: the last spring in årskurs 9 (a pupil who repeats årskurs 9 has two; one
-- candidate row per pupil and cohort month)
finals as (
    select pupil_key, term_index as final_term, eligible_vocational
    from terms
    where term = 'VT' and school_year = 9 and eligible_vocational is not null
    qualify row_number() over (partition by pupil_key order by term_index desc) = 1
),

final as (
    select
        k.* exclude (pre, post, cohort_term, own_term),
        case when len(k.pre) > 0 then len(k.pre) end as n_pre,
        list_avg(k.pre) as pre_mean,
        k.pre[1] as pre_1,
        k.pre[2] as pre_2,
        list_avg(k.pre[3:4]) as pre_34,
        list_avg(k.pre[5:]) as pre_5plus,
        b.share_passed as base_share_passed,
        b.merit_value_16 as base_merit,
        b1.share_passed as prior_share_passed,
        b1.merit_value_16 as prior_merit,
        -- the grades' placebo: the term before those balanced on, never balanced on itself
        b2.share_passed as placebo_share_passed,
        list_avg(k.post) as post_mean,
        case when k.treated or k.own_term is null or k.own_term > k.cohort_term + 1
            then later.share_passed end as later_share_passed,
        case when k.treated or k.own_term is null or k.own_term > fin.final_term
            then fin.eligible_vocational::double end as eligible_vocational
    from windows as k
    left join terms as b on b.pupil_key = k.pupil_key and b.term_index = k.cohort_term - 1
    left join terms as b1 on b1.pupil_key = k.pupil_key and b1.term_index = k.cohort_term - 2
    left join terms as b2 on b2.pupil_key = k.pupil_key and b2.term_index = k.cohort_term - 3
    left join terms as later on later.pupil_key = k.pupil_key and later.term_index = k.cohort_term + 1
    left join finals as fin on fin.pupil_key = k.pupil_key and fin.final_term >= k.cohort_term
)

select * from final
